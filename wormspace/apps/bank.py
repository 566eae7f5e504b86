"""A bank of accounts over 3 shards: transfers as WormTX transactions, locking with immediate restart.

Invariant (``check_bank``): the total balance never changes; every transfer is applied to both of its
accounts or to neither, at most once; no balance goes negative; a transfer reported committed is applied,
one reported refused is not.

Theory of operation. Shard ``s`` is a segment; account ``a`` lives in shard ``a mod shards`` in a region of
``R`` registers, a chain of write-once registers::

    base            genesis: the opening balance
    base + 1 + 2k   lock k: b"L" + (transaction, src, dst, amount) -- whoever writes it holds the account
    base + 2 + 2k   resolution k: b"C" (the transaction committed: apply it) or b"A" (it aborted: void)

Rule 1 (lock = cas). A transfer reads its account's chain up to the first empty lock register (every
        earlier lock resolved: the balance is the opening one plus the committed transfers) and captures and
        writes its lock there. Another lock written first, or an unresolved lock at the tail, is a conflict.
Rule 2 (vote, decide). A transfer is a WormTX E3 transaction of 2 participants (0: source, 1: destination).
        Having locked an account, it votes YES for it (the source: only if the balance covers the amount,
        else NO), then decides.
Rule 3 (apply or release). The outcome is written into the resolution register after each lock (capture,
        write; an existing value is adopted: Rule 5 makes it the same), then the participant acknowledges;
        the last acknowledgement trims the transaction (WormTX Rule 4). With ``history``, the transactions'
        ``begin``, ``vote`` and ``decide`` calls are recorded in it (WormTX Rule 6).
Rule 4 (immediate restart). On a conflict the transfer votes NO, releases what it locked, resolves the lock
        in its way -- it decides that transaction (an E3 decide after ``lock_wait`` casts ABORT for its empty
        votes, so a crashed transfer blocks nobody) and writes its resolution -- and restarts with a new
        transaction at once.
Rule 5 (resolving a trimmed transaction). A committed transaction is trimmed only after every one of its
        locks is resolved (a committed transaction locked both accounts before voting YES, and acknowledges
        an account only after writing its resolution). So a lock without a resolution whose transaction is
        trimmed belongs to an aborted transaction: its resolution is ABORT. An aborted transaction may be
        acknowledged for every participant at once: its locks are void whether resolved or not.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from wormspace.apps.history import AppHistory
from wormspace.apps.tx import TxLogic
from wormspace.client import EMPTY, Indeterminate, OpGen, SpaceLogic, Trimmed, UsageError, WormSpace

LOCK, COMMITTED, ABORTED, GENESIS = b"L", b"C", b"A", b"G"
_LOCK = struct.Struct(">QHHq")
_GENESIS = struct.Struct(">q")
RESTARTS = 32


@dataclass(frozen=True, slots=True)
class Lock:
    t: int
    src: int
    dst: int
    amount: int

    def encode(self) -> bytes:
        return LOCK + _LOCK.pack(self.t, self.src, self.dst, self.amount)

    @staticmethod
    def decode(raw: bytes) -> Lock:
        if not raw.startswith(LOCK) or len(raw) != 1 + _LOCK.size:
            raise UsageError(f"not a lock record: {raw!r}")
        return Lock(*_LOCK.unpack(raw[1:]))

    def delta(self, a: int) -> int:
        return -self.amount if a == self.src else self.amount


@dataclass(frozen=True, slots=True)
class Layout:
    """Where the accounts live: shard segments, accounts, registers per account."""

    shards: tuple[int, ...]
    accounts: int
    region: int

    def home(self, a: int) -> tuple[int, int]:
        """(segment, offset) of account ``a``'s genesis register."""
        if type(a) is not int or not 0 <= a < self.accounts:
            raise UsageError(f"no account {a!r}; accounts are 0..{self.accounts - 1}")
        return self.shards[a % len(self.shards)], (a // len(self.shards)) * self.region

    def place(self, a: int, k: int) -> tuple[int, int]:
        """(segment, offset) of account ``a``'s lock k (its resolution is the next offset)."""
        if 2 * k + 3 > self.region:
            raise Indeterminate(f"account {a}'s chain is full ({(self.region - 1) // 2} transfers)")
        seg, base = self.home(a)
        return seg, base + 1 + 2 * k


class BankLogic:
    """The bank as generators over the client API (one per client)."""

    def __init__(self, logic: SpaceLogic, layout: Layout, *, lock_wait: float = 0.2, tx_wait: float = 0.2,
                 history: AppHistory | None = None) -> None:
        self.logic, self.layout, self.lock_wait, self.tx_wait = logic, layout, lock_wait, tx_wait
        self.tx = TxLogic(logic, history=history)
        self.known: dict[int, tuple[int, int]] = {}  # account -> (first lock not known resolved, balance)
        self.outcomes: dict[int, bool] = {}  # transaction -> what its transfer returned

    @staticmethod
    def create(logic: SpaceLogic, accounts: int, opening: int, shards: int = 3) -> OpGen[Layout]:
        """Allocate the shards and write every opening balance."""
        if type(accounts) is not int or accounts < 2 or type(opening) is not int or opening < 0:
            raise UsageError("a bank needs at least 2 accounts and a non-negative opening balance")
        per = -(-accounts // shards)
        region = logic.wos_size // per
        if region < 3:
            raise UsageError(f"{accounts} accounts do not fit {shards} shards of {logic.wos_size} registers")
        segs = []
        for s in range(shards):
            seg = yield from logic.alloc_any(b"wormbank shard %d" % s)
            mine = [a for a in range(accounts) if a % shards == s]
            cap = yield from logic.batch_capture(seg, 0, per * region)
            values = {(a // shards) * region: GENESIS + _GENESIS.pack(opening) for a in mine}
            res = yield from logic.batch_write(seg, values, cap)
            if any(e is not None for e in res.values()):
                raise Indeterminate(f"opening balances of shard {s} not written: {res}")
            segs.append(seg)
        return Layout(tuple(segs), accounts, region)

    # -- chains --------------------------------------------------------------------------------------

    def tail(self, a: int) -> OpGen[tuple[int, int, Lock | None]]:
        """(k, balance, blocker): the first lock register k not known resolved, the balance below it,
        and the unresolved lock at k (None: k is free)."""
        if a not in self.known:
            seg, off = self.layout.home(a)
            raw = yield from self.logic.read(self.logic.address(seg, off))
            if not isinstance(raw, bytes) or not raw.startswith(GENESIS):
                raise UsageError(f"account {a} has no opening balance")
            self.known[a] = (0, _GENESIS.unpack(raw[1:])[0])
        k, balance = self.known[a]
        while True:
            seg, off = self.layout.place(a, k)
            got = yield from self.logic.batch_read(seg, off, off + 2)
            lock, res = got[off], got[off + 1]
            if lock is EMPTY:
                return k, balance, None
            held = Lock.decode(lock)
            if res is EMPTY:
                return k, balance, held
            if res == COMMITTED:
                balance += held.delta(a)
            k += 1
            self.known[a] = (k, balance)

    def resolve(self, a: int, k: int, lock: Lock, wait: float) -> OpGen[bool]:
        """Rules 4, 5: the outcome of ``lock`` (at lock k of account ``a``), written as its resolution."""
        try:
            outcome = yield from self.tx.decide(lock.t, wait)
        except Trimmed:
            outcome = False
        seg, off = self.layout.place(a, k)
        got = yield from self.tx.put(seg, off + 1, COMMITTED if outcome else ABORTED)
        yield from self.finish(lock.t, [0 if a == lock.src else 1] if got == COMMITTED else [0, 1])
        return got == COMMITTED

    def finish(self, t: int, participants: Iterable[int]) -> OpGen[None]:
        for j in participants:
            if (yield from self.tx.ack(t, j)):
                return

    # -- transfers -----------------------------------------------------------------------------------

    def transfer(self, src: int, dst: int, amount: int) -> OpGen[bool]:
        """Move ``amount`` from ``src`` to ``dst``: True if done, False if ``src`` lacks the funds."""
        if src == dst or type(amount) is not int or amount <= 0:
            raise UsageError("a transfer needs two distinct accounts and a positive amount")
        self.layout.home(src)
        self.layout.home(dst)
        for _ in range(RESTARTS):
            t = yield from self.tx.begin(2, b"bank")
            done = yield from self.attempt(t, src, dst, amount)
            if done is not None:
                return done
        raise Indeterminate(f"transfer {src}->{dst} restarted {RESTARTS} times")

    def attempt(self, t: int, src: int, dst: int, amount: int) -> OpGen[bool | None]:
        """One transaction: Rules 1-4. None: a conflict; restart."""
        mine = Lock(t, src, dst, amount)
        held: list[tuple[int, int, int]] = []  # (participant, account, k)
        yes = True
        for j, a in enumerate((src, dst)):
            k, balance, blocker = yield from self.tail(a)
            if blocker is None:
                seg, off = self.layout.place(a, k)
                got = yield from self.lock(seg, off, mine)
                if got == mine.encode():
                    held.append((j, a, k))
                    yes = yes and (j == 1 or balance >= amount)
                    continue
                blocker = Lock.decode(got)
            # a conflict: abort this transaction, release, resolve the blocker, restart (Rule 4)
            try:
                for jj in range(2):
                    yield from self.tx.vote(t, jj, False)
            except Trimmed:
                pass  # a helper aborted it already
            yield from self.apply(t, held, False)
            yield from self.resolve(a, k, blocker, self.lock_wait)
            return None
        stood = True
        try:
            for j in range(2):
                stood = (yield from self.tx.vote(t, j, yes or j == 1)) and stood
            outcome = yield from self.tx.decide(t, self.tx_wait)
        except Trimmed:  # helpers finished it (Rule 5): our resolutions tell the outcome
            stood = False
            outcome = False
            for _j, a, k in held:
                seg, off = self.layout.place(a, k)
                outcome = (yield from self.tx.put(seg, off + 1, ABORTED)) == COMMITTED or outcome
        yield from self.apply(t, held, outcome)
        if outcome or (stood and not yes):
            self.outcomes[t] = outcome
            return outcome
        return None

    def lock(self, seg: int, off: int, mine: Lock) -> OpGen[bytes]:
        """Rule 1: the lock record that holds register ``off`` (``mine`` if this transfer got it)."""
        return (yield from self.tx.put(seg, off, mine.encode()))

    def apply(self, t: int, held: list[tuple[int, int, int]], outcome: bool) -> OpGen[None]:
        """Rule 3: resolve every held lock, then acknowledge."""
        for _j, a, k in held:
            seg, off = self.layout.place(a, k)
            yield from self.tx.put(seg, off + 1, COMMITTED if outcome else ABORTED)
        yield from self.finish(t, [j for j, _, _ in held] if outcome else [0, 1])

    # -- audit ---------------------------------------------------------------------------------------

    def audit(self) -> OpGen[dict[int, tuple[int, list[tuple[Lock, bool]]]]]:
        """Resolve every chain to its end: account -> (balance, [(lock, committed)] in chain order)."""
        out: dict[int, tuple[int, list[tuple[Lock, bool]]]] = {}
        for a in range(self.layout.accounts):
            self.known.pop(a, None)
            entries: list[tuple[Lock, bool]] = []
            while True:
                k, _, blocker = yield from self.tail(a)
                if blocker is not None:
                    yield from self.resolve(a, k, blocker, self.lock_wait)
                    continue
                break
            for kk in range(k):
                seg, off = self.layout.place(a, kk)
                got = yield from self.logic.batch_read(seg, off, off + 2)
                entries.append((Lock.decode(got[off]), got[off + 1] == COMMITTED))  # type: ignore[arg-type]
            out[a] = (self.known[a][1], entries)
        return out


def check_bank(
    audit: Mapping[int, tuple[int, list[tuple[Lock, bool]]]], opening: int, reported: Mapping[int, bool] | None = None
) -> list[str]:
    """The bank's invariant over an audit; ``reported``: transaction -> what its transfer returned."""
    problems = []
    total = sum(balance for balance, _ in audit.values())
    if total != opening * len(audit):
        problems.append(f"total balance {total}, opened with {opening * len(audit)}")
    applied: dict[int, list[tuple[int, Lock]]] = {}
    for a, (balance, entries) in audit.items():
        if balance < 0:
            problems.append(f"account {a} is overdrawn: {balance}")
        if balance != opening + sum(lock.delta(a) for lock, done in entries if done):
            problems.append(f"account {a}'s balance {balance} does not match its chain")
        for lock, done in entries:
            if a not in (lock.src, lock.dst):
                problems.append(f"account {a} holds a lock of transfer {lock.t} between others")
            if done:
                applied.setdefault(lock.t, []).append((a, lock))
    for t, on in applied.items():
        accounts = sorted(a for a, _ in on)
        lock = on[0][1]
        if accounts != sorted((lock.src, lock.dst)) or any(lk != lock for _, lk in on):
            problems.append(f"transfer {t} applied to accounts {accounts} (twice or half)")
    for t, ok in (reported or {}).items():
        if ok and t not in applied:
            problems.append(f"transfer {t} reported done but not applied")
    return problems


class Bank:
    """The bank on a synchronous client: ``Bank.create(ws, accounts=6, opening=100)``."""

    def __init__(self, ws: WormSpace, layout: Layout, *, history: AppHistory | None = None, **waits: float) -> None:
        self.ws, self.layout = ws, layout
        self.core = BankLogic(ws.logic, layout, history=history, **waits)

    @staticmethod
    def create(ws: WormSpace, accounts: int = 6, opening: int = 100, shards: int = 3) -> Bank:
        return Bank(ws, ws.run(BankLogic.create(ws.logic, accounts, opening, shards)))

    def transfer(self, src: int, dst: int, amount: int) -> bool:
        return self.ws.run(self.core.transfer(src, dst, amount))

    def balance(self, a: int) -> int:
        return self.ws.run(self.core.tail(a))[1]

    def audit(self) -> dict[int, tuple[int, list[tuple[Lock, bool]]]]:
        return self.ws.run(self.core.audit())


__all__ = ["Bank", "BankLogic", "Layout", "Lock", "check_bank"]
