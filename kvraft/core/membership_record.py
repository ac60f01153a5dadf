"""Keeping the membership learnable from the log: the *membership record*.

A node that joins later starts with an empty membership and learns it the way it learns
everything else: from a snapshot (its ``conf_state``), or by applying the log from index
1, where it starts from the empty membership and applies every CONF_CHANGE entry. For it
to end up where the members are, a log must hold, before any other conf change, entries
that add the members the cluster started with: the record. For members these entries
change nothing (adding a voter that already is one is a no-op, see ``next_conf_state``).

Two ways to get it:

- The server bootstraps every initial member's log with the same committed ADD_VOTER
  entries at term 1 (``kvraft.server.recovery``): no election can overwrite them.
- A cluster bootstrapped with the membership alone (an empty log) gets it from its
  leaders. A record appended by one leader can be overwritten before it commits, so
  *every* new leader checks its own log (``missing_record``) and, if replaying it would not
  teach the membership, appends the missing changes right after its no-op, as its pending
  conf change (so no other conf change is proposed before it is applied).

Why the check may stop at the first proposal (a NORMAL entry with data): a leader appends
the record, if needed, before it accepts any proposal, so any proposal in a log follows a
prefix that teaches the membership; from there on replay and members apply the same
changes to the same membership. A compacted log never needs one: a node that lacks its
prefix receives the snapshot, which carries the membership.
"""

from __future__ import annotations

from kvraft.core.log import RaftLog
from kvraft.core.membership import next_conf_state
from kvraft.core.types import ConfChange, ConfChangeType, ConfState, EntryType, decode_conf_change

_SCAN_BYTES = 1 << 20
"""Bytes read from the log per batch while scanning it."""


def missing_record(log: RaftLog, applied_conf: ConfState) -> tuple[list[ConfChange], bool]:
    """What a new leader must append so that replaying its log teaches the membership.

    ``applied_conf`` is the membership as of ``log.applied`` (no conf change between
    ``log.applied`` and ``log.committed`` is unapplied: a node campaigns only then).
    Returns ``(changes, settled)``: ``changes`` is empty if the log already teaches it;
    ``settled`` is True if that can no longer change (the log is compacted, or a committed
    proposal shows the record before it), so later elections need not scan again.
    """
    if log.first_index() > 1:
        return [], True
    replayed = ConfState()  # what a node replaying from index 1 holds
    target = applied_conf  # what the members hold once they apply the whole log
    lo, last = 1, log.last_index()
    while lo <= last:
        batch = log.entries(lo, last + 1, _SCAN_BYTES)
        for e in batch:
            if e.type is EntryType.CONF_CHANGE:
                try:
                    cc = decode_conf_change(e.data)
                except ValueError:
                    continue  # applied as nothing everywhere (the application skips it)
                replayed = next_conf_state(replayed, cc)
                if e.index > log.applied:
                    target = next_conf_state(target, cc)
            elif e.data:
                return [], e.index <= log.committed
        lo = batch[-1].index + 1
    if (
        _members(replayed) == _members(target)
        or not target.voters
        or target.voters_outgoing
        or target.all_nodes() & replayed.removed  # a log from before ids were retired
    ):
        return [], False  # nothing to add, or nothing a record of single changes can say
    return record(replayed, target), False


def _members(cs: ConfState) -> tuple[frozenset[int], ...]:
    """Who is in ``cs``; ``removed`` is history, which a record need not teach (a
    membership saved before it existed has none)."""
    return cs.voters, cs.learners, cs.voters_outgoing


def record(replayed: ConfState, target: ConfState) -> list[ConfChange]:
    """Single changes, each valid in turn, that take ``replayed`` to ``target`` (which is
    not joint and has voters, none of them removed in ``replayed``): add voters, then
    learners, then remove the rest. The result matches ``target`` in members, and its
    ``removed`` includes ``replayed.removed``."""
    out = [ConfChange(ConfChangeType.ADD_VOTER, v) for v in sorted(target.voters - replayed.voters)]
    out += [
        ConfChange(ConfChangeType.ADD_LEARNER, n)
        for n in sorted(target.learners - replayed.learners)
    ]
    out += [
        ConfChange(ConfChangeType.REMOVE_NODE, n)
        for n in sorted(replayed.all_nodes() - target.all_nodes())
    ]
    check = replayed
    for cc in out:
        check = next_conf_state(check, cc)
    assert _members(check) == _members(target), (
        f"membership record {out} takes {replayed} to {check}, not {target}"
    )
    return out
