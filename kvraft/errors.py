"""Typed errors shared by the layers of kvraft.

Expected failures are named exception classes; a broken internal invariant is an
``AssertionError`` (the node should crash rather than continue with bad state).
"""

from __future__ import annotations


class KvRaftError(Exception):
    """Base class of every error kvraft raises on purpose."""


# ---------------------------------------------------------------- core (caller's mistakes)
class NotLeader(KvRaftError):
    """The request needs the leader and this node is not it (or cannot act as it now).

    ``leader_id`` is the leader this node knows of (0 if none), so callers can redirect.
    """

    def __init__(self, leader_id: int, message: str = "") -> None:
        self.leader_id = leader_id
        super().__init__(message or f"not the leader (known leader: {leader_id or 'none'})")


class TransferInProgress(NotLeader):
    """The leader is handing leadership over and refuses new proposals meanwhile."""


class ProposalDropped(KvRaftError):
    """The core refused a proposal for a reason other than leadership (e.g. too large)."""


class ConfChangeInProgress(KvRaftError):
    """A membership change is already pending, or the leader has not yet committed an
    entry of its current term; try again shortly."""


class InvalidConfChange(KvRaftError):
    """The membership change makes no sense (e.g. removing an unknown node)."""


# ---------------------------------------------------------------- storage
class StorageError(KvRaftError):
    """Base class of storage errors."""


class Compacted(StorageError):
    """The requested log index lies in the prefix already folded into a snapshot."""


class Unavailable(StorageError):
    """The requested log index is beyond the last stored entry."""


class Corrupted(StorageError):
    """A stored record failed its checksum or could not be decoded.

    The message names the database and key/index; a node must not serve or campaign
    with a damaged store.
    """


class SnapshotError(StorageError):
    """A snapshot file is truncated, damaged, or of an unknown format."""
