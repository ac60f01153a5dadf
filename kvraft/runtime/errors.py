"""Errors the runtime driver raises to its callers (the servicers).

They complement :mod:`kvraft.errors` (the core's NotLeader, ProposalDropped, ...), which
the driver passes through unchanged.
"""

from __future__ import annotations

from kvraft.errors import KvRaftError


class OutcomeUnknown(KvRaftError):
    """A proposal was accepted into the leader's log but the node lost leadership (or the
    entry at its index was replaced by one from another term) before it applied. The
    command may or may not take effect; a retry with the same session sequence number is
    safe."""


class Overloaded(KvRaftError):
    """Too many proposals or bytes are in flight; the caller should back off and retry."""


class DriverStopped(KvRaftError):
    """The driver is stopping or has stopped (shutdown or a fatal storage error)."""
