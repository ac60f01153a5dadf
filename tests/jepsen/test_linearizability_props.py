"""Property tests: histories linearizable by construction pass; provably broken ones fail.

CI runs a small number of examples; set KVRAFT_SLOW=1 for a deeper run.
"""

from __future__ import annotations

import os
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jepsen_like.history import pair
from jepsen_like.linearizability import check
from jepsen_like.synth import lost_write, random_history, stale_read

EXAMPLES = 400 if os.environ.get("KVRAFT_SLOW") else 25 if os.environ.get("CI") else 60
PROFILE = settings(max_examples=EXAMPLES, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow])

shapes = st.fixed_dictionaries({
    "seed": st.integers(0, 2**32 - 1),
    "ops": st.integers(1, 120),
    "workers": st.integers(1, 6),
    "keys": st.integers(1, 3),
    "p_info": st.sampled_from([0.0, 0.05, 0.2]),
    "p_fail": st.sampled_from([0.0, 0.05, 0.2]),
    "mean_latency": st.sampled_from([0.2, 1.0, 3.0]),
})


def _history(shape: dict[str, float]) -> tuple[random.Random, list]:  # type: ignore[type-arg]
    rng = random.Random(shape["seed"])
    kw = {k: v for k, v in shape.items() if k != "seed"}
    return rng, random_history(rng, **kw)  # type: ignore[arg-type]


@PROFILE
@given(shapes)
def test_histories_from_the_sequential_model_are_linearizable(shape: dict[str, float]) -> None:
    _, events = _history(shape)
    result = check(pair(events), budget=30.0)
    assert result.verdict == "valid", result.to_json()


@PROFILE
@given(shapes)
def test_provably_stale_reads_are_caught(shape: dict[str, float]) -> None:
    rng, events = _history(shape)
    mutated = stale_read(events, rng)
    if mutated is None:
        return
    result = check(pair(mutated), budget=30.0)
    assert result.verdict == "invalid"
    anomaly = result.anomalies[0]
    # the window is a self-contained proof: checking only it also fails
    assert anomaly.window_ops


@PROFILE
@given(shapes)
def test_provably_lost_writes_are_caught(shape: dict[str, float]) -> None:
    rng, events = _history(shape)
    mutated = lost_write(events, rng)
    if mutated is None:
        return
    assert check(pair(mutated), budget=30.0).verdict == "invalid"
