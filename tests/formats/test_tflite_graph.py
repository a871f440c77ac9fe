"""tflite_graph: weights read as the interpreter holds them, rewritten in their own dtype, fp16 weights folded,
and the fixes that make foreign files readable to ai_edge_quantizer (on the MediaPipe fixtures and on an fp16
file made here from the tiny CNN)."""

from __future__ import annotations

import numpy as np
import pytest

import workbench
from workbench import Quantize
from workbench.core.paths import data_file
from workbench.formats import tflite_graph as tg

FACE = data_file("foreign/face_detection_short_range.tflite")  # float16 weights behind 74 DEQUANTIZE ops
HAND = data_file("foreign/hand_recrop.tflite")  # float32 weights, PRELU, pre-v3a operator codes


@pytest.fixture(scope="module")
def tiny_fp16(tflite_file):
    """The tiny CNN converted by litert_torch, then fp16 weights (ai_edge_quantizer: float16 behind DEQUANTIZE)."""
    return workbench.compress(workbench.load(tflite_file), Quantize(dtype="fp16")).path


def run(path, inputs: list[np.ndarray]) -> list[np.ndarray]:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path))
    it.allocate_tensors()
    for d, a in zip(it.get_input_details(), inputs):
        it.set_tensor(d["index"], a.astype(d["dtype"]))
    it.invoke()
    return [it.get_tensor(d["index"]).copy() for d in it.get_output_details()]


def random_inputs(path) -> list[np.ndarray]:
    from ai_edge_litert.interpreter import Interpreter

    rng = np.random.default_rng(0)
    return [rng.standard_normal(d["shape"]).astype(np.float32) for d in Interpreter(model_path=str(path))
            .get_input_details()]


@pytest.fixture(params=["face", "hand", "tiny_fp16"])
def tflite_path(request, tiny_fp16):
    return {"face": FACE, "hand": HAND, "tiny_fp16": tiny_fp16}[request.param]


