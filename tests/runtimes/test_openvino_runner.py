"""The OpenVINO runner: fp32 really is fp32 (agrees with ONNX Runtime), dynamic and fixed batches, the shared input
check, and clear errors for what it cannot run."""

from __future__ import annotations

import numpy as np
import pytest

import workbench
from workbench.core.errors import WorkbenchError
from workbench.core.handle import ModelHandle

pytest.importorskip("openvino")


@pytest.fixture(scope="module")
def digits():
    return workbench.zoo.load("digits-cnn")


def _accuracy(run, task) -> float:
    return float((run(task.eval_inputs[0])[0].argmax(1) == task.eval_labels).mean())


def test_digits_fp32_agrees_with_onnxruntime(digits):
    ov = workbench.runtime(digits.model, "openvino", threads=1)
    ort = workbench.runtime(digits.model, "onnxruntime", threads=1)
    x = digits.eval_inputs[0]
    # bf16 inference (the CPU plugin's default on this CPU) differs by ~0.1: the runner must pin f32
    assert float(np.max(np.abs(ov(x)[0] - ort(x)[0]))) < 1e-4
    assert abs(_accuracy(ov, digits) - _accuracy(ort, digits)) <= 0.005
    assert ov.runtime == "openvino" and ov.threads == 1 and ov.artifact.suffix == ".onnx"
    assert ov.inputs[0].shape == (None, 1, 32, 32) and ov.version.startswith("20")


def test_any_batch_and_repeated_shapes(digits):
    run = workbench.runtime(digits.model, "openvino", threads=1)
    x = digits.eval_inputs[0][:7]
    full = run(x)[0]
    for n in (1, 7, 1, 3, 1):  # static-shape compilations are reused and evicted; results never change
        np.testing.assert_allclose(run(x[:n])[0], full[:n], atol=1e-5)


def test_fixed_batch_ir_runs_any_number_of_samples(digits, tmp_path):
    import openvino as ov

    from workbench.formats.openvino_file import to_openvino_ir

    model = ov.Core().read_model(str(to_openvino_ir(digits.model)))
    model.reshape([1, 1, 32, 32])  # how many foreign files come: batch fixed at 1
    ov.save_model(model, str(tmp_path / "fixed.xml"), compress_to_fp16=False)
    run = workbench.runtime(workbench.load(tmp_path / "fixed.xml"), "openvino", threads=1)
    assert run.fixed_batch == 1
    x = digits.eval_inputs[0][:5]
    want = workbench.runtime(digits.model, "onnxruntime", threads=1)(x)[0]
    np.testing.assert_allclose(run(x)[0], want, atol=1e-4)


def test_bad_input_names_the_signature(digits):
    run = workbench.runtime(digits.model, "openvino", threads=1)
    with pytest.raises(WorkbenchError, match=r"expected x: float32\[N, 1, 32, 32\]"):
        run(np.zeros((2, 3, 32, 32), np.float32))
    with pytest.raises(WorkbenchError, match="dtype float64"):
        run(np.zeros((2, 1, 32, 32)))


def test_tflite_and_executorch_models_are_refused_with_a_pointer():
    for fw, fmt, hint in (("tflite", "tflite", "litert"), ("executorch", "pte", "executorch")):
        h = ModelHandle(framework=fw, inputs=[], outputs=[], num_params=0, fingerprint="0" * 64, source_format=fmt,
                        name="m")
        with pytest.raises(WorkbenchError, match=f"Run it with '{hint}'"):
            workbench.runtime(h, "openvino")


def test_missing_openvino_says_how_to_install(digits, monkeypatch):
    import importlib.util

    from workbench.runtimes import registry

    real = importlib.util.find_spec
    monkeypatch.setattr(registry.importlib.util, "find_spec", lambda n, *a: None if n == "openvino" else real(n, *a))
    with pytest.raises(WorkbenchError, match="pip install openvino"):
        workbench.runtime(digits.model, "openvino")
    assert "openvino" not in registry.available_runtimes()


def test_peak_memory_probe_runs(digits):
    from workbench.formats.convert import to_onnx
    from workbench.measurement.record import peak_memory

    mem = peak_memory("openvino", to_onnx(digits.model), [digits.example_inputs[0][:1]], 1)
    assert mem is not None and 0 < mem < 500 * 2**20
