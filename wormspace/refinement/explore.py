"""An explicit-state bounded model checker over the pure cores of the acceptor and WOR layers.

Theory of operation. A *global state* is everything the protocol is made of, as immutable values:

* per acceptor, its register dict as a sorted tuple ``((segment, index), RegState)``;
* per client, its position in its script, the ``Op`` state of its running operation (the pure WOR core)
  and summaries of its finished operations;
* the network: the in-flight packets ``(src, dst, message)``;
* the ghost log of every vote ever cast, ``(acceptor, ballot, value)`` (Lamport's *Voting* abstraction).

Encoding. Every value is interned to a small int (register dicts, packets, operations, clients), and every
fact but the clients' and the replacement's progress names exactly one acceptor (a packet is a request to
it or its reply; a vote is its own), so a state is stored per acceptor: ``State`` is a tuple of *slot* ids,
one per acceptor (its register dict, its votes, the packets that name it), a tuple of client ids and the
replacement's progress. A delivery to an acceptor rewrites its slot alone, memoised on (slot, packet, the
clients' running operations): the core's handler runs once per distinct register dict and request, and a
repeated delivery is one table lookup. A client's step rewrites its own id and each slot (the requests it
sent, its packets made dead), each memoised on (slot, packets sent, client, operation); its receipts and
timeouts are memoised on its operation and the replies in flight to it, the core's ``op_on_reply`` and
``op_on_timeout`` on the operation's id. The properties decode the registers and the ghost log from the
slots (``Explorer.accs``, ``ghost``, ``net``; memoised on the slots' vote ids).

Transitions: deliver a request to an acceptor (``acceptor.on_prepare`` / ``on_accept`` / ``on_read`` and
``apply_to_dict``, exactly as ``handle_request`` dispatches them), deliver replies to a client
(``wor.op_on_reply``), fire a running operation's timeout (``wor.op_on_timeout``; a timer may fire at any
moment, as in an asynchronous system), start a client's next scripted operation (``wor.op_start``). With
``replacements=1`` three more (``replacement_steps``): an acceptor *loses its disk* (its registers are gone,
it answers nothing; the procedure asks the survivors' highest promises in the same step), the procedure
*fences* one survivor (``acceptor.on_fence``, one step per survivor and fence ballot, refusals answered by a
higher fence for every survivor, as ``replacement.FenceRound`` does), and, once ``replacement.fence_complete``,
the victim is *rebuilt* (``replacement.rebuild_state`` over the survivors' registers at that step) and serves
again; requests in flight to it stay in flight and may reach the new incarnation. The
search is the engine's (``explore_engine.bfs``, shared by every layer's explorer): breadth-first from the
initial state over every reachable state, up to a state budget, so the first violation found comes with a
shortest trace. States are stored by an exact, compact key (``Explorer.key``: a tuple of a few interned
ints -- the clients' id, the replacement's, and the acceptors' slots sorted by their acceptor-free ids --
canonical up to renaming acceptors; no hash compaction, so no collision can hide a state); the trace of a
violation is rebuilt by replaying the search along the parent keys.

The network is unordered, lossy and duplicating (DESIGN §3 rule 6). With ``duplicating`` a delivered
message stays in flight, so it may arrive again, any number of times; a loss is a message that is never
delivered. For reachability the two views of loss agree -- every state reachable with explicit drops is
reachable without them, with the dropped message still in flight and never delivered -- so drops are not
transitions by default (``drops=True`` adds them, and deliveries that consume the message; a test checks
on small configurations that both reach the same register, client and ghost states).

Reductions (each exact: none removes a reachable register, client or ghost state):

1. *Dead packets are removed eagerly*: a reply whose phase is over (request ids only grow) or whose
   acceptor was already heard in the phase, and a request whose reply would be dead and whose delivery
   leaves the registers as they are (promises and votes only grow, so it stays that way) -- delivering
   any of them changes nothing. A disk loss breaks "only grow" for the victim: a request found dead at an
   acceptor before its loss could still change its new incarnation. Under the fence procedure such a
   request is a Prepare or Accept below the fence (refused by the new incarnation) or a Prepare that only
   raises its promise; ``exact_loss=True`` keeps these requests in flight, and a test checks on small
   configurations that both reach the same register, client and ghost states.
2. *Finished operations are summarised* to what the properties read, and data no later step reads is
   forgotten (a capture's ballot once no write follows, the ballot hint once no operation follows).
3. *Acceptor symmetry*: acceptors are interchangeable (each phase goes to all of them, quorums are counted
   by number, no property names an acceptor), so a state's key is taken up to renaming them: every fact of
   a state names at most one acceptor, so two states are equal up to renaming iff their acceptor-free parts
   agree and their per-acceptor fact sets agree as multisets -- that multiset, as sorted interned ids (each
   slot's acceptor-free id, with the replies clients heard from it when there are any), is the key
   (``symmetry=False`` keys states as they are; a test checks both agree on verdicts, witnesses and depth,
   and that the reduced run catches the explorer mutants).
4. *Replies are received in batches*: a client's receipts that move nothing (no new phase, no outcome, no
   message) are not steps of their own. Nobody outside the client sees them, they commute with every other
   process's steps and the replies stay deliverable until the client's phase ends, so each client step
   receives a sequence of replies from distinct acceptors ending in the one that moves its operation, or
   ending in a timeout (``batch_replies=False`` delivers one reply a step).

Properties, checked on every reachable state. ``Q`` is the majority of the configured acceptors, counted
here and never taken from the client core, so a client that miscounts its quorum is caught.

* ``always_single_value_chosen``: at most one value has votes from ``Q`` acceptors at one ballot (the votes
  of a replaced acceptor's two incarnations count as one acceptor's; the rebuilt incarnation's vote, copied
  from a survivor, is a vote of the new incarnation, since it reports it).
* ``acceptor_invariants``: ``reg_ok`` for every register; ``step_ok`` for every step; each acceptor's current
  vote is in the ghost log and is its highest there; no acceptor voted two values at one ballot; no vote
  lies above its acceptor's promise.
* ``always_certain_failure_never_chosen``: a reported certain failure implies its value is never chosen --
  write ``CaptureStale`` => no acceptor has voted the write's value at the write's ballot, and the value is
  not chosen (for a value only one script step writes); a finished operation's result stays in the state,
  so this is checked in every state after the failure too: the write did not and will not take effect.
* ``outcomes_match_spec``: the promise each outcome makes, exactly (chosen values only ever grow):
  write ``ok`` => its value is chosen; write ``AlreadyWritten(w)`` => ``w`` is chosen and is not the write's
  value; a capture that
  found ``w`` written => ``w`` is chosen; read returned ``v`` => ``v`` is chosen; read returned EMPTY =>
  nothing was chosen when the read started (a linearization point inside the read could not see EMPTY
  otherwise). Indeterminate outcomes promise nothing.

"Sometimes" properties must each hold in some reachable state, or the run is *vacuous*:
``sometimes_value_chosen``, ``sometimes_write_stale``, ``sometimes_read_completes_a_half_write`` (a read that
started with nothing chosen proposed an adopted value in a round of its own and returned it) and
``sometimes_already_written`` -- each where the configuration's scripts make it possible (``applicable``).

Verdicts say what was checked, in bounds that are printed with them: "checked (bounded)" when every
reachable state of the configuration was visited, UNKNOWN when the state budget ran out first. The default
run (``default_configs``) explores two small configurations exhaustively; larger ones (two rounds per
operation, a reader beside two writers) have millions of states, beyond what a pure-Python search visits
in the default run's minute or so.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from itertools import pairwise
from typing import Any, NamedTuple, cast

from wormspace import replacement
from wormspace.layers import acceptor as acc
from wormspace.layers import wor
from wormspace.layers.effects import Effect, Persist, RegKey, Send
from wormspace.layers.messages import (
    EMPTY_REG,
    ZERO_BALLOT,
    Accept,
    Accepted,
    Ballot,
    ErrorReply,
    Fence,
    Fenced,
    Message,
    Nack,
    Prepare,
    Promise,
    Read,
    ReadReply,
    RegState,
    Reply,
    SegmentTrimmed,
)
from wormspace.layers.wor import Config, Ctx, Kind, Op, OpRequest, Outcome, Phase
from wormspace.refinement.explore_engine import (
    CERTAIN_FAILURE,
    CHECKED,
    UNKNOWN,
    VACUOUS,
    VIOLATION,
    StepFailure,
    View,
    bare,
    bfs,
    certain_failure_violation,
    replay,
)

CLIENT_BASE = 100  # client k is node CLIENT_BASE + k; acceptors are nodes 0 .. n-1
SEGMENT = 0
INDEX = 0
REGISTER: RegKey = (SEGMENT, INDEX)
CLIENT_NAMES = "ABCDEFGH"
GC_MEMO = 1_000_000  # entries of the dead-packet memo before it is cleared (a bound on its memory)

# ---- configuration --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Step:
    """One scripted client step: ``capture``, ``write`` of ``value`` through the client's last capture, or
    ``read``."""

    kind: str
    value: bytes = b""

    def __post_init__(self) -> None:
        if self.kind not in ("capture", "write", "read"):
            raise ValueError(f"unknown step kind {self.kind!r}")

    def __str__(self) -> str:
        return f"write {self.value!r}" if self.kind == "write" else self.kind


CAPTURE = Step("capture")
READ = Step("read")


def write(value: bytes) -> Step:
    """The scripted step: write ``value`` through the client's last capture."""
    return Step("write", value)


