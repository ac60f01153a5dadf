"""Linearizability checker for the register model (read / write / cas), key by key.

Theory of operation
-------------------
Linearizability is compositional (Herlihy & Wing; "P-compositionality" in Lowe's
terms): a history of independent registers is linearizable iff the sub-history of each
key is. So the history is partitioned by key and every partition is searched alone,
under its own time budget. A partition's verdict is ``valid``, ``invalid`` or
``unknown`` (budget exhausted); the history is invalid if any key is, else unknown if
any key is, else valid.

Each partition is searched with Wing & Gong's algorithm as improved by Lowe ("Testing
for linearizability", 2016) — the same search Porcupine and Knossos' ``linear`` use.
Call and return events sit in one doubly-linked list in history order. The search walks
the list: at a call it tries to linearize that operation now (apply it to the model; a
read must see the register's value, a cas its expected value), lifting the call and its
return out of the list; at a return whose operation is not yet linearized it backtracks.
Lowe's memoization prunes every configuration (set of linearized operations as a bitset,
register value) already explored, which turns the exponential search into one that is
linear in practice for histories of low concurrency.

Operations are prepared before the search:

- ``fail`` operations did not happen: dropped. Reads whose outcome is unknown (``info``
  or never completed) constrain nothing: dropped.
- ``info`` writes and cas may take effect at any time after their invocation or never:
  they get a call event but no return event, so the search may linearize them but need
  not (Porcupine's "return at infinity" without forcing them in).
- An optional write or cas whose new value no read or cas ever observes is dropped: if a
  linearization uses it, the next operation that depends on the value must be a write
  (nothing expects that value), so deleting it from the order leaves a valid order. This
  keeps the many timed-out writes of a faulty run from blowing up the search.
- For the same reason, all values that nothing observes are one value to the model
  (``UNOBSERVED``): configurations that differ only in which unobserved write came last
  are merged.
- A read that sees the register's current value is linearized at once and no
  alternative to it is tried: it changes nothing, so any order placing it later could
  place it there instead.

When a partition is invalid, the checker also finds a short window that proves it:

1. the end: the first return event ``h`` such that the history cut at ``h`` (later
   operations dropped, operations still in flight at ``h`` made optional) is not
   linearizable — linearizability is prefix-closed, so this is a binary search, seeded
   with the furthest return the search got stuck at;
2. the start: the latest quiescent point ``c`` (no required operation in flight; optional
   ones invoked earlier stay optional) such that the operations between ``c`` and ``h``
   have no linearization from *any* initial register value. Every linearization of the
   whole history orders all operations completed before ``c`` before all operations
   invoked after it, so such a window is a self-contained proof. Windows shrink
   monotonically, so this is a binary search too.

The window's explanation names the operation whose completion cannot be accommodated
and the register values every partial order reaching it left behind.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from .history import Op, by_key

Verdict = Literal["valid", "invalid", "unknown"]
REGISTER_FUNCTIONS = ("read", "write", "cas")

_READ, _WRITE, _CAS = 0, 1, 2
_KINDS = {"read": _READ, "write": _WRITE, "cas": _CAS}


class _Wildcard:
    """The register value at the start of a window: anything (matches the first read)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<any>"


WILDCARD: Any = _Wildcard()


class _Unobserved:
    """The register value after a write whose value no read or cas ever expects.

    All such values are indistinguishable to every operation of the instance, so they
    are merged into this one value: configurations that differ only in which
    unobserved write came last are the same configuration.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return "<a value no read observed>"


UNOBSERVED: Any = _Unobserved()
_CHECK_EVERY = 2048  # search iterations between two looks at the clock


@dataclass(frozen=True, slots=True)
class Anomaly:
    """Why a key's sub-history is not linearizable, with the window that proves it."""

    key: str
    window_ops: list[int]  # Op.id of every operation in the window, in invocation order
    first_event: int  # the window spans history events [first_event, last_event]
    last_event: int
    stuck_op: int  # Op.id of the operation whose completion cannot be accommodated
    states: list[Any]  # register values the partial orders reaching stuck_op left
    why: str  # one paragraph for humans

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "window_ops": self.window_ops,
            "first_event": self.first_event,
            "last_event": self.last_event,
            "stuck_op": self.stuck_op,
            "states": [s if isinstance(s, str) or s is None else repr(s)
                       for s in self.states],
            "why": self.why,
        }


@dataclass(slots=True)
class KeyResult:
    key: str
    verdict: Verdict
    ops: int  # operations searched (after preparation)
    dropped: int  # operations dropped by preparation (fail, unknown reads, unobserved)
    configs: int  # configurations explored by the main search
    seconds: float  # wall time spent on this key, window search included
    anomaly: Anomaly | None = None
    reason: str | None = None  # why unknown

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "verdict": self.verdict,
            "ops": self.ops,
            "dropped": self.dropped,
            "configs": self.configs,
            "seconds": round(self.seconds, 4),
            "anomaly": self.anomaly.to_json() if self.anomaly else None,
            "reason": self.reason,
        }


