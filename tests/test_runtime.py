"""Runners: conversion on demand and its cache, thread settings, batching on fixed-batch TFLite, errors."""

from __future__ import annotations

import numpy as np
import pytest

import workbench


def test_unknown_runtime_and_bad_threads(digits):
    with pytest.raises(workbench.WorkbenchError, match="onnxruntime"):
        workbench.runtime(digits.model, "tensorrt")
    with pytest.raises(workbench.WorkbenchError, match="threads"):
        workbench.runtime(digits.model, "torch", threads=0)


def test_available_runtimes_lists_the_three_required():
    assert {"torch", "onnxruntime", "litert"} <= set(workbench.available_runtimes())


def test_every_runtime_has_a_realiser(digits):
    from workbench.realize import REALIZERS, realize
    from workbench.runtimes.registry import RUNNERS

    assert set(REALIZERS) == set(RUNNERS)
    with pytest.raises(workbench.WorkbenchError, match="Unknown runtime 'tensorrt'"):
        realize(digits.model, "tensorrt")


def test_conversion_is_cached(digits):
    first = workbench.runtime(digits.model, "onnxruntime")
    mtime = first.artifact.stat().st_mtime_ns
    second = workbench.runtime(digits.model, "onnxruntime", threads=1)
    assert second.artifact == first.artifact and second.artifact.stat().st_mtime_ns == mtime
    # A different model never reuses the cached file.
    import copy

    import torch

    other = copy.deepcopy(digits.model.module)
    with torch.no_grad():
        other.classifier.bias.add_(1.0)
    h2 = workbench.load(other, example_inputs=digits.example_inputs)
    assert h2.fingerprint != digits.model.fingerprint
    assert workbench.runtime(h2, "onnxruntime").artifact != first.artifact


def test_onnx_export_has_dynamic_batch(digits):
    run = workbench.runtime(digits.model, "onnxruntime")
    onnx_handle = workbench.load(run.artifact)
    assert onnx_handle.inputs[0].shape == (None, 1, 32, 32)
    # One self-contained file: no external-data side file beside it.
    assert not [p for p in run.artifact.parent.iterdir() if p.name.startswith(run.artifact.name + ".")]
    for n in (1, 3, 17):
        assert run(digits.eval_inputs[0][:n])[0].shape == (n, 10)


def test_litert_runs_any_batch_on_a_batch_one_flatbuffer(digits):
    run = workbench.runtime(digits.model, "litert")
    tfl = workbench.load(run.artifact)
    assert tfl.framework == "tflite" and tfl.inputs[0].shape[1:] == (1, 32, 32)
    x = digits.eval_inputs[0][:5]
    ref = workbench.runtime(digits.model, "torch")(x)[0]
    assert np.max(np.abs(run(x)[0] - ref)) < 1e-4


def test_wrong_input_names_the_signature(digits):
    run = workbench.runtime(digits.model, "onnxruntime")
    with pytest.raises(workbench.WorkbenchError, match=r"float32\[N, 1, 32, 32\]"):
        run(np.zeros((2, 1, 28, 28), np.float32))
    with pytest.raises(workbench.WorkbenchError, match="astype"):
        run(np.zeros((2, 1, 32, 32), np.float64))
    with pytest.raises(workbench.WorkbenchError, match="1 input"):
        run(np.zeros((2, 1, 32, 32), np.float32), np.zeros((2, 1, 32, 32), np.float32))


def test_torch_threads_restored(digits):
    import torch

    before = torch.get_num_threads()
    workbench.runtime(digits.model, "torch", threads=1)(digits.example_inputs)
    assert torch.get_num_threads() == before


def test_file_handles_refuse_foreign_runtimes(digits):
    onnx_handle = workbench.load(workbench.runtime(digits.model, "onnxruntime").artifact)
    with pytest.raises(workbench.WorkbenchError, match="onnxruntime"):
        workbench.runtime(onnx_handle, "litert")
    with pytest.raises(workbench.WorkbenchError, match="onnxruntime"):
        workbench.runtime(onnx_handle, "torch")


def test_a_model_exported_for_batch_one_is_fed_any_number_of_samples(tmp_path):
    from tests import foreign_models

    h = workbench.load(foreign_models.fixed_batch_pt2(tmp_path / "b1.pt2"))
    assert h.inputs[0].shape[0] == 1
    xs = foreign_models.inputs(7)
    for rt in ("torch", "onnxruntime"):
        run = workbench.runtime(h, rt)
        assert run.fixed_batch == 1
        out = run(*xs)[0]
        one_by_one = np.concatenate([run(xs[0][i:i + 1])[0] for i in range(7)])
        assert out.shape == (7, 5) and np.allclose(out, one_by_one, atol=1e-5)
        assert run(xs[0][:0])[0].shape == (0, 5)  # no samples: no rows, the right width


def test_in_fixed_batches_pads_the_last_chunk_and_drops_the_padding():
    from workbench.runtimes.runner import in_fixed_batches

    seen = []

    def call(arrays):
        seen.append(arrays[0].shape[0])
        return [arrays[0] * 2]

    out = in_fixed_batches(call, [np.arange(5, dtype=np.float32)[:, None]], 2)[0]
    assert seen == [2, 2, 2] and out[:, 0].tolist() == [0, 2, 4, 6, 8]
