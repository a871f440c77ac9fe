"""Latency timing: repetitions grow until the median is stable or the budget runs out."""

from __future__ import annotations

import time

import numpy as np

from workbench.measurement.latency import time_runner


def test_steady_runner_stops_early_with_spread_and_count():
    calls = []

    def steady(*_):
        calls.append(1)
        time.sleep(0.001)
        return []

    stats = time_runner(steady, [], warmup=2, min_reps=20, min_seconds=0.05, max_seconds=2.0)
    assert 20 <= stats.reps < 400 and len(calls) == stats.reps + 2
    assert stats.p50 >= 1.0 and stats.p50 <= stats.p90 <= stats.p99 and stats.iqr >= 0


def test_drifting_runner_uses_more_repetitions_until_the_budget():
    state = {"n": 0}

    def drifting(*_):
        state["n"] += 1
        time.sleep(0.0002 * (1 + state["n"] / 50))  # keeps slowing down: the median never settles
        return []

    stats = time_runner(drifting, [], warmup=0, min_reps=20, min_seconds=0.05, max_seconds=0.6)
    steady = time_runner(lambda *_: [], [], warmup=0, min_reps=20, min_seconds=0.05, max_seconds=0.6)
    assert stats.reps > 60
    assert np.isfinite(stats.mean) and steady.reps >= 20
