"""Histories: what clients asked for and what they were told, in real-time order.

A history is a sequence of events, one JSON object per line (the format is documented
in ``jepsen-like/README.md``). Every operation is an ``invoke`` event followed, later, by
exactly one completion from the same process:

- ``ok``: the operation took effect (a read's ``value`` is what it returned);
- ``fail``: the operation certainly did not take effect (a cas whose compare failed, a
  write the cluster refused before proposing it, a read that got no answer);
- ``info``: the outcome is unknown (timeout, connection lost after sending): the
  operation may take effect at any moment after its invocation, or never.

A process performs one operation at a time. A process whose operation ended in ``info``
never invokes again: its worker continues as a new process (Jepsen's rule), because the
old operation may still be in flight. An ``invoke`` with no completion at the end of a
history is treated as ``info``.

Event order in the file is the real-time order observed by the one harness process
that appended them: event ``i`` happened before event ``j`` iff ``i < j``. ``time`` is a
monotonic timestamp in nanoseconds since the run started, used for reports only.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO

EventType = Literal["invoke", "ok", "fail", "info"]
EVENT_TYPES: tuple[EventType, ...] = ("invoke", "ok", "fail", "info")
# Operation names. Register workload: read / write / cas. Set workload: add / read-set.
FUNCTIONS = ("read", "write", "cas", "add", "read-set")

Value = Any  # JSON value: str | None | [old, new] for cas | list[str] for read-set


class HistoryError(ValueError):
    """A history breaks the format's rules (the message names the event index)."""


