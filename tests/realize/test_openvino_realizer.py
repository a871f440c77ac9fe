"""What OpenVINO really executes for each kind of variant: f32 for fp32, the CPU's 16-bit precision for fp16, NNCF
int8 (weights and activations) for 8-bit, NNCF int4 weight compression for 4-bit, and a said fallback otherwise."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import workbench
from workbench.realize import realize

pytest.importorskip("nncf")


@pytest.fixture(scope="module")
def digits():
    return workbench.zoo.load("digits-cnn")


def _accuracy(handle, task) -> float:
    out, rows = task.run(workbench.runtime(handle, "openvino", threads=1))
    return task.score(out, rows)["accuracy"]


def test_fp32_is_the_onnx_file_at_f32(digits):
    r = realize(digits.model, "openvino", digits)
    assert (r.realized, r.note, r.compute_dtype, r.path.suffix) == (True, "fp32 (f32 inference precision)", None,
                                                                   ".onnx")


def test_int8_is_nncf_ptq_with_int8_weights_and_activations(digits):
    from workbench.formats.openvino_file import ir_storage

    q8 = workbench.compress(digits.model, workbench.Quantize(8))
    r = realize(q8, "openvino", digits)
    assert r.realized and r.compute_dtype == "int8" and r.note.startswith("int8 NNCF PTQ")
    stored = ir_storage(r.path)
    assert stored["INT8"]["elements"] > 0.9 * digits.model.num_params
    assert any(op.get_type_name() == "FakeQuantize" for op in _ops(r.path))  # activations quantised too
    assert _accuracy(r.handle, digits) >= _accuracy(digits.model, digits) - 0.03  # the int8 export tolerance


def test_fp16_runs_at_the_cpus_16_bit_precision(digits):
    from workbench.realize.openvino_realizer import sixteen_bit_precision

    want = sixteen_bit_precision()
    r = realize(workbench.compress(digits.model, workbench.Quantize(dtype="fp16")), "openvino", digits)
    assert r.handle.meta["inference_precision"] == want and f"{want} inference precision" in r.note
    assert r.realized == (want == "f16")
    assert abs(_accuracy(r.handle, digits) - _accuracy(digits.model, digits)) <= 0.01


def test_int4_compresses_linear_weights_of_a_small_mlp():
    from workbench.formats.openvino_file import ir_storage

    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 8)).eval()
    x = np.random.default_rng(0).standard_normal((4, 64)).astype(np.float32)
    h = workbench.load(mlp, example_inputs=[x], name="mlp")
    q4 = workbench.compress(h, workbench.Quantize(4, group_size=32))
    r = realize(q4, "openvino", None)
    assert r.realized and r.compute_dtype is None and r.note.startswith("int4 sym weights")
    assert "groups of 32" in r.note
    assert ir_storage(r.path)["INT4"]["elements"] == 64 * 64 + 64 * 8
    got = workbench.runtime(r.handle, "openvino", threads=1)(x)[0]
    fp32 = workbench.runtime(h, "torch")(x)[0]
    own = workbench.runtime(q4, "torch")(x)[0]
    # NNCF re-rounds the variant's grid (±7 levels) onto its own (-8..7): as far from fp32 as the variant, not more
    assert np.abs(got - fp32).max() < 2 * np.abs(own - fp32).max()
    assert np.abs(got - own).max() < 0.1


def test_int4_on_a_cnn_says_the_convolutions_are_not_int4(digits):
    r = realize(workbench.compress(digits.model, workbench.Quantize(4)), "openvino", digits)
    assert not r.realized and "convolution(s) stored int8" in r.note


def test_widths_without_a_kernel_fall_back_and_say_so(digits):
    r = realize(workbench.compress(digits.model, workbench.Quantize(3)), "openvino", digits)
    assert not r.realized and r.note.startswith("not realised (3-bit weights") and r.path.suffix == ".onnx"


def _ops(xml):
    import openvino as ov

    return ov.Core().read_model(str(xml)).get_ordered_ops()
