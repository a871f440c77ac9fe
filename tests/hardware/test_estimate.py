"""Estimates on the real zoo models: sensible ranking, fit, deployability, the energy/power/battery algebra,
the extended per-layer profile, and host calibration. Only relative checks: no absolute time is asserted."""

from __future__ import annotations

import math

import numpy as np
import pytest

import workbench
from workbench import zoo
from workbench.core.layers import COLUMNS, count_macs, profile_layers
from workbench.hardware import device, estimate, estimates, layer_table
from workbench.measurement.calibrate import calibrate_host


@pytest.fixture(scope="module")
def minilm():
    return zoo.load("minilm")


def test_orin_is_faster_than_pi4(digits, minilm):
    for task in (digits, minilm):
        for dtype in ("fp32", "int8"):
            orin = estimate(task, "jetson-orin-nano", dtype=dtype)
            pi4 = estimate(task, "raspberry-pi-4", dtype=dtype)
            assert orin.deployable and pi4.deployable
            assert orin.latency_ms_est < pi4.latency_ms_est, (task.name, dtype)
    # a faster, newer board beats the older one too
    assert estimate(minilm, "raspberry-pi-5").latency_ms_est < estimate(minilm, "raspberry-pi-4").latency_ms_est


def test_mcu_cannot_fit_minilm_but_fits_digits_at_int8(digits, minilm):
    big = estimate(minilm, "stm32h7", dtype="int8")
    assert not big.fits and "flash" in big.reason and big.weight_bytes > device("stm32h7").storage_bytes
    small = estimate(digits, "stm32h7", dtype="int8")
    # 136k int8 weights (+ fp32 biases) live in the 2 MB flash; the largest layer's activations in the 1 MB SRAM
    assert small.fits and small.reason == ""
    assert 130_000 < small.weight_bytes < 150_000 and small.peak_activation_bytes < 100_000
    assert not estimate(minilm, "esp32-s3", dtype="int8").fits
    assert estimate(minilm, "raspberry-pi-4").fits


def test_coral_runs_int8_only(digits):
    fp32 = estimate(digits, "coral-edge-tpu")
    assert not fp32.deployable and "cannot execute fp32" in fp32.reason
    assert all(math.isnan(v) for v in (fp32.latency_ms_est, fp32.energy_mj_est, fp32.power_w_est))
    int8 = estimate(digits, "coral-edge-tpu", dtype="int8")
    assert int8.deployable and int8.latency_ms_est > 0 and int8.dtype == "int8"
    assert not estimate(digits, "jetson-nano", dtype="int8").deployable  # TensorRT int8 needs sm >= 6.1


def test_int8_uses_less_energy_than_fp32(digits, minilm):
    for task in (digits, minilm):
        for name in ("raspberry-pi-4", "raspberry-pi-5", "jetson-orin-nano", "stm32h7", "host"):
            e8 = estimate(task, name, dtype="int8")
            e32 = estimate(task, name, dtype="fp32")
            assert e8.energy_mj_est < e32.energy_mj_est, (task.name, name)
            assert e8.weight_bytes < e32.weight_bytes / 3


def test_energy_power_battery_are_consistent(digits):
    prof = device("raspberry-pi-4")
    e = estimate(digits, prof, rate_hz=10.0, battery_wh=20.0)
    energy_j = e.energy_mj_est / 1e3
    assert e.power_w_at_rate_est == pytest.approx(prof.idle_w + energy_j * 10.0)
    assert e.battery_h_est == pytest.approx(20.0 / e.power_w_at_rate_est)
    assert e.power_w_est == pytest.approx(prof.idle_w + energy_j / (e.latency_ms_est / 1e3))
    assert prof.idle_w < e.power_w_at_rate_est < e.power_w_est <= prof.active_w * 1.5
    # the per-layer table adds up to the totals
    t = e.layers
    assert t["time_s"].sum() + prof.inference_overhead_s == pytest.approx(e.latency_ms_est / 1e3)
    dynamic = t["energy_j"].sum() + (prof.active_w - prof.idle_w) * e.latency_ms_est / 1e3
    assert dynamic == pytest.approx(energy_j)
    # back to back on a battery
    b2b = estimate(digits, prof, battery_wh=20.0)
    assert b2b.battery_h_est == pytest.approx(20.0 / b2b.power_w_est) and b2b.battery_h_est < e.battery_h_est
    # a rate the device cannot sustain gets no power figure, and says why
    fast = estimate(digits, prof, rate_hz=1e6)
    assert math.isnan(fast.power_w_at_rate_est) and "exceeds" in fast.reason


def test_batch_scales_latency_sublinearly_and_energy_per_sample(digits):
    one = estimate(digits, "raspberry-pi-5")
    eight = estimate(digits, "raspberry-pi-5", batch=8)
    assert one.latency_ms_est < eight.latency_ms_est < 8 * one.latency_ms_est
    assert eight.energy_mj_est < one.energy_mj_est  # per inference: overheads amortised