@dataclass(slots=True)
class LinearizabilityResult:
    verdict: Verdict
    keys: list[KeyResult] = field(default_factory=list)

    @property
    def anomalies(self) -> list[Anomaly]:
        return [k.anomaly for k in self.keys if k.anomaly is not None]

    def to_json(self) -> dict[str, Any]:
        by_verdict = {v: sum(1 for k in self.keys if k.verdict == v) for v in
                      ("valid", "invalid", "unknown")}
        return {
            "checker": "linearizable-register",
            "verdict": self.verdict,
            "keys": len(self.keys),
            "keys_by_verdict": by_verdict,
            "ops_searched": sum(k.ops for k in self.keys),
            "configs": sum(k.configs for k in self.keys),
            "anomalies": [a.to_json() for a in self.anomalies],
            "unknown_keys": [{"key": k.key, "reason": k.reason}
                             for k in self.keys if k.verdict == "unknown"],
        }


# --------------------------------------------------------------------------- preparation


@dataclass(frozen=True, slots=True)
class _Item:
    """One operation as the search sees it."""

    op: Op
    kind: int  # _READ / _WRITE / _CAS
    a: Any  # read: expected value; write: new value; cas: expected old value
    b: Any  # cas: new value; otherwise None
    call: int  # history index of the invocation
    ret: int | None  # history index of the completion; None = optional (may never happen)


def _items(ops: Sequence[Op], start: int, horizon: int,
           merge: bool = True) -> tuple[list[_Item], int]:
    """The search instance for events [start, horizon] (see the module docstring).

    Returns the items in invocation order and the number of operations dropped.
    ``merge=False`` keeps unobserved values apart (slower; for explanations).
    """
    raw: list[_Item] = []
    dropped = 0
    for op in ops:
        if op.outcome == "fail":
            dropped += 1
            continue
        if op.invoke_index > horizon:
            continue
        ret = op.complete_index if op.outcome == "ok" else None
        if ret is not None and ret > horizon:
            ret = None  # still in flight at the horizon: optional
        if ret is not None and ret < start:
            continue  # completed before the window
        kind = _KINDS[op.f]
        if kind == _READ:
            if ret is None:
                dropped += 1
                continue
            raw.append(_Item(op, kind, op.result, None, op.invoke_index, ret))
        elif kind == _WRITE:
            raw.append(_Item(op, kind, op.arg, None, op.invoke_index, ret))
        else:
            old, new = op.arg
            raw.append(_Item(op, kind, old, new, op.invoke_index, ret))
    observed = {it.a for it in raw if it.kind != _WRITE}
    items: list[_Item] = []
    for it in raw:
        if it.kind == _READ:
            items.append(it)
            continue
        new = it.b if it.kind == _CAS else it.a
        if new in observed or (not merge and it.ret is not None):
            items.append(it)
        elif it.ret is None:
            dropped += 1
        elif it.kind == _WRITE:
            items.append(replace(it, a=UNOBSERVED))
        else:
            items.append(replace(it, b=UNOBSERVED))
    return items, dropped


def _quiescent_cuts(items: Sequence[_Item]) -> list[int]:
    """Event positions p (invocations of required ops) with no required op in flight."""
    cuts: list[int] = []
    required = sorted((it.call, it.ret) for it in items if it.ret is not None)
    busy_until = -1  # latest completion among required ops invoked so far
    for call, ret in required:
        if call > busy_until:
            cuts.append(call)
        busy_until = max(busy_until, ret)
    return cuts


# --------------------------------------------------------------------------- the search


@dataclass(slots=True)
class _Outcome:
    verdict: Verdict
    configs: int
    max_stuck: int  # history index of the furthest return the search got stuck at; -1
    stuck_states: list[Any]  # states seen when stuck at `collect_at`


