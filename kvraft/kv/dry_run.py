"""A write view that writes nothing: the state machine's dry run (``KvStateMachine.predict``).

``DryRunWriter`` wraps a read view and keeps the writes of the commands run through it in
memory, so that later reads in the same dry run see them; nothing reaches the store. It
serves what a single-key command needs (get, put, delete, the session table). Anything
whose answer would have to merge the buffered writes with an ordered scan of the store
(a range of keys, sessions to expire after a buffered session write) raises
``Unpredictable`` instead: the dry run stops there and the real apply decides.
"""

from __future__ import annotations

from collections.abc import Mapping

from kvraft.storage.state_base import KeyValue, RangeResult, Session, StatePosition, StateReader


class Unpredictable(Exception):
    """The dry run cannot tell this command's result without scanning buffered writes."""


class DryRunWriter:
    """A StateWriter over ``base`` (a read view) whose writes stay in memory."""

    def __init__(self, base: StateReader) -> None:
        self._base = base
        self._keys: dict[bytes, KeyValue | None] = {}  # written (None: deleted) keys
        self._sessions: dict[int, Session | None] = {}  # written (None: deleted) sessions

    # reads: what was written in this dry run first, then the store
    def position(self) -> StatePosition:
        return self._base.position()

    def get(self, key: bytes) -> KeyValue | None:
        if key in self._keys:
            return self._keys[key]
        return self._base.get(key)

    def range(
        self, start: bytes, end: bytes | None = None, *, limit: int = 0, count: bool = True
    ) -> RangeResult:
        raise Unpredictable("a range read")

    def session(self, client_id: int) -> Session | None:
        if client_id in self._sessions:
            return self._sessions[client_id]
        return self._base.session(client_id)

    def sessions_seen_before(self, time_ms: int, limit: int) -> list[int]:
        if self._sessions:
            raise Unpredictable("session expiry after a session write")
        return self._base.sessions_seen_before(time_ms, limit)

    def members(self) -> dict[int, str] | None:
        return self._base.members()

    # writes: kept here
    def put(self, kv: KeyValue) -> None:
        self._keys[kv.key] = kv

    def delete(self, key: bytes) -> bool:
        existed = self.get(key) is not None
        self._keys[key] = None
        return existed

    def put_session(self, session: Session) -> None:
        self._sessions[session.client_id] = session

    def delete_session(self, client_id: int) -> bool:
        existed = self.session(client_id) is not None
        self._sessions[client_id] = None
        return existed

    def set_position(self, position: StatePosition) -> None:
        raise Unpredictable("the dry run does not move the applied position")

    def set_members(self, members: Mapping[int, str]) -> None:
        raise Unpredictable("the dry run does not change the member record")
