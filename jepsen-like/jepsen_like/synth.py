"""Synthetic register histories that are linearizable by construction, and mutations.

Used to validate the checker (property tests) and to benchmark it. A history is built
the way a real system produces one: every operation gets a real-time interval and a
linearization point; operations are applied to a sequential register model in the order
of those points, which fixes what reads return and whether cas succeed; then some
operations lose their outcome (``info``: the write may still take effect later, or never)
or fail (certainly no effect). The result is linearizable because the linearization
points are a witness.

Mutations break a history on purpose. :func:`stale_read` and :func:`lost_write` only
mutate where the result is *provably* not linearizable (see their docstrings), so tests
can assert on them; :func:`random_result` makes arbitrary edits that are usually, but not
always, invalid.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Any

from .history import Event, EventType, Op, pair


@dataclass(slots=True)
class _Planned:
    process: int
    f: str
    key: str
    arg: Any
    call: float  # invocation time
    ret: float  # completion time
    point: float | None  # when it takes effect; None = never
    outcome: EventType  # ok / fail / info
    result: Any = None


def random_history(rng: random.Random, *, ops: int = 200, workers: int = 5, keys: int = 1,
                   p_info: float = 0.05, p_fail: float = 0.05,
                   mean_latency: float = 1.0, mean_gap: float = 0.5) -> list[Event]:
    """A linearizable register history of about ``ops`` operations (see module docstring).

    ``workers`` clients run concurrently; a worker whose op ends in info continues as a
    new process (process ids ``w, w + workers, w + 2*workers, ...``). Written values are
    unique strings.
    """
    clock = [rng.uniform(0, mean_gap) for _ in range(workers)]
    process = list(range(workers))
    planned: list[_Planned] = []
    next_value = 0
    for _ in range(ops):
        w = min(range(workers), key=lambda i: clock[i])
        call = clock[w] + rng.expovariate(1 / mean_gap)
        ret = call + rng.expovariate(1 / mean_latency) + 1e-6
        clock[w] = ret
        f = rng.choices(("read", "write", "cas"), (4, 4, 2))[0]
        key = f"k{rng.randrange(keys)}"
        arg: Any = None
        if f == "write":
            arg = str(next_value)
            next_value += 1
        elif f == "cas":
            arg = [None, str(next_value)]  # old decided when applied, see below
            next_value += 1
        roll = rng.random()
        outcome: EventType = "info" if roll < p_info else "fail" if roll < p_info + p_fail \
            else "ok"
        point: float | None = rng.uniform(call, ret)
        if outcome == "info" and f != "read":
            # an unknown outcome may take effect long after the client gave up, or never
            point = rng.uniform(call, ret + 5 * mean_latency) if rng.random() < 0.5 else None
        elif outcome == "fail" and f != "cas":
            point = None  # refused before it could take effect
        planned.append(_Planned(process[w], f, key, arg, call, ret, point, outcome))
        if outcome == "info":
            process[w] += workers
    # apply in linearization-point order to the sequential model
    state: dict[str, Any] = {}
    written: dict[str, list[str]] = {}
    for op in sorted((p for p in planned if p.point is not None),
                     key=lambda p: p.point or 0.0):
        cur = state.get(op.key)
        if op.f == "read":
            op.result = cur
        elif op.f == "write":
            state[op.key] = op.arg
            written.setdefault(op.key, []).append(op.arg)
        else:
            old = cur if rng.random() < 0.6 else rng.choice([None, *written.get(op.key, [])])
            op.arg = [old, op.arg[1]]
            if old == cur and op.outcome != "fail":
                state[op.key] = op.arg[1]
                written.setdefault(op.key, []).append(op.arg[1])
            elif op.outcome == "ok":
                op.outcome = "fail"  # compare failed: certainly no effect
    for op in planned:
        if op.f == "cas" and op.point is None:
            op.arg = [rng.choice([None, *written.get(op.key, [])]), op.arg[1]]
    return _events(planned)


def _events(planned: list[_Planned]) -> list[Event]:
    marks: list[tuple[float, int, int]] = []  # (time, 0 invoke / 1 completion, op)
    for i, op in enumerate(planned):
        marks.append((op.call, 0, i))
        marks.append((op.ret, 1, i))
    marks.sort()
    events: list[Event] = []
    for t, kind, i in marks:
        op = planned[i]
        etype: EventType = "invoke" if kind == 0 else op.outcome
        value = op.arg
        if op.f == "read":
            value = op.result if etype == "ok" else None
        events.append(Event(len(events), etype, op.process, op.f, op.key, value,
                            int(t * 1_000_000)))
    return events


# --------------------------------------------------------------------------- mutations


def _set_result(events: list[Event], op: Op, value: Any) -> list[Event]:
    assert op.complete_index is not None
    out = list(events)
    out[op.complete_index] = replace(events[op.complete_index], value=value)
    return out


def _effects(ops: list[Op]) -> list[Op]:
    """Operations that may change the register: writes and cas that did not fail."""
    return [o for o in ops if o.f in ("write", "cas") and o.outcome != "fail"]


def _new_value(op: Op) -> Any:
    return op.arg[1] if op.f == "cas" else op.arg


def stale_read(events: list[Event], rng: random.Random) -> list[Event] | None:
    """Make an ok read return a value that was provably overwritten before it began.

    Picks writes ``w1 -> w2 -> read`` in real time (each completes ok before the next is
    invoked, all on one key). With unique values only ``w1`` ever writes its value, and it
    precedes ``w2``, which precedes the read; so the read cannot see ``w1``'s value.
    Returns None if the history has no such triple.
    """
    ops = pair(events)
    candidates: list[tuple[Op, Op]] = []
    for read in ops:
        if read.f != "read" or read.outcome != "ok":
            continue
        before = [o for o in _effects(ops) if o.key == read.key and o.outcome == "ok"
                  and o.complete_index is not None and o.complete_index < read.invoke_index]
        for w1 in before:
            assert w1.complete_index is not None
            if any(w2.invoke_index > w1.complete_index and _new_value(w2) != _new_value(w1)
                   for w2 in before):
                candidates.append((read, w1))
    if not candidates:
        return None
    read, w1 = rng.choice(candidates)
    return _set_result(events, read, _new_value(w1))


def lost_write(events: list[Event], rng: random.Random) -> list[Event] | None:
    """Make an ok read miss a write that provably was the register's last before it.

    Picks an ok write ``w`` and an ok read that begins after ``w`` completed such that
    every other effect on the key (write/cas not failed, including unknown outcomes)
    either completed ok before ``w`` was invoked or was invoked after the read completed.
    Then the read must return ``w``'s value; it is changed to a value overwritten by ``w``
    (one written before ``w`` began, or None). Returns None if there is no such pair.
    """
    ops = pair(events)
    candidates: list[tuple[Op, Op]] = []
    for w in ops:
        if w.f != "write" or w.outcome != "ok" or w.complete_index is None:
            continue
        for read in ops:
            if (read.f != "read" or read.outcome != "ok" or read.key != w.key
                    or read.invoke_index < w.complete_index):
                continue
            assert read.complete_index is not None
            others = [o for o in _effects(ops) if o.key == w.key and o is not w]
            if all((o.outcome == "ok" and o.complete_index is not None
                    and o.complete_index < w.invoke_index)
                   or o.invoke_index > read.complete_index for o in others):
                candidates.append((w, read))
    if not candidates:
        return None
    w, read = rng.choice(candidates)
    older = [_new_value(o) for o in _effects(ops) if o.key == w.key
             and o.complete_index is not None and o.complete_index < w.invoke_index]
    return _set_result(events, read, rng.choice([None, *older]))


def random_result(events: list[Event], rng: random.Random) -> list[Event] | None:
    """Change one ok read's result to another value written on the same key (or None)."""
    ops = pair(events)
    reads = [o for o in ops if o.f == "read" and o.outcome == "ok"]
    if not reads:
        return None
    read = rng.choice(reads)
    values = [None, *(_new_value(o) for o in _effects(ops) if o.key == read.key)]
    others = [v for v in values if v != read.result]
    if not others:
        return None
    return _set_result(events, read, rng.choice(others))
