"""Random schedules from the seed runner, as a test: every seed must pass.

CI profile: a few hundred short schedules (3 and 5 voters). KVRAFT_SIM_DEEP=1 runs ten
times more, longer. For more, use the runner: ``python -m tests.sim --seeds 5000``.
"""

from __future__ import annotations

import os

import pytest

from tests.sim.schedule import run_schedule

DEEP = bool(os.environ.get("KVRAFT_SIM_DEEP"))
SEEDS = {3: 400, 5: 250}
STEPS = 300


@pytest.mark.parametrize("voters", [3, 5])
def test_random_schedules_keep_raft_safe_and_live(voters: int) -> None:
    seeds = SEEDS[voters] * (10 if DEEP else 1)
    steps = STEPS * (2 if DEEP else 1)
    failures = []
    applied = leaders = 0
    for seed in range(seeds):
        out = run_schedule(seed, voters, steps)
        applied += out.counts.get("applied", 0)
        leaders += out.counts.get("terms_with_leader", 0)
        if not out.ok:
            last = (out.error or "").splitlines()[-1]
            failures.append(
                f"seed {seed} step {out.steps} ({out.failed_action}): {last}\n"
                f"  replay: python -m tests.sim --replay {seed} --nodes {voters} "
                f"--steps {out.steps} -v"
            )
    assert not failures, "\n".join(failures)
    # The schedules must exercise the cluster, not idle: leaders get elected, entries
    # get applied.
    assert leaders >= seeds and applied >= 5 * seeds, (leaders, applied)
