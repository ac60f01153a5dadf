"""Hand-written SVG plots: latency scatter and throughput lines, fault intervals shaded.

No plotting library: a ``Frame`` maps data to pixels and draws axes, ticks, shaded
intervals, points and polylines as SVG text. Times are seconds since the run started.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape

from ..history import Op
from ..nemesis.schedule import FaultInterval

OUTCOME_COLORS = {"ok": "#2e7d32", "fail": "#c62828", "info": "#f9a825"}
NEMESIS_COLORS = {"partition": "#90caf9", "kill": "#bcaaa4", "pause": "#ce93d8",
                  "corrupt": "#ffcc80", "member": "#80deea"}
FONT = "font-family='sans-serif' font-size='11'"


def nemesis_color(name: str) -> str:
    return NEMESIS_COLORS.get(name, "#b0bec5")


@dataclass(slots=True)
class Frame:
    """A plot area of width x height pixels inside margins, over [x0, x1] x [y0, y1]."""

    width: int
    height: int
    x0: float
    x1: float
    y0: float
    y1: float
    log_y: bool = False
    left: int = 60
    right: int = 20
    top: int = 30
    bottom: int = 40

    def x(self, v: float) -> float:
        span = (self.x1 - self.x0) or 1.0
        return self.left + (v - self.x0) / span * (self.width - self.left - self.right)

    def y(self, v: float) -> float:
        if self.log_y:
            v, lo, hi = math.log10(max(v, 1e-9)), math.log10(self.y0), math.log10(self.y1)
        else:
            lo, hi = self.y0, self.y1
        span = (hi - lo) or 1.0
        frac = min(1.0, max(0.0, (v - lo) / span))
        return self.height - self.bottom - frac * (self.height - self.top - self.bottom)

    def open(self, title: str) -> list[str]:
        return [
            f"<svg xmlns='http://www.w3.org/2000/svg' width='{self.width}' "
            f"height='{self.height}' viewBox='0 0 {self.width} {self.height}'>",
            f"<rect width='{self.width}' height='{self.height}' fill='white'/>",
            f"<text x='{self.left}' y='18' font-family='sans-serif' font-size='13' "
            f"font-weight='bold'>"
            f"{escape(title)}</text>",
        ]

    def shade(self, faults: Iterable[FaultInterval], end: float) -> list[str]:
        out = []
        top, bottom = self.top, self.height - self.bottom
        for f in faults:
            a = self.x(f.start / 1e9)
            b = self.x((f.stop if f.stop is not None else end * 1e9) / 1e9)
            label = escape(f"{f.nemesis} {fault_label(f)}")
            out.append(f"<rect x='{a:.1f}' y='{top}' width='{max(1.0, b - a):.1f}' "
                       f"height='{bottom - top}' fill='{nemesis_color(f.nemesis)}' "
                       f"opacity='0.35'><title>{label}</title></rect>")
        return out

    def axes(self, x_label: str, y_label: str, y_ticks: Sequence[float]) -> list[str]:
        bottom, right = self.height - self.bottom, self.width - self.right
        out = [f"<line x1='{self.left}' y1='{bottom}' x2='{right}' y2='{bottom}' "
               f"stroke='black'/>",
               f"<line x1='{self.left}' y1='{self.top}' x2='{self.left}' y2='{bottom}' "
               f"stroke='black'/>"]
        for t in nice_ticks(self.x0, self.x1, 10):
            px = self.x(t)
            out.append(f"<line x1='{px:.1f}' y1='{bottom}' x2='{px:.1f}' y2='{bottom + 4}' "
                       f"stroke='black'/><text x='{px:.1f}' y='{bottom + 15}' {FONT} "
                       f"text-anchor='middle'>{t:g}</text>")
        for t in y_ticks:
            py = self.y(t)
            out.append(f"<line x1='{self.left - 4}' y1='{py:.1f}' x2='{right}' y2='{py:.1f}' "
                       f"stroke='#ddd'/><text x='{self.left - 6}' y='{py + 4:.1f}' {FONT} "
                       f"text-anchor='end'>{t:g}</text>")
        out.append(f"<text x='{(self.left + right) / 2:.0f}' y='{self.height - 6}' {FONT} "
                   f"text-anchor='middle'>{escape(x_label)}</text>")
        out.append(f"<text x='14' y='{(self.top + bottom) / 2:.0f}' {FONT} "
                   f"text-anchor='middle' transform='rotate(-90 14 "
                   f"{(self.top + bottom) / 2:.0f})'>{escape(y_label)}</text>")
        return out


def fault_label(f: FaultInterval) -> str:
    d = f.detail
    for key in ("shape", "target"):
        if key in d:
            extra = d.get("cut") or d.get("nodes") or d.get("node") or ""
            return f"{d[key]} {extra}".strip()
    return " ".join(f"{k}={v}" for k, v in d.items() if k != "damage")[:80]


def nice_ticks(lo: float, hi: float, n: int) -> list[float]:
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [round(first + i * step, 10) for i in range(int((hi - first) / step) + 1)]


def legend(x: int, y: int, items: Sequence[tuple[str, str]]) -> list[str]:
    out = []
    for i, (label, color) in enumerate(items):
        out.append(f"<rect x='{x + i * 90}' y='{y - 9}' width='10' height='10' "
                   f"fill='{color}'/><text x='{x + 14 + i * 90}' y='{y}' {FONT}>"
                   f"{escape(label)}</text>")
    return out


def latency_svg(ops: Sequence[Op], faults: Sequence[FaultInterval], end: float,
                width: int = 1000, height: int = 360) -> str:
    """Latency (ms, log scale) of every completed operation against its invocation time."""
    done = [op for op in ops if op.return_time is not None]
    lat = [max(0.01, (op.return_time or 0) - op.call_time) / 1e6 for op in done]
    hi = max(lat, default=1.0)
    lo = min(lat, default=0.1)
    y0 = 10 ** math.floor(math.log10(lo))
    y1 = 10 ** math.ceil(math.log10(hi)) if hi > y0 else y0 * 10
    fr = Frame(width, height, 0.0, max(end, 1e-3), y0, y1, log_y=True)
    out = fr.open("Latency by operation (ms, log scale)") + fr.shade(faults, end)
    ticks = [10.0 ** k for k in range(int(math.log10(y0)), int(math.log10(y1)) + 1)]
    out += fr.axes("time since start (s)", "latency (ms)", ticks)
    for op, ms in zip(done, lat, strict=True):
        color = OUTCOME_COLORS[op.outcome]
        cx, cy = fr.x(op.call_time / 1e9), fr.y(ms)
        if op.f in ("read", "read-set"):
            out.append(f"<circle cx='{cx:.1f}' cy='{cy:.1f}' r='1.6' fill='{color}'/>")
        else:
            out.append(f"<rect x='{cx - 1.6:.1f}' y='{cy - 1.6:.1f}' width='3.2' "
                       f"height='3.2' fill='{color}'/>")
    out += legend(fr.left + 300, 18, [(k, v) for k, v in OUTCOME_COLORS.items()])
    out.append(f"<text x='{fr.left + 580}' y='18' {FONT}>circle: read, square: write</text>")
    out.append("</svg>")
    return "\n".join(out)


def throughput_svg(ops: Sequence[Op], faults: Sequence[FaultInterval], end: float,
                   width: int = 1000, height: int = 300, bucket: float = 1.0) -> str:
    """Completions per second by outcome, in ``bucket``-second bins."""
    nb = max(1, math.ceil(end / bucket))
    series = {k: [0] * nb for k in OUTCOME_COLORS}
    for op in ops:
        if op.return_time is None:
            continue
        b = min(nb - 1, int(op.return_time / 1e9 / bucket))
        series[op.outcome][b] += 1
    top = max((max(s) for s in series.values()), default=1) / bucket
    fr = Frame(width, height, 0.0, max(end, 1e-3), 0.0, max(1.0, top * 1.1))
    out = fr.open("Throughput (completions per second)") + fr.shade(faults, end)
    out += fr.axes("time since start (s)", "ops/s", nice_ticks(0.0, fr.y1, 5))
    for name, counts in series.items():
        pts = " ".join(f"{fr.x((i + 0.5) * bucket):.1f},{fr.y(c / bucket):.1f}"
                       for i, c in enumerate(counts))
        out.append(f"<polyline points='{pts}' fill='none' stroke='{OUTCOME_COLORS[name]}' "
                   f"stroke-width='1.5'/>")
    out += legend(fr.left + 300, 18, [(k, v) for k, v in OUTCOME_COLORS.items()])
    out.append("</svg>")
    return "\n".join(out)
