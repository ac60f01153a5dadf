"""Single-step membership changes: validate a ConfChange and compute the next ConfState.

One change at a time changes the voter set by at most one node, so any majority of the
old voters and any majority of the new voters intersect. The leader proposes a change
only after the previous one is applied and after it has committed an entry of its own
term (the fix to the single-server-change bug); every node switches configuration when
it applies the entry (``RawNode.apply_conf_change``). Joint consensus would go through
``ConfState.voters_outgoing``; it is not proposed by this module yet.
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
    (a committed entry must apply the same way everywhere, so it is never an error)."""
    try:
        check_conf_change(cs, cc)
    except InvalidConfChange:
        return cs
    node = frozenset({cc.node_id})
    if cc.type is ConfChangeType.ADD_VOTER:
        return ConfState(voters=cs.voters | node, learners=cs.learners - node)
    if cc.type is ConfChangeType.ADD_LEARNER:
        return ConfState(voters=cs.voters - node, learners=cs.learners | node)
    return ConfState(voters=cs.voters - node, learners=cs.learners - node)
