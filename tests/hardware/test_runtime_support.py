"""Which runtimes each device runs: profiles say so (sourced), and estimates and fit respect it."""

from __future__ import annotations

import math

import pytest

import workbench
from workbench.hardware import device, devices
from workbench.hardware.profile import RUNTIME_ALIASES


def test_every_bundled_profile_sources_its_runtimes():
    for name, prof in devices().items():
        assert prof.source("runtimes"), f"{name}: runtimes has no source"


def test_runtime_support_per_device_class():
    # x86 host runs all five; Arm boards run ExecuTorch/XNNPACK and OpenVINO's ARM plugin; microcontrollers only
    # LiteRT's flatbuffer through TFLite Micro; Jetsons neither OpenVINO nor ExecuTorch.
    assert all(device("host").runs(r) for r in ("torch", "onnxruntime", "litert", "openvino", "executorch"))
    assert device("raspberry-pi-5").runs("executorch") and device("raspberry-pi-4").runs("openvino")
    for mcu in ("stm32h7", "esp32-s3"):
        prof = device(mcu)
        assert prof.runs("litert") and not any(prof.runs(r) for r in ("onnxruntime", "openvino", "executorch", "torch"))
    assert device("snapdragon-8-gen-2").runs("executorch") and not device("snapdragon-8-gen-2").runs("openvino")
    assert not device("jetson-orin-nano").runs("openvino") and device("jetson-orin-nano").runs("torch")
    assert set(RUNTIME_ALIASES) >= set(workbench.RUNTIMES)


def test_estimate_on_a_runtime_the_device_lacks_is_not_deployable(digits):
    on = workbench.estimate(digits.model, "raspberry-pi-4", runtime="executorch")
    off = workbench.estimate(digits.model, "stm32h7", runtime="openvino")
    assert on.deployable and on.latency_ms_est > 0
    assert not off.deployable and not off.fits and math.isnan(off.latency_ms_est) and math.isnan(off.energy_mj_est)
    assert off.reason.startswith("stm32h7 does not run openvino: its runtimes are tflite-micro")
    # no runtime named: the estimate is the device's alone, as before
    assert workbench.estimate(digits.model, "stm32h7").latency_ms_est == workbench.estimate(
        digits.model, "stm32h7", runtime="litert").latency_ms_est


def test_measure_rows_carry_the_runtime_gap(digits):
    rows = workbench.to_frame(workbench.measure(digits.model, digits, runtime=["onnxruntime", "litert"], threads=1,
                                                devices=["esp32-s3"], limit=20, memory=False))
    by = rows.set_index("runtime")
    assert list(rows["runtime"]) == ["onnxruntime", "litert"]
    assert not by.loc["onnxruntime", "deployable"] and "does not run onnxruntime" in by.loc["onnxruntime", "reason"]
    assert by.loc["litert", "deployable"]


def test_lm_estimate_respects_the_runtime(tiny_lm):
    from workbench.hardware.lm_estimate import estimate_lm

    assert not estimate_lm(tiny_lm, "snapdragon-8-gen-2", runtime="openvino").deployable
    assert estimate_lm(tiny_lm, "snapdragon-8-gen-2", runtime="executorch").reason.find("does not run") < 0


def test_measure_all_means_every_installed_runtime(digits):
    from workbench.runtimes import resolve_runtimes

    assert resolve_runtimes("all") == tuple(workbench.available_runtimes())
    assert resolve_runtimes(["torch", "all"])[0] == "torch" and len(set(resolve_runtimes(["torch", "all"]))) == len(
        resolve_runtimes("all"))
    with pytest.raises(workbench.WorkbenchError, match="Unknown runtime.*'tensorrt'"):
        resolve_runtimes(["onnxruntime", "tensorrt"])
    assert workbench.grid(prune=[0], bits=[32], runtimes="all").runtimes == resolve_runtimes("all")
