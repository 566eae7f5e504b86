"""The errors of WormSpace.

Two families (DESIGN §3 rule 5), converted at the boundary where they arise:

* ``UsageError`` -- the caller misused the API (a precondition failed before anything was sent).
* ``RemoteProtocolError`` -- a peer sent something malformed; raised while decoding, never later.
* ``ContractViolation`` -- a declared postcondition of the client API failed: a bug in this library, not
  in the caller (raised only while contracts are on, ``WORMSPACE_CONTRACTS`` unset or ``1``).

and the semantic outcomes of operations, each exported from :mod:`wormspace`:

* ``CaptureStale`` -- certainly not applied: the capture was preempted and the data is nowhere.
* ``AlreadyWritten`` -- certainly not applied: the register holds other data (``.data``).
* ``Trimmed`` -- the segment was trimmed; every register in it answers this.
* ``Unallocated`` -- the address lies in a segment nobody has allocated.
* ``Indeterminate`` -- the operation timed out; it may or may not have taken effect.
"""

from __future__ import annotations


class WormSpaceError(Exception):
    """Base class of every error this library raises on purpose."""


class UsageError(WormSpaceError, ValueError):
    """The caller broke a rule of the API; nothing was sent."""


class RemoteProtocolError(WormSpaceError):
    """A peer sent a malformed, oversized or unexpected frame or message."""


class ContractViolation(WormSpaceError):
    """A postcondition (``@ensure``) of the client API failed: the library broke its own contract."""


class OperationFailed(WormSpaceError):
    """An operation reached a definite or indeterminate outcome other than success."""


class CaptureStale(OperationFailed):
    """The capture was preempted by a later one; the write certainly did not take effect."""


class AlreadyWritten(OperationFailed):
    """The register already holds different data, which is in ``.data``."""

    def __init__(self, data: bytes, message: str | None = None) -> None:
        super().__init__(message or f"register already holds {data!r}")
        self.data = data

    def __reduce__(self) -> tuple[type[AlreadyWritten], tuple[bytes, str]]:
        """Copies and pickles (e.g. from a process pool) keep ``data``, not the message in its place."""
        return type(self), (self.data, str(self))


class Trimmed(OperationFailed):
    """The segment holding the address has been trimmed."""


class Unallocated(OperationFailed):
    """The address lies in a segment that has not been allocated."""


class Indeterminate(OperationFailed):
    """The operation timed out or gave up; it may or may not have taken effect."""


class PeersRefused(Indeterminate):
    """An ``Indeterminate`` whose cause is known: acceptors refused this client's connection (wrong or missing
    auth key, another cluster's acceptor at the address); the message names them and why."""


#: Names of the outcome classes as they appear in exported histories (``"error"`` field).
OUTCOME_NAMES: dict[type[OperationFailed], str] = {
    CaptureStale: "CaptureStale",
    AlreadyWritten: "AlreadyWritten",
    Trimmed: "Trimmed",
    Unallocated: "Unallocated",
    Indeterminate: "Indeterminate",
}
