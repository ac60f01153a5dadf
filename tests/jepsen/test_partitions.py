"""Partition shapes cut the links their names promise."""

from __future__ import annotations

import random

import pytest
from jepsen_like.nemesis.partitions import SHAPES, describe, reachable

NODES = [1, 2, 3, 4, 5]


def majority(n: int) -> int:
    return n // 2 + 1


def test_isolate_cuts_the_leader_off_both_ways() -> None:
    cut = SHAPES["isolate"](NODES, random.Random(0), 3)
    r = reachable(NODES, cut)
    assert r[3] == {3}
    assert all(r[n] == {1, 2, 4, 5} for n in NODES if n != 3)


@pytest.mark.parametrize("seed", range(5))
def test_halves_leave_one_majority(seed: int) -> None:
    cut = SHAPES["halves"](NODES, random.Random(seed), None)
    sizes = sorted({len(v) for v in reachable(NODES, cut).values()})
    assert sizes == [2, 3]


@pytest.mark.parametrize("n", [3, 4, 5, 7])
def test_ring_every_node_hears_a_distinct_majority(n: int) -> None:
    nodes = list(range(1, n + 1))
    cut = SHAPES["ring"](nodes, random.Random(n), None)
    hears = {d: {s for s in nodes if (s, d) not in cut} for d in nodes}
    assert all(len(v) == majority(n) for v in hears.values())
    assert len({frozenset(v) for v in hears.values()}) == n


def test_bridge_node_talks_to_both_sides() -> None:
    cut = SHAPES["bridge"](NODES, random.Random(1), None)
    r = reachable(NODES, cut)
    (bridge,) = [n for n in NODES if r[n] == set(NODES)]
    assert sorted(len(r[n]) for n in NODES if n != bridge) == [3, 3, 3, 3]


def test_one_way_shapes_cut_one_direction() -> None:
    out = SHAPES["oneway-out"](NODES, random.Random(0), 2)
    assert out == {(2, n) for n in NODES if n != 2}
    inn = SHAPES["oneway-in"](NODES, random.Random(0), 2)
    assert inn == {(n, 2) for n in NODES if n != 2}
    assert describe(out) == "2->1 2->3 2->4 2->5"
    assert describe(frozenset({(1, 2), (2, 1)})) == "1<->2"
