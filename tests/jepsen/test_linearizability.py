"""The register linearizability checker on hand-made histories with known verdicts."""

from __future__ import annotations

from jepsen_like.linearizability import check

from .builders import ops


def test_empty_history_is_valid() -> None:
    assert check([]).verdict == "valid"


def test_sequential_history_is_valid() -> None:
    h = ops(
        ("invoke", 0, "read", "x", None), ("ok", 0, "read", "x", None),
        ("invoke", 0, "write", "x", "1"), ("ok", 0, "write", "x", "1"),
        ("invoke", 1, "cas", "x", ["1", "2"]), ("ok", 1, "cas", "x", ["1", "2"]),
        ("invoke", 1, "read", "x", None), ("ok", 1, "read", "x", "2"),
    )
    assert check(h).verdict == "valid"


def test_read_concurrent_with_write_may_see_either_value() -> None:
    for seen in (None, "1"):
        h = ops(
            ("invoke", 0, "write", "x", "1"),
            ("invoke", 1, "read", "x", None),
            ("ok", 1, "read", "x", seen),
            ("ok", 0, "write", "x", "1"),
        )
        assert check(h).verdict == "valid", seen


def test_stale_read_is_invalid_and_window_names_it() -> None:
    h = ops(
        ("invoke", 0, "write", "x", "1"), ("ok", 0, "write", "x", "1"),
        ("invoke", 1, "write", "x", "2"), ("ok", 1, "write", "x", "2"),
        ("invoke", 2, "read", "x", None), ("ok", 2, "read", "x", "1"),
    )
    r = check(h)
    assert r.verdict == "invalid"
    (a,) = r.anomalies
    assert a.key == "x"
    assert a.stuck_op == 2
    # the shortest proof: write 2, then a read of 1 (from any starting value)
    assert a.window_ops == [1, 2]
    assert (a.first_event, a.last_event) == (2, 5)
    assert a.states == ["2"]
    assert "returned '1'" in a.why and "'2'" in a.why


def test_lost_write_is_invalid() -> None:
    h = ops(
        ("invoke", 0, "write", "x", "1"), ("ok", 0, "write", "x", "1"),
        ("invoke", 1, "read", "x", None), ("ok", 1, "read", "x", None),
    )
    r = check(h)
    assert r.verdict == "invalid"
    assert r.anomalies[0].states == ["1"]


def test_duplicated_write_is_invalid() -> None:
    # write 1 applied again after write 2 (e.g. a retried proposal applied twice)
    h = ops(
        ("invoke", 0, "write", "x", "1"), ("ok", 0, "write", "x", "1"),
        ("invoke", 0, "read", "x", None), ("ok", 0, "read", "x", "1"),
        ("invoke", 1, "write", "x", "2"), ("ok", 1, "write", "x", "2"),
        ("invoke", 1, "read", "x", None), ("ok", 1, "read", "x", "2"),
        ("invoke", 2, "read", "x", None), ("ok", 2, "read", "x", "1"),
    )
    r = check(h)
    assert r.verdict == "invalid"
    assert r.anomalies[0].stuck_op == 4


def test_read_of_never_written_value_says_so() -> None:
    h = ops(("invoke", 0, "read", "x", None), ("ok", 0, "read", "x", "42"))
    r = check(h)
    assert r.verdict == "invalid"
    assert "No operation ever tried to write '42'" in r.anomalies[0].why


def test_indeterminate_write_that_happened_is_valid() -> None:
    h = ops(
        ("invoke", 0, "write", "x", "1"), ("info", 0, "write", "x", "1"),
        ("invoke", 1, "read", "x", None), ("ok", 1, "read", "x", "1"),
    )
    assert check(h).verdict == "valid"


def test_indeterminate_write_that_did_not_happen_is_valid() -> None:
    h = ops(
        ("invoke", 0, "write", "x", "1"), ("info", 0, "write", "x", "1"),
        ("invoke", 1, "read", "x", None), ("ok", 1, "read", "x", None),
    )
    assert check(h).verdict == "valid"


def test_indeterminate_write_may_take_effect_after_its_info() -> None:
    # the info completes, a read still sees the old value, a later read sees the write
    h = ops(
        ("invoke", 0, "write", "x", "1"), ("ok", 0, "write", "x", "1"),
        ("invoke", 1, "write", "x", "2"), ("info", 1, "write", "x", "2"),
        ("invoke", 2, "read", "x", None), ("ok", 2, "read", "x", "1"),
        ("invoke", 2, "read", "x", None), ("ok", 2, "read", "x", "2"),
    )
    assert check(h).verdict == "valid"


