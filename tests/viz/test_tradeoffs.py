"""workbench.viz.tradeoffs: the Pareto front and the scatter that draws it (hover, symbols, highlight, colour)."""

from __future__ import annotations

import numpy as np
import pytest

from workbench import viz
from workbench.core.errors import WorkbenchError
from workbench.viz.tradeoffs import pareto_mask

# front of (min latency, max accuracy): ch50+q8 (0.30), ch50 (0.40), q8 (0.80, 0.985), baseline (1.00, 0.99);
# fp16 ties baseline's accuracy but is slower, un50/q4 slower and worse than q8, 24+q2 worse than q8.
FRONT = ["ch50+q8", "ch50", "q8", "baseline"]


def test_front_on_hand_made_frame(hand, points):
    df = hand
    on = viz.pareto_front(df, "latency_ms_p50", "accuracy")
    assert sorted(df.variant[on]) == sorted(FRONT)
    fig = viz.pareto_scatter(df, x="latency_ms_p50", y="accuracy")
    front = fig.data[0]
    assert front.name == "Pareto front" and front.mode == "lines"
    assert front.line.shape == "hv"  # x minimised: horizontal then vertical steps
    by_name = df.set_index("variant")
    assert list(front.x) == [by_name.latency_ms_p50[v] for v in FRONT]
    assert list(front.y) == [by_name.accuracy[v] for v in FRONT]
    assert points(fig) == len(df)


def test_front_senses_can_be_given(hand):
    df = hand
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
    mask = pareto_mask(v, [False, True])
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
    assert (pareto_mask(three, [False, True, True]) == brute3).all()


def test_hover_shows_configs_and_customdata_is_the_key(hand):
    fig = viz.pareto_scatter(hand)
    eight = next(t for t in fig.data if t.name == "8-bit")
    assert set(eight.customdata) == set(hand.key[hand.bits == 8])
    text = " ".join(eight.hovertext)
    assert "<b>ch50+q8</b>" in text and "pruned: 50%" in text and "structure: channel" in text
    assert "weight bits: 8" in text and "accuracy: 0.9300" in text


def test_symbols_mark_structure_and_simulation(hand):
    fig = viz.pareto_scatter(hand)
    two = next(t for t in fig.data if t.name == "2-bit")
    assert list(two.marker.symbol) == ["triangle-up-open"]  # 2:4 pruned, simulated (not realised)
    four = next(t for t in fig.data if t.name == "4-bit")
    assert list(four.marker.symbol) == ["circle-open"]
    assert "simulated" in fig.layout.title.subtitle.text


def test_highlight_rings_the_row(hand, trace):
    fig = viz.pareto_scatter(hand, highlight="k4")
    ring = trace(fig, "highlighted")
    assert list(ring.x) == [0.40] and list(ring.y) == [0.95] and ring.showlegend
    assert len(trace(viz.pareto_scatter(hand), "highlighted").x) == 0
    with pytest.raises(WorkbenchError, match="not a row key"):
        viz.pareto_scatter(hand, highlight="nope")


def test_numeric_colour_uses_a_scale(hand):
    df = hand.assign(fidelity=np.linspace(0.9, 1, 8))
    fig = viz.pareto_scatter(df, color="fidelity")
    assert fig.data[1].name == "variants" and len(fig.data[1].marker.color) == 8


def test_estimate_picks_a_device_and_says_so(real):
    fig = viz.pareto_scatter(real, x="latency_ms_est")
    assert fig.layout.xaxis.title.text == "latency (est., ms) on raspberry-pi-4"
    assert "device raspberry-pi-4 (of 3" in fig.layout.title.subtitle.text
    host = viz.pareto_scatter(real, x="latency_ms_est", device="host")
    assert host.layout.xaxis.title.text.endswith("on host")
    with pytest.raises(WorkbenchError, match="no rows with device='jetson-nano'"):
        viz.pareto_scatter(real, x="latency_ms_est", device="jetson-nano")


def test_figures_of_the_measured_frame(real, points):
    fig = viz.pareto_scatter(real, x="latency_ms_p50", y="accuracy")
    assert fig.layout.xaxis.title.text == "latency, median (measured, ms)"  # the package docstring's example
    assert points(fig) == 2  # measured figures once per variant, not once per device row
    assert set(fig.data[1].customdata) <= set(real.key)
    assert len(viz.size_breakdown(real).data[0].x) == 2
    assert viz.heatmap(real, "accuracy").data[0].name == "channel"


def test_error_bars_show_the_interval_and_the_latency_spread(hand, real):
    import plotly.graph_objects as go

    df = hand.assign(accuracy_low=hand.accuracy - 0.01, accuracy_high=hand.accuracy + 0.02,
                     latency_ms_p10=hand.latency_ms_p50 * 0.9, latency_ms_p90=hand.latency_ms_p50 * 1.5)
    fig = viz.pareto_scatter(df, x="latency_ms_p50", y="accuracy")
    eight = next(t for t in fig.data if t.name == "8-bit")
    rows = df[df.bits == 8]
    assert eight.error_y.visible and not eight.error_y.symmetric
    assert list(eight.error_y.array) == pytest.approx([0.02] * len(rows))
    assert list(eight.error_y.arrayminus) == pytest.approx([0.01] * len(rows))
    assert list(eight.error_x.array) == pytest.approx(list(rows.latency_ms_p50 * 0.5))
    assert list(eight.error_x.arrayminus) == pytest.approx(list(rows.latency_ms_p50 * 0.1))
    assert "95 % interval" in fig.layout.title.subtitle.text and "10th–90th" in fig.layout.title.subtitle.text
    assert "accuracy: 0.9300 (0.9200–0.9500)" in " ".join(eight.hovertext)
    # Without the columns there are no bars, and an in-place update to such a frame removes them.
    assert not any(t.error_y.visible for t in viz.pareto_scatter(hand).data if t.error_y.visible is not None)
    w = go.FigureWidget(fig)
    viz.update_pareto(w, hand)
    assert not any(t.error_y.visible or t.error_x.visible for t in w.data if t.mode == "markers")
    # A measured frame carries the columns, so its figure has the bars.
    measured = viz.pareto_scatter(real, x="latency_ms_p50", y="accuracy")
    bars = [t for t in measured.data if t.mode == "markers" and t.error_y.visible]
    assert bars and all(len(t.error_y.array) == len(t.x) for t in bars)
