"""Latency timing: repetitions grow until the median is stable or the budget runs out; a sweep's budget."""

from __future__ import annotations

import time

import numpy as np
import pytest

from workbench.measurement.latency import (
    DEFAULT_BUDGET,
    SWEEP_BUDGET,
    LatencyBudget,
    current_budget,
    latency_budget,
    time_runner,
)


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


def _busy(seconds: float):
    def run(*_):
        t = time.perf_counter()
        while time.perf_counter() - t < seconds:
            pass
        return []

    return run


def test_a_budget_sets_the_limits_and_explicit_arguments_win():
    with latency_budget(LatencyBudget(warmup=1, min_reps=10, min_seconds=0.0, max_seconds=0.3)):
        stats = time_runner(_busy(2e-4), [])
        assert stats.warmup == 1 and 10 <= stats.reps < 400
        assert time_runner(_busy(2e-4), [], min_reps=5, max_reps=6).reps <= 6
    assert current_budget() == DEFAULT_BUDGET
    assert time_runner(_busy(1e-4), [], warmup=0, min_seconds=0.0, max_seconds=0.05).warmup == 0


def test_the_sweep_budget_stops_a_stable_fast_model_well_before_the_default_minimum():
    t0 = time.perf_counter()
    with latency_budget(SWEEP_BUDGET):
        stats = time_runner(_busy(5e-5), [])  # a 50 us model, as the default demo's variants are
    took = time.perf_counter() - t0
    assert took < DEFAULT_BUDGET.min_seconds  # the default budget would still be timing
    assert stats.reps >= SWEEP_BUDGET.min_reps and stats.p50 >= 0.05


@pytest.mark.parametrize("bad", [dict(min_reps=1), dict(max_reps=10, min_reps=20), dict(max_seconds=0.0),
                                 dict(tolerance=float("nan")), dict(warmup=-1), dict(min_seconds=True)])
def test_bad_budgets_are_rejected(bad):
    with pytest.raises(ValueError, match="LatencyBudget"):
        LatencyBudget(**bad)
    with pytest.raises(TypeError):
        with latency_budget(dict(bad)):
            pass
