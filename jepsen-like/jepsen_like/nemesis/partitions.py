"""Partition shapes: each returns the set of directed links to cut.

``(a, b)`` in a cut means traffic from ``a`` to ``b`` is dropped. Shapes (Jepsen's names):

- ``isolate``: one node (the leader if known, else random) cut off both ways;
- ``halves``: the nodes shuffled and split into two halves (minority | majority);
- ``ring``: majorities ring — every node sees a majority (itself and its neighbours on
  a shuffled ring) and no two nodes see the same one; with an even number of neighbours
  to pick the view leans one way round the ring, so some links are cut one way only;
- ``bridge``: two halves that cannot talk, plus one node that talks to both;
- ``oneway-out``: the leader (else random) can hear everyone but nobody hears it;
- ``oneway-in``: the leader (else random) is heard by everyone but hears nobody.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence

from .base import Cut, Link

Shape = Callable[[Sequence[int], random.Random, "int | None"], Cut]


def between(a: Iterable[int], b: Iterable[int]) -> Cut:
    """Both directions between every node of a and every node of b."""
    a, b = list(a), list(b)
    return frozenset((x, y) for x in a for y in b if x != y) | frozenset(
        (y, x) for x in a for y in b if x != y)


def one_way(src: Iterable[int], dst: Iterable[int]) -> Cut:
    src, dst = list(src), list(dst)
    return frozenset((x, y) for x in src for y in dst if x != y)


def _victim(nodes: Sequence[int], rng: random.Random, leader: int | None) -> int:
    if leader is not None and leader in nodes:
        return leader
    return rng.choice(list(nodes))


def isolate(nodes: Sequence[int], rng: random.Random, leader: int | None) -> Cut:
    v = _victim(nodes, rng, leader)
    return between([v], [n for n in nodes if n != v])


def halves(nodes: Sequence[int], rng: random.Random, leader: int | None) -> Cut:
    shuffled = list(nodes)
    rng.shuffle(shuffled)
    k = len(shuffled) // 2
    return between(shuffled[:k], shuffled[k:])


def ring(nodes: Sequence[int], rng: random.Random, leader: int | None) -> Cut:
    order = list(nodes)
    rng.shuffle(order)
    n = len(order)
    others = n // 2  # a majority is itself plus n // 2 others
    back = others // 2
    links: set[Link] = set()
    for k, node in enumerate(order):
        view = {order[(k + o) % n] for o in range(-back, others - back + 1)}
        links.update((src, node) for src in order if src not in view)  # node drops inbound
    return frozenset(links)


def bridge(nodes: Sequence[int], rng: random.Random, leader: int | None) -> Cut:
    shuffled = list(nodes)
    rng.shuffle(shuffled)
    k = len(shuffled) // 2
    return between(shuffled[:k], shuffled[k + 1:])


def oneway_out(nodes: Sequence[int], rng: random.Random, leader: int | None) -> Cut:
    v = _victim(nodes, rng, leader)
    return one_way([v], nodes)


def oneway_in(nodes: Sequence[int], rng: random.Random, leader: int | None) -> Cut:
    v = _victim(nodes, rng, leader)
    return one_way(nodes, [v])


SHAPES: dict[str, Shape] = {
    "isolate": isolate,
    "halves": halves,
    "ring": ring,
    "bridge": bridge,
    "oneway-out": oneway_out,
    "oneway-in": oneway_in,
}


def reachable(nodes: Sequence[int], cut: Cut) -> dict[int, set[int]]:
    """node -> the nodes it can exchange traffic with both ways (itself included)."""
    return {a: {b for b in nodes if a == b or ((a, b) not in cut and (b, a) not in cut)}
            for a in nodes}


def describe(cut: Cut) -> str:
    """``1->2 1->3 ...`` with symmetric pairs shown as ``1<->2``."""
    parts = []
    for a, b in sorted(cut):
        if (b, a) in cut:
            if a < b:
                parts.append(f"{a}<->{b}")
        else:
            parts.append(f"{a}->{b}")
    return " ".join(parts) or "nothing"
