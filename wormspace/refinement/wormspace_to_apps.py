"""Refinement checks WormSpace -> apps: WormLog, WormPaxos and WormKV against their sequential specs.

Rule 1. The specs are the apps' own trusted specs (in ``wormspace/apps/``); this module only adapts them
        into checker models and lockstep references, it never restates them.
Rule 2. Every verdict is "checked (bounded)": for these clients, seeds, fault rates and budgets; UNKNOWN
        (a budget ran out) is never a pass.

Checks:

1. ``check_replicas`` -- WormPaxos: every replica's applied list is a prefix of one command sequence; each
   command appears in it at most once, and exactly once if its ``submit`` returned; no command appears that
   nobody submitted; replaying the sequence through the state machine gives every ``submit`` its result.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplicaVerdict:
    """The outcome of ``check_replicas``: ``ok`` iff ``problems`` is empty; ``sequence`` is the longest list."""

    ok: bool
    problems: tuple[str, ...]
    sequence: tuple[bytes, ...]
    replicas: int


def check_replicas(
    applied: Mapping[str, Sequence[bytes]],
    submitted: Mapping[bytes, bytes | None],
    machine: Callable[[], Callable[[bytes], bytes]],
) -> ReplicaVerdict:
    """Judge a WormPaxos run (see the module docstring, check 1).

    ``applied`` maps a replica's name to the commands it applied, in order; ``submitted`` maps each
    submitted command (unique in a run) to what its ``submit`` returned, None when it did not return (an
    indeterminate or abandoned submit); ``machine()`` gives a fresh deterministic ``apply``.
    """
    problems: list[str] = []
    sequence: tuple[bytes, ...] = max((tuple(a) for a in applied.values()), key=len, default=())
    for name, cmds in sorted(applied.items()):
        if tuple(cmds) != sequence[: len(cmds)]:
            at = next(i for i, (a, b) in enumerate(zip(cmds, sequence, strict=False)) if a != b)
            problems.append(
                f"replica {name} applied {cmds[at]!r} at index {at}, where the longest replica applied "
                f"{sequence[at]!r}: not a prefix of one sequence"
            )
    counts = Counter(sequence)
    for cmd, n in sorted(counts.items()):
        if n > 1:
            problems.append(f"command {cmd!r} applied {n} times")
        if cmd not in submitted:
            problems.append(f"command {cmd!r} applied but never submitted")
    apply = machine()
    results = {cmd: apply(cmd) for cmd in sequence}
    for cmd, result in sorted(submitted.items()):
        if result is None:
            continue
        if cmd not in counts:
            problems.append(f"submit({cmd!r}) returned but no replica applied it")
        elif results[cmd] != result:
            problems.append(f"submit({cmd!r}) returned {result!r}; the spec's result there is {results[cmd]!r}")
    return ReplicaVerdict(ok=not problems, problems=tuple(problems), sequence=sequence, replicas=len(applied))
