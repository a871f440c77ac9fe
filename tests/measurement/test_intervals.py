"""workbench.measurement.intervals: Wilson and bootstrap intervals, and the intervals every task's score carries."""

from __future__ import annotations

import math

import numpy as np
import pytest

import workbench
from workbench.measurement.intervals import bootstrap, exp_mean, f1_of_counts, interval_of, wilson, with_interval


def test_wilson_matches_the_hand_computed_interval():
    # 45 of 50, z = 1.96: p = 0.9, centre = (0.9 + 0.038416) / 1.076832, half = 1.96 * sqrt(0.0018 + 0.000384) / 1.076832
    centre = (0.9 + 1.96**2 / 100) / (1 + 1.96**2 / 50)
    half = 1.96 * math.sqrt(0.9 * 0.1 / 50 + 1.96**2 / (4 * 50**2)) / (1 + 1.96**2 / 50)
    low, high = wilson(45, 50)
    assert (low, high) == pytest.approx((centre - half, centre + half), abs=1e-12)
    assert (round(low, 4), round(high, 4)) == (0.7864, 0.9565)  # the textbook figure
    assert wilson(0, 20)[0] == 0.0 and wilson(20, 20)[1] == 1.0 and 0 < wilson(20, 20)[0] < 1
    assert wilson(450, 450)[0] == pytest.approx(0.99153, abs=1e-5)  # 450 perfect digits still only prove > 99.15 %
    assert all(math.isnan(v) for v in wilson(0, 0))
    with pytest.raises(ValueError, match="between 0 and n"):
        wilson(11, 10)


def test_bootstrap_is_deterministic_and_covers_the_true_mean():
    rng = np.random.default_rng(7)
    x = rng.exponential(2.0, size=300)
    assert bootstrap(x) == bootstrap(x) == bootstrap(x, seed=0)
    assert bootstrap(x, seed=1) != bootstrap(x)
    # Coverage: of 200 synthetic samples of 60 draws from a distribution with mean 2, about 95 % of the
    # intervals hold 2 (a percentile bootstrap of a skewed mean under-covers slightly at n = 60).
    hits = 0
    for _ in range(200):
        low, high = bootstrap(rng.exponential(2.0, size=60), n_boot=500, seed=int(rng.integers(1 << 30)))
        hits += low <= 2.0 <= high
    assert 0.88 <= hits / 200 <= 0.99
    assert all(math.isnan(v) for v in bootstrap([1.0]))
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap(x, n_boot=0)


def test_the_fast_path_agrees_with_plain_resampling():
    """Mean-based statistics are bootstrapped from resampled means (multinomial counts for few distinct rows);
    the interval must be the one drawing whole resamples gives."""
    rng = np.random.default_rng(3)
    nll = rng.normal(3.0, 0.3, size=40)
    fast = bootstrap(nll, exp_mean)
    slow = bootstrap(nll, lambda a: float(np.exp(np.mean(a))))  # no axis argument: one call per resample
    assert fast == pytest.approx(slow, rel=0.02)
    counts = rng.random((800, 3)) < [0.3, 0.1, 0.1]
    fast = bootstrap(counts, f1_of_counts)
    slow = bootstrap(counts, lambda a: float(f1_of_counts(a, axis=0)))
    assert fast == pytest.approx(slow, abs=0.01) and fast[0] < fast[1]


def test_with_interval_brackets_the_figure_and_names_the_columns():
    correct = np.arange(100) % 10 != 0
    out = with_interval("accuracy", correct)
    assert list(out) == ["accuracy", "accuracy_low", "accuracy_high"] and out["accuracy"] == 0.9
    assert (out["accuracy_low"], out["accuracy_high"]) == pytest.approx(wilson(90, 100), abs=1e-6)
    skewed = np.r_[np.ones(9), 0.0]  # cosines: a bootstrap, widened to hold the figure itself
    c = with_interval("cosine", skewed, value=0.9)
    assert c["cosine_low"] <= 0.9 <= c["cosine_high"] <= 1.0
    assert interval_of("accuracy_low", out) == "accuracy" and interval_of("accuracy_low", ["x"]) is None


def test_digits_score_carries_a_wilson_interval(digits):
    out, rows = digits.run(workbench.runtime(digits.model, "onnxruntime", threads=1), limit=200)
    s = digits.score(out, rows)
    assert s["accuracy_low"] <= s["accuracy"] <= s["accuracy_high"]
    correct = round(s["accuracy"] * 200)
    assert (s["accuracy_low"], s["accuracy_high"]) == pytest.approx(wilson(correct, 200), abs=1e-6)
    f = digits.fidelity_scores(out, rows)
    assert f["fidelity"] == digits.fidelity(out, rows) and f["fidelity_low"] <= f["fidelity"] <= f["fidelity_high"]


def test_vad_metrics_intervals():
    from workbench.zoo.vad_net import vad_metrics

    rng = np.random.default_rng(0)
    labels = (np.arange(2000) // 50) % 2
    probs = np.where(rng.random(2000) < 0.9, labels, 1 - labels).astype(np.float32)  # 90 % of frames right
    m = vad_metrics(probs, labels)
    assert m["frame_accuracy_low"] <= m["frame_accuracy"] <= m["frame_accuracy_high"]
    assert m["f1_low"] <= m["f1"] <= m["f1_high"] and 0.85 < m["f1_low"] < m["f1_high"] < 0.95
    assert m == vad_metrics(probs, labels)  # seeded: the same frames give the same interval


def test_language_task_intervals_without_a_model():
    """Perplexity by a bootstrap over chunks, agreement and pass rate by Wilson (the reference is given)."""
    from workbench.task import LanguageTask

    rng = np.random.default_rng(0)
    nll = rng.normal(3.0, 0.5, size=(12, 31)).clip(0)
    top = rng.integers(0, 50, size=(12, 31))
    ref = np.where(rng.random(top.shape) < 0.8, top, -1)
    task = LanguageTask(name="t", model=None, metric="perplexity", example_inputs=[], calibration=[],
                        eval_inputs=[np.zeros((12, 32), np.int64)], _reference=[nll, ref])
    s = task.score([nll, top, np.r_[np.ones(7), np.zeros(3)]])
    assert s["perplexity"] == float(np.exp(np.mean(nll)))  # the figure is untouched
    assert s["perplexity_low"] < s["perplexity"] < s["perplexity_high"]
    assert s["agreement"] == task.fidelity([nll, top]) and s["agreement_low"] < s["agreement"] < s["agreement_high"]
    assert (s["pass_rate"], s["pass_rate_low"], s["pass_rate_high"]) == pytest.approx((0.7, *wilson(7, 10)), abs=1e-6)


def test_a_measured_frame_has_the_interval_columns(digits):
    from workbench.sweeps import results_frame
    from workbench.sweeps.frame import metric_columns, primary_metric

    df = results_frame(digits, [digits.model], limit=100)
    row = df.iloc[0]
    for metric in ("accuracy", "fidelity"):
        assert row[f"{metric}_low"] <= row[metric] <= row[f"{metric}_high"]
    assert row["latency_ms_p10"] <= row["latency_ms_p50"] <= row["latency_ms_p90"]
    assert metric_columns(df) == ["accuracy"] and primary_metric(df) == "accuracy"
    assert "baseline_accuracy" in df and not [c for c in df if c.startswith("baseline_") and c.endswith(("_low", "_high"))]
