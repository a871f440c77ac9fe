"""The results-frame contract (`workbench.sweeps.frame`), `within_budget`, and `results_frame`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import workbench
from workbench.core.errors import WorkbenchError
from workbench.sweeps import ResultStore, VariantSpec, grid, results_frame, within_budget
from workbench.sweeps.frame import (
    config_columns,
    error_mask,
    metric_columns,
    ok_rows,
    primary_metric,
    scope_of_lineage,
    spec_columns,
    spec_of_lineage,
    spec_of_row,
    with_baseline,
)

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def stored(tmp_path_factory) -> pd.DataFrame:
    path = shutil.copy(DATA / "store_written_by_0.1.0.sqlite", tmp_path_factory.mktemp("frame") / "r.sqlite")
    with ResultStore(path) as st:
        return st.to_frame()


# ------------------------------------------------------------------------------------------ rows


def test_error_mask_one_rule_for_every_reader():
    df = pd.DataFrame({"error": [None, np.nan, "", "  ", "None", "RuntimeError: boom"]})
    assert error_mask(df).tolist() == [False, False, False, False, False, True]
    assert ok_rows(df).index.tolist() == [0, 1, 2, 3, 4]
    # A numeric `error` column is a relative error (a calibration table), not a failure flag.
    assert not error_mask(pd.DataFrame({"error": [0.1, -0.2]})).any()
    assert not error_mask(pd.DataFrame({"x": [1]})).any()
    plain = pd.DataFrame({"x": [1]})
    assert ok_rows(plain) is plain


def test_metric_columns_one_rule_for_the_report_and_the_ui(stored):
    assert metric_columns(stored) == ["accuracy"]
    # Before the baseline join (the sweep's raw rows): the numeric columns that are not known measurements.
    raw = stored.drop(columns=["baseline_accuracy"])
    assert metric_columns(raw) == ["accuracy"]
    # A metric that every row failed to produce is still a metric when it has a baseline partner.
    failed = stored.assign(accuracy=None)
    assert metric_columns(failed) == ["accuracy"]
    # fidelity is a measurement, not a task metric; a fidelity-only frame ranks by it.
    only_fidelity = raw.drop(columns=["accuracy"])
    assert metric_columns(only_fidelity) == [] and primary_metric(only_fidelity) == "fidelity"
    two = pd.DataFrame({"variant": ["a"], "f1": [0.5], "accuracy": [0.9], "latency_ms_p50": [1.0]})
    assert metric_columns(two) == ["f1", "accuracy"] and primary_metric(two) == "accuracy"
    assert primary_metric(pd.DataFrame({"variant": ["a"]})) is None


def test_with_baseline_reads_the_stored_frame_back_identically(stored):
    doc = json.loads((DATA / "frame_written_by_0.1.0.json").read_text())
    assert list(stored.columns) == doc["columns"]
    again = with_baseline(stored)
    assert again["baseline_accuracy"].tolist() == stored["baseline_accuracy"].tolist()
    # An error row does not count as the baseline.
    broken = stored.copy()
    broken.loc[broken.variant == "baseline", "error"] = "boom"
    assert with_baseline(broken)["baseline_accuracy"].isna().all()


# ------------------------------------------------------------------------------ grid point <-> row


@pytest.mark.parametrize("scope", ["layer", "global"])
def test_grid_point_round_trips_through_a_row(scope):
    g = grid(prune=[0, 0.5], structure=["unstructured", "channel", "2:4"], bits=[32, 16, 8], recover=[None, 10],
             scope=scope)
    for spec in g:
        assert spec.scope == scope
        row = {**spec_columns(spec), "lineage": " + ".join(c.label for c in spec.configs())}
        back = spec_of_row(row)
        assert back.to_dict() == spec.to_dict() and back.label == spec.label
        # 2:4 ignores the scope and its label does not record it; every other pruned variant keeps its scope.
        if spec.prune and spec.structure != "2:4":
            assert back == spec
        assert spec_of_row({**row, "scope": scope}) == spec  # a `scope` column wins over the lineage
        assert spec_of_row(pd.Series(row)).to_dict() == spec.to_dict()


def test_stored_keys_do_not_see_the_scope_field():
    spec = VariantSpec(0.5, "channel", 8, None, scope="global")
    assert spec.to_dict() == {"prune": 0.5, "structure": "channel", "bits": 8, "recover": None}
    assert spec_columns(spec) == {"variant": "channel-0.50+q8", **spec.to_dict()}
    assert spec.configs()[0].scope.value == "global"
    assert spec.configs(scope="layer")[0].scope.value == "layer"
    with pytest.raises(ValueError, match="scope"):
        VariantSpec(scope="model")


def test_scope_of_lineage():
    assert scope_of_lineage("") == "layer"
    assert scope_of_lineage("q8") == "layer"
    assert scope_of_lineage("prune-unstructured-0.50 + q8") == "global"
    assert scope_of_lineage("prune-channel-0.50-layer-l2-mult8 + r10 + q8") == "layer"
    assert scope_of_lineage(["prune-channel-0.25"]) == "global"
    assert scope_of_lineage("prune-2:4") == "layer"
    assert scope_of_lineage(None) == "layer"


def test_lineage_of_a_compressed_variant_gives_its_grid_point(digits):
    from workbench import Prune, Quantize, Recover

    spec = VariantSpec(0.5, "channel", 8, None, scope="global")
    handle = workbench.compress(digits.model, *spec.configs())
    assert spec_of_lineage(handle.lineage) == spec
    assert config_columns(handle) == spec.to_dict()
    assert config_columns(digits.model) == {"prune": 0.0, "structure": None, "bits": 32, "recover": None}
    v = workbench.compress(digits.model, Prune(0.5, structure="2:4"), Quantize(dtype="fp16"))
    assert config_columns(v) == {"prune": 0.5, "structure": "2:4", "bits": 16, "recover": None}
    fake = type("H", (), {"lineage": (Quantize(4), Recover(steps=1), Recover(steps=2))})()
    assert config_columns(fake) == {"prune": 0.0, "structure": None, "bits": 4, "recover": 3}


# ------------------------------------------------------------------------------------------ budgets


def _budget_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "variant": ["a", "b", "c", "d"],
        "accuracy": [0.99, 0.95, 0.90, np.nan],
        "latency_ms_est": [3.0, 2.553, 1.0, 0.5],
        "energy_mj_est": [2.0, 1.0, np.nan, 0.2],
        "power_w_est": [5.0, 4.0, 3.0, 2.0],
        "size_bytes": [2e6, 1e6, 5e5, 1e5],
        "fits": [True, True, False, None],
    })


def test_within_budget_masks_and_explains():
    df = _budget_frame()
    mask, budgets = within_budget(df, max_latency_ms=2.6, max_energy_mj=1.5, max_power_w=4.5,
                                  max_size_bytes=1.5e6, max_memory_bytes=1e6, min_metric=0.94,
                                  latency_col="latency_ms_est", must_fit=True)
    assert [b.name for b in budgets] == ["max_latency_ms", "max_energy_mj", "max_power_w", "max_size_bytes",
                                         "max_memory_bytes", "min_metric", "fits"]
    by = {b.name: b for b in budgets}
    assert by["max_latency_ms"].text == "latency <= 2.6 ms" and by["max_latency_ms"].ok.tolist() == [
        False, True, True, True]
    assert by["max_latency_ms"].best_text == "fastest 0.5 ms"
    assert by["max_energy_mj"].text == "energy <= 1.5 mJ/inference"
    assert by["max_energy_mj"].ok.tolist() == [False, True, False, True]  # a missing value never meets a budget
    assert by["max_energy_mj"].missed().tolist() == [True, False, False, False]  # ... but is not a miss either
    assert by["max_power_w"].text == "power <= 4.5 W"
    assert by["max_size_bytes"].text == "size <= 1.5 MB" and by["max_size_bytes"].best_text == "smallest 0.1 MB"
    memory = by["max_memory_bytes"]
    assert memory.column == "peak_mem_bytes" and not memory.present and not memory.ok.any()
    metric = by["min_metric"]
    assert (metric.text, metric.op, metric.best, metric.best_text) == ("accuracy >= 0.94", ">=", 0.99, "best 0.99")
    assert metric.why().tolist() == ["", "", "accuracy 0.9 < 0.94", ""]
    assert by["max_latency_ms"].why().tolist() == ["latency 3 ms > 2.6 ms", "", "", ""]
    assert by["fits"].ok.tolist() == [True, True, False, False]
    assert not mask.any()  # nothing has a peak-memory value
    mask, _ = within_budget(df, max_latency_ms=2.6, min_metric=0.94, latency_col="latency_ms_est")
    assert df.loc[mask, "variant"].tolist() == ["b"]


def test_missed_reasons_joins_the_per_row_texts():
    from workbench.sweeps.analysis import missed_reasons

    df = _budget_frame()
    _, budgets = within_budget(df, max_latency_ms=2.6, max_power_w=3.5, min_metric=0.94,
                               latency_col="latency_ms_est")
    assert missed_reasons(budgets, df.index).tolist() == [
        "latency 3 ms > 2.6 ms; power 5 W > 3.5 W", "power 4 W > 3.5 W", "accuracy 0.9 < 0.94", ""]
    assert missed_reasons([], df.index).tolist() == [""] * 4


def test_within_budget_without_budgets_keeps_every_row():
    mask, budgets = within_budget(_budget_frame())
    assert mask.all() and budgets == []
    mask, budgets = within_budget(_budget_frame().drop(columns="fits"), must_fit=True)
    assert mask.all() and budgets == []


def test_best_and_the_fleet_plan_use_the_same_budget_words():
    from workbench.plan import DeviceClass, fleet_plan

    df = _budget_frame().assign(device="raspberry-pi-4", runtime="onnxruntime", fits=True, deployable=True)
    _, (lat,) = within_budget(df, max_latency_ms=0.4, latency_col="latency_ms_est")
    plan, _ = fleet_plan(df, [DeviceClass("x", "raspberry-pi-4", count=1, inferences_per_day=0, max_latency_ms=0.4)])
    assert plan["reason"].item() == f"nothing meets {lat.text} ({lat.best_text})"
    with pytest.raises(WorkbenchError, match=r"no variant meets max_latency_ms \(device raspberry-pi-4\):\n"
                                             r"  max_latency_ms: latency_ms_est <= 0.4: met by 0 of 4 "
                                             r"\(best available 0.5\)"):
        workbench.best(df, device="raspberry-pi-4", max_latency_ms=0.4)


# ------------------------------------------------------------------------------------ results_frame


@pytest.fixture(scope="module")
def measured(digits):
    from workbench import Prune

    pruned = workbench.compress(digits.model, Prune(0.5, structure="channel", scope="layer"))
    return results_frame(digits, [digits.model, pruned], runtimes=("onnxruntime", "torch"),
                         devices=["raspberry-pi-4", "esp32-s3"], limit=64)


def test_results_frame_follows_the_contract(measured):
    assert list(measured.columns[:9]) == ["key", "task", "variant", "prune", "structure", "bits", "recover",
                                          "runtime", "device"]
    for col in ("accuracy", "baseline_accuracy", "fidelity", "size_bytes", "latency_ms_p50", "latency_ms_est",
                "energy_mj_est", "fits", "error", "lineage"):
        assert col in measured, col
    assert len(measured) == 2 * 2 * 2 and measured.key.is_unique
    assert not error_mask(measured).any()
    pruned = measured[measured.variant == "prune-channel-0.50-layer"].iloc[0]
    assert (pruned.prune, pruned.structure, pruned.bits) == (0.5, "channel", 32)
    assert spec_of_row(pruned) == VariantSpec(0.5, "channel", 32, None, scope="layer")
    assert metric_columns(measured) == ["accuracy"]


def test_results_frame_baseline_is_the_original_on_the_same_runtime(measured, digits):
    for rt, rows in measured.groupby("runtime"):
        base = rows[rows.variant == "baseline"]["accuracy"].iloc[0]
        assert (rows["baseline_accuracy"] == base).all(), rt
    # Without the original among the variants, it is measured on each runtime all the same.
    only = measured[measured.variant != "baseline"]
    q8 = workbench.compress(digits.model, workbench.Quantize(8))
    df = results_frame(digits, [q8], runtimes=("onnxruntime",), limit=64)
    assert len(df) == 1 and df["device"].isna().all()
    expected = measured[(measured.variant == "baseline") & (measured.runtime == "onnxruntime")]["accuracy"].iloc[0]
    assert df["baseline_accuracy"].iloc[0] == expected
    assert only["baseline_accuracy"].notna().all()


def test_results_frame_needs_variants(digits):
    with pytest.raises(WorkbenchError, match="no variants"):
        results_frame(digits, [])
