"""workbench.viz.style: one palette in every figure, and axis words that say measured or estimated."""

from __future__ import annotations

from workbench import viz


def test_colours_are_the_same_in_every_figure(hand, sens):
    df = hand
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
    assert legend["hollow: simulated (runs as float here)"][1] == "circle-open"
    assert {t.name: t.marker.color for t in viz.sensitivity_bars(sens).data} == {"4-bit": want[4], "2-bit": want[2]}
    lat = viz.latency_distribution({"onnxruntime": [0.1, 0.2], "litert": [0.3, 0.2]})
    assert [t.marker.color for t in lat.data] == [viz.RUNTIME_COLORS["onnxruntime"], viz.RUNTIME_COLORS["litert"]]
    assert viz.color_of("bits", 8.0) == want[8] and viz.color_of("bits", 6) == viz.OTHER_COLOR
    assert viz.color_of("structure", None) == viz.STRUCTURE_COLORS["none"]
    assert viz.color_of("device", "my-board") == viz.color_of("device", "my-board")  # stable for unknowns


def test_estimates_are_labelled_as_estimates(hand):
    df = hand
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


def test_senses_and_estimates():
    assert viz.maximized("accuracy") and viz.maximized("baseline_f1") and not viz.maximized("latency_ms_p50")
    assert viz.is_estimate("energy_mj_est") and not viz.is_estimate("size_bytes")


def test_importing_viz_does_not_import_plotly():
    import subprocess
    import sys

    code = "import sys, workbench.viz; print('plotly' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"
