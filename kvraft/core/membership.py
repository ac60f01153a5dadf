"""Single-step membership changes: validate a ConfChange and compute the next ConfState.

One change at a time changes the voter set by at most one node, so any majority of the
old voters and any majority of the new voters intersect. The leader proposes a change
only after the previous one is applied and after it has committed an entry of its own
term (the fix to the single-server-change bug); every node switches configuration when
it applies the entry (``RawNode.apply_conf_change``). Joint consensus would go through
``ConfState.voters_outgoing``; it is not proposed by this module yet.

Node ids are never reused (as in etcd): REMOVE_NODE records the id in
``ConfState.removed`` and adding a removed id is refused. A node that came back under
its old id with an empty data dir would replay the log from index 1 and hold old
memberships on the way (voters {1}, say); were it node 1, cut off from the leader then,
it could elect itself alone. A removed machine rejoins under a new id.
"""

from __future__ import annotations

from kvraft.core.types import ConfChange, ConfChangeType, ConfState
from kvraft.errors import InvalidConfChange


def check_conf_change(cs: ConfState, cc: ConfChange) -> None:
    """Raise InvalidConfChange if ``cc`` makes no sense against ``cs``."""
    node = cc.node_id
    if node <= 0:
        raise InvalidConfChange(f"node id must be a positive integer, got {node}")
    if cs.voters_outgoing:
        raise InvalidConfChange("the configuration is joint; leave it before another change")
    if node in cs.removed and cc.type is not ConfChangeType.REMOVE_NODE:
        raise InvalidConfChange(
            f"node {node} was removed from the cluster; node ids are never reused"
            " — add it under a new id"
        )
    if cc.type is ConfChangeType.ADD_VOTER:
        if node in cs.voters:
            raise InvalidConfChange(f"node {node} is already a voter")
    elif cc.type is ConfChangeType.ADD_LEARNER:
        if node in cs.learners:
            raise InvalidConfChange(f"node {node} is already a learner")
        if cs.voters == {node}:
            raise InvalidConfChange(f"node {node} is the only voter; add another voter first")
    elif cc.type is ConfChangeType.REMOVE_NODE:
        if node not in cs.all_nodes():
            raise InvalidConfChange(f"node {node} is not a member")
        if cs.voters == {node}:
            raise InvalidConfChange(f"node {node} is the only voter; it cannot be removed")
    else:  # pragma: no cover - enum is closed
        raise InvalidConfChange(f"unknown conf change type {cc.type!r}")


def next_conf_state(cs: ConfState, cc: ConfChange) -> ConfState:
    """The membership after applying ``cc``; ``cs`` unchanged if ``cc`` is invalid
    (a committed entry must apply the same way everywhere, so it is never an error; an
    entry that re-adds a removed id, say, changes nothing)."""
    try:
        check_conf_change(cs, cc)
    except InvalidConfChange:
        return cs
    node = frozenset({cc.node_id})
    if cc.type is ConfChangeType.ADD_VOTER:
        return ConfState(cs.voters | node, cs.learners - node, removed=cs.removed)
    if cc.type is ConfChangeType.ADD_LEARNER:
        return ConfState(cs.voters - node, cs.learners | node, removed=cs.removed)
    return ConfState(cs.voters - node, cs.learners - node, removed=cs.removed | node)
