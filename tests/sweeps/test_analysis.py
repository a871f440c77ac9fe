"""Pareto marking and `best` on hand-made frames, where the right answer is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import workbench
from workbench.core.errors import WorkbenchError
from workbench.sweeps.analysis import pareto_mask


def _frame():
    # variant: accuracy, latency, size. Hand-checked front: A (most accurate), B (fast), D (small), E (tie of D).
    return pd.DataFrame({
        "variant": ["A", "B", "C", "D", "E", "F", "G"],
        "runtime": ["onnxruntime"] * 7,
        "accuracy": [0.99, 0.95, 0.94, 0.90, 0.90, 0.80, 0.999],
        "latency_ms_p50": [1.0, 0.5, 0.6, 0.8, 0.8, 0.9, np.nan],
        "size_bytes": [100, 60, 70, 20, 20, 30, 10],
        "error": [None, None, None, None, None, None, None],
    })


def test_pareto_marks_exactly_the_non_dominated_rows():
    out = workbench.pareto(_frame(), maximize=["accuracy"], minimize=["latency_ms_p50", "size_bytes"])
    assert dict(zip(out["variant"], out["pareto"])) == {
        "A": True, "B": True, "C": False, "D": True, "E": True, "F": False, "G": False}


def test_pareto_returns_a_copy_and_ignores_error_rows():
    df = _frame()
    df.loc[0, "error"] = "RuntimeError: boom"
    out = workbench.pareto(df, maximize=["accuracy"], minimize=["latency_ms_p50"])
    assert "pareto" not in df
    assert not out.loc[0, "pareto"]
    assert out.set_index("variant").loc["B", "pareto"]


def test_pareto_two_objectives_and_groups():
    df = pd.concat([_frame().assign(device="a"), _frame().assign(device="b")], ignore_index=True)
    df.loc[df["device"] == "b", "accuracy"] = 0.5  # all equal in b: only the fastest survives
    out = workbench.pareto(df, maximize=["accuracy"], minimize=["latency_ms_p50"], by="device")
    a = out[out.device == "a"].set_index("variant")["pareto"]
    b = out[out.device == "b"].set_index("variant")["pareto"]
    assert set(a[a].index) == {"A", "B"}
    assert set(b[b].index) == {"B"}


@pytest.mark.parametrize("k", [2, 3])
def test_pareto_mask_matches_brute_force_on_random_points_with_ties(k):
    rng = np.random.default_rng(k)
    pts = rng.integers(0, 6, size=(80, k)).astype(float)  # small integers: many ties and duplicates
    pts[5, 0] = np.nan
    mask = pareto_mask(pts)
    for i, p in enumerate(pts):
        dominated = np.isnan(p).any() or any((q >= p).all() and (q > p).any() for q in pts)
        assert mask[i] == (not dominated), (i, p)


def test_pareto_unknown_column():
    with pytest.raises(WorkbenchError, match="no column"):
        workbench.pareto(_frame(), maximize=["f1"])


def _device_frame():
    df = _frame().iloc[:6].copy()
    df["device"] = "raspberry-pi-4"
    df["latency_ms_est"] = [4.0, 2.0, 2.5, 3.0, 3.1, 3.5]
    df["energy_mj_est"] = [8.0, 5.0, 6.0, 2.0, 2.1, 1.0]
    df["fits"] = [True, True, True, True, True, False]
    return df


def test_best_honours_every_constraint():
    df = _device_frame()
    assert workbench.best(df, min_accuracy=0.9)["variant"] == "B"  # fastest measured among >= 0.9
    assert workbench.best(df, min_accuracy=0.96)["variant"] == "A"
    assert workbench.best(df, max_size_bytes=25)["variant"] == "D"
    assert workbench.best(df, max_latency_ms=0.7, min_accuracy=0.9)["variant"] == "B"
    # With a device: estimated latency, energy budget, and it must fit (F does not)
    assert workbench.best(df, device="raspberry-pi-4", max_energy_mj=2.05)["variant"] == "D"
    assert workbench.best(df, device="raspberry-pi-4", max_energy_mj=1.5, must_fit=False)["variant"] == "F"
    assert workbench.best(df, device="raspberry-pi-4", max_latency_ms=2.8, min_accuracy=0.9,
                          objective="energy_mj_est")["variant"] == "B"
    assert workbench.best(df, objective="accuracy", maximize_objective=True)["variant"] == "A"


def test_best_names_the_constraint_nothing_meets():
    df = _device_frame()
    with pytest.raises(WorkbenchError, match=r"no variant meets min_accuracy.*\n.*met by 0 of 6 \(best available 0.99\)"):
        workbench.best(df, min_accuracy=0.995, max_size_bytes=1000)
    with pytest.raises(WorkbenchError, match="max_energy_mj"):
        workbench.best(df, device="raspberry-pi-4", max_energy_mj=0.5)
    with pytest.raises(WorkbenchError, match="all constraints together"):
        workbench.best(df, min_accuracy=0.95, max_size_bytes=50)
    with pytest.raises(WorkbenchError, match="no results for device 'esp32-s3'"):
        workbench.best(df, device="esp32-s3")
    with pytest.raises(WorkbenchError, match="runtime"):
        workbench.best(df, runtime="litert")
    with pytest.raises(WorkbenchError, match="every row has an error"):
        workbench.best(df.assign(error="x"))