@dataclass(frozen=True, slots=True, kw_only=True)
class ExploreConfig:
    """The bounds of one exploration (see ``default_config`` for the default's reasons)."""

    acceptors: int = 3
    scripts: tuple[tuple[Step, ...], ...] = ((CAPTURE, write(b"a")), (READ,))
    max_rounds: int = 1
    max_resends: int = 0
    duplicating: bool = True
    drops: bool = False
    batch_replies: bool = True
    symmetry: bool = True
    max_states: int = 2_000_000
    replacements: int = 0  # 0, or 1: some acceptor may lose its disk once and be replaced by the procedure
    exact_loss: bool = False  # keep requests found dead before a disk loss (see reduction 1)

    def __post_init__(self) -> None:
        if self.acceptors < 1 or not self.scripts or len(self.scripts) > len(CLIENT_NAMES):
            raise ValueError(f"need at least one acceptor and 1 to {len(CLIENT_NAMES)} client scripts")
        if self.replacements not in (0, 1) or (self.replacements and self.acceptors < 2):
            raise ValueError("replacements must be 0 or 1 (and a replacement needs at least 2 acceptors)")
        if self.max_rounds < 1 or self.max_resends < 0 or self.max_states < 1:
            raise ValueError("need max_rounds >= 1, max_resends >= 0, max_states >= 1")

    @property
    def quorum(self) -> int:
        """The majority of the configured acceptors: the checker's own count, never the client's."""
        return self.acceptors // 2 + 1

    def describe(self) -> str:
        scripts = "; ".join(
            f"{CLIENT_NAMES[k]}: " + ", ".join(str(step) for step in script) for k, script in enumerate(self.scripts)
        )
        net = "unordered, lossy" + (", duplicating" if self.duplicating else "")
        net += ", explicit drops" if self.drops else ""
        faults = "; one acceptor may lose its disk and be replaced (fence procedure)" if self.replacements else ""
        return (
            f"{self.acceptors} acceptors, one register; clients {scripts}; max_rounds={self.max_rounds}, "
            f"max_resends={self.max_resends}; network {net}{faults}; reductions: dead packets"
            f"{', batched replies' if self.batch_replies else ''}{', acceptor symmetry' if self.symmetry else ''};"
            f" state budget {self.max_states}"
        )


# ---- global state ---------------------------------------------------------------------------------------


class Result(NamedTuple):
    """What the properties need of a finished operation.

    ``result``: write -- ``ok``, ``already`` (``data``: the value found), ``stale``, ``unknown``
    (indeterminate), ``skipped`` (its capture failed); capture -- ``captured`` (``data``: a value it found
    chosen, if any), ``failed``; read -- ``value`` (``data``), ``empty``, ``failed``. ``ballot`` is a write's
    ballot; ``chosen_at_start`` the value chosen when a read started; ``proposed``: the read ran an accept
    phase of its own."""

    kind: str
    result: str
    value: bytes | None = None
    data: bytes | None = None
    ballot: Ballot = ZERO_BALLOT
    chosen_at_start: bytes | None = None
    proposed: bool = False


class Client(NamedTuple):
    pc: int  # the next script step
    op: int  # the running operation (an id in the explorer's table of ``Op`` states), or -1
    chosen_at_start: bytes | None  # for a running read: the value chosen when it started
    cap_ballot: Ballot | None  # the last successful capture's ballot (while a write may follow)
    cap_known: bytes | None  # the value that capture found chosen
    hint: Ballot  # the highest ballot this client has seen (``ClientCore.highest``)
    results: tuple[Result, ...]


Regs = tuple[tuple[RegKey, RegState], ...]
Packet = tuple[int, int, Message]  # (src, dst, message)
GhostVote = tuple[int, Ballot, bytes]  # (acceptor, ballot, value)


class Repl(NamedTuple):
    """The replacement procedure's progress (``replacement`` Rules 1-3). ``stage``: 0 nothing lost yet, 1 the
    ``victim`` lost its disk and the fence is under way, 2 the victim's new incarnation serves. In stage 1,
    ``fence`` is the ballot being fenced (``ZERO_BALLOT`` while asking), ``reports`` the survivors' answers
    to it as ``(survivor, floor)`` and ``top`` the highest promise or floor they reported."""

    stage: int = 0
    victim: int = -1
    fence: Ballot = ZERO_BALLOT
    reports: tuple[tuple[int, Ballot], ...] = ()
    top: Ballot = ZERO_BALLOT


NO_REPL = Repl()


class State(NamedTuple):
    """A global state, as small ints interned by the ``Explorer``. Every fact of a state but the clients'
    and the replacement's progress names exactly one acceptor, so the state is kept per acceptor: its
    *slot* (``Explorer.loc``) holds its register dict, its ghost votes ``(incarnation, ballot, value)``
    and the packets in flight that name it (requests to it, its replies). A step of one acceptor rewrites
    its slot alone (a memoised function of the slot, the packet and the clients' running operations), and
    the symmetric key is the sorted slots' acceptor-free ids. ``Explorer.accs``, ``net`` and ``ghost``
    decode the whole: in the ghost log, a vote's acceptor is ``a + n * incarnation`` (the victim's new
    incarnation votes as ``victim + n``)."""

    locs: tuple[int, ...]  # per acceptor: the id of its slot
    clients: tuple[int, ...]  # per client: the id of its ``Client`` (``Explorer.client``)
    repl: Repl = NO_REPL


Action = tuple[str, Any]  # ("deliver"|"consume"|"drop", packet id), ("start", k), ("receive"|"timeout", (k, ids))
Move = tuple[Action, int, tuple[int, ...]]  # a client step: action, new operation id, ids of packets sent


def client_node(k: int) -> int:
    return CLIENT_BASE + k


def chosen(ghost: Iterable[GhostVote], quorum: int) -> set[bytes]:
    """The values with votes from ``quorum`` acceptors at one ballot (the abstraction function's input)."""
    return wor.chosen_values(ghost, quorum)


class StepViolation(StepFailure):
    """A transition broke a per-step rule (``step_ok``): a failure of ``acceptor_invariants``."""

    def __init__(self, why: str) -> None:
        super().__init__("acceptor_invariants", why)


class _Table:
    """Interning: each distinct value gets a small int id."""

    __slots__ = ("ids", "values")

    def __init__(self) -> None:
        self.ids: dict[Any, int] = {}
        self.values: list[Any] = []

    def id(self, value: Any) -> int:
        i = self.ids.get(value)
        if i is None:
            i = len(self.values)
            self.ids[value] = i
            self.values.append(value)
        return i


# ---- the transition relation ----------------------------------------------------------------------------


