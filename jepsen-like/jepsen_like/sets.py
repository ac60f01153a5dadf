"""Set (lost-write) checker: every acknowledged element survives; nothing appears from nowhere.

Workload shape: ``add`` operations put unique elements into a named set (``key``); ``read-set``
operations return the set's elements as a list. After the faults are healed, the run does
final reads (``"final": true`` on the events). For each set:

- ``lost``: acknowledged adds (``ok``, completed before the final read began) missing from
  the final read. Any lost element makes the set invalid: an acknowledged write vanished.
- ``unexpected``: elements in any successful read that no add ever attempted (invoked
  before that read completed). Invalid: the store invented data.
- ``duplicated``: elements listed more than once by one read. Invalid for a set.
- ``recovered``: adds of unknown outcome (``info``) present in the final read: they did
  take effect, which is allowed. ``failed_present``: adds that reported ``fail`` (certainly
  not applied) yet are present — invalid, the client was told a lie.
- ``stale_reads``: non-final reads that began after an add was acknowledged yet miss it.
  Reported, not judged (the reads may be at a weaker consistency level).

The final read is the last successful read marked final, or else the last successful read.
With no successful read at all, the verdict is ``unknown``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .history import Op, by_key

Verdict = Literal["valid", "invalid", "unknown"]
SET_FUNCTIONS = ("add", "read-set")
_SAMPLE = 20  # elements listed per category in reports


@dataclass(slots=True)
class SetKeyResult:
    key: str
    verdict: Verdict
    attempted: int  # distinct elements whose add was invoked
    acknowledged: int  # adds completed ok
    failed: int  # adds completed fail
    indeterminate: int  # adds completed info (or never)
    final_read: int | None  # Op.id of the final read
    final_size: int  # elements in the final read
    lost: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)
    failed_present: list[str] = field(default_factory=list)
    stale_reads: int = 0
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        def cat(xs: list[str]) -> dict[str, Any]:
            return {"count": len(xs), "sample": sorted(xs)[:_SAMPLE]}

        return {
            "key": self.key,
            "verdict": self.verdict,
            "attempted": self.attempted,
            "acknowledged": self.acknowledged,
            "failed": self.failed,
            "indeterminate": self.indeterminate,
            "final_read": self.final_read,
            "final_size": self.final_size,
            "lost": cat(self.lost),
            "unexpected": cat(self.unexpected),
            "duplicated": cat(self.duplicated),
            "recovered": cat(self.recovered),
            "failed_present": cat(self.failed_present),
            "stale_reads": self.stale_reads,
            "reason": self.reason,
        }


@dataclass(slots=True)
class SetResult:
    verdict: Verdict
    keys: list[SetKeyResult]

    def to_json(self) -> dict[str, Any]:
        total = {name: sum(len(getattr(k, name)) for k in self.keys)
                 for name in ("lost", "unexpected", "duplicated", "recovered", "failed_present")}
        return {
            "checker": "set",
            "verdict": self.verdict,
            "acknowledged": sum(k.acknowledged for k in self.keys),
            "indeterminate": sum(k.indeterminate for k in self.keys),
            **total,
            "keys": [k.to_json() for k in self.keys],
        }


def check_set(key: str, ops: Sequence[Op]) -> SetKeyResult:
    """Judge one set's operations (add / read-set), given in invocation order."""
    adds = [op for op in ops if op.f == "add"]
    reads = [op for op in ops if op.f == "read-set" and op.outcome == "ok"]
    first_invoke: dict[str, int] = {}
    for op in adds:
        first_invoke.setdefault(str(op.arg), op.invoke_index)
    acked = [op for op in adds if op.outcome == "ok"]
    res = SetKeyResult(
        key=key,
        verdict="valid",
        attempted=len(first_invoke),
        acknowledged=len(acked),
        failed=sum(1 for op in adds if op.outcome == "fail"),
        indeterminate=sum(1 for op in adds if op.outcome == "info"),
        final_read=None,
        final_size=0,
    )
    finals = [op for op in reads if op.final] or reads
    if not finals:
        res.verdict = "unknown"
        res.reason = "no successful read of this set"
        return res
    final = max(finals, key=lambda op: op.complete_index or 0)
    final_elems = [str(x) for x in (final.result or [])]
    final_set = set(final_elems)
    res.final_read = final.id
    res.final_size = len(final_set)
    res.lost = sorted({str(op.arg) for op in acked
                       if (op.complete_index or 0) < final.invoke_index
                       and str(op.arg) not in final_set})
    res.recovered = sorted({str(op.arg) for op in adds
                            if op.outcome == "info" and str(op.arg) in final_set})
    failed_elems = {str(op.arg) for op in adds if op.outcome == "fail"}
    ok_or_info = {str(op.arg) for op in adds if op.outcome != "fail"}
    res.failed_present = sorted((failed_elems - ok_or_info) & final_set)
    unexpected: set[str] = set()
    duplicated: set[str] = set()
    for read in reads:
        elems = [str(x) for x in (read.result or [])]
        done_at = read.complete_index or 0
        unexpected.update(e for e in elems if first_invoke.get(e, done_at + 1) > done_at)
        duplicated.update(e for e, n in Counter(elems).items() if n > 1)
        if read is not final and not read.final:
            seen = set(elems)
            if any((op.complete_index or 0) < read.invoke_index and str(op.arg) not in seen
                   for op in acked):
                res.stale_reads += 1
    res.unexpected = sorted(unexpected)
    res.duplicated = sorted(duplicated)
    if res.lost or res.unexpected or res.duplicated or res.failed_present:
        res.verdict = "invalid"
    return res


def check(ops: Iterable[Op]) -> SetResult:
    """Check every set in a history (operations other than add / read-set are ignored)."""
    results = [check_set(key, group)
               for key, group in by_key(op for op in ops if op.f in SET_FUNCTIONS)]
    verdicts = {r.verdict for r in results}
    verdict: Verdict = ("invalid" if "invalid" in verdicts
                        else "unknown" if "unknown" in verdicts or not results else "valid")
    return SetResult(verdict, results)
