"""Reports are well-formed and escape what they show."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from jepsen_like.nemesis.schedule import FaultInterval
from jepsen_like.report import summarize
from jepsen_like.report.svg import latency_svg, throughput_svg
from jepsen_like.report.timeline import timeline_html

from .builders import ops

NASTY = "a'b\"c<d>&e" * 5


def history() -> tuple[list, list[FaultInterval]]:  # type: ignore[type-arg]
    h = ops(
        ("invoke", 0, "write", "k<&>", NASTY), ("ok", 0, "write", "k<&>", NASTY),
        ("invoke", 1, "read", "k<&>", None), ("ok", 1, "read", "k<&>", NASTY),
        ("invoke", 2, "write", "k<&>", "x"), ("info", 2, "write", "k<&>", "x"),
        ("invoke", 3, "read", "k<&>", None),
    )
    faults = [FaultInterval("partition", 500, 3500, {"shape": NASTY, "cut": "1<->2"}),
              FaultInterval("kill", 4000, None, {"target": "one", "nodes": [2]})]
    return h, faults


def test_svg_plots_parse_as_xml() -> None:
    h, faults = history()
    for svg in (latency_svg(h, faults, 1e-5), throughput_svg(h, faults, 1e-5)):
        root = ET.fromstring(svg)
        assert root.tag.endswith("svg")


def test_timeline_page_embeds_well_formed_svg_with_the_anomaly_window() -> None:
    h, faults = history()
    summary = summarize(h, faults, 1e-5, {"linearizable": {"verdict": "invalid"}}, {})
    anomaly = {"window_ops": [0, 1], "why": NASTY}
    html = timeline_html("t<&>", h, faults, 1e-5, 4, summary, [anomaly], [])
    svgs = re.findall(r"<svg.*?</svg>", html, re.S)
    assert svgs
    for svg in svgs:
        ET.fromstring(svg)
    timeline = ET.fromstring(svgs[0])
    bars = [e for e in timeline.iter() if e.get("class") == "op"]
    assert len(bars) == len(h)
    outlined = [b for b in bars if b.get("stroke") == "#b71c1c"]
    assert len(outlined) == 2
    assert any("c<d>&e" in (b.get("data-d") or "") for b in bars), "details survive escaping"
    assert "id='anomaly'" in html
    assert "c<d>&e" not in html, "raw text never reaches the markup"
