"""Quantize and Prune on TFLite files from other toolchains, in place: the two MediaPipe fixtures (float16 weights
behind DEQUANTIZE; float32 weights with pre-v3a operator codes and PRELU) and an fp16 file made here.

Fidelity is the task's default for unlabelled inputs: mean cosine of the first output with the original file's,
on 8 random-normal inputs. Measured here (ai-edge-quantizer 0.10, ai-edge-litert 2.3): dynamic int8 0.998
(face) and 0.99996 (hand); static int8 0.995 / 0.9996; fp16 1.0 / 1.0; int4 0.965 / 0.997; Prune(0.5)
0.918 / 0.993. The thresholds below sit under those with a margin.
"""

from __future__ import annotations

import numpy as np
import pytest

import workbench
from workbench import Prune, Quantize, compress, prune_plan
from workbench.core.paths import data_file
from workbench.formats.tflite_graph import dequantized_weights, tflite_weights

FIXTURES = {"face": ("foreign/face_detection_short_range.tflite", (8, 128, 128, 3)),
            "hand": ("foreign/hand_recrop.tflite", (8, 256, 256, 3))}
BYTES = {"float32": 4, "float16": 2, "int8": 1, "int4": 0.5}


def task_for(name: str) -> workbench.Task:
    path, shape = FIXTURES[name]
    handle = workbench.load(data_file(path))
    return workbench.Task.from_model(handle, [np.random.default_rng(0).standard_normal(shape).astype(np.float32)])


@pytest.fixture(scope="module")
def face():
    return task_for("face")


@pytest.fixture(scope="module")
def hand():
    return task_for("hand")


@pytest.fixture(scope="module")
def tiny(tflite_file, tiny_inputs):
    """The tiny CNN with float16 weights behind DEQUANTIZE (litert_torch, then ai_edge_quantizer's fp16 recipe)."""
    fp16 = compress(workbench.load(tflite_file), Quantize(dtype="fp16"))
    rng = np.random.default_rng(1)
    return workbench.Task.from_model(workbench.load(fp16.path), [rng.standard_normal((8, 1, 8, 8)).astype(np.float32)])


@pytest.fixture(params=["face", "hand", "tiny"])
def any_task(request, face, hand, tiny):
    return {"face": face, "hand": hand, "tiny": tiny}[request.param]


def fidelity(task, variant) -> float:
    return task.evaluate(workbench.runtime(variant, "litert"))["fidelity"]


def weight_bytes(path) -> float:
    return sum(w.array.size * BYTES[w.dtype] for w in tflite_weights(path))


# --------------------------------------------------------------------------------------------- Quantize


def test_int8_really_quantises_every_weight_and_keeps_fidelity(any_task, tmp_path):
    q8 = compress(any_task, Quantize(8))
    weights = tflite_weights(q8.path)
    assert weights and all(w.dtype == "int8" for w in weights)
    fp32 = dequantized_weights(any_task.model.path, tmp_path / "fp32.tflite")
    assert weight_bytes(fp32) / weight_bytes(q8.path) == pytest.approx(4.0)  # the weights: 4x smaller than fp32
    if fp32.stat().st_size > 100_000:  # the file, scales, biases and graph included: over 2x (not for 48 weights)
        assert q8.path.stat().st_size < 0.5 * fp32.stat().st_size
    assert fidelity(any_task, q8) >= 0.99
    assert q8.meta["route"][-1].endswith("then ai_edge_quantizer dynamic int8") and "float_ops" not in q8.meta


def test_the_route_says_what_was_done_to_each_file(face, hand, tiny):
    assert compress(face, Quantize(8)).meta["route"] == [
        "q8: tflite in place: operator codes upgraded, 74 fp16 tensors dequantised, then ai_edge_quantizer dynamic int8"]
    assert compress(hand, Quantize(8)).meta["route"] == [
        "q8: tflite in place: operator codes upgraded, then ai_edge_quantizer dynamic int8"]
    assert compress(tiny, Quantize(8)).meta["route"] == [
        "q8: tflite in place: 2 fp16 tensors dequantised, then ai_edge_quantizer dynamic int8"]


@pytest.mark.parametrize("name", ["face", "hand"])
def test_static_int8_fp16_and_int4(name, face, hand):
    task = {"face": face, "hand": hand}[name]
    static = compress(task, Quantize(8, activations=8))
    assert "signature added" in static.meta["route"][-1] and all(w.dtype == "int8" for w in tflite_weights(static.path))
    assert fidelity(task, static) >= 0.98
    half = compress(task, Quantize(dtype="fp16"))
    assert {w.dtype for w in tflite_weights(half.path)} == {"float16"} and fidelity(task, half) >= 0.9999
    q4 = compress(task, Quantize(4))  # ai_edge_quantizer has no int4 depthwise kernel: those stay float
    kinds = {(w.op_type, w.dtype) for w in tflite_weights(q4.path)}
    assert kinds == {("CONV_2D", "int4"), ("DEPTHWISE_CONV_2D", "float32")}
    assert q4.meta["float_ops"] == {"DEPTHWISE_CONV_2D": {"face": 16, "hand": 19}[name]}
    assert fidelity(task, q4) >= 0.9


