"""workbench.viz: figures of a results frame — fronts, colours, labels, error rows, in-place updates."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from workbench import viz
from workbench.core.errors import WorkbenchError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ------------------------------------------------------------------------------------------- frames


def hand_frame() -> pd.DataFrame:
    """Eight variants on one runtime and device, with a known Pareto front of latency vs accuracy."""
    rows = [
        # variant,        prune, structure,      bits, lat,  acc,   size,   deflated, realized
        ("baseline",        0.0,  None,            32, 1.00, 0.99, 600_000, 550_000, True),
        ("q8",              0.0,  None,             8, 0.80, 0.985, 160_000, 140_000, True),
        ("q4",              0.0,  None,             4, 1.00, 0.97,  90_000,  80_000, False),
        ("fp16",            0.0,  None,            16, 1.20, 0.99, 300_000, 280_000, True),
        ("ch50",            0.5,  "channel",       32, 0.40, 0.95, 300_000, 280_000, True),
        ("ch50+q8",         0.5,  "channel",        8, 0.30, 0.93,  80_000,  70_000, True),
        ("un50",            0.5,  "unstructured",  32, 1.00, 0.98, 600_000, 300_000, True),
        ("24+q2",           0.5,  "2:4",            2, 0.90, 0.60,  40_000,  30_000, False),
    ]
    df = pd.DataFrame(rows, columns=["variant", "prune", "structure", "bits", "latency_ms_p50", "accuracy",
                                     "size_bytes", "size_deflated_bytes", "realized"])
    df.insert(0, "key", [f"k{i}" for i in range(len(df))])
    df["runtime"] = "onnxruntime"
    df["device"] = "raspberry-pi-4"
    df["latency_ms_est"] = df["latency_ms_p50"] * 4
    df["energy_mj_est"] = df["latency_ms_p50"] * 2
    df["fits"] = True
    df["deployable"] = True
    df["weight_bytes"] = (136_000 * df["bits"] / 8).astype(int)
    df["error"] = None
    return df


def sens_frame() -> pd.DataFrame:
    """The shape `workbench.sensitivity` returns, for two layers at 4 and 2 bits."""
    return pd.DataFrame({"layer": ["a", "a", "b", "b"], "level": [4, 2, 4, 2], "drop": [0.01, 0.2, 0.0, 0.05],
                         "kind": "quantize", "metric": "accuracy", "baseline": 0.99})


# front of (min latency, max accuracy): ch50+q8 (0.30), ch50 (0.40), q8 (0.80, 0.985), baseline (1.00, 0.99);
# fp16 ties baseline's accuracy but is slower, un50/q4 slower and worse than q8, 24+q2 worse than q8.
FRONT = ["ch50+q8", "ch50", "q8", "baseline"]


@pytest.fixture(scope="module")
def real(digits):
    """A small realistic frame: the digits CNN and its 50 % channel-pruned variant, measured on ORT, with
    estimates for a Raspberry Pi 4, this machine and a Coral Edge TPU (which cannot run fp32)."""
    import workbench
    from workbench import Prune

    pruned = workbench.compress(digits.model, Prune(0.5, structure="channel", scope="layer"))
    return viz.results_frame(digits, [digits.model, pruned], devices=["raspberry-pi-4", "host", "coral-edge-tpu"],
                             limit=200)


def _trace(fig, name):
    return next(t for t in fig.data if t.name == name)


def _points(fig, skip=("Pareto front", "highlighted")) -> int:
    return sum(len(t.x) for t in fig.data if t.name not in skip and t.meta != "legend")


# ------------------------------------------------------------------------------------------- pareto


def test_front_on_hand_made_frame():
    df = hand_frame()
    on = viz.pareto_front(df, "latency_ms_p50", "accuracy")
    assert sorted(df.variant[on]) == sorted(FRONT)
    fig = viz.pareto_scatter(df, x="latency_ms_p50", y="accuracy")
    front = fig.data[0]
    assert front.name == "Pareto front" and front.mode == "lines"
    assert front.line.shape == "hv"  # x minimised: horizontal then vertical steps
    by_name = df.set_index("variant")
    assert list(front.x) == [by_name.latency_ms_p50[v] for v in FRONT]
    assert list(front.y) == [by_name.accuracy[v] for v in FRONT]
    assert _points(fig) == len(df)


def test_front_senses_can_be_given():
    df = hand_frame()
    # Larger latency "better" (nonsense, but it must be honoured): the slowest, most accurate points win.
    on = viz.pareto_front(df, "latency_ms_p50", "accuracy", maximize=["latency_ms_p50"])
    assert set(df.variant[on]) == {"fp16"}
    fig = viz.pareto_scatter(df, x="size_bytes", y="accuracy", minimize=["size_bytes"])
    assert fig.data[0].line.shape == "hv"
    assert set(fig.data[0].x) == set(df.size_bytes[viz.pareto_front(df, "size_bytes", "accuracy")])
    with pytest.raises(WorkbenchError, match="both"):
        viz.pareto_front(df, "size_bytes", "accuracy", maximize=["accuracy"], minimize=["accuracy"])


def test_pareto_mask_matches_brute_force_and_skips_nan():
    rng = np.random.default_rng(1)
    v = rng.integers(0, 30, size=(1500, 2)).astype(float)  # > one 1024-row block, with ties
    v[7] = np.nan
    mask = viz._pareto_mask(v, [False, True])
    w = np.column_stack([-v[:, 0], v[:, 1]])
    brute = np.array([np.isfinite(w[i]).all() and not any(
        (w[j] >= w[i]).all() and (w[j] > w[i]).any() for j in np.flatnonzero(np.isfinite(w).all(1)))
        for i in range(len(w))])
    assert (mask == brute).all() and not mask[7] and mask.any()
    three = np.column_stack([v, rng.integers(0, 5, len(v))])  # the general (blocked) path, 3 columns
    w3 = np.column_stack([-three[:, 0], three[:, 1:]])
    ok = np.isfinite(w3).all(1)
    brute3 = np.array([ok[i] and not any((w3[j] >= w3[i]).all() and (w3[j] > w3[i]).any() for j in np.flatnonzero(ok))
                       for i in range(len(w3))])
    assert (viz._pareto_mask(three, [False, True, True]) == brute3).all()


def test_hover_shows_configs_and_customdata_is_the_key():
    df = hand_frame()
    fig = viz.pareto_scatter(df)
    eight = next(t for t in fig.data if t.name == "8-bit")
    assert set(eight.customdata) == set(df.key[df.bits == 8])
    text = " ".join(eight.hovertext)
    assert "<b>ch50+q8</b>" in text and "pruned: 50%" in text and "structure: channel" in text
    assert "weight bits: 8" in text and "accuracy: 0.9300" in text


def test_symbols_mark_structure_and_simulation():
    fig = viz.pareto_scatter(hand_frame())
    two = next(t for t in fig.data if t.name == "2-bit")
    assert list(two.marker.symbol) == ["triangle-up-open"]  # 2:4 pruned, simulated (not realised)
    four = next(t for t in fig.data if t.name == "4-bit")
    assert list(four.marker.symbol) == ["circle-open"]
    assert "simulated" in fig.layout.title.subtitle.text


def test_highlight_rings_the_row():
    df = hand_frame()
    fig = viz.pareto_scatter(df, highlight="k4")
    ring = _trace(fig, "highlighted")
    assert list(ring.x) == [0.40] and list(ring.y) == [0.95] and ring.showlegend
    assert len(_trace(viz.pareto_scatter(df), "highlighted").x) == 0
    with pytest.raises(WorkbenchError, match="not a row key"):
        viz.pareto_scatter(df, highlight="nope")


def test_update_pareto_in_place():
    import plotly.graph_objects as go

    df = hand_frame()
    w = go.FigureWidget(viz.pareto_scatter(df))
    traces = list(w.data)
    out = viz.update_pareto(w, df[df.bits == 8], y="accuracy", highlight="k1")
    assert out is w and list(w.data) == traces  # same trace objects, new data
    assert _points(w) == 2 and list(_trace(w, "highlighted").x) == [0.80]
    viz.update_pareto(w, df, x="latency_ms_est")
    assert w.layout.xaxis.title.text == "latency (est., ms) on raspberry-pi-4"
    viz.update_pareto(w, df, color="structure")  # other groups: traces replaced
    assert [t.name for t in w.data][1:5] == ["not pruned", "unstructured", "channel", "2:4"]
    assert _points(w) == len(df)


def test_numeric_colour_uses_a_scale():
    df = hand_frame().assign(fidelity=np.linspace(0.9, 1, 8))
    fig = viz.pareto_scatter(df, color="fidelity")
    assert fig.data[1].name == "variants" and len(fig.data[1].marker.color) == 8


# ------------------------------------------------------------------------------------------- palette


def test_colours_are_the_same_in_every_figure():
    df = hand_frame()
    want = viz.BITS_COLORS
    pareto = {t.name: t.marker.color for t in viz.pareto_scatter(df).data if t.name.endswith(("bit", "float"))}
    assert pareto == {viz.BITS_NAMES[b]: want[b] for b in (32, 16, 8, 4, 2)}
    size = viz.size_breakdown(df)
    colours = dict(zip(size.data[0].x, size.data[0].marker.color))
    assert colours["q8"] == colours["ch50+q8"] == want[8] and colours["24+q2"] == want[2]
    assert list(size.data[1].marker.color) == list(size.data[0].marker.color)
    energy = viz.energy_vs_accuracy(df)
    assert {t.name: t.marker.color for t in energy.data if t.mode == "markers"}["4-bit"] == want[4]
    legend = {t.name: (t.marker.color, t.marker.symbol) for t in viz.pareto_scatter(df).data if t.meta == "legend"}
    assert legend["8-bit"] == (want[8], "circle") and legend["channel pruning"][1] == "square"
    assert legend["hollow: simulated"][1] == "circle-open"
    assert {t.name: t.marker.color for t in viz.sensitivity_bars(sens_frame()).data} == {"4-bit": want[4], "2-bit": want[2]}
    lat = viz.latency_distribution({"onnxruntime": [0.1, 0.2], "litert": [0.3, 0.2]})
    assert [t.marker.color for t in lat.data] == [viz.RUNTIME_COLORS["onnxruntime"], viz.RUNTIME_COLORS["litert"]]
    assert viz.color_of("bits", 8.0) == want[8] and viz.color_of("bits", 6) == viz.OTHER_COLOR
    assert viz.color_of("structure", None) == viz.STRUCTURE_COLORS["none"]
    assert viz.color_of("device", "my-board") == viz.color_of("device", "my-board")  # stable for unknowns


# -------------------------------------------------------------------------------------------- labels


def test_estimates_are_labelled_as_estimates():
    df = hand_frame()
    fig = viz.pareto_scatter(df, x="latency_ms_est", y="accuracy")
    assert fig.layout.xaxis.title.text == "latency (est., ms) on raspberry-pi-4"
    assert fig.layout.yaxis.title.text == "accuracy (measured)"
    energy = viz.energy_vs_accuracy(df)
    assert energy.layout.xaxis.title.text == "energy per inference (est., mJ) on raspberry-pi-4"
    assert "estimates" in viz.device_fit_table(df).layout.title.text
    assert viz.axis_label("power_w_est", "jetson-nano") == "power (est., W) on jetson-nano"
    assert viz.axis_label("my_metric") == "my metric (measured)"
    assert viz.axis_label("foo_est") == "foo (est.)"
    assert "measured" in viz.size_breakdown(df).data[0].name
    assert viz.heatmap(df, "latency_ms_est").layout.coloraxis.colorbar.title.text == (
        "latency (est., ms) on raspberry-pi-4")


def test_estimate_picks_a_device_and_says_so(real):
    fig = viz.pareto_scatter(real, x="latency_ms_est")
    assert fig.layout.xaxis.title.text == "latency (est., ms) on raspberry-pi-4"
    assert "device raspberry-pi-4 (of 3" in fig.layout.title.subtitle.text
    host = viz.pareto_scatter(real, x="latency_ms_est", device="host")
    assert host.layout.xaxis.title.text.endswith("on host")
    with pytest.raises(WorkbenchError, match="no rows with device='jetson-nano'"):
        viz.pareto_scatter(real, x="latency_ms_est", device="jetson-nano")


# ------------------------------------------------------------------------------------- errors, empty


def test_error_rows_are_excluded_and_counted():
    df = hand_frame()
    df.loc[[1, 5], "error"] = "RuntimeError: boom"
    df.loc[[1, 5], ["latency_ms_p50", "accuracy"]] = np.nan
    fig = viz.pareto_scatter(df)
    assert _points(fig) == len(df) - 2
    assert "2 of 8 rows with errors not shown" in fig.layout.title.subtitle.text
    assert "ch50+q8" not in " ".join(h for t in fig.data if t.hovertext is not None for h in t.hovertext)
    size = viz.size_breakdown(df)
    assert len(size.data[0].x) == 6 and "2 of 8 rows with errors" in size.layout.title.subtitle.text


@pytest.mark.parametrize("fn", [
    viz.pareto_scatter, viz.heatmap, viz.size_breakdown, viz.latency_distribution, viz.device_fit_table,
    viz.energy_vs_accuracy, viz.sensitivity_bars, viz.estimate_vs_measured,
])
def test_empty_and_all_error_frames_raise(fn):
    frame = sens_frame() if fn is viz.sensitivity_bars else hand_frame()
    with pytest.raises(WorkbenchError, match="empty"):
        fn(frame.iloc[0:0])
    broken = frame.assign(error="ValueError: x")
    with pytest.raises(ValueError, match="error"):
        fn(broken)


def test_missing_column_is_named():
    with pytest.raises(WorkbenchError, match="'f1'"):
        viz.pareto_scatter(hand_frame(), y="f1")
    with pytest.raises(WorkbenchError, match="results DataFrame"):
        viz.pareto_scatter([{"accuracy": 1}])
    with pytest.raises(WorkbenchError, match="no rows with runtime='litert'"):
        viz.heatmap(hand_frame(), runtime="litert")


# ------------------------------------------------------------------------------------------- heatmap


def test_heatmap_values_equal_the_pivot():
    df = hand_frame()
    fig = viz.heatmap(df, "accuracy")
    assert [t.name for t in fig.data] == ["unstructured", "channel", "2:4"]
    for trace in fig.data:
        rows = df[(df.structure == trace.name) | (df.prune == 0)]
        pivot = rows.pivot_table(index="bits", columns="prune", values="accuracy", aggfunc="max")
        pivot = pivot.sort_index(ascending=False).sort_index(axis=1)
        np.testing.assert_array_equal(np.asarray(trace.z, float), pivot.to_numpy(float))
        assert list(trace.x) == [f"{p:.0%}" for p in pivot.columns]
        assert list(trace.y) == [viz.BITS_NAMES[b] for b in pivot.index]
    one = viz.heatmap(df, "latency_ms_p50", structure="channel")
    assert len(one.data) == 1 and one.layout.coloraxis.reversescale  # costs: bright is still better
    with pytest.raises(WorkbenchError, match="structure 'nm'"):
        viz.heatmap(df, structure="nm")


def test_heatmap_aggregates_shared_cells():
    df = pd.concat([hand_frame(), hand_frame().assign(key=lambda d: d.key + "r", accuracy=0.5)])
    fig = viz.heatmap(df, "accuracy", structure="channel", agg="min")
    assert np.nanmax(np.asarray(fig.data[0].z, float)) == 0.5
    assert "show the min" in fig.layout.title.subtitle.text


# ---------------------------------------------------------------------------------------- sensitivity


def test_sensitivity_bars_from_sensitivity(digits):
    import workbench

    sens = workbench.sensitivity(digits, "quantize", [4, 2], limit=100, progress=False)
    fig = viz.sensitivity_bars(sens, top=3)
    assert [t.name for t in fig.data] == ["4-bit", "2-bit"]
    worst = sens.groupby("layer")["drop"].max().nlargest(3).index
    assert set(fig.data[0].x) == set(worst)
    two = sens[sens.level == 2].set_index("layer")["drop"]
    np.testing.assert_allclose(fig.data[1].y, [two[n] for n in fig.data[1].x])
    assert "quantised" in fig.layout.title.text and "accuracy" in fig.layout.yaxis.title.text


def test_prune_sensitivity_levels():
    sens = pd.DataFrame({"layer": ["a", "a"], "level": [0.25, 0.75], "drop": [0.0, 0.3], "kind": "prune",
                         "metric": "f1", "baseline": 0.9, "value": [0.9, 0.6], "type": "Conv2d", "params": 99})
    fig = viz.sensitivity_bars(sens)
    assert [t.name for t in fig.data] == ["25% of weights pruned", "75% of weights pruned"]
    assert "f1: 0.6000" in fig.data[1].hovertext[0] and "pruned" in fig.layout.title.text


# -------------------------------------------------------------------------------------------- latency


def test_latency_distribution_from_samples_and_frame(real):
    fig = viz.latency_distribution({"onnxruntime": [0.06, 0.07, 0.065], "litert": [0.05, 0.09]}, kind="violin")
    assert [t.type for t in fig.data] == ["violin", "violin"] and list(fig.data[1].y) == [0.05, 0.09]
    assert fig.layout.yaxis.title.text == "latency per call (measured, ms)"
    frame = viz.latency_distribution(real)
    assert [t.name for t in frame.data] == ["onnxruntime"] and len(frame.data[0].y) == 2  # one per variant
    with pytest.raises(WorkbenchError, match="finite"):
        viz.latency_distribution({"onnxruntime": []})
    with pytest.raises(WorkbenchError, match="kind"):
        viz.latency_distribution(real, kind="bar")


# ------------------------------------------------------------------------------------------ devices


def test_fit_status_and_table():
    df = hand_frame()
    df = pd.concat([df.assign(device="a"), df.assign(device="b"), df.assign(device="c")], ignore_index=True)
    df.loc[df.device == "b", ["deployable"]] = False
    df.loc[df.device == "b", ["latency_ms_est", "energy_mj_est"]] = np.nan
    df.loc[df.device == "b", "reason"] = "b cannot execute fp32"
    df.loc[(df.device == "c") & (df.bits == 32), "fits"] = False
    st = viz.fit_status(df, latency_ms=4.0, min_metric=0.95)
    get = st.set_index(["variant", "device"])
    assert get.status["baseline", "b"] == "not deployable" and "fp32" in get.why["baseline", "b"]
    assert get.status["baseline", "c"] == "does not fit"
    assert get.status["24+q2", "a"] == "misses budget" and "accuracy 0.6 < 0.95" in get.why["24+q2", "a"]
    assert get.status["fp16", "a"] == "misses budget" and "latency 4.8 ms > 4 ms" in get.why["fp16", "a"]
    assert get.status["q8", "a"] == "meets budget" and get.status["q8", "c"] == "meets budget"
    assert get.status["baseline", "a"] == "meets budget"  # 4.0 ms is within a 4 ms budget
    fig = viz.device_fit_table(df, latency_ms=4.0, min_metric=0.95)
    z = np.asarray(fig.data[0].z, float)
    assert list(fig.data[0].x) == ["a", "b", "c"] and list(fig.data[0].y) == list(hand_frame().variant)
    np.testing.assert_array_equal(z, st.pivot(index="variant", columns="device", values="code")
                                  .reindex(index=list(hand_frame().variant)).to_numpy(float))
    assert "latency ≤ 4 ms (est.)" in fig.layout.title.subtitle.text


def test_device_figures_on_a_measured_frame(real):
    fit = viz.fit_status(real)
    coral = fit[fit.device == "coral-edge-tpu"]
    assert (coral.status == "not deployable").all()  # fp32 on an int8-only TPU
    assert set(fit[fit.device != "coral-edge-tpu"].status) == {"meets budget"}
    energy = viz.energy_vs_accuracy(real)
    assert [a.text for a in energy.layout.annotations] == ["raspberry-pi-4", "host"]
    assert "2 variant × device pairs without an estimate" in energy.layout.title.subtitle.text
    est = viz.estimate_vs_measured(real, device="host")
    assert est.layout.yaxis.title.text == "latency (est., ms) on host" and len(est.data[1].x) == 2
    with pytest.raises(WorkbenchError, match="only check the 'host'"):
        viz.estimate_vs_measured(real, device="raspberry-pi-4")  # measured here, estimated for another board
    table = pd.DataFrame({"variant": ["a", "b", "c"], "measured_ms": [0.1, 1.0, 10.0],
                          "estimated_ms": [0.12, 0.9, 10.0]})
    cal = viz.estimate_vs_measured(table)
    assert "median error 10%, worst 20%" in cal.layout.title.subtitle.text


# ------------------------------------------------------------------------------------- realistic frame


def test_results_frame_follows_the_contract(real):
    for col in ("key", "task", "variant", "prune", "structure", "bits", "recover", "runtime", "device", "accuracy",
                "baseline_accuracy", "fidelity", "size_bytes", "size_deflated_bytes", "latency_ms_p50",
                "latency_ms_est", "energy_mj_est", "fits", "error"):
        assert col in real, col
    assert len(real) == 2 * 3 and real.key.is_unique
    pruned = real[real.variant == "prune-channel-0.50-layer"].iloc[0]
    assert (pruned.prune, pruned.structure, pruned.bits) == (0.5, "channel", 32)
    assert real.baseline_accuracy.nunique() == 1


def test_figures_of_the_measured_frame(real):
    fig = viz.pareto_scatter(real, x="latency_ms_p50", y="accuracy")
    assert fig.layout.xaxis.title.text == "latency, median (measured, ms)"  # the module docstring's example
    assert _points(fig) == 2  # measured figures once per variant, not once per device row
    assert set(fig.data[1].customdata) <= set(real.key)
    assert len(viz.size_breakdown(real).data[0].x) == 2
    assert viz.heatmap(real, "accuracy").data[0].name == "channel"


def test_config_columns(digits):
    import workbench
    from workbench import Prune, Quantize, Recover

    assert viz.config_columns(digits.model) == {"prune": 0.0, "structure": None, "bits": 32, "recover": None}
    v = workbench.compress(digits.model, Prune(0.5, structure="2:4"), Quantize(dtype="fp16"))
    assert viz.config_columns(v) == {"prune": 0.5, "structure": "2:4", "bits": 16, "recover": None}
    cfg = Recover(steps=1)
    assert viz.config_columns(type("H", (), {"lineage": (Quantize(4), cfg)})()) == {
        "prune": 0.0, "structure": None, "bits": 4, "recover": 1}


def test_pareto_build_time_for_500_rows(capsys):
    rng = np.random.default_rng(0)
    df = pd.concat([hand_frame()] * 63, ignore_index=True).iloc[:500]
    df["key"] = [f"r{i}" for i in range(len(df))]
    df["latency_ms_p50"] = rng.uniform(0.02, 0.2, len(df))
    df["accuracy"] = rng.uniform(0.5, 1.0, len(df))
    viz.pareto_scatter(df)  # warm plotly's validators
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        viz.pareto_scatter(df)
        times.append((time.perf_counter() - t0) * 1e3)
    with capsys.disabled():
        print(f"\npareto_scatter, 500 rows: {min(times):.1f} ms best of 5 (median {np.median(times):.1f} ms)")