class Explorer:
    """The transition relation of one configuration: interning tables, memoised core steps, fingerprints."""

    def __init__(self, cfg: ExploreConfig) -> None:
        self.cfg = cfg
        self.n = cfg.acceptors
        config = Config(timeout=1.0, max_resends=cfg.max_resends, max_rounds=cfg.max_rounds)
        self.ctxs = [
            Ctx(node=client_node(k), acceptors=tuple(range(self.n)), config=config) for k in range(len(cfg.scripts))
        ]
        self.on_prepare = bare(acc.on_prepare)
        self.on_accept = bare(acc.on_accept)
        self.on_read = bare(acc.on_read)
        self.on_fence = bare(acc.on_fence)
        self.op_start = bare(wor.op_start)
        self.op_on_reply = bare(wor.op_on_reply)
        self.op_on_timeout = bare(wor.op_on_timeout)
        self.regs = _Table()
        self.regs.id(())
        self.reg = [EMPTY_REG]  # per register-dict id: the register of these configurations
        self.packets = _Table()
        self.p_src: list[int] = []
        self.p_dst: list[int] = []
        self.p_req: list[int] = []
        self.p_read: list[bool] = []
        self.p_key: list[tuple[Any, ...]] = []
        self.p_free: list[int] = []  # the packet without its acceptor's name (for symmetry)
        self._free = _Table()
        self.ops = _Table()
        self.op_req: list[int] = []
        self.op_hint: list[Ballot] = []
        self.op_heard: list[frozenset[int]] = []
        self.op_split: list[tuple[int, tuple[tuple[int, int], ...]]] = []  # (op without replies, heard facts)
        self._acc: dict[tuple[int, int], tuple[int, int, tuple[tuple[Ballot, bytes], ...]]] = {}
        self._moves: dict[tuple[int, int, tuple[frozenset[int], ...]], list[Move]] = {}
        self._settled: dict[tuple[int, int, int], int] = {}
        self.cls = _Table()  # interned clients: ``State.clients`` holds their ids
        self.cl_op: list[int] = []  # per client id: its running operation's id, or -1
        self.cl_split: list[tuple[int, tuple[tuple[int, int], ...]]] = []  # (stripped client id, heard facts)
        self._chosen: dict[frozenset[GhostVote], set[bytes]] = {}
        self._facts = _Table()  # interned per-acceptor fact sets (``key``)
        self._acc_facts = _Table()  # interned (registers, votes, packets[, other facts]) of one acceptor
        self._clients = _Table()  # interned tuples of stripped client ids (``key``)
        self._stripped = _Table()  # interned (client index, client with its running operation's replies removed)
        self._repls = _Table()  # interned replacement progress, stripped of acceptor names
        self._repls.id(NO_REPL)  # id 0: no replacement under way
        self.locs = _Table()  # interned slots (registers id, votes, packets): ``State.locs`` holds their ids
        self.loc_rid: list[int] = []
        self.loc_vid: list[int] = []
        self.loc_net: list[frozenset[int]] = []
        self.loc_free: list[int] = []  # the slot without its acceptor's name (for symmetry)
        self.loc_to: list[tuple[frozenset[int], ...]] = []  # per client: the slot's replies to it
        self._votes = _Table()
        self._ghosts: dict[tuple[int, ...], frozenset[GhostVote]] = {}
        self._delivered: dict[tuple[Any, ...], int] = {}  # memo of ``deliver``, cleared when full
        self._client_slots: dict[tuple[Any, ...], int] = {}  # memo of ``client_slot``, cleared when full
        self._timeouts: dict[tuple[int, int], tuple[int, tuple[int, ...]]] = {}
        self._replies: dict[tuple[int, int, int], tuple[int, tuple[int, ...], bool] | None] = {}
        self._invariants: dict[tuple[Any, ...], str | None] = {}
        self._sent_split: dict[tuple[int, ...], tuple[frozenset[int], ...]] = {}
        self._client_parts: dict[tuple[int, ...], tuple[int, list[list[int]] | None]] = {}
        written = [step.value for script in cfg.scripts for step in script if step.kind == "write"]
        self.unique_values = frozenset(v for v in written if written.count(v) == 1)
        # what a client may still need: its capture (a later write), its ballot hint (a later operation)
        self._needs_cap = [
            [any(s.kind == "write" for s in script[pc:]) for pc in range(len(script) + 1)] for script in cfg.scripts
        ]

    # -- interning -----------------------------------------------------------------------------------

    def packet(self, p: Packet) -> int:
        n = len(self.packets.values)
        i = self.packets.id(p)
        if i == n:
            src, dst, msg = p
            self.p_src.append(src)
            self.p_dst.append(dst)
            self.p_req.append(msg.req)
            self.p_read.append(isinstance(msg, Read))
            self.p_key.append((src, dst, msg.req, type(msg).__name__, _msg_key(msg)))
            self.p_free.append(self._free.id((src if dst < self.n else dst, dst < self.n, msg)))
        return i

    def op(self, op: Op) -> int:
        n = len(self.ops.values)
        i = self.ops.id(op)
        if i == n:
            self.op_req.append(op.req)
            self.op_hint.append(max(op.max_seen, op.ballot))
            self.op_heard.append(frozenset(a for a, _ in op.replies))
            self.op_split.append((-1, ()))
            if op.replies:
                bare = self.op(replace(op, replies=()))
                heard = tuple((a, self._free.id(("heard", r))) for a, r in op.replies)
                self.op_split[i] = (bare, heard)
            else:
                self.op_split[i] = (i, ())
        return i

    def _regs_id(self, regs: Regs) -> int:
        n = len(self.regs.values)
        i = self.regs.id(regs)
        if i == n:
            self.reg.append(dict(regs).get(REGISTER, EMPTY_REG))
        return i

    def client_id(self, k: int, c: Client) -> int:
        """The id of client ``k``'s state ``c``; on first sight, its running operation and its split for
        ``key``: ``c`` without the acceptor names of the replies its running operation heard (interned with
        ``k``), and those replies as ``(acceptor, fact id)``, the fact naming the client and the reply."""
        n = len(self.cls.values)
        i = self.cls.id(c)
        if i == n:
            self.cl_op.append(c.op)
            heard: tuple[tuple[int, int], ...] = ()
            stripped = c
            if c.op >= 0:
                bare_op, replies = self.op_split[c.op]
                if replies:
                    stripped = c._replace(op=bare_op)
                    heard = tuple((a, self._free.id(("heard", k, fact))) for a, fact in replies)
            self.cl_split.append((self._stripped.id((k, stripped)), heard))
        return i

    def client(self, s: State, k: int) -> Client:
        """Client ``k`` of state ``s``."""
        return cast(Client, self.cls.values[s.clients[k]])

    # -- acceptors -----------------------------------------------------------------------------------

    def _handle(self, view: View, msg: Message) -> tuple[Persist | None, Reply]:
        if isinstance(msg, Prepare):
            return cast(tuple[Persist | None, Reply], self.on_prepare(view, msg))
        if isinstance(msg, Accept):
            return cast(tuple[Persist | None, Reply], self.on_accept(view, msg))
        return cast(tuple[Persist | None, Reply], self.on_read(view, msg))

    def acceptor_step(self, rid: int, pid: int) -> tuple[int, int, tuple[tuple[Ballot, bytes], ...]]:
        """Deliver request ``pid`` to its acceptor, whose registers are ``rid``: the registers after the step,
        the reply packet, and the votes ``(ballot, value)`` the registers hold after a change (for the
        ghost log). Raises ``StepViolation`` when the step breaks ``step_ok``."""
        key = (rid, pid)
        hit = self._acc.get(key)
        if hit is None:
            src, who, msg = self.packets.values[pid]
            view = View(self.regs.values[rid])
            persist, reply = self._handle(view, msg)
            votes: tuple[tuple[Ballot, bytes], ...] = ()
            new_rid = rid
            if persist is not None:
                new = acc.apply_to_dict(view.regs, persist)
                for k, state in new.items():
                    old = view.regs.get(k, EMPTY_REG)
                    if not acc.step_ok(old, state):
                        raise StepViolation(
                            f"acceptor {who} register {k}: {show_reg(old)} -> {show_reg(state)} breaks step_ok"
                        )
                new_rid = self._regs_id(tuple(sorted(new.items())))
                if new_rid != rid:
                    votes = tuple((st.accepted, st.value) for st in new.values() if st.value is not None)
            hit = (new_rid, self.packet((who, src, reply)), votes)
            self._acc[key] = hit
        return hit

    # -- clients -------------------------------------------------------------------------------------

    def _settle(self, k: int, cid: int, opid: int) -> int:
        """The client (an id) after its operation took a step: still running, or finished and summarised
        (memoised: a pure function of its arguments)."""
        key = (k, cid, opid)
        hit = self._settled.get(key)
        if hit is None:
            hit = self._settled[key] = self.client_id(k, self._settle_now(k, self.cls.values[cid], opid))
        return hit

    def _settle_now(self, k: int, c: Client, opid: int) -> Client:
        hint = max(c.hint, self.op_hint[opid])
        op: Op = self.ops.values[opid]
        if op.phase is not Phase.DONE:
            return c._replace(op=opid, hint=hint)
        return self._normalise(k, _finish(c._replace(hint=hint), op))

    def _normalise(self, k: int, c: Client) -> Client:
        """Reduction 2: forget what no later step reads."""
        if c.cap_ballot is not None and not self._needs_cap[k][c.pc]:
            c = c._replace(cap_ballot=None, cap_known=None)
        if c.pc >= len(self.cfg.scripts[k]) and c.hint != ZERO_BALLOT:
            c = c._replace(hint=ZERO_BALLOT)
        return c

    def _sent(self, k: int, effects: Sequence[Effect]) -> tuple[int, ...]:
        node = client_node(k)
        return tuple(self.packet((node, e.dst, e.msg)) for e in effects if isinstance(e, Send))

    def start(self, k: int, cid: int, ghost: frozenset[GhostVote]) -> tuple[int, tuple[int, ...]]:
        """Client ``k`` (an id) starts its next scripted step: the client after it, the packets it sent."""
        c: Client = self.cls.values[cid]
        step = self.cfg.scripts[k][c.pc]
        if step.kind == "write":
            if c.cap_ballot is None:
                r = Result("write", "skipped", value=step.value)
                return self.client_id(k, self._normalise(k, c._replace(pc=c.pc + 1, results=(*c.results, r)))), ()
            if c.cap_known is not None:  # the capture completed the register: answered at once (as WOS does)
                res = "ok" if c.cap_known == step.value else "already"
                r = Result("write", res, value=step.value, data=c.cap_known, ballot=c.cap_ballot)
                return self.client_id(k, self._normalise(k, c._replace(pc=c.pc + 1, results=(*c.results, r)))), ()
            request = OpRequest(kind=Kind.WRITE, segment=SEGMENT, values=((INDEX, step.value),), ballot=c.cap_ballot)
        elif step.kind == "capture":
            request = OpRequest(kind=Kind.CAPTURE, segment=SEGMENT, indices=(INDEX,))
        else:
            request = OpRequest(kind=Kind.READ, segment=SEGMENT, indices=(INDEX,))
            now = self.chosen_of(ghost)
            c = c._replace(chosen_at_start=min(now) if now else None)
        op, effects = self.op_start(c.pc + 1, request, self.ctxs[k], c.hint)
        return self._settle(k, self.client_id(k, c), self.op(op)), self._sent(k, effects)

    def client_moves(self, s: State, k: int) -> list[Move]:
        """The steps of client ``k``'s running operation: receipts (reduction 4) and timeouts. They depend
        only on the operation and the replies in flight to it, so they are memoised on those."""
        opid = self.cl_op[s.clients[k]]
        loc_to = self.loc_to
        per_slot = tuple([loc_to[x][k] for x in s.locs])
        key = (k, opid, per_slot)
        hit = self._moves.get(key)
        if hit is None:
            replies = frozenset[int]().union(*per_slot)
            hit = list(self._client_moves(k, opid, tuple(sorted(replies, key=self.p_key.__getitem__))))
            self._moves[key] = hit
        return hit

    def _client_moves(self, k: int, opid: int, replies: tuple[int, ...]) -> Iterator[Move]:
        ctx = self.ctxs[k]
        op0: Op = self.ops.values[opid]
        if not self.cfg.batch_replies:
            after, effects = self.op_on_timeout(op0, op0.req, ctx)
            yield ("timeout", (k, ())), self.op(after), self._sent(k, effects)
            return
        seen: set[tuple[int, tuple[int, ...]]] = set()
        p_src = self.p_src

        def moves(oid: int, heard: tuple[int, ...]) -> Iterator[Move]:
            step = self._timeout(k, oid)
            if step not in seen:
                seen.add(step)
                yield ("timeout", (k, heard)), *step
            sources = {p_src[p] for p in heard}
            for p in replies:
                if p_src[p] in sources:
                    continue
                got = self._reply(k, oid, p)
                if got is None:
                    continue  # ignored by the operation
                nid, sent, final = got
                if final:
                    step = (nid, sent)
                    if step not in seen:
                        seen.add(step)
                        yield ("receive", (k, (*heard, p))), *step
                else:
                    yield from moves(nid, (*heard, p))

        yield from moves(opid, ())

    def _timeout(self, k: int, oid: int) -> tuple[int, tuple[int, ...]]:
        """``wor.op_on_timeout`` of client ``k``'s operation ``oid``: the operation after it and the packets
        it sent (memoised)."""
        key = (k, oid)
        hit = self._timeouts.get(key)
        if hit is None:
            op: Op = self.ops.values[oid]
            after, effects = self.op_on_timeout(op, op.req, self.ctxs[k])
            hit = self._timeouts[key] = (self.op(after), self._sent(k, effects))
        return hit

    def _reply(self, k: int, oid: int, p: int) -> tuple[int, tuple[int, ...], bool] | None:
        """``wor.op_on_reply`` of client ``k``'s operation ``oid`` to reply ``p`` (memoised): None when the
        operation ignores it, else the operation after it, the packets it sent, and whether the step moves
        the operation (a new phase, an outcome or a message) rather than only recording the reply."""
        key = (k, oid, p)
        if key in self._replies:
            return self._replies[key]
        op: Op = self.ops.values[oid]
        nxt, effects = self.op_on_reply(op, self.p_src[p], self.packets.values[p][2], self.ctxs[k])
        hit: tuple[int, tuple[int, ...], bool] | None = None
        if nxt is not op:
            final = nxt.phase is Phase.DONE or nxt.req != op.req or bool(effects)
            hit = (self.op(nxt), self._sent(k, effects), final)
        self._replies[key] = hit
        return hit

    # -- acceptor slots ------------------------------------------------------------------------------

    def slot(self, p: int) -> int:
        """The acceptor a packet names (its destination, or for a reply its source): its slot."""
        d = self.p_dst[p]
        return d if d < self.n else self.p_src[p]

    def loc(self, rid: int, votes: frozenset[tuple[int, Ballot, bytes]], net: frozenset[int]) -> int:
        """The id of one acceptor's slot: its registers ``rid``, its votes ``(incarnation, ballot, value)``
        and the packets in flight that name it. On first sight, what the steps and ``key`` read of it."""
        key = (rid, votes, net)
        i = self.locs.ids.get(key)
        if i is None:
            i = self.locs.id(key)
            p_free, p_dst = self.p_free, self.p_dst
            self.loc_rid.append(rid)
            self.loc_vid.append(self._votes.id(votes))
            self.loc_net.append(net)
            self.loc_free.append(self._acc_facts.id(("slot", rid, votes, frozenset([p_free[p] for p in net]))))
            self.loc_to.append(tuple(
                frozenset([p for p in net if p_dst[p] == client_node(k)]) for k in range(len(self.cfg.scripts))
            ))
        return i

    def make_state(self, accs: Sequence[int], clients: tuple[int, ...], net: Iterable[int],
                   ghost: Iterable[GhostVote], repl: Repl = NO_REPL) -> State:
        """The state of registers ``accs``, clients ``clients``, packets ``net`` in flight, ghost log ``ghost``
        and replacement progress ``repl``, split into its acceptors' slots."""
        n = self.n
        nets: list[set[int]] = [set() for _ in range(n)]
        for p in net:
            nets[self.slot(p)].add(p)
        votes: list[set[tuple[int, Ballot, bytes]]] = [set() for _ in range(n)]
        for g, b, v in ghost:
            votes[g % n].add((g // n, b, v))
        locs = tuple(self.loc(accs[a], frozenset(votes[a]), frozenset(nets[a])) for a in range(n))
        return State(locs, clients, repl)

    def accs(self, s: State) -> tuple[int, ...]:
        """Per acceptor, the id of its register dict."""
        return tuple([self.loc_rid[x] for x in s.locs])

    def net(self, s: State) -> frozenset[int]:
        """The packets in flight."""
        return frozenset().union(*[self.loc_net[x] for x in s.locs])

    def ghost(self, s: State) -> frozenset[GhostVote]:
        """The ghost log: every vote ever cast, ``(a + n * incarnation, ballot, value)`` (memoised)."""
        vids = tuple([self.loc_vid[x] for x in s.locs])
        hit = self._ghosts.get(vids)
        if hit is None:
            n = self.n
            votes = self._votes.values
            hit = self._ghosts[vids] = frozenset(
                (a + n * inc, b, v) for a, vid in enumerate(vids) for inc, b, v in votes[vid]
            )
        return hit

    # -- dead packets (reduction 1) ------------------------------------------------------------------

    def dead(self, p: int, rid: int, ops: tuple[int, ...], live: bool) -> bool:
        """Whether packet ``p`` is dead (reduction 1), its acceptor's registers being ``rid``, the clients'
        running operations ``ops``; ``live``: a disk loss may yet empty the acceptor (``exact_loss``)."""
        dst = self.p_dst[p]
        if dst >= CLIENT_BASE:
            opid = ops[dst - CLIENT_BASE]
            return opid < 0 or self.p_req[p] != self.op_req[opid] or self.p_src[p] in self.op_heard[opid]
        opid = ops[self.p_src[p] - CLIENT_BASE]
        if opid >= 0 and self.p_req[p] == self.op_req[opid]:
            return False
        if self.p_read[p]:
            return True
        if live:
            return False  # a disk loss may yet empty this acceptor: the request could change it again
        return self.acceptor_step(rid, p)[0] == rid

    def live(self, repl: Repl) -> bool:
        return repl.stage == 0 and bool(self.cfg.replacements) and self.cfg.exact_loss

    def _gc_acceptor(self, a: int, rid: int, net: frozenset[int], ops: tuple[int, ...], live: bool,
                     extra: int) -> frozenset[int]:
        """Slot ``a``'s packets without those a step of acceptor ``a`` made dead: the requests to it, and
        ``extra`` (its reply). Deadness depends only on a packet's own acceptor and client."""
        p_dst = self.p_dst
        dead = [p for p in net if (p_dst[p] == a or p == extra) and self.dead(p, rid, ops, live)]
        return net.difference(dead) if dead else net

    def deliver(self, x: int, a: int, p: int, keep: bool, ops: tuple[int, ...], inc: int, live: bool) -> int:
        """Slot ``x`` of acceptor ``a`` after request ``p`` is delivered to it (``keep``: a copy stays in
        flight), its incarnation ``inc`` voting; dead packets removed. Memoised in a table cleared every
        ``GC_MEMO`` entries; raises ``StepViolation`` when the step breaks ``step_ok``."""
        key = (x, p, keep, ops, inc, live)
        hit = self._delivered.get(key)
        if hit is None:
            rid, back, new_votes = self.acceptor_step(self.loc_rid[x], p)
            votes = self.locs.values[x][1]
            if new_votes:
                votes = votes.union([(inc, b, v) for b, v in new_votes])
            net = self.loc_net[x]
            net = (net if keep else net - {p}) | {back}
            net = self._gc_acceptor(a, rid, net, ops, live, back)
            hit = self.loc(rid, votes, net)
            if len(self._delivered) >= GC_MEMO:
                self._delivered.clear()
            self._delivered[key] = hit
        return hit

    def client_slot(self, x: int, sent: frozenset[int], k: int, opid: int, live: bool) -> int:
        """Slot ``x`` after client ``k`` took a step that sent it ``sent`` and left it running ``opid``:
        client ``k``'s packets it made dead removed (their deadness reads only the slot's registers and
        that operation). Memoised in a table cleared every ``GC_MEMO`` entries."""
        key = (x, sent, k, opid, live)
        hit = self._client_slots.get(key)
        if hit is None:
            rid, votes, net = self.locs.values[x]
            if sent:
                net = net | sent
            node = client_node(k)
            p_src, p_dst = self.p_src, self.p_dst
            ops = tuple(opid if i == k else -1 for i in range(len(self.cfg.scripts)))
            dead = [p for p in net if (p_src[p] == node or p_dst[p] == node) and self.dead(p, rid, ops, live)]
            hit = self.loc(rid, votes, net.difference(dead) if dead else net)
            if len(self._client_slots) >= GC_MEMO:
                self._client_slots.clear()
            self._client_slots[key] = hit
        return hit

    def client_step(self, s: State, k: int, nc: int, sent: tuple[int, ...], locs: tuple[int, ...] | None = None,
                    live: bool | None = None) -> State:
        """``s`` after client ``k`` became ``nc`` and sent ``sent`` (over slots ``locs``, by default ``s``'s;
        ``live`` as ``self.live(s.repl)``): every slot after ``client_slot``."""
        split = self._sent_split.get(sent)
        if split is None:
            split = self._sent_split[sent] = self._split(sent)
        opid = self.cl_op[nc]
        if live is None:
            live = self.live(s.repl)
        if locs is None:
            locs = s.locs
        get = self._client_slots.get
        new = tuple([get((x, split[a], k, opid, live)) for a, x in enumerate(locs)])
        if None in new:
            new = tuple([self.client_slot(x, split[a], k, opid, live) for a, x in enumerate(locs)])
        return State(cast(tuple[int, ...], new), (*s.clients[:k], nc, *s.clients[k + 1 :]), s.repl)

    def _split(self, sent: tuple[int, ...]) -> tuple[frozenset[int], ...]:
        """The packets ``sent`` per slot."""
        per: list[list[int]] = [[] for _ in range(self.n)]
        for p in sent:
            per[self.slot(p)].append(p)
        return tuple(frozenset(x) for x in per)

    # -- successors ----------------------------------------------------------------------------------

    def initial_state(self) -> State:
        clients = tuple(
            self.client_id(k, Client(0, -1, None, None, None, ZERO_BALLOT, ())) for k in range(len(self.cfg.scripts))
        )
        return self.make_state([0] * self.n, clients, (), ())

    def successors(self, s: State) -> Iterator[tuple[Action, State]]:
        """Every transition enabled in ``s``, in a fixed order: a step of an acceptor rewrites its slot
        alone, a client's step its own state and every slot, each slot step memoised."""
        cfg = self.cfg
        n = self.n
        repl = s.repl
        dead = repl.victim if repl.stage == 1 else -1  # the victim answers nothing until it is rebuilt
        locs = s.locs
        cl_op = self.cl_op
        ops = tuple([cl_op[c] for c in s.clients])
        live = self.live(repl)
        loc_net = self.loc_net
        dup = cfg.duplicating
        in_flight: list[int] = []
        for x in locs:
            in_flight.extend(loc_net[x])
        in_flight.sort(key=self.p_key.__getitem__)
        for p in in_flight:
            dst = self.p_dst[p]
            if dst < n:
                if dst == dead:
                    continue
                inc = 1 if repl.stage == 2 and dst == repl.victim else 0
                x = self.deliver(locs[dst], dst, p, dup, ops, inc, live)
                yield ("deliver", p), State((*locs[:dst], x, *locs[dst + 1 :]), s.clients, repl)
                if cfg.drops and dup:
                    x = self.deliver(locs[dst], dst, p, False, ops, inc, live)
                    yield ("consume", p), State((*locs[:dst], x, *locs[dst + 1 :]), s.clients, repl)
            elif not cfg.batch_replies:
                k = dst - CLIENT_BASE
                c = s.clients[k]
                op, effects = self.op_on_reply(self.ops.values[cl_op[c]], self.p_src[p],
                                               self.packets.values[p][2], self.ctxs[k])
                nc = self._settle(k, c, self.op(op))
                base = locs if dup else self._dropped(s, self.p_src[p], p).locs
                yield ("deliver", p), self.client_step(s, k, nc, self._sent(k, effects), base)
            if cfg.drops:
                yield ("drop", p), self._dropped(s, self.slot(p), p)
        for k, c in enumerate(s.clients):
            if cl_op[c] < 0:
                if self.cls.values[c].pc < len(cfg.scripts[k]):
                    nc, sent = self.start(k, c, self.ghost(s))
                    yield ("start", k), self.client_step(s, k, nc, sent, live=live)
                continue
            for action, opid, sent in self.client_moves(s, k):
                yield action, self.client_step(s, k, self._settle(k, c, opid), sent, live=live)
        if cfg.replacements:
            yield from self.replacement_steps(s)

    def _dropped(self, s: State, a: int, p: int) -> State:
        """``s`` without packet ``p`` of slot ``a`` (nothing else changes: no dead packet is removed)."""
        rid, votes, net = self.locs.values[s.locs[a]]
        x = self.loc(rid, votes, net - {p})
        return State((*s.locs[:a], x, *s.locs[a + 1 :]), s.clients, s.repl)

    # -- the replacement procedure (wormspace.replacement) -------------------------------------------

    def voter(self, repl: Repl, a: int) -> int:
        """The ghost identity of acceptor ``a``'s current incarnation."""
        return a + self.n if repl.stage == 2 and a == repl.victim else a

    def highest(self, rid: int) -> Ballot:
        """``acceptor.highest_promise`` of register dict ``rid``."""
        return acc.highest_promise(View(self.regs.values[rid]))

    def survivors(self, repl: Repl) -> tuple[int, ...]:
        return tuple(a for a in range(self.n) if a != repl.victim)

    def replacement_steps(self, s: State) -> Iterator[tuple[Action, State]]:
        """Stage 0: any acceptor loses its disk (its registers are gone; it answers nothing), and the
        procedure's first question, every survivor's highest promise, is answered in the same step (the
        fence it yields is only a first try: the acceptors' own check decides). Stage 1: one step per
        survivor's exchange with the procedure (Rule 1: ``Fence`` delivered, the core's ``on_fence``
        applied, the ``Fenced`` reply taken), in any order; once the fence is complete
        (``replacement.fence_complete``), the rebuild (Rules 2-3): the survivors' registers as they are at
        that step are the snapshot, and the victim's new incarnation gets ``replacement.rebuild_state``."""
        repl = s.repl
        accs = self.accs(s)
        if repl.stage == 0:
            for a in range(self.n):
                asked = [
                    Fenced(req=0, segment=0, floor=ZERO_BALLOT, promised=self.highest(r))
                    for b, r in enumerate(accs) if b != a
                ]
                nxt = Repl(stage=1, victim=a, fence=replacement.choose_fence(asked))
                yield ("lose", a), self._rewrite(s, a, 0, (), nxt)
            return
        if repl.stage != 1:
            return
        survivors = self.survivors(repl)
        if replacement.fence_complete(repl.fence, dict(repl.reports), survivors):
            snapshots = [self.regs.values[accs[a]] for a in survivors]
            state = replacement.rebuild_state(snapshots, repl.fence)
            rid = self._regs_id(tuple(sorted(state.items())))
            v = repl.victim
            r = self.reg[rid]
            vote = () if r.value is None else ((1, r.accepted, r.value),)
            yield ("rebuild", v), self._rewrite(s, v, rid, vote, Repl(stage=2, victim=v))
            return
        answered = dict(repl.reports)
        ops = tuple([self.cl_op[c] for c in s.clients])
        for a in survivors:
            if a in answered:
                continue
            regs = self.regs.values[accs[a]]
            view = View(regs)
            highest = acc.highest_promise(view)
            persist, reply = self.on_fence(view, Fence(req=0, segment=0, ballot=repl.fence), highest)
            assert isinstance(reply, Fenced)
            rid = accs[a]
            if persist is not None:
                rid = self._regs_id(tuple(sorted(acc.apply_to_dict(view.regs, persist).items())))
            reports = tuple(sorted((*repl.reports, (a, reply.floor))))
            top = max(repl.top, reply.promised, reply.floor)
            nxt = repl._replace(reports=reports, top=top)
            if len(reports) == len(survivors) and not replacement.fence_complete(
                repl.fence, dict(reports), survivors
            ):  # asked, or some survivor refused: fence again above everything reported
                fence = replacement.choose_fence([Fenced(req=0, segment=0, floor=repl.fence, promised=top)])
                nxt = repl._replace(fence=fence, reports=(), top=ZERO_BALLOT)
            _, votes, net = self.locs.values[s.locs[a]]
            net = self._gc_acceptor(a, rid, net, ops, self.live(nxt), -1)
            x = self.loc(rid, votes, net)
            yield ("fence", a), State((*s.locs[:a], x, *s.locs[a + 1 :]), s.clients, nxt)

    def _rewrite(self, s: State, a: int, rid: int, votes: tuple[tuple[int, Ballot, bytes], ...], repl: Repl) -> State:
        """``s`` with acceptor ``a``'s registers ``rid``, ``votes`` added to its slot, and ``repl``."""
        _, old, net = self.locs.values[s.locs[a]]
        x = self.loc(rid, old.union(votes) if votes else old, net)
        return State((*s.locs[:a], x, *s.locs[a + 1 :]), s.clients, repl)

    # -- fingerprints (reduction 3) ------------------------------------------------------------------

    def key(self, s: State) -> Hashable:
        """The state's identity in the search: exact, compact and, when ``symmetry`` is on, canonical up to
        renaming acceptors (reduction 3). Every fact of a state names at most one acceptor, so two states
        are equal up to renaming iff their acceptor-free parts agree and their per-acceptor fact sets agree
        as multisets. Each part is an interned small int, so the key is a tuple of a few ints: the clients
        without the acceptor names of the replies they heard (memoised on the clients' ids), the
        replacement's progress without its acceptor names, and the sorted ids of the acceptors' fact sets
        -- each slot's acceptor-free id (registers, votes, packets without the acceptor's name, computed
        once per slot id), with the replies heard and the victim's and the reports' marks when there are
        any. Two keys are equal iff the states are equal up to renaming -- no hash compaction, so no state
        is ever missed by a collision."""
        if not self.cfg.symmetry:
            return s
        parts = self._client_parts.get(s.clients)
        if parts is None:
            parts = self._client_parts[s.clients] = self._split_clients(s.clients)
        cid, heard = parts
        repl = s.repl
        loc_free = self.loc_free
        if not repl.stage:
            if heard is None:
                return (cid, 0, *sorted([loc_free[x] for x in s.locs]))
            facts: list[list[object]] = [list(f) for f in heard]
            rid = 0
        else:
            facts = [[] for _ in range(self.n)] if heard is None else [list(f) for f in heard]
            facts[repl.victim].append(("victim",))
            for a, floor in repl.reports:
                facts[a].append(("reported", floor))
            rid = self._repls.id(repl._replace(victim=-1, reports=()))
        ids, acc_id = self._facts.id, self._acc_facts.id
        sigs = sorted([acc_id((loc_free[x], ids(frozenset(facts[a])))) for a, x in enumerate(s.locs)])
        return (cid, rid, *sigs)

    def _split_clients(self, clients: tuple[int, ...]) -> tuple[int, list[list[int]] | None]:
        """The clients' acceptor-free part (an id) and, when their running operations heard replies, those
        replies as facts per acceptor."""
        heard: list[list[int]] | None = None
        stripped: list[int] = []
        for c in clients:
            bare, replies = self.cl_split[c]
            stripped.append(bare)
            if replies:
                if heard is None:
                    heard = [[] for _ in range(self.n)]
                for a, fact in replies:
                    heard[a].append(fact)
        return self._clients.id(tuple(stripped)), heard

    # -- decoding ------------------------------------------------------------------------------------

    def register(self, s: State, a: int) -> RegState:
        return self.reg[self.loc_rid[s.locs[a]]]

    def chosen_of(self, ghost: frozenset[GhostVote]) -> set[bytes]:
        """``chosen`` of a state's ghost log, memoised on it (states share their logs; do not mutate)."""
        hit = self._chosen.get(ghost)
        if hit is None:
            hit = self._chosen[ghost] = self.chosen(ghost)
        return hit

    def chosen(self, ghost: Iterable[GhostVote]) -> set[bytes]:
        """The values chosen: votes from a quorum of acceptors at one ballot, the votes of both incarnations
        of a replaced acceptor counted as one acceptor's."""
        n = self.n
        return chosen(((a % n, b, v) for a, b, v in ghost), self.cfg.quorum)

    def summarize(self, s: State) -> str:
        def one(a: int) -> str:
            if s.repl.stage == 1 and a == s.repl.victim:
                return f"acc{a}: disk lost"
            r = self.register(s, a)
            floor = acc.fence_floor(View(self.regs.values[self.loc_rid[s.locs[a]]]))
            return f"acc{a}: {show_reg(r)}" + ("" if floor == ZERO_BALLOT else f", floor {show_ballot(floor)}")

        regs = "; ".join(one(a) for a in range(self.n))
        return f"[{regs}] chosen={sorted(self.chosen(self.ghost(s)))!r} in flight={len(self.net(s))}"

    def describe(self, s: State, action: Action, t: State) -> str:
        """A readable label of the step ``s --action--> t``."""
        what, arg = action
        if what == "lose":
            return f"acc{arg} loses its disk (its registers are gone; it answers nothing)"
        if what == "fence":
            a = cast(int, arg)
            f = s.repl.fence
            if f == ZERO_BALLOT:
                label = f"the procedure asks acc{a} for its highest promise"
                if t.repl.fence != f:
                    label += f"; every survivor answered, the fence is {show_ballot(t.repl.fence)}"
                return label
            view = View(self.regs.values[self.loc_rid[s.locs[a]]])
            _, reply = self.on_fence(view, Fence(req=0, segment=0, ballot=f), acc.highest_promise(view))
            done = "fenced" if reply.floor == f else "refuses: it promised at or above it"
            label = f"the procedure fences acc{a} at {show_ballot(f)} => {done}"
            if t.repl.fence != f:
                label += f"; every survivor answered, the next fence is {show_ballot(t.repl.fence)}"
            return label
        if what == "rebuild":
            return (f"acc{arg} is rebuilt from the survivors' registers: {show_reg(self.register(t, cast(int, arg)))};"
                    " its new incarnation serves")
        if what in ("deliver", "consume", "drop"):
            p = cast(int, arg)
            src, dst, msg = self.packets.values[p]
            label = f"{what} {show_packet((src, dst, msg))}"
            if dst < self.n:
                if what != "drop":
                    reply = self.packets.values[self.acceptor_step(self.loc_rid[s.locs[dst]], p)[1]][2]
                    label += f" => {show_message(reply)}"
                if what == "deliver" and self.cfg.duplicating:
                    label += " (a copy stays in flight)"
                return label
            k = dst - CLIENT_BASE
        elif what == "start":
            k = cast(int, arg)
            label = f"{_node(client_node(k))} starts: {self.cfg.scripts[k][self.client(s, k).pc]}"
        else:
            k, heard = cast(tuple[int, tuple[int, ...]], arg)
            name = _node(client_node(k))
            got = ", ".join(
                f"{show_message(self.packets.values[p][2])} from {_node(self.p_src[p])}" for p in heard
            )
            if what == "receive":
                label = f"{name} receives {got}"
            else:
                label = f"{name} receives {got}, then times out" if heard else f"{name} times out"
        before, after = self.client(s, k), self.client(t, k)
        if len(after.results) > len(before.results):
            label += f"; {_node(client_node(k))} finishes: {show_result(after.results[-1])}"
        return label


def _finish(c: Client, op: Op) -> Client:
    """Summarise a finished operation and move the client to its next step."""
    assert op.outcome is not None
    out: Outcome = op.outcome
    req = op.request
    got = out.chosen_map().get(INDEX)
    nxt = c._replace(pc=c.pc + 1, op=-1, chosen_at_start=None)
    if req.kind is Kind.CAPTURE:
        if out.error is None:
            r = Result("capture", "captured", data=got)
            return nxt._replace(cap_ballot=out.ballot, cap_known=got, results=(*c.results, r))
        r = Result("capture", "failed", data=got)
        return nxt._replace(cap_ballot=None, cap_known=None, results=(*c.results, r))
    if req.kind is Kind.WRITE:
        value = req.values[0][1]
        if got is not None:
            res = "ok" if got == value else "already"
        elif INDEX in out.stale:
            res = "stale"
        else:
            res = "unknown"
        r = Result("write", res, value=value, data=got, ballot=req.ballot)
        return nxt._replace(results=(*c.results, r))
    proposed = op.rounds > 0 and any(i == INDEX for i, _ in op.proposal)
    if got is not None:
        r = Result("read", "value", data=got, chosen_at_start=c.chosen_at_start, proposed=proposed)
    elif out.error is None and INDEX in out.empty:
        r = Result("read", "empty", chosen_at_start=c.chosen_at_start)
    else:
        r = Result("read", "failed")
    return nxt._replace(results=(*c.results, r))


# ---- rendering ------------------------------------------------------------------------------------------


def _msg_key(m: Message) -> tuple[Any, ...]:
    if isinstance(m, (Prepare, Read)):
        return (getattr(m, "ballot", ZERO_BALLOT), m.indices)
    if isinstance(m, Accept):
        return (m.ballot, m.values)
    if isinstance(m, (Promise, ReadReply)):
        return (getattr(m, "ballot", ZERO_BALLOT), tuple((v.index, v.ballot, v.value) for v in m.votes))
    if isinstance(m, Nack):
        return (m.ballot, m.promised, m.accepted)
    if isinstance(m, Accepted):
        return (m.ballot,)
    if isinstance(m, ErrorReply):
        return (m.reason,)
    return ()


def _node(n: int) -> str:
    if n >= CLIENT_BASE:
        k = n - CLIENT_BASE
        return CLIENT_NAMES[k] if k < len(CLIENT_NAMES) else f"client{k}"
    return f"acc{n}"


def show_ballot(b: Ballot) -> str:
    """``number.node`` (``2.A``), ``number.fence`` for a replacement's fence ballot, ``0`` for the zero one."""
    if b == ZERO_BALLOT:
        return "0"
    return f"{b.number}.{_node(b.node) if b.node >= CLIENT_BASE else 'fence'}"


def show_message(m: Message) -> str:
    """A short readable rendering of a message."""
    if isinstance(m, Prepare):
        return f"Prepare(b={show_ballot(m.ballot)})"
    if isinstance(m, Accept):
        return f"Accept(b={show_ballot(m.ballot)}, {','.join(repr(v) for _, v in m.values)})"
    if isinstance(m, Read):
        return "Read"
    if isinstance(m, Promise):
        votes = ",".join(f"{v.value!r}@{show_ballot(v.ballot)}" for v in m.votes)
        return f"Promise(b={show_ballot(m.ballot)}, votes=[{votes}])"
    if isinstance(m, Accepted):
        return f"Accepted(b={show_ballot(m.ballot)})"
    if isinstance(m, Nack):
        return (f"Nack(b={show_ballot(m.ballot)}, promised={show_ballot(m.promised)}, "
                f"accepted={show_ballot(m.accepted)})")
    if isinstance(m, ReadReply):
        return f"ReadReply([{','.join(f'{v.value!r}@{show_ballot(v.ballot)}' for v in m.votes)}])"
    if isinstance(m, SegmentTrimmed):
        return "SegmentTrimmed"
    assert isinstance(m, ErrorReply)  # every other message type is handled above
    return f"ErrorReply({m.reason!r})"


def show_packet(p: Packet) -> str:
    return f"{_node(p[0])}->{_node(p[1])} {show_message(p[2])}"


def show_result(r: Result) -> str:
    if r.kind == "write":
        what = {"ok": "ok", "already": f"AlreadyWritten({r.data!r})", "stale": "CaptureStale",
                "unknown": "Indeterminate", "skipped": "skipped (its capture failed)"}[r.result]
        at = f" at {show_ballot(r.ballot)}" if r.ballot != ZERO_BALLOT else ""
        return f"write {r.value!r}{at} -> {what}"
    if r.kind == "capture":
        if r.result == "captured":
            return "capture -> ok" + ("" if r.data is None else f", found {r.data!r} written")
        return "capture -> failed"
    if r.result == "value":
        return f"read -> {r.data!r}" + (" (completed by a round of its own)" if r.proposed else "")
    return "read -> EMPTY" if r.result == "empty" else "read -> Indeterminate"


def show_reg(r: RegState) -> str:
    vote = "" if r.value is None else f", {r.value!r}@{show_ballot(r.accepted)}"
    return f"promised {show_ballot(r.promised)}{vote}"


# ---- properties -----------------------------------------------------------------------------------------

Check = Callable[[Explorer, State, set[bytes]], str | None]  # None: holds; else why not


def _single_value(ex: Explorer, s: State, now: set[bytes]) -> str | None:
    return None if len(now) <= 1 else f"two values chosen: {sorted(now)!r}"


def _acceptor_invariants(ex: Explorer, s: State, now: set[bytes]) -> str | None:
    """Memoised on what it reads: each acceptor's registers and votes, and who is replaced at what stage."""
    loc_rid, loc_vid = ex.loc_rid, ex.loc_vid
    key = (tuple([loc_rid[x] for x in s.locs]), tuple([loc_vid[x] for x in s.locs]), s.repl.stage, s.repl.victim)
    memo = ex._invariants
    if key in memo:
        return memo[key]
    why = memo[key] = _acceptor_invariants_now(ex, s)
    return why


def _acceptor_invariants_now(ex: Explorer, s: State) -> str | None:
    highest: dict[int, Ballot] = {}
    per_ballot: dict[tuple[int, Ballot], bytes] = {}
    ghost = ex.ghost(s)
    for a, b, v in ghost:
        if per_ballot.setdefault((a, b), v) != v:
            return f"acceptor {a} voted two values at ballot {show_ballot(b)}"
        if b > highest.get(a, ZERO_BALLOT):
            highest[a] = b
    for slot in range(ex.n):
        if s.repl.stage == 1 and slot == s.repl.victim:
            continue  # its disk is lost: no registers until it is rebuilt
        a = ex.voter(s.repl, slot)
        r = ex.register(s, slot)
        if not acc.reg_ok(r):
            return f"acceptor {a}: reg_ok fails: {show_reg(r)}"
        top = highest.get(a, ZERO_BALLOT)
        if r.value is not None and (a, r.accepted, r.value) not in ghost:
            return f"acceptor {a} holds a vote the ghost log never saw: {show_reg(r)}"
        if r.accepted != top:
            return f"acceptor {a}: its vote {show_ballot(r.accepted)} is not its highest, {show_ballot(top)}"
        if top > r.promised:
            return f"acceptor {a} voted at {show_ballot(top)}, above its promise {show_ballot(r.promised)}"
    return None


def _outcomes(ex: Explorer, s: State, now: set[bytes]) -> str | None:
    for k, cid in enumerate(s.clients):
        who = CLIENT_NAMES[k]
        for r in ex.cls.values[cid].results:
            if r.kind == "write":
                if r.result == "ok" and r.value not in now:
                    return f"{who}'s write of {r.value!r} returned ok, but {r.value!r} is not chosen"
                if r.result == "already" and (r.data not in now or r.data == r.value):
                    return f"{who}'s write returned AlreadyWritten({r.data!r}), but {r.data!r} is not chosen"
            elif r.kind == "capture":
                if r.result == "captured" and r.data is not None and r.data not in now:
                    return f"{who}'s capture found {r.data!r} written, but it is not chosen"
            elif r.result == "value" and r.data not in now:
                return f"{who}'s read returned {r.data!r}, but it is not chosen"
            elif r.result == "empty" and r.chosen_at_start is not None:
                return f"{who}'s read returned EMPTY, but {r.chosen_at_start!r} was chosen when it started"
    return None


def _certain_failure(ex: Explorer, s: State, now: set[bytes]) -> str | None:
    """A write that returned ``CaptureStale`` certainly did not and never will take effect: no acceptor
    voted its value at its ballot, and its value is not chosen -- in this state and, since the result stays
    in every later state, in every state after it. Checked for values written by one script step only (a
    value two steps write may be chosen through the other)."""
    chosen_now = min(now) if now else None
    for k, cid in enumerate(s.clients):
        who = CLIENT_NAMES[k]
        for r in ex.cls.values[cid].results:
            if r.kind != "write" or r.result != "stale" or r.value is None:
                continue
            if any(b == r.ballot and v == r.value for _, b, v in ex.ghost(s)):
                return (f"{who}'s write of {r.value!r} returned CaptureStale, but an acceptor voted it at"
                        f" the write's ballot {show_ballot(r.ballot)}")
            if r.value in ex.unique_values:
                why = certain_failure_violation(who, "CaptureStale", r.value, chosen_now)
                if why is not None:
                    return why
    return None


ALWAYS: tuple[tuple[str, Check], ...] = (
    ("always_single_value_chosen", _single_value),
    ("acceptor_invariants", _acceptor_invariants),
    (CERTAIN_FAILURE, _certain_failure),
    ("outcomes_match_spec", _outcomes),
)


def _results(ex: Explorer, s: State) -> Iterator[Result]:
    for c in s.clients:
        yield from ex.cls.values[c].results


Sometimes = Callable[[Explorer, State, set[bytes]], bool]

SOMETIMES: tuple[tuple[str, Sometimes], ...] = (
    ("sometimes_value_chosen", lambda ex, s, now: bool(now)),
    (
        "sometimes_write_stale",
        lambda ex, s, now: any(r.kind == "write" and r.result == "stale" for r in _results(ex, s)),
    ),
    (
        "sometimes_read_completes_a_half_write",
        lambda ex, s, now: any(
            r.kind == "read" and r.result == "value" and r.proposed and r.chosen_at_start is None
            for r in _results(ex, s)
        ),
    ),
    (
        "sometimes_already_written",
        lambda ex, s, now: any(r.kind == "write" and r.result == "already" for r in _results(ex, s)),
    ),
)


def applicable(cfg: ExploreConfig) -> list[str]:
    """The "sometimes" properties the configuration's scripts can possibly meet: a stale write needs a
    second client (whose rounds preempt the writer's capture), ``AlreadyWritten`` two distinct written
    values, a read completing a write both a read and a write."""
    steps = [s for script in cfg.scripts for s in script]
    values = {s.value for s in steps if s.kind == "write"}
    names = ["sometimes_value_chosen"] if values else []
    if len(cfg.scripts) >= 2 and values:
        names.append("sometimes_write_stale")
    if READ in steps and values:
        names.append("sometimes_read_completes_a_half_write")
    if len(values) >= 2:
        names.append("sometimes_already_written")
    return names


# ---- the search -----------------------------------------------------------------------------------------



@dataclass(slots=True, kw_only=True)
class Report:
    """What an exploration found. ``verdict``: ``checked (bounded)`` (every reachable state visited, every
    property held, every applicable "sometimes" property met), ``VIOLATION``, ``UNKNOWN`` (the state budget
    ran out first) or ``VACUOUS`` (every state visited, no violation, but an applicable "sometimes" property
    was never met). ``trace`` lists (step, state summary) from the initial state to the violation."""

    config: ExploreConfig
    verdict: str
    states: int
    depth: int
    seconds: float
    violation: str | None = None
    failed: str | None = None
    trace: list[tuple[str, str]] = field(default_factory=list)
    witnessed: dict[str, int] = field(default_factory=dict)  # sometimes property -> depth first met

    @property
    def ok(self) -> bool:
        return self.verdict == CHECKED

    @property
    def vacuous(self) -> list[str]:
        return [name for name in applicable(self.config) if name not in self.witnessed]

    def render(self) -> str:
        lines = [
            f"bounds: {self.config.describe()}",
            f"verdict: {self.verdict}",
            f"distinct states: {self.states}   max depth: {self.depth}   seconds: {self.seconds:.1f}",
        ]
        relevant = applicable(self.config)
        for name, _ in SOMETIMES:
            d = self.witnessed.get(name)
            if d is not None:
                lines.append(f"  {name}: witnessed at depth {d}")
            elif name in relevant:
                lines.append(f"  {name}: never witnessed (vacuous)")
            else:
                lines.append(f"  {name}: not applicable to these scripts")
        if self.violation is not None:
            lines.append(f"violated: {self.failed}: {self.violation}")
            lines.append(f"shortest counterexample ({len(self.trace) - 1} steps):")
            for i, (label, summary) in enumerate(self.trace):
                lines.append(f"  {i:3d}. {label}")
                lines.append(f"       {summary}")
        return "\n".join(lines)


def explore(cfg: ExploreConfig | None = None, *, progress: Callable[[int, int], None] | None = None) -> Report:
    """Breadth-first search of every state reachable in ``cfg``, up to ``cfg.max_states`` states (the
    engine's ``bfs``, keyed by ``Explorer.key``)."""
    cfg = cfg if cfg is not None else default_config()
    ex = Explorer(cfg)
    checks = ALWAYS
    chosen_of = ex.chosen_of

    def check(s: State) -> tuple[str, str] | None:
        now = chosen_of(ex.ghost(s))
        for name, prop in checks:
            why = prop(ex, s, now)
            if why is not None:
                return name, why
        return None

    def seen(pred: Sometimes) -> Callable[[State], bool]:
        return lambda s: pred(ex, s, chosen_of(ex.ghost(s)))

    sometimes = [(name, seen(pred)) for name, pred in SOMETIMES if name in applicable(cfg)]
    init = ex.initial_state()
    found = bfs(init, ex.successors, key=ex.key, check=check, sometimes=sometimes,
                max_states=cfg.max_states, progress=progress)
    if found.found is not None:
        prop, why, f, at_step = found.found
        trace = _rebuild(ex, found.parent, f)
        if at_step:
            trace.append(("a delivery from the last state breaks step_ok (see above)", trace[-1][1]))
        return Report(config=cfg, verdict=VIOLATION, states=found.states, depth=found.depth,
                      seconds=found.seconds, violation=why, failed=prop, trace=trace, witnessed=found.witnessed)
    return Report(config=cfg, verdict=found.verdict, states=found.states, depth=found.depth,
                  seconds=found.seconds, witnessed=found.witnessed)


def _rebuild(ex: Explorer, parent: dict[Hashable, Hashable], target: Hashable) -> list[tuple[str, str]]:
    """The counterexample as readable steps: the engine's ``replay`` along the parent keys."""
    path = replay(ex.initial_state(), ex.successors, ex.key, parent, target)
    trace = [("initial state", ex.summarize(path[0][1]))]
    for (_, before), (action, after) in pairwise(path):
        trace.append((ex.describe(before, action, after), ex.summarize(after)))
    return trace


Projection = tuple[tuple[RegState, ...], frozenset[GhostVote], tuple[tuple[int, tuple[Result, ...]], ...]]


def reachable_projections(cfg: ExploreConfig) -> set[Projection]:
    """Every reachable (registers, ghost log, client positions and results) -- what the properties read --
    found without the symmetry reduction. Used to check that the reductions and both views of loss agree."""
    ex = Explorer(replace(cfg, symmetry=False))
    init = ex.initial_state()
    seen = {init}
    stack = [init]
    while stack:
        s = stack.pop()
        for _, nxt in ex.successors(s):
            if nxt not in seen:
                if len(seen) >= cfg.max_states:
                    raise RuntimeError(f"more than {cfg.max_states} states")
                seen.add(nxt)
                stack.append(nxt)
    return {
        (
            tuple(ex.register(s, a) for a in range(ex.n)),
            ex.ghost(s),
            tuple((c.pc, c.results) for c in map(ex.cls.values.__getitem__, s.clients)),
        )
        for s in seen
    }


def read_config() -> ExploreConfig:
    """A writer and a reader: A captures and writes ``b"a"`` while B reads, over an unordered, lossy and
    duplicating network; one round per operation. Reads meet half-written registers here."""
    return ExploreConfig(scripts=((CAPTURE, write(b"a")), (READ,)), max_rounds=1, duplicating=True)


def race_config() -> ExploreConfig:
    """Two writers racing: A captures and writes ``b"a"``, B captures and writes ``b"b"``; one round per
    operation; an unordered, lossy network without duplicates (with duplicates this configuration has
    about 1.5 million states, too many for the default run; duplicates are explored in ``read_config``)."""
    return ExploreConfig(scripts=((CAPTURE, write(b"a")), (CAPTURE, write(b"b"))), max_rounds=1, duplicating=False)


def race_duplicating_config() -> ExploreConfig:
    """The full race: two proposers (A captures and writes ``b"a"``, B captures and writes ``b"b"``), one
    ballot each, three acceptors, over an unordered, lossy and duplicating network. Checked exhaustively:
    1,492,921 states, depth 38 (about 70 CPU-seconds, some 22,000 states per CPU-second, and 600 MB; 6
    minutes of wall clock on a two-core machine shared by seven loads): only in a full run
    (``wor.race_duplicating`` in ``explore_engine.CONFIGS``), with a budget to match."""
    return replace(race_config(), duplicating=True, max_states=8_000_000)


def replace_config() -> ExploreConfig:
    """An acceptor loses its disk and is replaced by the fence procedure while A captures, writes ``b"a"``
    and reads it back; one round per operation, no duplicates (about 220 thousand states: too many to add to
    the default run, explored by its own test). The old procedure (snapshot, then rebuild, no fence) breaks
    ``outcomes_match_spec`` here within 14 steps."""
    return ExploreConfig(scripts=((CAPTURE, write(b"a"), READ),), max_rounds=1, duplicating=False, replacements=1)


def default_configs() -> tuple[ExploreConfig, ...]:
    """The default run: ``read_config`` then ``race_config``, each explored exhaustively (about 80 thousand
    and 270 thousand states). Larger configurations -- a reader beside two writers, or two rounds per
    operation -- have millions of states: run them with a budget and read the verdict (UNKNOWN when it
    runs out)."""
    return (read_config(), race_config())


def default_config() -> ExploreConfig:
    """The first default configuration (``read_config``)."""
    return read_config()


def explore_all(
    configs: Iterable[ExploreConfig] | None = None, *, stop_at_violation: bool = True
) -> list[Report]:
    """Explore each configuration in turn (by default ``default_configs``); stop after a violation."""
    reports = []
    for cfg in default_configs() if configs is None else configs:
        report = explore(cfg)
        reports.append(report)
        if stop_at_violation and report.verdict == VIOLATION:
            break
    return reports


def small_config() -> ExploreConfig:
    """A small configuration (the same as ``read_config``): A captures and writes ``b"a"`` while B reads."""
    return read_config()


__all__ = [
    "ALWAYS",
    "CAPTURE",
    "CHECKED",
    "READ",
    "SOMETIMES",
    "UNKNOWN",
    "VACUOUS",
    "VIOLATION",
    "ExploreConfig",
    "Explorer",
    "Report",
    "State",
    "Step",
    "applicable",
    "default_config",
    "default_configs",
    "explore",
    "explore_all",
    "race_config",
    "read_config",
    "reachable_projections",
    "replace_config",
    "small_config",
    "write",
]