def test_rows_and_columns(digits):
    e = estimate(digits, "jetson-nano", rate_hz=5, battery_wh=10)
    row = e.to_row()
    for key in ("device", "latency_ms_est", "energy_mj_est", "power_w_est", "battery_h_est", "fits",
                "deployable", "reason", "formula"):
        assert key in row
    assert all(k.endswith("[jetson-nano]") for k in e.to_row(wide=True))
    assert "max(" in e.formula and "2·MACs" in e.formula
    df = estimates(digits, ["raspberry-pi-4", "coral-edge-tpu"])
    assert list(df.device) == ["raspberry-pi-4", "coral-edge-tpu"] and list(df.deployable) == [True, False]
    assert len(estimates(digits)) == len(workbench.devices())


def test_estimate_rejects_bad_input(digits):
    with pytest.raises(workbench.WorkbenchError, match="batch"):
        estimate(digits, "host", batch=0)
    with pytest.raises(workbench.WorkbenchError, match="rate_hz"):
        estimate(digits, "host", rate_hz=-1)
    with pytest.raises(workbench.WorkbenchError, match="dtype"):
        estimate(digits, "host", dtype="fp8")
    onnx = workbench.load(workbench.runtime(digits.model, "onnxruntime").artifact)
    with pytest.raises(workbench.WorkbenchError, match="PyTorch"):
        estimate(onnx, "host")


def test_dtype_follows_the_compression_record(digits):
    quantize = pytest.importorskip("workbench.compression.quantize")
    from workbench.compression.base import compress

    q8a8 = compress(digits.model, quantize.Quantize(8, activations=8), task=digits)
    e = estimate(q8a8, "coral-edge-tpu")
    assert e.deployable and e.dtype == "int8"
    assert estimate(q8a8, "stm32h7").weight_bytes < estimate(digits, "stm32h7").weight_bytes / 3
    q4 = compress(digits.model, quantize.Quantize(4))  # weight-only: computes in float
    w4 = estimate(q4, "coral-edge-tpu")
    assert not w4.deployable and "activations" in w4.reason
    assert estimate(q4, "raspberry-pi-4").weight_bytes < estimate(digits, "raspberry-pi-4").weight_bytes / 5
    fp16 = compress(digits.model, quantize.Quantize(dtype="fp16"))
    assert estimate(fp16, "jetson-nano").deployable and not estimate(fp16, "raspberry-pi-4").deployable


def test_profile_layers_extension(digits, minilm):
    base = profile_layers(digits.model)
    assert list(base.columns) == COLUMNS and list(base.columns[:5]) == ["layer", "type", "params", "macs",
                                                                        "weight_shape"]
    assert int(base.macs.sum()) == count_macs(digits.model) and int(base.params.sum()) == digits.model.num_params
    stem = base.set_index("layer").loc["stem.conv"]
    assert stem.input_bytes == 4 * 32 * 32 and stem.output_bytes == 4 * 32 * 16 * 16 and stem.weight_bytes == 4 * 288
    assert stem.kind == "conv" and base.set_index("layer").loc["blocks.0.dw.conv"].kind == "depthwise"
    full = profile_layers(minilm.model, functional=True)
    assert int(full.macs.sum()) == count_macs(minilm.model)  # attention matmuls included
    assert (full.kind == "attention").sum() == 6 and (full.kind == "elementwise").any()
    # the temporary hooks are gone
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in minilm.model.module.modules())


def test_layer_table_explains_the_estimate(digits):
    t = layer_table(digits, "stm32h7", dtype="int8")
    assert {"layer", "kind", "dtype", "ops", "compute_s", "memory_s", "bound", "time_s", "energy_j"} <= set(t.columns)
    assert t.loc[t.folded, "time_s"].eq(0).all()  # BatchNorm folded
    assert (t.dtype[t.macs > 0] == "int8").all()


def test_calibrate_host_writes_a_profile_that_tracks_measurements(tmp_path, monkeypatch, digits):
    from workbench.measurement.calibration_variants import calibration_variants

    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path))
    variants = calibration_variants((), names=["cnn-w0.5", "mlp-small", "mlp-big", "recurrent"])
    prof, df = calibrate_host(tasks=("digits-cnn",), variants=variants, rounds=2, seconds=0.05)
    assert (tmp_path / "host_profile.yaml").is_file()
    assert list(df.variant) == ["digits-cnn", *variants]
    assert (df.measured_ms > 0).all() and (df.estimated_ms > 0).all()
    assert (df.error.abs() < 0.5).all(), df  # loose: few, noisy points; the prior holds what they cannot pin
    host = device("host")
    assert "calibrate_host" in host.source("efficiency") and host.layer_overhead_s == prof.layer_overhead_s
    assert all(0 < v <= 1 for v in host.kind_efficiency.values())
    # estimates follow the measurements' order: the bigger MLP is estimated slower, as measured
    ordered = df.set_index("variant")
    assert np.sign(ordered.estimated_ms["mlp-big"] - ordered.estimated_ms["mlp-small"]) == np.sign(
        ordered.measured_ms["mlp-big"] - ordered.measured_ms["mlp-small"])