@dataclass(frozen=True, slots=True)
class Event:
    """One line of a history."""

    index: int  # position in the history; 0-based, strictly increasing, gap-free
    type: EventType  # invoke / ok / fail / info
    process: int  # logical client process (>= 0); one outstanding invoke at a time
    f: str  # operation name, one of FUNCTIONS
    key: str  # register key, or the set's name for add / read-set
    value: Value  # invoke: argument (write value, [old, new]); ok read: result
    time: int  # ns since the run started, monotonic, non-decreasing along the history
    error: str | None = None  # fail / info: why (exception text)
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. consistency, node, final

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "index": self.index,
            "type": self.type,
            "process": self.process,
            "f": self.f,
            "key": self.key,
            "value": self.value,
            "time": self.time,
        }
        if self.error is not None:
            d["error"] = self.error
        d.update(self.extra)
        return d

    @staticmethod
    def from_json(d: dict[str, Any]) -> Event:
        known = {"index", "type", "process", "f", "key", "value", "time", "error"}
        try:
            etype = d["type"]
            if etype not in EVENT_TYPES:
                raise HistoryError(f"event {d.get('index')}: unknown type {etype!r}")
            return Event(
                index=int(d["index"]),
                type=etype,
                process=int(d["process"]),
                f=str(d["f"]),
                key=str(d["key"]),
                value=d.get("value"),
                time=int(d["time"]),
                error=d.get("error"),
                extra={k: v for k, v in d.items() if k not in known},
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, HistoryError):
                raise
            raise HistoryError(f"malformed event {d!r}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class Op:
    """An invocation paired with its completion: the unit checkers reason about."""

    id: int  # position among the history's operations, in invocation order
    process: int
    f: str
    key: str
    arg: Value  # the invocation's value
    result: Value  # the completion's value (a read's result); None when pending
    outcome: Literal["ok", "fail", "info"]  # "info" also for an invoke never completed
    invoke_index: int  # index of the invoke event
    complete_index: int | None  # index of the completion event; None if never completed
    call_time: int  # ns
    return_time: int | None  # ns; None if never completed
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # merged invoke+completion extras

    @property
    def final(self) -> bool:
        return bool(self.extra.get("final"))

    def describe(self) -> str:
        """A short human reading, e.g. ``cas r7 '3'->'9' ok (p4, #120..#131)``."""
        if self.f == "cas" and isinstance(self.arg, list) and len(self.arg) == 2:
            what = f"cas {self.key} {self.arg[0]!r}->{self.arg[1]!r}"
        elif self.f in ("read", "read-set"):
            what = f"{self.f} {self.key}"
            if self.outcome == "ok":
                shown = self.result
                if isinstance(shown, list) and len(shown) > 8:
                    shown = f"[{len(shown)} elements]"
                what += f" -> {shown!r}"
        else:
            what = f"{self.f} {self.key} {self.arg!r}"
        end = "?" if self.complete_index is None else str(self.complete_index)
        return f"{what} {self.outcome} (p{self.process}, #{self.invoke_index}..#{end})"


class HistoryRecorder:
    """Appends events in real-time order, in memory and (optionally) to a JSON-lines file.

    Safe to call from several threads; within asyncio one loop thread calls it. The
    recorder assigns ``index`` and ``time`` itself so the order in the file is the order
    in which calls happened.
    """

    def __init__(self, path: Path | None = None, *, clock: Any = time.monotonic_ns) -> None:
        self._lock = threading.Lock()  # guards _events, _file and the index sequence
        self._events: list[Event] = []  # every event so far, index == position
        self._clock = clock  # monotonic ns source
        self._t0: int = clock()  # run start; event times are relative to it
        self._file: TextIO | None = path.open("w", encoding="utf-8") if path else None

    @property
    def start_ns(self) -> int:
        return self._t0

    def now(self) -> int:
        """ns since the run started, on the recorder's clock."""
        return int(self._clock() - self._t0)

    def append(
        self,
        type: EventType,
        process: int,
        f: str,
        key: str,
        value: Value = None,
        *,
        error: str | None = None,
        **extra: Any,
    ) -> Event:
        with self._lock:
            ev = Event(len(self._events), type, process, f, key, value, self.now(), error, extra)
            self._events.append(ev)
            if self._file is not None:
                self._file.write(json.dumps(ev.to_json(), separators=(",", ":")) + "\n")
            return ev

    def events(self) -> list[Event]:
        with self._lock:
            return list(self._events)

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def write_history(events: Iterable[Event], path: Path) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for ev in events:
            fh.write(json.dumps(ev.to_json(), separators=(",", ":")) + "\n")


def read_history(path: Path) -> list[Event]:
    """Load a JSON-lines history. Raises HistoryError on a malformed line."""
    events: list[Event] = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
            except json.JSONDecodeError as exc:
                raise HistoryError(f"{path}:{lineno}: not JSON: {exc}") from exc
            events.append(Event.from_json(d))
    return events


def pair(events: Iterable[Event]) -> list[Op]:
    """Pair invocations with completions; check the format's rules.

    Raises HistoryError if: indices are not 0..n-1 in order, times decrease, a process
    invokes while it has an operation outstanding, a completion has no invocation or
    names another f/key, or a process invokes again after an ``info`` completion.
    Invocations never completed become ``info`` operations with ``return_time`` None.
    """
    ops: list[Op | None] = []
    open_: dict[int, tuple[int, Event]] = {}  # process -> (op id, its invoke)
    crashed: set[int] = set()  # processes whose last op ended in info
    last_time = 0
    for pos, ev in enumerate(events):
        if ev.index != pos:
            raise HistoryError(f"event {ev.index}: expected index {pos}")
        if ev.time < last_time:
            raise HistoryError(f"event {ev.index}: time goes backwards")
        last_time = ev.time
        if ev.type == "invoke":
            if ev.process in open_:
                raise HistoryError(
                    f"event {ev.index}: process {ev.process} invokes while "
                    f"event {open_[ev.process][1].index} is outstanding"
                )
            if ev.process in crashed:
                raise HistoryError(
                    f"event {ev.index}: process {ev.process} invokes after an info "
                    f"completion; it must continue as a new process"
                )
            open_[ev.process] = (len(ops), ev)
            ops.append(None)
            continue
        if ev.process not in open_:
            raise HistoryError(f"event {ev.index}: {ev.type} without an invocation")
        op_id, inv = open_.pop(ev.process)
        if inv.f != ev.f or inv.key != ev.key:
            raise HistoryError(
                f"event {ev.index}: completes {ev.f} {ev.key} but event {inv.index} "
                f"invoked {inv.f} {inv.key}"
            )
        if ev.type == "info":
            crashed.add(ev.process)
        ops[op_id] = _op(op_id, inv, ev)
    for op_id, inv in open_.values():
        ops[op_id] = _op(op_id, inv, None)
    return [op for op in ops if op is not None]


def _op(op_id: int, inv: Event, done: Event | None) -> Op:
    """The operation of invocation ``inv`` completed by ``done`` (None: never completed)."""
    outcome: Literal["ok", "fail", "info"] = "info"
    if done is not None and done.type != "invoke":
        outcome = done.type
    reads = inv.f in ("read", "read-set")
    return Op(
        id=op_id,
        process=inv.process,
        f=inv.f,
        key=inv.key,
        arg=inv.value,
        result=(done.value if reads else inv.value) if done is not None else None,
        outcome=outcome,
        invoke_index=inv.index,
        complete_index=done.index if done is not None else None,
        call_time=inv.time,
        return_time=done.time if done is not None else None,
        error=done.error if done is not None else "never completed",
        extra={**inv.extra, **(done.extra if done is not None else {})},
    )


def by_key(ops: Iterable[Op]) -> Iterator[tuple[str, list[Op]]]:
    """Group operations by key, each group in invocation order; keys in first-seen order."""
    groups: dict[str, list[Op]] = {}
    for op in ops:
        groups.setdefault(op.key, []).append(op)
    yield from groups.items()


def counts(ops: Iterable[Op]) -> dict[str, int]:
    """ok / fail / info totals (pending invocations count as info)."""
    c = {"ok": 0, "fail": 0, "info": 0}
    for op in ops:
        c[op.outcome] += 1
    return c