def _search(items: Sequence[_Item], init: Any, deadline: float,
            collect_at: int = -1) -> _Outcome:
    """Lowe's memoized Wing & Gong search; see the module docstring."""
    # Entries: 2 per required item (call, return), 1 per optional item (call only).
    events: list[tuple[int, int, int]] = []  # (history index, 0 call / 1 return, item)
    for i, it in enumerate(items):
        events.append((it.call, 0, i))
        if it.ret is not None:
            events.append((it.ret, 1, i))
    events.sort()
    n = len(events)
    head, tail = n, n + 1
    nxt = [i + 1 for i in range(n)] + [0, -1]  # head -> 0 -> 1 ... -> n-1 -> tail
    prv = [i - 1 for i in range(n)] + [-1, n - 1]
    if n:
        nxt[n - 1] = tail
        prv[0] = head
    else:
        nxt[head] = tail
        prv[tail] = head
    is_call = [e[1] == 0 for e in events]
    pos = [e[0] for e in events]
    item_of = [e[2] for e in events]
    match = [-1] * n  # call entry -> its return entry (-1 if optional)
    call_entry = [0] * len(items)
    for e, (_, k, i) in enumerate(events):
        if k == 0:
            call_entry[i] = e
        else:
            match[call_entry[i]] = e
    kinds = [items[item_of[e]].kind for e in range(n)]
    arg_a = [items[item_of[e]].a for e in range(n)]
    arg_b = [items[item_of[e]].b for e in range(n)]
    bits = [1 << item_of[e] for e in range(n)]

    cache: set[tuple[int, Any]] = set()
    stack: list[tuple[int, Any, bool]] = []  # (call entry, state before it, forced)
    lin = 0
    state = init
    max_stuck = -1
    stuck_states: list[Any] = []
    seen_stuck: set[Any] = set()
    steps = 0
    e = nxt[head]
    while True:
        if e == tail:
            return _Outcome("valid", len(cache), max_stuck, stuck_states)
        steps += 1
        if steps % _CHECK_EVERY == 0 and time.monotonic() > deadline:
            return _Outcome("unknown", len(cache), max_stuck, stuck_states)
        if is_call[e]:
            kind = kinds[e]
            forced = False
            if kind == _READ:
                # A read that sees the current value is linearized now, for good: it does
                # not change the value, so any order that places it later can place it
                # here instead. Alternatives to it are never tried (see backtracking).
                forced = state == arg_a[e]
                ok = forced or state is WILDCARD
                new_state = arg_a[e]
            elif kind == _WRITE:
                ok = True
                new_state = arg_a[e]
            else:
                ok = state is WILDCARD or state == arg_a[e]
                new_state = arg_b[e]
            if ok:
                new_lin = lin | bits[e]
                key = (new_lin, new_state)
                if key not in cache:
                    cache.add(key)
                    stack.append((e, state, forced))
                    state = new_state
                    lin = new_lin
                    # lift the call entry and its return entry out of the list
                    p, q = prv[e], nxt[e]
                    nxt[p] = q
                    prv[q] = p
                    r = match[e]
                    if r >= 0:
                        p, q = prv[r], nxt[r]
                        nxt[p] = q
                        prv[q] = p
                    e = nxt[head]
                    continue
            e = nxt[e]
            continue
        # a return entry whose operation is not linearized: dead end
        if pos[e] > max_stuck:
            max_stuck = pos[e]
        if pos[e] == collect_at and state not in seen_stuck and len(stuck_states) < 16:
            seen_stuck.add(state)
            stuck_states.append(state)
        forced = True
        while forced:  # undo the last choice; a forced read is no choice: undo past it
            if not stack:
                return _Outcome("invalid", len(cache), max_stuck, stuck_states)
            e, state, forced = stack.pop()
            lin &= ~bits[e]
            r = match[e]
            if r >= 0:
                prv[nxt[r]] = r
                nxt[prv[r]] = r
            prv[nxt[e]] = e
            nxt[prv[e]] = e
        e = nxt[e]


# --------------------------------------------------------------------------- public API


def check_key(key: str, ops: Sequence[Op], *, budget: float = 10.0) -> KeyResult:
    """Check one key's register operations (read/write/cas only), in invocation order.

    ``budget`` bounds the wall time (seconds) of the main search; finding the window of
    an invalid key may take up to the same again. Never raises on a well-formed history.
    """
    t0 = time.monotonic()
    last = max((op.complete_index or op.invoke_index for op in ops), default=0)
    items, dropped = _items(ops, 0, last)
    out = _search(items, None, t0 + budget)
    result = KeyResult(key, out.verdict, len(items), dropped, out.configs, 0.0)
    if out.verdict == "unknown":
        result.reason = (f"time budget {budget:g}s exhausted after {out.configs} "
                         f"configurations ({len(items)} operations)")
    elif out.verdict == "invalid":
        result.anomaly = _find_window(key, ops, out.max_stuck, time.monotonic() + budget)
    result.seconds = time.monotonic() - t0
    return result


def check(ops: Iterable[Op], *, budget: float = 10.0) -> LinearizabilityResult:
    """Check every key of a history's register operations (others are ignored)."""
    results = [check_key(key, group, budget=budget)
               for key, group in by_key(op for op in ops if op.f in REGISTER_FUNCTIONS)]
    verdicts = {r.verdict for r in results}
    verdict: Verdict = ("invalid" if "invalid" in verdicts
                        else "unknown" if "unknown" in verdicts else "valid")
    return LinearizabilityResult(verdict, results)