def test_per_tensor_int8_keeps_depthwise_per_channel_so_the_model_still_works(hand):
    # LiteRT's hybrid depthwise kernel is wrong with one weight scale per tensor (fidelity nan before the fix).
    q = compress(hand, Quantize(8, granularity="tensor"))
    assert "(DEPTHWISE_CONV_2D per channel)" in q.meta["route"][-1] and fidelity(hand, q) >= 0.99


def test_a_setting_without_kernels_names_the_ops_it_leaves_float_and_int8_is_not_quantised_twice(hand):
    with pytest.raises(workbench.WorkbenchError, match=r"already quantised \(int8 weights\)"):
        compress(compress(hand, Quantize(8)), Quantize(dtype="fp16"))
    with pytest.raises(workbench.WorkbenchError, match=r"left 33 of 33 weights float.*CONV_2D \(14 weights\), "
                                                       r"DEPTHWISE_CONV_2D \(19 weights\).*FULLY_CONNECTED only"):
        compress(hand, Quantize(4, granularity="group", group_size=32))


# ------------------------------------------------------------------------------------------------ Prune


def test_unstructured_pruning_zeroes_half_the_weights_and_runs(any_task):
    v = compress(any_task, Prune(0.5))
    assert v.framework == "tflite" and v.lineage == (Prune(0.5),) and v.origin is any_task.model
    after = {w.layer: w for w in tflite_weights(v.path)}
    before = {w.layer: w for w in tflite_weights(any_task.model.path)}
    pruned = v.meta["pruned_layers"]
    zeros = sum(int((after[n].array == 0).sum()) for n in pruned) / sum(after[n].array.size for n in pruned)
    assert zeros == pytest.approx(0.5, abs=0.01) and v.meta["sparsity"] == pytest.approx(0.5, abs=0.01)
    assert all(after[n].dtype == before[n].dtype for n in after)  # fp16 weights stay fp16
    assert v.meta["route"] == [
        f"prune-unstructured-0.50: tflite in place: unstructured zeros written into the {before[pruned[0]].dtype} weights"]
    assert fidelity(any_task, v) > 0.3  # it runs, and still resembles the original


def test_per_layer_scope_and_exclude(hand):
    v = compress(hand, Prune(0.5, scope="layer", exclude=["conv2d_5"]))
    after = {w.layer: w for w in tflite_weights(v.path)}
    assert "conv2d_5" not in v.meta["pruned_layers"] and (after["conv2d_5"].array != 0).all()
    for n in v.meta["pruned_layers"]:
        assert np.mean(after[n].array == 0) == pytest.approx(0.5, abs=0.5 / after[n].array.size + 1e-9)
    # 1x1 depthwise weights are per-channel scales (folded BatchNorm): never pruned
    assert not any(n.startswith("batch_normalization") for n in v.meta["pruned_layers"])
    with pytest.raises(workbench.WorkbenchError, match="no layer named 'conv2d_99'"):
        compress(hand, Prune(0.5, exclude=["conv2d_99"]))


def test_two_of_four_holds_the_pattern(face, hand):
    for task in (face, hand):
        v = compress(task, Prune(0.5, structure="2:4"))
        weights = {w.layer: w for w in tflite_weights(v.path)}
        assert v.meta["pruned_layers"] and v.meta["prune_skipped"]  # e.g. 3x3 depthwise: 9 inputs per channel
        for n in v.meta["pruned_layers"]:
            w = weights[n]
            groups = np.moveaxis(w.array, w.axis, 0).reshape(w.shape[w.axis], -1, 4)
            assert ((groups != 0).sum(axis=-1) <= 2).all()
        assert fidelity(task, v) > 0.5
    plan = prune_plan(hand.model, Prune(0.5, structure="2:4")).set_index("layer")
    assert plan.loc["conv2d", "note"] == "skipped: inputs not a multiple of 4"  # (8, 3, 3, 3): 27 inputs
    assert plan.loc["conv2d_1", "note"] == "pruned" and plan.loc["conv2d_1", "sparsity_after"] == 0.5


def test_channel_pruning_and_models_without_weights_are_workbench_errors(face, tmp_path):
    import torch

    with pytest.raises(workbench.WorkbenchError, match="ONNX or PyTorch source"):
        compress(face, Prune(0.5, structure="channel"))

    class Scale(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(x) * 2.0

    x = np.ones((1, 4), np.float32)
    no_weights = workbench.load(workbench.runtime(workbench.load(Scale(), example_inputs=[x]), "litert").artifact)
    with pytest.raises(workbench.WorkbenchError, match="no prunable weight"):
        compress(no_weights, Prune(0.5))


def test_pruning_then_quantising_keeps_the_zeros(hand):
    v = compress(hand, Prune(0.5), Quantize(8))
    weights = tflite_weights(v.path)
    assert all(w.dtype == "int8" for w in weights)
    pruned = [w for w in weights if w.layer in v.meta["pruned_layers"]]
    assert sum(int((w.array == 0).sum()) for w in pruned) / sum(w.array.size for w in pruned) >= 0.5
    assert fidelity(hand, v) >= 0.97
