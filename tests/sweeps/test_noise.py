"""workbench.sweeps.noise: a difference inside the original's interval is called noise; interval columns are never
metrics, baselines or axes of their own."""

from __future__ import annotations

import pandas as pd
import pytest

from workbench.sweeps import pareto_table
from workbench.sweeps.frame import (
    LOWER_IS_BETTER,
    interval_columns,
    metric_columns,
    primary_metric,
    with_baseline,
)
from workbench.sweeps.noise import noise_column, noise_text, within_noise, within_noise_column


def frame() -> pd.DataFrame:
    """The issue's case: the original at 98.9 % of 450 digits, a pruned variant 3 digits better (noise), one 2-bit
    variant far below (real)."""
    from workbench.measurement.intervals import wilson

    rows = []
    for variant, correct, size, lat in (("baseline", 445, 600, 1.0), ("channel-0.50", 448, 300, 0.5),
                                        ("q2", 90, 40, 0.9)):
        low, high = wilson(correct, 450)
        rows.append({"task": "digits", "runtime": "onnxruntime", "variant": variant, "accuracy": correct / 450,
                     "accuracy_low": low, "accuracy_high": high, "fidelity": 1.0, "fidelity_low": 0.99,
                     "fidelity_high": 1.0, "size_bytes": size, "latency_ms_p10": lat * 0.9, "latency_ms_p50": lat,
                     "latency_ms_p90": lat * 1.2})
    return with_baseline(pd.DataFrame(rows))


def test_within_noise_inside_outside_and_unknown():
    df = frame().set_index("variant", drop=False)
    assert within_noise(df.loc["channel-0.50"], "accuracy") is True  # 3 digits better: not an improvement
    assert noise_text(df.loc["channel-0.50"], "accuracy") == "within noise of the original"
    assert within_noise(df.loc["q2"], "accuracy") is False
    assert noise_text(df.loc["q2"], "accuracy") == "78.9 points below the original"
    assert noise_text(df.loc["baseline"], "accuracy") == "the original"
    assert within_noise(df.loc["q2"].drop(["accuracy_low", "accuracy_high"]), "accuracy") is None
    assert within_noise(df.loc["q2"].drop("baseline_accuracy"), "accuracy") is None
    assert noise_text(df.loc["q2"].drop("baseline_accuracy"), "accuracy") == ""
    # without an interval the difference is still said, without a verdict on it
    assert noise_text({"accuracy": 0.95, "baseline_accuracy": 0.96}, "accuracy") == "1.0 points below the original"


def test_perplexity_is_worded_the_right_way_round():
    assert "perplexity" in LOWER_IS_BETTER
    worse = {"perplexity": 10.3, "perplexity_low": 10.2, "perplexity_high": 10.45, "baseline_perplexity": 10.0}
    better = {"perplexity": 9.5, "perplexity_low": 9.3, "perplexity_high": 9.7, "baseline_perplexity": 10.0}
    same = {"perplexity": 10.1, "perplexity_low": 9.8, "perplexity_high": 10.4, "baseline_perplexity": 10.0}
    assert noise_text(worse, "perplexity") == "3 % higher perplexity than the original"
    assert noise_text(better, "perplexity") == "5 % lower perplexity than the original"
    assert noise_text(same, "perplexity") == "within noise of the original" and within_noise(same, "perplexity")


def test_noise_column_is_noise_text_per_row():
    df = frame()
    assert noise_column(df, "accuracy").tolist() == [noise_text(r, "accuracy") for _, r in df.iterrows()]
    assert within_noise_column(df, "accuracy").tolist() == [True, True, False]
    assert within_noise_column(df.drop(columns="accuracy_high"), "accuracy").isna().all()


def test_intervals_are_never_metrics_baselines_or_axes():
    from workbench.ui.base import axis_columns

    df = frame()
    assert metric_columns(df) == ["accuracy"] and primary_metric(df) == "accuracy"
    assert [c for c in df if c.startswith("baseline_")] == ["baseline_accuracy"]
    axes = axis_columns(df)
    assert "accuracy" in axes and "latency_ms_p50" in axes
    assert not [c for c in axes if c.endswith(("_low", "_high")) or c == "latency_ms_p10"]
    cos = pd.DataFrame({"variant": ["a"], "cosine_low": [0.9], "cosine_high": [0.99], "cosine": [0.95]})
    assert primary_metric(cos) == "cosine"  # the interval columns come first, the metric still wins
    assert interval_columns(df, "latency_ms_p50") == ("latency_ms_p10", "latency_ms_p90")
    assert interval_columns(df, "size_bytes") is None
    # a column that merely ends in _low is a metric when it bounds nothing
    assert metric_columns(pd.DataFrame({"variant": ["a"], "flow_low": [1.0]})) == ["flow_low"]


def test_pareto_table_says_within_noise():
    t = pareto_table(frame())
    assert "vs original" in t and {"accuracy_low", "accuracy_high", "baseline_accuracy"} <= set(t.columns)
    words = dict(zip(t["variant"], t["vs original"]))
    assert words["channel-0.50"] == "within noise of the original"
    assert words["q2"] == "78.9 points below the original"
    assert list(t.columns).index("accuracy") < list(t.columns).index("vs original") < list(t.columns).index("size_bytes")


@pytest.mark.parametrize("metric", ["accuracy", "fidelity"])
def test_rows_without_a_baseline_get_no_verdict(metric):
    df = frame().drop(columns=[c for c in frame() if c.startswith("baseline_")])
    assert within_noise_column(df, metric).isna().all() and (noise_column(df, metric) == "").all()