def test_indeterminate_write_cannot_take_effect_twice() -> None:
    h = ops(
        ("invoke", 0, "write", "x", "1"), ("info", 0, "write", "x", "1"),
        ("invoke", 1, "read", "x", None), ("ok", 1, "read", "x", "1"),
        ("invoke", 2, "write", "x", "2"), ("ok", 2, "write", "x", "2"),
        ("invoke", 1, "read", "x", None), ("ok", 1, "read", "x", "1"),
    )
    assert check(h).verdict == "invalid"


def test_indeterminate_write_cannot_take_effect_before_its_invocation() -> None:
    h = ops(
        ("invoke", 1, "read", "x", None), ("ok", 1, "read", "x", "1"),
        ("invoke", 0, "write", "x", "1"), ("info", 0, "write", "x", "1"),
    )
    assert check(h).verdict == "invalid"


def test_failed_write_did_not_happen() -> None:
    h = ops(
        ("invoke", 0, "write", "x", "1"), ("fail", 0, "write", "x", "1"),
        ("invoke", 1, "read", "x", None), ("ok", 1, "read", "x", "1"),
    )
    assert check(h).verdict == "invalid"


def test_cas_semantics() -> None:
    good = ops(
        ("invoke", 0, "write", "x", "1"), ("ok", 0, "write", "x", "1"),
        ("invoke", 0, "cas", "x", ["1", "2"]), ("ok", 0, "cas", "x", ["1", "2"]),
        ("invoke", 1, "cas", "x", ["1", "3"]), ("fail", 1, "cas", "x", ["1", "3"]),
        ("invoke", 1, "read", "x", None), ("ok", 1, "read", "x", "2"),
    )
    assert check(good).verdict == "valid"
    # two cas from the same expected value cannot both succeed
    bad = ops(
        ("invoke", 0, "write", "x", "1"), ("ok", 0, "write", "x", "1"),
        ("invoke", 0, "cas", "x", ["1", "2"]), ("ok", 0, "cas", "x", ["1", "2"]),
        ("invoke", 1, "cas", "x", ["1", "3"]), ("ok", 1, "cas", "x", ["1", "3"]),
    )
    r = check(bad)
    assert r.verdict == "invalid"
    assert "expected '1'" in r.anomalies[0].why or "held '1'" in r.anomalies[0].why


def test_indeterminate_cas_that_happened() -> None:
    h = ops(
        ("invoke", 0, "write", "x", "1"), ("ok", 0, "write", "x", "1"),
        ("invoke", 1, "cas", "x", ["1", "2"]), ("info", 1, "cas", "x", ["1", "2"]),
        ("invoke", 2, "read", "x", None), ("ok", 2, "read", "x", "2"),
    )
    assert check(h).verdict == "valid"


def test_keys_are_checked_independently() -> None:
    h = ops(
        ("invoke", 0, "write", "x", "1"), ("ok", 0, "write", "x", "1"),
        ("invoke", 1, "write", "y", "2"), ("ok", 1, "write", "y", "2"),
        ("invoke", 0, "read", "y", None), ("ok", 0, "read", "y", "2"),
        ("invoke", 1, "read", "x", None), ("ok", 1, "read", "x", "2"),
    )
    r = check(h)
    assert r.verdict == "invalid"
    assert [k.key for k in r.keys if k.verdict == "invalid"] == ["x"]
    assert [k.verdict for k in r.keys if k.key == "y"] == ["valid"]


def test_window_excludes_operations_before_a_quiescent_point() -> None:
    prefix = []
    for i in range(20):
        prefix += [("invoke", 0, "write", "x", f"v{i}"), ("ok", 0, "write", "x", f"v{i}"),
                   ("invoke", 1, "read", "x", None), ("ok", 1, "read", "x", f"v{i}")]
    h = ops(
        *prefix,
        ("invoke", 0, "write", "x", "a"), ("ok", 0, "write", "x", "a"),
        ("invoke", 1, "read", "x", None), ("ok", 1, "read", "x", "v3"),
    )
    r = check(h)
    assert r.verdict == "invalid"
    a = r.anomalies[0]
    assert len(a.window_ops) == 2
    assert a.first_event == 80


def test_budget_exhaustion_is_unknown_not_a_verdict() -> None:
    # many concurrent unobserved-but-required writes and a contradiction at the end force
    # an exhaustive search that a zero budget cannot finish
    rows: list[tuple[object, ...]] = []
    n = 14
    rows += [("invoke", p, "write", "x", str(p)) for p in range(n)]
    rows += [("ok", p, "write", "x", str(p)) for p in range(n)]
    rows += [("invoke", 99, "read", "x", None), ("ok", 99, "read", "x", "nope")]
    r = check(ops(*rows), budget=0.0)
    assert r.verdict == "unknown"
    assert "budget" in (r.keys[0].reason or "")