def test_weights_are_what_the_interpreter_holds(tflite_path):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    weights = tg.tflite_weights(tflite_path)
    assert weights and len({w.layer for w in weights}) == len(weights)
    it = Interpreter(model_path=str(tflite_path),
                     experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    for w in weights:
        held = it.get_tensor(w.tensor)
        assert np.dtype(held.dtype).name == w.dtype and held.shape == w.shape
        assert np.array_equal(held.astype(np.float32), w.array) and w.array.dtype == np.float32
        assert 0 <= w.axis < len(w.shape)


def test_what_each_fixture_holds():
    face = tg.tflite_weights(FACE)
    assert len(face) == 37 and all(w.dtype == "float16" and w.dequantize for w in face)
    assert {w.op_type for w in face} == {"CONV_2D", "DEPTHWISE_CONV_2D"}
    first = face[0]  # Keras names: the layer is the tensor name without "/Kernel"
    assert (first.layer, first.tensor_name, first.axis, first.shape) == ("conv2d", "conv2d/Kernel", 0, (24, 5, 5, 3))
    dw = next(w for w in face if w.op_type == "DEPTHWISE_CONV_2D")
    assert dw.axis == 3 and dw.shape[0] == 1
    hand = tg.tflite_weights(HAND)
    assert len(hand) == 33 and all(w.dtype == "float32" and not w.dequantize for w in hand)
    assert tg.op_counts(HAND)["PRELU"] == 13 and tg.op_counts(FACE)["DEQUANTIZE"] == 74


def test_litert_torch_names_become_the_pytorch_module_names(tiny_fp16):
    assert [(w.layer, w.op_type, w.dtype, w.dequantize) for w in tg.tflite_weights(tiny_fp16)] == [
        ("conv", "DEPTHWISE_CONV_2D", "float16", True), ("fc", "FULLY_CONNECTED", "float16", True)]


def test_with_weights_round_trips_and_keeps_the_stored_dtype(tflite_path, tmp_path):
    weights = tg.tflite_weights(tflite_path)
    x = random_inputs(tflite_path)
    same = tg.with_weights(tflite_path, {w.layer: w.array for w in weights}, tmp_path / "same.tflite")
    assert all(np.array_equal(a, b) for a, b in zip(run(tflite_path, x), run(same, x)))
    target = weights[-1]
    zeroed = tg.with_weights(tflite_path, {target.layer: np.zeros(target.shape)}, tmp_path / "zeroed.tflite")
    after = {w.layer: w for w in tg.tflite_weights(zeroed)}
    assert not after[target.layer].array.any()
    assert (after[target.layer].dtype, after[target.layer].dequantize) == (target.dtype, target.dequantize)
    assert all(np.array_equal(after[w.layer].array, w.array) for w in weights[:-1])
    assert abs(zeroed.stat().st_size - tflite_path.stat().st_size) < 0.01 * tflite_path.stat().st_size + 64
    assert tg.op_counts(zeroed) == tg.op_counts(tflite_path)


def test_with_weights_refuses_unknown_layers_and_shapes(tmp_path):
    with pytest.raises(workbench.WorkbenchError, match=r"'conv2d_99'.*did you mean"):
        tg.with_weights(HAND, {"conv2d_99": np.zeros(3)}, tmp_path / "x.tflite")
    with pytest.raises(workbench.WorkbenchError, match="has shape"):
        tg.with_weights(HAND, {"conv2d": np.zeros((2, 2))}, tmp_path / "x.tflite")


def test_int8_weights_are_rewritten_with_their_own_scales(tmp_path):
    q8 = workbench.compress(workbench.load(HAND), Quantize(8)).path
    w = next(w for w in tg.tflite_weights(q8) if w.layer == "conv2d_5")
    assert w.dtype == "int8" and not w.dequantize
    halved = w.array.copy()
    halved[np.abs(halved) < np.median(np.abs(halved))] = 0
    out = tg.with_weights(q8, {w.layer: halved}, tmp_path / "q8.tflite")
    back = next(v for v in tg.tflite_weights(out) if v.layer == "conv2d_5")
    assert back.dtype == "int8" and np.array_equal(back.array, halved)  # the kept values are on the int8 grid


def test_dequantized_weights_fold_the_dequantize_ops_and_keep_the_outputs(tmp_path, tiny_fp16):
    for src in (FACE, tiny_fp16):
        out = tg.dequantized_weights(src, tmp_path / f"{src.stem}.tflite")
        assert "DEQUANTIZE" not in tg.op_counts(out)
        assert all(w.dtype == "float32" and not w.dequantize for w in tg.tflite_weights(out))
        before = {w.layer: w.array for w in tg.tflite_weights(src)}
        assert all(np.array_equal(before[w.layer], w.array) for w in tg.tflite_weights(out))
        x = random_inputs(src)
        for a, b in zip(run(src, x), run(out, x)):  # the same float values: equal up to fp16 round-off
            assert np.allclose(a, b, rtol=1e-3, atol=1e-3 * float(np.abs(a).max()))
        assert tg.quantizer_fixes(out) == ()


def test_quantizer_fixes_name_why_ai_edge_quantizer_misread_the_files(tmp_path):
    assert tg.quantizer_fixes(FACE) == ("operator codes upgraded", "74 fp16 tensors dequantised")
    assert tg.quantizer_fixes(HAND) == ("operator codes upgraded",)
    assert tg.quantizer_fixes(HAND, signature=True) == ("operator codes upgraded", "signature added")
    out = tmp_path / "hand.tflite"
    assert tg.prepare_for_quantizer(HAND, out, signature=True) == ("operator codes upgraded", "signature added")
    from ai_edge_litert.interpreter import Interpreter

    assert list(Interpreter(model_path=str(out)).get_signature_list()) == ["serving_default"]
    assert tg.quantizer_fixes(out, signature=True) == ()
    x = random_inputs(HAND)
    assert all(np.array_equal(a, b) for a, b in zip(run(HAND, x), run(out, x)))


def test_a_file_that_is_not_a_flatbuffer_is_a_workbench_error(tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(workbench.WorkbenchError, match="not a readable TFLite flatbuffer"):
        tg.tflite_weights(bad)
