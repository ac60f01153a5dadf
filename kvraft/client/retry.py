"""The client's engine: where to send a request, how to retry it, and which error to
raise when the deadline passes.

Theory of operation
- Every operation has one overall deadline (the caller's ``timeout``). Within it, the
  loop sends attempts, each bounded by ``attempt_timeout`` and by the time left.
- Leader-only requests go to the cached leader, else to the next node in round-robin
  order. A follower's "not leader" names the leader; the loop goes there at once (one
  hop). A node that cannot be reached is skipped for a while; "no leader", overload and
  doubtful outcomes back off exponentially with jitter before the next attempt.
- Writes are exactly-once: each write borrows a *session* (a random client id and a
  sequence number) and every retry of that write reuses the same number, so the state
  machine applies it at most once. A session serves one write at a time, so the server
  sees each session's numbers strictly in order (concurrent writers use several).
- When the deadline passes: a write some attempt of which may have been applied raises
  OutcomeUnknown (its session is retired, never reused); anything else raises
  Unavailable (or TooStale / ResourceExhausted), and the write was certainly not applied.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc

from kvraft._pb.kvraft.v1 import admin_pb2, kv_pb2
from kvraft.client import errors
from kvraft.client.endpoints import Endpoint, EndpointPool, normalize_address
from kvraft.client.failure import Failure, Kind, from_rpc_error
from kvraft.client.mux import BatchUnsupported

T = TypeVar("T")

MAX_QUICK_RETRIES = 3  # retries without backoff (redirects, next node) before backing off
_UNARY = {"range": "Range", "put": "Put", "delete_range": "DeleteRange", "txn": "Txn"}


@dataclass
class Session:
    """An exactly-once identity: writes carry (client_id, seq), seq strictly growing."""

    client_id: int  # random, non-zero, 64-bit
    seq: int = 0  # last sequence number handed out


class SessionPool:
    """Idle sessions for writes; a session is lent to one write at a time."""

    def __init__(self) -> None:
        self._idle: list[Session] = []  # sessions with no write in flight
        self.created = 0  # sessions ever created (each has its own client_id)

    def acquire(self) -> Session:
        if self._idle:
            return self._idle.pop()
        self.created += 1
        return Session(secrets.randbits(64) or 1)

    def release(self, session: Session, *, retire: bool) -> None:
        """Give a session back; ``retire`` one whose last write's outcome is unknown."""
        if not retire:
            self._idle.append(session)


@dataclass(frozen=True, slots=True)
class Policy:
    timeout: float = 5.0  # default overall deadline of one operation, seconds
    attempt_timeout: float = 2.0  # bound on one attempt, seconds
    backoff_base: float = 0.025  # first backoff, seconds
    backoff_cap: float = 1.0  # largest backoff, seconds
    follow_redirects: bool = True  # False: a follower's "not leader" raises NotLeader
    use_batch: bool = True  # multiplex KV requests over the Batch stream


@dataclass
class Stats:
    """Counters of what the client did, for tests, benchmarks and curious operators."""

    attempts: int = 0  # requests sent (every try of every operation)
    redirects: int = 0  # immediate retries at a leader another node named
    backoffs: int = 0  # waits before retrying
    discoveries: int = 0  # leader searches (Admin Status to every node)


