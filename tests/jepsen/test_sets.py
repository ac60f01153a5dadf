"""The set (lost-write) checker on hand-made histories."""

from __future__ import annotations

from jepsen_like.sets import check

from .builders import ops

FINAL = {"final": True}


def _adds(*elems_outcomes: tuple[str, str]) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    for p, (elem, outcome) in enumerate(elems_outcomes):
        rows += [("invoke", p, "add", "s", elem), (outcome, p, "add", "s", elem)]
    return rows


def test_every_acknowledged_element_present_is_valid() -> None:
    h = ops(*_adds(("a", "ok"), ("b", "ok"), ("c", "info"), ("d", "fail")),
            ("invoke", 9, "read-set", "s", None, FINAL),
            ("ok", 9, "read-set", "s", ["a", "b", "c"], FINAL))
    r = check(h)
    assert r.verdict == "valid"
    k = r.keys[0]
    assert (k.acknowledged, k.indeterminate, k.failed) == (2, 1, 1)
    assert k.recovered == ["c"] and not k.lost and not k.unexpected


def test_lost_acknowledged_element_is_invalid() -> None:
    h = ops(*_adds(("a", "ok"), ("b", "ok")),
            ("invoke", 9, "read-set", "s", None, FINAL),
            ("ok", 9, "read-set", "s", ["a"], FINAL))
    r = check(h)
    assert r.verdict == "invalid"
    assert r.keys[0].lost == ["b"]
    assert r.to_json()["lost"] == 1


def test_element_never_attempted_is_unexpected() -> None:
    h = ops(*_adds(("a", "ok")),
            ("invoke", 9, "read-set", "s", None, FINAL),
            ("ok", 9, "read-set", "s", ["a", "zz"], FINAL))
    r = check(h)
    assert r.verdict == "invalid"
    assert r.keys[0].unexpected == ["zz"]


def test_element_read_before_its_add_was_invoked_is_unexpected() -> None:
    h = ops(("invoke", 9, "read-set", "s", None), ("ok", 9, "read-set", "s", ["a"]),
            *_adds(("a", "ok")),
            ("invoke", 8, "read-set", "s", None, FINAL),
            ("ok", 8, "read-set", "s", ["a"], FINAL))
    assert check(h).keys[0].unexpected == ["a"]


def test_duplicates_and_failed_but_present_are_invalid() -> None:
    h = ops(*_adds(("a", "ok"), ("b", "fail")),
            ("invoke", 9, "read-set", "s", None, FINAL),
            ("ok", 9, "read-set", "s", ["a", "a", "b"], FINAL))
    k = check(h).keys[0]
    assert k.verdict == "invalid"
    assert k.duplicated == ["a"] and k.failed_present == ["b"]


def test_no_successful_read_is_unknown() -> None:
    h = ops(*_adds(("a", "ok")),
            ("invoke", 9, "read-set", "s", None, FINAL),
            ("fail", 9, "read-set", "s", None, FINAL))
    assert check(h).verdict == "unknown"


def test_stale_intermediate_reads_are_counted_not_judged() -> None:
    h = ops(*_adds(("a", "ok")),
            ("invoke", 8, "read-set", "s", None), ("ok", 8, "read-set", "s", []),
            ("invoke", 9, "read-set", "s", None, FINAL),
            ("ok", 9, "read-set", "s", ["a"], FINAL))
    r = check(h)
    assert r.verdict == "valid"
    assert r.keys[0].stale_reads == 1
