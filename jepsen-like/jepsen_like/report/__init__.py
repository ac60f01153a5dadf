"""Run reports: summary JSON, HTML timeline, latency and throughput SVG plots.

``write_report`` fills a run folder (next to the history and nemesis log the run wrote):

- ``summary.json``: operations, ok/fail/info counts, ops/s, latency percentiles, faults,
  and the verdict of every checker with its details;
- ``timeline.html``: one self-contained page (see ``timeline``);
- ``latency.svg``, ``throughput.svg``: the plots, also embedded in the page.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..history import Op, counts
from ..nemesis.schedule import FaultInterval
from .svg import latency_svg, throughput_svg
from .timeline import timeline_html


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    if not sorted_values:
        return None
    k = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[k]


def summarize(ops: Sequence[Op], faults: Sequence[FaultInterval], seconds: float,
              checkers: dict[str, dict[str, Any]], meta: dict[str, Any]) -> dict[str, Any]:
    """The summary.json content. ``verdict`` is invalid if any checker says so, else
    unknown if any does, else valid."""
    lat = sorted(((op.return_time or 0) - op.call_time) / 1e6 for op in ops
                 if op.outcome == "ok" and op.return_time is not None)
    verdicts = {res.get("verdict", "unknown") for res in checkers.values()}
    verdict = ("invalid" if "invalid" in verdicts
               else "unknown" if "unknown" in verdicts or not checkers else "valid")
    return {
        **meta,
        "verdict": verdict,
        "ops": len(ops),
        "seconds": round(seconds, 3),
        # invocations per second of the workload phase when known, else over the span
        "ops_per_second": meta.get("workload_ops_per_second",
                                   round(len(ops) / seconds, 2) if seconds > 0 else 0.0),
        "counts": counts(ops),
        "by_function": dict(Counter(f"{op.f}:{op.outcome}" for op in ops)),
        "latency_ms": {name: (round(v, 3) if v is not None else None) for name, v in
                       (("p50", percentile(lat, 0.5)), ("p95", percentile(lat, 0.95)),
                        ("p99", percentile(lat, 0.99)), ("max", lat[-1] if lat else None))},
        "faults": Counter(f.nemesis for f in faults),
        "checkers": checkers,
    }


def write_report(run_dir: Path, ops: Sequence[Op], faults: Sequence[FaultInterval],
                 seconds: float, concurrency: int, checkers: dict[str, dict[str, Any]],
                 anomalies: Sequence[dict[str, Any]], meta: dict[str, Any]) -> dict[str, Any]:
    """Write summary.json, timeline.html, latency.svg and throughput.svg; return the
    summary. ``seconds`` is the history's span (the plots' time axis)."""
    summary = summarize(ops, faults, seconds, checkers, meta)
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    lat = latency_svg(ops, faults, seconds)
    thr = throughput_svg(ops, faults, seconds)
    (run_dir / "latency.svg").write_text(lat)
    (run_dir / "throughput.svg").write_text(thr)
    title = f"jepsen-like run {meta.get('run', '')}: {meta.get('workload', '')} " \
            f"under {meta.get('nemesis', 'no faults')} — {summary['verdict']}"
    (run_dir / "timeline.html").write_text(
        timeline_html(title, ops, faults, seconds, concurrency, summary, anomalies,
                      [thr, lat]))
    return summary
