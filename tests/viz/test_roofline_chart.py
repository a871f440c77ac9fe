"""workbench.viz.roofline_chart: a device profile's roofline with a model's layers, from the estimator's table."""

from __future__ import annotations

import numpy as np
import pytest

import workbench
from workbench import Quantize
from workbench.core.errors import WorkbenchError
from workbench.hardware import device, devices, layer_table
from workbench.viz.roofline_chart import BOUND_COLORS, memory_levels, ridge_points, roofline, roofline_points


def trace(fig, name):
    return next(t for t in fig.data if t.name == name)


def test_the_ridge_point_is_peak_over_main_memory_bandwidth_on_every_profile():
    for name, p in devices().items():
        ridges = ridge_points(name)
        assert set(ridges) == {d for d in p.dtypes if d in p.peak_ops}, name
        for d, x in ridges.items():
            assert x == pytest.approx(p.peak_ops[d] / p.memory_bandwidth_bytes_s), (name, d)
    fig = roofline("raspberry-pi-4", workbench.zoo.load("digits-cnn"))
    r = trace(fig, "ridge points")
    assert list(r.x) == pytest.approx([7.5, 15.0]) and list(r.y) == pytest.approx([96e9, 192e9])


def test_layers_sit_at_their_intensity_and_estimated_rate_coloured_by_the_estimators_verdict(digits):
    table = layer_table(digits.model, "jetson-orin-nano")
    computes = table[table.ops > 0]
    fig = roofline("jetson-orin-nano", digits)
    plotted = {}
    for bound, colour in BOUND_COLORS.items():
        t = trace(fig, f"{bound}-bound layers")
        assert t.marker.color == colour
        for x, y, hover in zip(t.x, t.y, t.hovertext):
            plotted[hover.split("</b>")[0].removeprefix("<b>")] = (x, y, bound)
    assert set(plotted) == set(computes.layer)  # every layer that computes, and no folded BatchNorm
    for r in computes.itertuples():
        x, y, bound = plotted[r.layer]
        assert x == pytest.approx(r.ops / (r.weight_read_bytes + r.activation_bytes))
        assert y == pytest.approx(r.ops / (r.time_s - r.overhead_s)) and bound == r.bound
    assert {b for *_, b in plotted.values()} == {"compute", "memory"}  # this model on this device has both


def test_the_points_add_up_to_the_estimate(digits):
    """The chart's rates are the estimator's times: summed back, with the overheads, they give its latency."""
    q8 = workbench.compress(digits.model, Quantize(8, activations=8), task=digits)
    for name in ("raspberry-pi-4", "esp32-s3", "coral-edge-tpu"):
        pts = roofline_points(name, q8)
        table = layer_table(q8, name)
        total = (pts.ops / pts.ops_per_s_est).sum() + table.overhead_s.sum() + device(name).inference_overhead_s
        assert total * 1e3 == pytest.approx(workbench.estimate(q8, name).latency_ms_est, rel=1e-9)


def test_no_point_beats_the_datasheet_roofline(digits):
    for name in devices():
        if not device(name).supports("fp32"):
            continue
        pts = roofline_points(name, digits)
        fastest = max(bw for _, bw in memory_levels(name))
        roof = np.minimum([device(name).peak_ops[d] for d in pts.dtype], fastest * pts.intensity)
        assert (pts.ops_per_s_est <= roof * (1 + 1e-9)).all(), name


def test_the_roofs_and_slopes_are_the_profiles_figures(digits):
    p = device("host")
    fig = roofline(p, digits.model, whole_model=False)
    for d, peak in p.peak_ops.items():
        roof = next(t for t in fig.data if t.name.startswith(f"{d} peak ") and t.showlegend is not False)
        assert set(roof.y) == {peak} and roof.x[0] == pytest.approx(peak / p.memory_bandwidth_bytes_s)
    main = trace(fig, f"main memory {p.memory_bandwidth_bytes_s / 1e9:.3g} GB/s")
    assert main.y[0] / main.x[0] == pytest.approx(p.memory_bandwidth_bytes_s)
    assert [n for n, _ in memory_levels(p)] == ["main memory", "cache", "last-level cache"]
    assert [n for n, _ in memory_levels("esp32-s3")] == ["main memory", "flash"]
    assert "whole model" not in {t.name for t in fig.data}


def test_it_is_labelled_as_an_estimate_with_the_profile(digits):
    fig = roofline("esp32-s3", digits)
    assert fig.layout.title.text == "Roofline of esp32-s3 (estimate from its device profile)"
    assert "est." in fig.layout.yaxis.title.text and "esp32-s3" in fig.layout.yaxis.title.text
    assert fig.layout.xaxis.type == fig.layout.yaxis.type == "log"
    star = trace(fig, "whole model")
    pts = roofline_points("esp32-s3", digits)
    assert star.x[0] == pytest.approx(pts.ops.sum() / pts.bytes.sum())


def test_a_layer_table_gives_the_same_points(digits):
    table = layer_table(digits.model, "stm32h7")
    assert roofline_points("stm32h7", table).equals(roofline_points("stm32h7", digits.model))
    with pytest.raises(WorkbenchError, match="lacks"):
        roofline_points("stm32h7", table.drop(columns=["bound"]))


def test_wrong_arguments_say_what_to_do(digits):
    with pytest.raises(WorkbenchError, match="cannot execute fp32.*Quantize"):
        roofline("coral-edge-tpu", digits)
    with pytest.raises(WorkbenchError, match="the device comes first"):
        roofline(digits, "raspberry-pi-4")
    with pytest.raises(WorkbenchError, match="Unknown device"):
        roofline("no-such-board", digits)