# --------------------------------------------------------------------------- windows


def _invalid(ops: Sequence[Op], start: int, horizon: int, deadline: float) -> bool | None:
    """Is the window [start, horizon] non-linearizable? None if the budget ran out."""
    items, _ = _items(ops, start, horizon)
    out = _search(items, None if start == 0 else WILDCARD, deadline)
    return None if out.verdict == "unknown" else out.verdict == "invalid"


def _find_window(key: str, ops: Sequence[Op], hint: int, deadline: float) -> Anomaly:
    returns = sorted({op.complete_index for op in ops
                      if op.outcome == "ok" and op.complete_index is not None})
    last = returns[-1] if returns else 0
    # 1. the end: the first return h whose prefix is not linearizable (monotone in h)
    horizon = last
    if hint in returns:
        i = returns.index(hint)
        if (_invalid(ops, 0, hint, deadline) is True
                and (i == 0 or _invalid(ops, 0, returns[i - 1], deadline) is False)):
            horizon = hint
        else:
            horizon = _bisect(returns, lambda h: _invalid(ops, 0, h, deadline), last,
                              last=False)
    # 2. the start: the latest quiescent cut whose window is still not linearizable
    items, _ = _items(ops, 0, horizon)
    first_call = min(it.call for it in items)
    cuts = [c for c in _quiescent_cuts(items) if first_call < c <= horizon]
    start = _bisect(cuts, lambda c: _invalid(ops, c, horizon, deadline), 0, last=True)
    window, _ = _items(ops, start, horizon, merge=False)
    init = None if start == 0 else WILDCARD
    detail = _search(window, init, max(deadline, time.monotonic() + 5.0), collect_at=horizon)
    stuck = next((it for it in window if it.ret == horizon), window[-1])
    return Anomaly(
        key=key,
        window_ops=[it.op.id for it in window],
        first_event=min(it.call for it in window),
        last_event=horizon,
        stuck_op=stuck.op.id,
        states=detail.stuck_states,
        why=_explain(key, stuck, window, detail.stuck_states, start == 0, ops),
    )


def _bisect(xs: list[int], bad: Any, default: int, *, last: bool) -> int:
    """Binary search of a monotone predicate ``bad`` (True / False / None = undecided).

    ``last=False``: the smallest x with bad(x) True, bad being False then True along xs;
    ``last=True``: the largest x with bad(x) True, bad being True then False. When the
    budget runs out (None) or nothing qualifies, the best x proven so far, else default.
    """
    lo, hi, found = 0, len(xs) - 1, default
    while lo <= hi:
        mid = (lo + hi) // 2
        verdict = bad(xs[mid])
        if verdict is None:
            return found
        if verdict:
            found = xs[mid]
        if verdict == last:
            lo = mid + 1
        else:
            hi = mid - 1
    return found


def _show_states(states: Sequence[Any]) -> str:
    if not states:
        return "no value at all"
    shown = ", ".join("any value" if s is WILDCARD else "a value no read observed"
                      if s is UNOBSERVED else repr(s) for s in states[:8])
    return shown + (", ..." if len(states) > 8 else "")


def _explain(key: str, stuck: _Item, window: Sequence[_Item], states: Sequence[Any],
             from_start: bool, all_ops: Sequence[Op]) -> str:
    origin = ("from the start of the history (the register starts empty, None)"
              if from_start else "after a quiescent point (from any register value)")
    head = (f"key {key!r}: the {len(window)} operations in events "
            f"#{min(it.call for it in window)}..#{stuck.ret} {origin} have no "
            f"linearization. ")
    op = stuck.op
    if stuck.kind == _READ:
        written = {o.arg if o.f == "write" else o.arg[1] for o in all_ops
                   if o.f in ("write", "cas") and o.outcome != "fail"}
        tail = (f"{op.describe()} returned {stuck.a!r}, but every order of the earlier "
                f"operations consistent with real time leaves the register holding "
                f"{_show_states(states)}.")
        if stuck.a is not None and stuck.a not in written:
            tail += f" No operation ever tried to write {stuck.a!r}."
        return head + tail
    if stuck.kind == _CAS:
        return head + (f"{op.describe()} succeeded, so the register held {stuck.a!r} "
                       f"when it took effect, but every order consistent with real time "
                       f"leaves it holding {_show_states(states)} there.")
    return head + (f"{op.describe()} completed, but no point between its invocation and "
                   f"its completion lets it take effect without contradicting a read or "
                   f"cas in the window; orders that reach it leave the register holding "
                   f"{_show_states(states)}.")
