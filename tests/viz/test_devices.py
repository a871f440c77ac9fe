"""workbench.viz.devices: fit under a budget, energy per device, estimate against measured, one variant's devices."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench import viz
from workbench.core.errors import WorkbenchError


def test_fit_status_and_table(hand):
    variants = list(hand.variant)
    df = pd.concat([hand.assign(device="a"), hand.assign(device="b"), hand.assign(device="c")], ignore_index=True)
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
    assert list(fig.data[0].x) == ["a", "b", "c"] and list(fig.data[0].y) == variants
    np.testing.assert_array_equal(z, st.pivot(index="variant", columns="device", values="code")
                                  .reindex(index=variants).to_numpy(float))
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


def test_device_compare_one_variant_on_each_device(hand):
    import plotly.graph_objects as go

    rows = pd.concat([hand.assign(device="raspberry-pi-4"), hand.assign(device="esp32-s3", fits=False,
                                                                       latency_ms_est=hand.latency_ms_est * 100)])
    q8 = rows[rows.variant == "q8"]
    fig = viz.device_compare(q8, "q8")
    assert [t.name for t in fig.data] == ["latency (est., ms)", "energy per inference (est., mJ)"]  # with values
    lat = fig.data[0]
    assert list(lat.x) == ["raspberry-pi-4", "esp32-s3"] and list(lat.marker.pattern.shape) == ["", "x"]
    assert list(lat.text) == ["3.2", "320"] and fig.layout.yaxis.type == "log"  # a factor of 100: log axis
    assert list(lat.marker.color) == [viz.DEVICE_COLORS["raspberry-pi-4"], viz.DEVICE_COLORS["esp32-s3"]]
    w = go.FigureWidget(fig)
    traces = list(w.data)
    assert viz.device_compare(rows[rows.variant == "baseline"], "baseline", fig=w) is w
    assert list(w.data) == traces and list(w.data[0].y) == pytest.approx([4.0, 400.0])
    assert w.layout.title.text.startswith("baseline on each device")
    with pytest.raises(WorkbenchError, match="no device has an estimate"):
        viz.device_compare(q8.drop(columns=["latency_ms_est", "energy_mj_est"]), "q8")
