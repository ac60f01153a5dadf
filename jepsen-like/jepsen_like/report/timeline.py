"""The HTML timeline: every operation as a bar in its worker's lane, faults shaded.

One self-contained file (inline CSS, SVG and a few lines of JS; no CDN). Lanes are
workers (process mod concurrency), so a worker's successive processes share a lane.
Bars span invocation to completion, coloured by outcome; unknown outcomes are faded
(an invocation never completed runs to the end). Hovering a bar shows its details;
clicking pins them in the panel. Fault intervals are shaded with their nemesis and
details. On an anomaly, the failing window is banded in red and its operations
outlined; a link jumps there.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from html import escape
from typing import Any

from ..history import Op
from ..nemesis.schedule import FaultInterval
from .svg import OUTCOME_COLORS, fault_label, nemesis_color, nice_ticks

LANE = 14  # px per lane
TOP = 34  # px above the first lane (fault labels)
LEFT = 50  # px for lane labels

_CSS = """
body{font-family:sans-serif;margin:16px;color:#222}
h1{font-size:20px} h2{font-size:16px;margin-top:24px}
table{border-collapse:collapse;font-size:13px} td,th{border:1px solid #ccc;padding:3px 8px}
.valid{color:#2e7d32;font-weight:bold} .invalid{color:#c62828;font-weight:bold}
.unknown{color:#f9a825;font-weight:bold}
#scroll{overflow-x:auto;border:1px solid #ccc} #panel{position:sticky;top:0;background:#fff;
border:1px solid #999;padding:6px;font:12px monospace;min-height:2.5em;white-space:pre-wrap;
z-index:1}
.op:hover{stroke:#000;stroke-width:1.5} .why{background:#fff3f3;border-left:4px solid #c62828;
padding:6px 10px;font-size:13px}
"""

_JS = """
const panel=document.getElementById('panel');
document.querySelectorAll('.op,.fault').forEach(e=>{
 e.addEventListener('mouseenter',()=>{if(!panel.dataset.pinned)panel.textContent=e.dataset.d});
 e.addEventListener('click',()=>{panel.textContent=e.dataset.d;panel.dataset.pinned='1'});
});
panel.addEventListener('click',()=>{delete panel.dataset.pinned});
"""


def _op_text(op: Op) -> str:
    t0 = op.call_time / 1e9
    t1 = "-" if op.return_time is None else f"{op.return_time / 1e9:.3f}s"
    lines = [op.describe(), f"op {op.id}, process {op.process}, {t0:.3f}s .. {t1}"]
    if op.error:
        lines.append(f"error: {op.error}")
    extra = {k: v for k, v in op.extra.items()}
    if extra:
        lines.append(json.dumps(extra))
    return "\n".join(lines)


def timeline_svg(ops: Sequence[Op], faults: Sequence[FaultInterval], end: float,
                 concurrency: int, window_ops: set[int], window: tuple[float, float] | None,
                 px_per_s: float) -> str:
    lanes = max(1, concurrency)
    width = int(LEFT + end * px_per_s + 20)
    height = TOP + lanes * LANE + 24

    def x(t_ns: float) -> float:
        return LEFT + t_ns / 1e9 * px_per_s

    out = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}'>"]
    for f in faults:
        a, b = x(f.start), x(f.stop if f.stop is not None else end * 1e9)
        d = escape(f"{f.nemesis}: {fault_label(f)}\n{json.dumps(f.detail, default=str)}")
        out.append(f"<g class='fault' data-d='{d}'><rect x='{a:.1f}' y='{TOP - 14}' "
                   f"width='{max(1.0, b - a):.1f}' height='{lanes * LANE + 14}' "
                   f"fill='{nemesis_color(f.nemesis)}' opacity='0.4'/>"
                   f"<text x='{a + 2:.1f}' y='{TOP - 4}' font-size='10'>"
                   f"{escape(f.nemesis)} {escape(fault_label(f)[:40])}</text></g>")
    if window is not None:
        a, b = x(window[0]), x(window[1])
        out.append(f"<rect id='anomaly' x='{a - 2:.1f}' y='{TOP - 16}' "
                   f"width='{b - a + 4:.1f}' height='{lanes * LANE + 18}' fill='#ff1744' "
                   f"opacity='0.15' stroke='#c62828' stroke-width='2'/>")
    for lane in range(lanes):
        y = TOP + lane * LANE
        out.append(f"<text x='4' y='{y + 10}' font-size='10'>w{lane}</text>"
                   f"<line x1='{LEFT}' y1='{y + LANE}' x2='{width}' y2='{y + LANE}' "
                   f"stroke='#eee'/>")
    for op in ops:
        y = TOP + (op.process % lanes) * LANE + 2
        a = x(op.call_time)
        b = x(op.return_time if op.return_time is not None else end * 1e9)
        faded = " opacity='0.45'" if op.outcome == "info" else ""
        stroke = " stroke='#b71c1c' stroke-width='2'" if op.id in window_ops else ""
        out.append(f"<rect class='op' x='{a:.1f}' y='{y}' width='{max(1.5, b - a):.1f}' "
                   f"height='{LANE - 4}' fill='{OUTCOME_COLORS[op.outcome]}'{faded}{stroke} "
                   f"data-d='{escape(_op_text(op))}'/>")
    base = TOP + lanes * LANE
    for t in nice_ticks(0.0, end, max(2, int(end * px_per_s / 80))):
        out.append(f"<text x='{x(t * 1e9):.1f}' y='{base + 14}' font-size='10' "
                   f"text-anchor='middle'>{t:g}s</text>")
    out.append("</svg>")
    return "\n".join(out)


def _verdict_rows(summary: dict[str, Any]) -> str:
    rows = []
    for name, res in summary.get("checkers", {}).items():
        v = res.get("verdict", "unknown")
        rows.append(f"<tr><td>{escape(name)}</td><td class='{escape(v)}'>{escape(v)}</td>"
                    f"<td>{escape(_checker_detail(res))}</td></tr>")
    return "".join(rows)


def _checker_detail(res: dict[str, Any]) -> str:
    if res.get("checker") == "linearizable-register":
        kb = res.get("keys_by_verdict", {})
        return (f"{res.get('keys', 0)} keys: {kb.get('valid', 0)} valid, "
                f"{kb.get('invalid', 0)} invalid, {kb.get('unknown', 0)} unknown")
    if res.get("checker") == "set":
        return (f"acknowledged {res.get('acknowledged')}, lost {res.get('lost')}, "
                f"unexpected {res.get('unexpected')}, recovered {res.get('recovered')}")
    return ""


def timeline_html(title: str, ops: Sequence[Op], faults: Sequence[FaultInterval], end: float,
                  concurrency: int, summary: dict[str, Any], anomalies: Sequence[dict[str, Any]],
                  plots: Sequence[str], px_per_s: float | None = None) -> str:
    """The whole page. ``anomalies``: the register checker's anomaly JSON objects."""
    if px_per_s is None:
        px_per_s = max(20.0, min(400.0, 4000.0 / max(end, 1e-3)))
    window_ops: set[int] = set()
    window: tuple[float, float] | None = None
    notes = []
    if anomalies:
        window_ops = set(anomalies[0]["window_ops"])
        by_id = {op.id: op for op in ops}
        members = [by_id[i] for i in window_ops if i in by_id]
        if members:
            window = (min(op.call_time for op in members),
                      max((op.return_time or op.call_time) for op in members))
        for an in anomalies:
            notes.append(f"<p class='why'>{escape(str(an['why']))}</p>")
    counts = summary.get("counts", {})
    stats = (f"{summary.get('ops', 0)} operations in {summary.get('seconds', 0):.1f}s "
             f"({summary.get('ops_per_second', 0):.1f} ops/s): ok {counts.get('ok', 0)}, "
             f"fail {counts.get('fail', 0)}, info {counts.get('info', 0)}")
    jump = "<p><a href='#anomaly'>jump to the failing window</a></p>" if window else ""
    legend = " ".join(f"<span style='background:{c};color:#fff;padding:1px 6px'>{k}</span>"
                      for k, c in OUTCOME_COLORS.items())
    return "\n".join([
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1><p>{escape(stats)}</p>",
        f"<table><tr><th>checker</th><th>verdict</th><th>detail</th></tr>"
        f"{_verdict_rows(summary)}</table>",
        *notes, jump,
        f"<h2>Timeline</h2><p>{legend} — lanes are workers; hover for details, click to pin."
        f"</p><div id='panel'>hover an operation or a fault</div>",
        "<div id='scroll'>",
        timeline_svg(ops, faults, end, concurrency, window_ops, window, px_per_s),
        "</div><h2>Latency and throughput</h2>",
        *plots,
        f"<script>{_JS}</script></body></html>",
    ])
