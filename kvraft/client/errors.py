"""Typed exceptions raised by the kvraft client.

Every error the client raises on purpose is a :class:`ClientError` whose message says
what failed, why and what to try. The ones a caller usually handles:

- :class:`OutcomeUnknown` — a write may or may not have been applied (the deadline
  passed while its outcome was in doubt). It will never be applied twice.
- :class:`Unavailable` — no node could serve the request before the deadline (the
  write, if any, was certainly not applied); :class:`TooStale` is its bounded-staleness
  form.
- :class:`InvalidArgument` — the request is malformed or over a limit; nothing applied.
- :class:`NotLeader` — only when redirects are disabled (``follow_redirects=False``).
"""

from __future__ import annotations

from kvraft import errors as base


class ClientError(base.KvRaftError):
    """Base class of the client's errors. ``code`` is the gRPC status name behind it
    (e.g. ``"UNAVAILABLE"``) or "" if none; ``endpoint`` the node that answered, if any."""

    def __init__(self, message: str, *, code: str = "", endpoint: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.endpoint = endpoint


class NotLeader(ClientError, base.NotLeader):
    """The node asked is not the leader. ``leader_id``/``leader_addr`` name the leader
    it knows of (0 / "" if none). Raised only when redirects are disabled."""

    def __init__(self, message: str, *, leader_id: int = 0, leader_addr: str = "",
                 endpoint: str = "") -> None:
        ClientError.__init__(self, message, code="FAILED_PRECONDITION", endpoint=endpoint)
        self.leader_id = leader_id
        self.leader_addr = leader_addr


class Unavailable(ClientError):
    """No node could serve the request before the deadline: every endpoint was down,
    had no leader, or was overloaded. A write that raises this was not applied."""


class TooStale(Unavailable):
    """A STALE read with ``max_staleness`` found no node fresh enough."""


class ResourceExhausted(Unavailable):
    """The leader stayed overloaded until the deadline; the write was not applied."""


class OutcomeUnknown(ClientError):
    """A write's outcome is unknown: it was sent, and the deadline passed before any node
    could say whether it was applied. It is applied at most once (its session sequence
    number guards it); read the key to find out."""


class InvalidArgument(ClientError):
    """The request is malformed or over a limit (the message names it); nothing applied."""


class InvalidConfChange(InvalidArgument, base.InvalidConfChange):
    """A membership change that makes no sense (unknown node, removing the last voter)."""


class ConfChangeInProgress(ClientError, base.ConfChangeInProgress):
    """Another membership change is still pending; try again shortly."""


class FailedPrecondition(ClientError):
    """The node refused the request in its current state (other than "not leader")."""


class SnapshotTransferError(ClientError):
    """A snapshot download was cut short or failed its checksum; the file was removed."""


class ClientClosed(ClientError):
    """The client was used after ``close()``."""
