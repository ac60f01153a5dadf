"""The simulator must catch a broken runtime: each test plants one bug in the driver and
requires some random schedule to fail with the matching safety violation."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from kvraft.core.types import Entry, HardState, SnapshotMeta
from kvraft.storage.memory import MemoryLogStore
from tests.sim import cluster as cluster_mod
from tests.sim import schedule as schedule_mod
from tests.sim.cluster import Cluster, SimNode

SEEDS = 150
STEPS = 300


def first_failure(voters: int = 3) -> str:
    for seed in range(SEEDS):
        out = schedule_mod.run_schedule(seed, voters, STEPS)
        if not out.ok:
            return (out.error or "").splitlines()[-1]
    return "no schedule failed"


class SendsTooEarly(Cluster):
    """Sends ``persisted_messages`` together with ``messages``, before the Ready is
    durable (the PySyncObj mistake)."""

    def take_ready(self, node: int) -> str:
        what = super().take_ready(node)
        n = self.nodes[node]
        if n.pending is not None and n.stage == cluster_mod.TAKEN:
            for m in n.pending.persisted_messages:
                self._send(n, m)
        return what

    def send_persisted(self, n: SimNode) -> str:
        n.stage = cluster_mod.SENT  # already sent
        return "sent early"


def test_sending_before_persisting_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(schedule_mod, "Cluster", SendsTooEarly)
    assert "persist before send" in first_failure()


class ForgetfulStore(MemoryLogStore):
    """A disk that loses every vote it is given."""

    def save(
        self,
        *,
        entries: Sequence[Entry] = (),
        hard_state: HardState | None = None,
        snapshot: SnapshotMeta | None = None,
    ) -> None:
        if hard_state is not None:
            old = self.initial_state()[0]
            vote = old.vote if old.term == hard_state.term else 0
            hard_state = HardState(hard_state.term, vote, hard_state.commit)
        super().save(entries=entries, hard_state=hard_state, snapshot=snapshot)


def test_a_disk_that_forgets_votes_leads_to_a_double_vote(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the direct persist-before-send check disabled, the lost votes must surface
    as what they cause: a node voting twice in a term (or two leaders in one)."""
    monkeypatch.setattr(cluster_mod, "MemoryLogStore", ForgetfulStore)
    monkeypatch.setattr(cluster_mod, "check_durable_before_send", lambda *a: None)
    failure = first_failure()
    assert "double vote" in failure or "two leaders" in failure, failure