class Caller:
    """Endpoints, sessions and the retry loop shared by the Client's methods."""

    def __init__(self, endpoints: list[str] | tuple[str, ...] | str, policy: Policy,
                 rng: random.Random | None = None) -> None:
        seeds = endpoints.split(",") if isinstance(endpoints, str) else list(endpoints)
        self._policy = policy
        self._rng = rng or random.Random()
        self._pool = EndpointPool([normalize_address(e) for e in seeds if e.strip()],
                                  rng=self._rng)
        self._sessions = SessionPool()
        self._closed = False
        self.stats = Stats()  # cumulative over the client's life
        self._discovery: asyncio.Task[None] | None = None  # the leader search under way

    # ------------------------------------------------------------------ one attempt
    async def _kv(self, ep: Endpoint, kind: str, req: Any, timeout: float) -> Any:
        """One KV request on ``ep``: over its Batch stream, or unary as the fallback."""
        if self._policy.use_batch and ep.batch_supported:
            try:
                return await ep.batch().request(timeout, **{kind: req})
            except BatchUnsupported:
                ep.batch_supported = False
        ep.connect()
        return await self._unary(ep, getattr(ep.kv, _UNARY[kind]), req, timeout)

    @staticmethod
    async def _unary(ep: Endpoint, method: Any, req: Any, timeout: float) -> Any:
        try:
            return await method(req, timeout=timeout)
        except grpc.aio.AioRpcError as e:
            raise from_rpc_error(e, ep.address) from None

    # ------------------------------------------------------------------ leader discovery
    async def _discover_leader(self, timeout: float) -> None:
        """Ask the nodes who leads (Admin Status, in parallel) and cache the answer, so
        that many callers starting at once do not each bounce off a follower. Callers
        arriving while a search runs share it. Gives up quietly after ``timeout``."""
        if self._discovery is None or self._discovery.done():
            self._discovery = asyncio.get_running_loop().create_task(self._discover(timeout))
        await asyncio.wait({self._discovery}, timeout=timeout)

    async def _discover(self, timeout: float) -> None:
        self.stats.discoveries += 1
        eps = [e for e in self._pool.endpoints.values()
               if e.down_until <= time.monotonic()]

        async def ask(ep: Endpoint) -> Any:
            ep.connect()
            try:
                return ep.address, await ep.admin.Status(admin_pb2.StatusRequest(),
                                                         timeout=timeout)
            except grpc.aio.AioRpcError:
                return ep.address, None

        for done in asyncio.as_completed([ask(e) for e in eps or self._pool.endpoints.values()]):
            address, st = await done
            if st is None:
                continue
            if st.role == admin_pb2.LEADER:
                self._pool.set_leader(address)
                return
            if st.leader_addr:
                self._pool.set_leader(st.leader_addr)
                return

    # ------------------------------------------------------------------ the loop
    async def _backoff(self, n: int, remaining: float) -> None:
        step = min(self._policy.backoff_cap, self._policy.backoff_base * 2 ** n)
        await asyncio.sleep(min(remaining, step / 2 + self._rng.uniform(0, step / 2)))

    async def _retry(self, what: str, attempt: Callable[[Endpoint, float], Awaitable[T]], *,
                     target: str = "leader", write: bool = False, timeout: float | None = None,
                     conf_change: bool = False) -> T:
        """Run ``attempt(endpoint, attempt_timeout)`` until it succeeds or the deadline.

        ``target`` is "leader" (cached leader, redirects) or "any" (spread over nodes,
        for STALE reads). ``write`` makes a doubtful attempt end as OutcomeUnknown.
        ``conf_change`` marks a membership change: a FAILED_PRECONDITION refusal ("another
        change is pending") is retried, and the errors are ConfChangeInProgress and
        InvalidConfChange.
        """
        if self._closed:
            raise errors.ClientClosed(f"{what}: the client is closed")
        loop = asyncio.get_running_loop()
        budget = self._policy.timeout if timeout is None else timeout
        deadline = loop.time() + budget
        last: Failure | None = None
        busy: Failure | None = None  # the leader's latest "a change is pending" answer
        in_doubt = False
        backoffs = 0
        quick = 0  # immediate retries (redirect, next node) since the last backoff
        while True:
            if self._closed:  # close() while this call was under way
                raise self._closed_error(what, in_doubt and write)
            remaining = deadline - loop.time()
            if remaining <= 0:  # the leader's "pending" says more than a later hop's error
                raise self._final(what, busy or last, in_doubt and write, budget)
            if (target == "leader" and self._pool.leader is None
                    and self._policy.follow_redirects):
                await self._discover_leader(min(remaining, self._policy.attempt_timeout))
            ep = (self._pool.for_leader() if target == "leader"
                  else self._pool.any(move=last is not None))
            self.stats.attempts += 1
            try:
                result = await attempt(ep, min(remaining, self._policy.attempt_timeout))
            except Failure as f:
                last = f
            else:
                self._pool.mark_ok(ep.address)
                if target == "leader":
                    self._pool.set_leader(ep.address)
                return result
            in_doubt = in_doubt or last.in_doubt
            if self._closed:
                raise self._closed_error(what, in_doubt and write)
            kind = last.kind
            retry_now = False
            if kind is Kind.INVALID:
                invalid = errors.InvalidConfChange if conf_change else errors.InvalidArgument
                raise invalid(f"{what}: {last.message}", code=last.code, endpoint=ep.address)
            if kind is Kind.FATAL and not (conf_change and _is_busy(last)):
                raise _fatal(what, last, conf_change)
            elif kind is Kind.FATAL:  # busy: the leader answered; ask it again after a backoff
                busy = last
            elif kind is Kind.NOT_LEADER:
                if not self._policy.follow_redirects:
                    raise errors.NotLeader(
                        f"{what}: {ep.address} is not the leader "
                        f"(leader: {last.leader_addr or 'unknown'})",
                        leader_id=last.leader_id, leader_addr=last.leader_addr,
                        endpoint=ep.address)
                self._pool.forget_leader(ep.address)
                # one hop to the named leader, no waiting
                retry_now = self._pool.redirect(ep.address, last.leader_addr)
                self.stats.redirects += retry_now
            elif kind in (Kind.UNREACHABLE, Kind.DAMAGED):
                self._pool.mark_down(ep.address)
                retry_now = any(e.down_until <= time.monotonic()
                                for e in self._pool.endpoints.values())
            elif kind is Kind.TOO_STALE:
                retry_now = True  # "any" targeting moves on to the next node
            else:  # NO_LEADER, IN_DOUBT, OVERLOADED, busy
                self._pool.forget_leader(ep.address)
            if retry_now and quick < max(MAX_QUICK_RETRIES, len(self._pool.endpoints)):
                quick += 1
                continue
            quick = 0
            self.stats.backoffs += 1
            await self._backoff(backoffs, deadline - loop.time())
            backoffs += 1

    @staticmethod
    def _closed_error(what: str, outcome_unknown: bool) -> errors.ClientError:
        if outcome_unknown:
            return errors.OutcomeUnknown(
                f"{what}: outcome unknown: the client was closed while it was in flight; "
                f"it is applied at most once; read it back to see whether it happened",
                code="CANCELLED")
        return errors.ClientClosed(f"{what}: the client was closed", code="CANCELLED")

    def _final(self, what: str, last: Failure | None, outcome_unknown: bool,
               budget: float) -> errors.ClientError:
        why = f"last error: {last}" if last else "no attempt could be made"
        endpoint = last.endpoint if last else ""
        if outcome_unknown:
            return errors.OutcomeUnknown(
                f"{what}: outcome unknown after {budget:g}s ({why}); it is applied at most "
                f"once; read it back to see whether it happened", code="DEADLINE_EXCEEDED",
                endpoint=endpoint)
        code = last.code if last else ""
        if last is not None and last.kind is Kind.FATAL:
            return _fatal(what, last, True)  # only conf changes retry FATAL (busy) answers
        if last is not None and last.kind is Kind.TOO_STALE:
            return errors.TooStale(f"{what}: no node was fresh enough within {budget:g}s "
                                   f"({why}); relax max_staleness or read LINEARIZABLE",
                                   code=code, endpoint=endpoint)
        if last is not None and last.kind is Kind.OVERLOADED:
            return errors.ResourceExhausted(f"{what}: the cluster stayed overloaded for "
                                            f"{budget:g}s ({why}); slow down and retry",
                                            code=code, endpoint=endpoint)
        tried = ", ".join(self._pool.endpoints)
        return errors.Unavailable(
            f"{what}: no node could serve it within {budget:g}s (tried {tried}; {why}); "
            f"is the cluster running and does it have a leader? try `kvraft status`",
            code=code, endpoint=endpoint)

    # ------------------------------------------------------------------ writes
    async def _write(self, what: str, kind: str, req: Any, timeout: float | None) -> Any:
        """A KV write, exactly once: one session seq for all attempts."""
        session = self._sessions.acquire()
        session.seq += 1
        req.session.CopyFrom(kv_pb2.Session(client_id=session.client_id, seq=session.seq))
        retire = True
        try:
            result = await self._retry(
                what, lambda ep, t: self._kv(ep, kind, req, t), write=True, timeout=timeout)
            retire = False
            return result
        except errors.ClientError as e:
            retire = isinstance(e, errors.OutcomeUnknown)
            raise
        finally:
            self._sessions.release(session, retire=retire)

    @property
    def sessions_created(self) -> int:
        """How many write sessions (client ids) this client has used."""
        return self._sessions.created

    async def close(self) -> None:
        """Close every channel and stream; later calls raise ClientClosed."""
        self._closed = True
        if self._discovery is not None:
            self._discovery.cancel()
            await asyncio.gather(self._discovery, return_exceptions=True)
        await self._pool.close()


def _is_busy(f: Failure) -> bool:
    """FAILED_PRECONDITION other than "not leader": for a membership change this means
    another change is still pending or the leader is too new ("try again shortly")."""
    return f.code == "FAILED_PRECONDITION"


def _fatal(what: str, f: Failure, conf_change: bool) -> errors.ClientError:
    if conf_change and _is_busy(f):
        return errors.ConfChangeInProgress(f"{what}: {f.message}; try again shortly",
                                           code=f.code, endpoint=f.endpoint)
    if f.code == "FAILED_PRECONDITION":
        return errors.FailedPrecondition(f"{what}: {f.message}", code=f.code,
                                         endpoint=f.endpoint)
    return errors.ClientError(f"{what} failed at {f.endpoint}: {f.code}: {f.message}",
                              code=f.code, endpoint=f.endpoint)
