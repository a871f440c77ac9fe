"""The ExecuTorch runner: fp32 XNNPACK agrees with ONNX Runtime, any batch (chunked past the planned one), threads
pinned, the shared input check, and a clear error for a model it cannot run."""

from __future__ import annotations

import numpy as np
import pytest

import workbench
from workbench.core.errors import WorkbenchError

pytest.importorskip("executorch")


@pytest.fixture(scope="module")
def digits():
    return workbench.zoo.load("digits-cnn")


@pytest.fixture(scope="module")
def et(digits):
    return workbench.runtime(digits.model, "executorch", threads=1)


def _accuracy(run, task) -> float:
    return float((run(task.eval_inputs[0])[0].argmax(1) == task.eval_labels).mean())


def test_digits_fp32_agrees_with_onnxruntime(digits, et):
    ort = workbench.runtime(digits.model, "onnxruntime", threads=1)
    x = digits.eval_inputs[0]
    assert float(np.max(np.abs(et(x)[0] - ort(x)[0]))) < 1e-4
    assert abs(_accuracy(et, digits) - _accuracy(ort, digits)) <= 0.005
    assert et.runtime == "executorch" and et.threads == 1 and et.artifact.suffix == ".pte"
    assert et.inputs[0].shape == (None, 1, 32, 32) and et.fixed_batch is None and et.version.startswith("1.")


def test_any_batch_including_past_the_planned_one(digits, et):
    from workbench.formats.pte_file import MAX_BATCH

    x = digits.eval_inputs[0][:MAX_BATCH + 6]
    full = et(x)[0]
    assert full.shape == (MAX_BATCH + 6, 10)
    for n in (1, 5, MAX_BATCH):  # the program's memory is planned for MAX_BATCH rows; larger calls are chunked
        np.testing.assert_allclose(et(x[:n])[0], full[:n], atol=1e-5)
    assert et(x[:0])[0].shape == (0, 10)


def test_threads_are_pinned(et, digits):
    from executorch.extension.pybindings import portable_lib

    count = portable_lib._threadpool_get_thread_count
    two = workbench.runtime(digits.model, "executorch", threads=2)
    two(digits.eval_inputs[0][:1])
    assert count() == 2
    et(digits.eval_inputs[0][:1])  # each runner sets the process-wide pool to its own size before a call
    assert count() == 1


def test_bad_input_names_the_signature(et):
    with pytest.raises(WorkbenchError, match=r"x: float32\[N, 1, 32, 32\]"):
        et(np.zeros((2, 1, 16, 16), np.float32))


def test_onnx_model_is_refused_with_advice(tmp_path, digits):
    onnx_handle = workbench.load(workbench.runtime(digits.model, "onnxruntime").artifact)
    with pytest.raises(WorkbenchError, match="onnxruntime"):
        workbench.runtime(onnx_handle, "executorch")


@pytest.mark.slow
def test_silero_vad_falls_back_to_batch_1_and_matches_onnxruntime():
    # its reflection pad becomes an `index` on portable kernels that keeps the traced batch: the dynamic program
    # fails at any other batch, so to_pte exports for batch 1 and the runner feeds rows one call at a time
    vad = workbench.zoo.load("silero-vad")
    et = workbench.runtime(vad.model, "executorch", threads=1)
    assert et.fixed_batch == 1 and et.inputs[0].shape == (1, 576)
    x = [a[:70] for a in vad.eval_inputs]
    for got, want in zip(et(*x), workbench.runtime(vad.model, "onnxruntime", threads=1)(*x)):
        assert got.shape == want.shape and float(np.max(np.abs(got - want))) < 1e-4
    scores = {rt: workbench.measure(vad.model, vad, runtime=rt, threads=1, memory=False).metrics["frame_accuracy"]
              for rt in ("executorch", "onnxruntime")}
    assert abs(scores["executorch"] - scores["onnxruntime"]) <= 0.005
