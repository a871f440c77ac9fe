"""Quantize: config validation, the b-bit grid property, exclusions, accuracy on the zoo, ONNX and TFLite files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import workbench
from workbench import zoo
from workbench.compression import compress, config_from_dict
from workbench.compression.quantize import ActivationFakeQuant, Quantize, effective_bits_per_weight, fake_quantize
from workbench.compression.quantize_files import onnx_weights, realize_onnx

DENSE = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Linear)


@pytest.fixture(scope="module")
def digits_tflite(digits):
    return workbench.load(workbench.runtime(digits.model, "litert").artifact)


def accuracy(task, handle, rt="torch", **kw):
    return task.evaluate(workbench.runtime(handle, rt), **kw)[task.metric]


def max_distinct(w: torch.Tensor, granularity: str = "channel", group_size: int | None = None, axis: int = 0) -> int:
    """Most distinct values in one output channel / group / the tensor."""
    rows = w.detach().movedim(axis, 0).reshape(w.shape[axis], -1)
    if granularity == "tensor":
        return len(rows.unique())
    if granularity == "group":
        return max(len(r[i:i + group_size].unique()) for r in rows for i in range(0, rows.shape[1], group_size))
    return max(len(r.unique()) for r in rows)


# ------------------------------------------------------------------------------------------------- config


@pytest.mark.parametrize("kwargs, match", [
    ({"bits": 1}, "bits must be an integer from 2 to 8"),
    ({"bits": 16}, "bits must be an integer from 2 to 8"),
    ({"bits": True}, "bits"),
    ({"granularity": "row"}, "granularity must be one of"),
    ({"granularity": "group"}, "needs group_size"),
    ({"granularity": "group", "group_size": 0}, "needs group_size"),
    ({"granularity": "channel", "group_size": 32}, "only applies with granularity='group'"),
    ({"method": "gptq"}, "method must be one of"),
    ({"group_size": 32, "method": "hqq", "symmetric": True}, "asymmetric"),
    ({"method": "hqq"}, "pass group_size"),
    ({"activations": 4}, "activations must be None"),
    ({"per_layer": {"classifier": 9}}, r"per_layer\['classifier'\]"),
    ({"per_layer": {"classifier": 8}, "exclude": ["classifier"]}, "both excluded"),
    ({"dtype": "bf16"}, "dtype must be"),
    ({"dtype": "fp16", "bits": 4}, "remove bits"),
    ({"dtype": "fp16", "activations": 8}, "remove activations"),
])
def test_bad_configs_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Quantize(**kwargs)


def test_config_round_trips_and_labels():
    cfg = Quantize(4, per_layer={"classifier": 8, "blocks.0": 6}, exclude=["stem.conv"])
    assert cfg.per_layer == (("blocks.0", 6), ("classifier", 8)) and cfg.per_layer_bits["classifier"] == 8
    assert config_from_dict(json.loads(cfg.to_json())) == cfg
    assert config_from_dict(Quantize(8, activations=8).to_dict()) == Quantize(8, activations=8)
    hash(cfg)
    labels = [Quantize().label, Quantize(4, granularity="group", group_size=32).label,
              Quantize(8, activations=8).label, Quantize(dtype="fp16").label, Quantize(4, granularity="tensor").label,
              Quantize(4, symmetric=False).label]
    assert labels == ["q8", "q4-group32", "q8a8", "fp16", "q4-tensor", "q4-asym"]
    assert cfg.label.startswith("q-mixed-") and cfg.label != Quantize(4, per_layer={"classifier": 6}).label
    assert Quantize(8, exclude=["a"]).label != Quantize(8, exclude=["b"]).label != "q8"
    assert cfg.bits_for("blocks.0.dw.conv") == 6 and cfg.bits_for("stem.conv") is None and cfg.bits_for("x") == 4


def test_fake_quantize_grid_and_axis():
    w = torch.randn(6, 40)
    for bits in (2, 4, 8):
        assert max_distinct(fake_quantize(w, bits)) <= 2**bits - 1  # symmetric restricted range
        assert max_distinct(fake_quantize(w, bits, symmetric=False)) <= 2**bits
    q = fake_quantize(w, 3, axis=1)  # one scale per column: an ONNX MatMul's (in, out) weight
    assert max_distinct(q, axis=1) <= 8 and max_distinct(q, axis=0) > 8
    # The extreme of each channel is kept (to float rounding: qmax * (amax / qmax)); an all-zero channel stays zero.
    w[2] = 0
    q = fake_quantize(w, 4)
    assert torch.allclose(q.abs().amax(1), w.abs().amax(1), rtol=1e-6, atol=0) and not q[2].any()


# -------------------------------------------------------------------------------------------------- torch


@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("granularity, group_size", [("channel", None), ("tensor", None), ("group", 16)])
def test_each_channel_group_or_tensor_has_at_most_2_to_the_bits_values(digits, bits, granularity, group_size):
    cfg = Quantize(bits, granularity=granularity, group_size=group_size, symmetric=bits != 4)
    q = compress(digits.model, cfg)
    layers = {n: m for n, m in q.module.named_modules() if isinstance(m, DENSE)}
    assert set(q.meta["quant"]) == set(layers)
    for name, m in layers.items():
        assert max_distinct(m.weight, granularity, group_size) <= 2**bits, name
        assert q.meta["quant"][name] == {"bits": bits, "granularity": granularity, "group_size": group_size,
                                         "symmetric": bits != 4, "type": type(m).__name__, "param": f"{name}.weight"}
    json.dumps(q.meta)
    assert q.lineage == (cfg,) and q.origin is digits.model and q.name == f"digits-cnn|{cfg.label}"


def test_exclude_and_per_layer(digits):
    cfg = Quantize(4, exclude=["blocks.0"], per_layer={"classifier": 2, "blocks.4.pw.conv": 8})
    q = compress(digits.model, cfg)
    orig = dict(digits.model.module.named_parameters())
    for name, p in q.module.named_parameters():
        if name.startswith("blocks.0.") or not name.endswith("conv.weight") and "classifier" not in name:
            assert torch.equal(p, orig[name]), name  # excluded layers, BN and biases: bit-identical
    mods = dict(q.module.named_modules())
    assert max_distinct(mods["classifier"].weight) <= 3
    assert 16 < max_distinct(mods["blocks.4.pw.conv"].weight) <= 255
    assert max_distinct(mods["blocks.3.pw.conv"].weight) <= 15
    assert "blocks.0.dw.conv" not in q.meta["quant"] and q.meta["quant"]["classifier"]["bits"] == 2
    with pytest.raises(workbench.WorkbenchError, match=r"'blocks\.9'.*stem\.conv"):
        compress(digits.model, Quantize(8, exclude=["blocks.9"]))
    with pytest.raises(ValueError, match="no quantisable layer is called 'nope'"):
        compress(digits.model, Quantize(8, per_layer={"nope": 4}))


def test_original_untouched_and_no_hooks(digits):
    before = digits.model.fingerprint
    params = {k: v.clone() for k, v in digits.model.module.state_dict().items()}
    variants = [compress(digits.model, Quantize(4)), compress(digits.model, Quantize(8, activations=8), task=digits),
                compress(digits.model, Quantize(dtype="fp16"))]
    assert workbench.load(digits.model.module, example_inputs=digits.example_inputs).fingerprint == before
    assert all(torch.equal(v, params[k]) for k, v in digits.model.module.state_dict().items())
    for v in variants:
        assert v.fingerprint != before
        for m in v.module.modules():
            assert not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks


def test_digits_accuracy_by_bits(digits):
    fp32 = accuracy(digits, digits.model)
    acc = {b: accuracy(digits, compress(digits.model, Quantize(b))) for b in (8, 4, 2)}
    print(f"digits-cnn torch fake-quant: fp32 {fp32:.4f}, " + ", ".join(f"q{b} {a:.4f}" for b, a in acc.items()))
    assert abs(acc[8] - fp32) <= 0.01
    assert acc[8] >= acc[4] - 0.02 and acc[4] >= acc[2] and 0.0 <= acc[2] <= 1.0


def test_activations_int8_simulated_by_real_modules(digits):
    with pytest.raises(workbench.WorkbenchError, match="task.calibration"):
        compress(digits.model, Quantize(8, activations=8))
    q = compress(digits.model, Quantize(8, activations=8), task=digits)
    wrapped = {n: m for n, m in q.module.named_modules() if isinstance(m, ActivationFakeQuant)}
    assert set(wrapped) == set(q.meta["activation_ranges"]) == set(q.meta["quant"])
    assert q.meta["quant"]["stem.conv"]["param"] == "stem.conv.layer.weight"
    lo, hi = q.meta["activation_ranges"]["blocks.1.pw.conv"]
    assert lo == 0.0 < hi  # after a ReLU
    fp32 = accuracy(digits, digits.model)
    assert abs(accuracy(digits, q) - fp32) <= 0.02
    run = workbench.runtime(q, "onnxruntime")
    assert abs(digits.evaluate(run)["accuracy"] - fp32) <= 0.02
    import onnx

    ops = [n.op_type for n in onnx.load(str(run.artifact)).graph.node]
    assert ops.count("QuantizeLinear") == len(wrapped) and ops.count("DequantizeLinear") >= len(wrapped)


def test_fp16_rounds_every_parameter(digits):
    q = compress(digits.model, Quantize(dtype="fp16"))
    assert all(torch.equal(p, p.half().float()) for p in q.module.parameters())
    assert any(not torch.equal(p, p.half().float()) for p in digits.model.module.parameters())
    assert q.meta["quant"] == {"*": {"dtype": "fp16"}} and effective_bits_per_weight(q) == 16.0
    assert abs(accuracy(digits, q) - accuracy(digits, digits.model)) <= 0.005


def test_effective_bits(digits):
    q8, q4 = compress(digits.model, Quantize(8)), compress(digits.model, Quantize(4, exclude=["classifier"]))
    assert 8 < effective_bits_per_weight(q8) < 10 and effective_bits_per_weight(q4) < effective_bits_per_weight(q8)
    assert effective_bits_per_weight(digits.model) == 32.0


def test_quant_record_reads_and_rewrites_meta_exactly(digits):
    from workbench.core.quant import LayerQuant, QuantRecord, quant_record

    q8a8 = compress(digits.model, Quantize(8, activations=8), task=digits)
    mixed = compress(digits.model, Quantize(8, per_layer={"classifier": 4}))
    for q in (q8a8, mixed, compress(digits.model, Quantize(dtype="fp16"))):
        record = quant_record(q)
        assert QuantRecord.from_dict(q.meta["quant"]).to_dict() == q.meta["quant"] == record.to_dict()
        assert list(record.to_dict()) == list(q.meta["quant"])  # key order too (it is part of cache keys)
        for entry in q.meta["quant"].values():
            assert list(LayerQuant.from_dict(entry).to_dict().items()) == list(entry.items())
    record = quant_record(q8a8)
    assert record.quantises_activations and record.bit_widths == {8} and not record.is_fp16
    assert record.weight_bits("classifier.layer") == 8 and record.weight_bits("classifier") is None
    assert quant_record(mixed).bit_widths == {4, 8} and quant_record(mixed).weight_bits("classifier") == 4
    assert not quant_record(digits.model) and quant_record(digits.model).to_dict() == {}
    # The forms people wrote by hand still read: a flat whole-model entry, other activation spellings, bare bits.
    assert QuantRecord.from_dict({"dtype": "fp16"}).is_fp16
    assert QuantRecord.from_dict({"conv": {"bits": 8, "act_bits": "int8"}}).for_layer("conv").act_bits == 8
    assert QuantRecord.from_dict({"conv": 4}).weight_bits("conv") == 4
    with pytest.raises(ValueError, match="granularity"):
        LayerQuant(8, granularity="row")


# --------------------------------------------------------------------------------------------------- ONNX


def test_onnx_initializers_rewritten_per_output_channel(digits, digits_onnx):
    import onnx
    from onnx import numpy_helper

    cfg = Quantize(4, exclude=["stem.conv"])
    q = compress(digits_onnx, cfg)
    assert q.framework == "onnx" and q.path.parent.name == "variants" and q.lineage == (cfg,)
    assert q.origin is digits_onnx and q.path != digits_onnx.path
    new = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(q.path)).graph.initializer}
    old = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(digits_onnx.path)).graph.initializer}
    weights = onnx_weights(onnx.load(str(digits_onnx.path)))
    assert {w.op_type for w in weights} == {"Conv", "Gemm"} and len(weights) == 12
    for w in weights:
        if w.layer == "stem.conv":
            assert np.array_equal(new[w.initializer], old[w.initializer])
        else:
            assert max_distinct(torch.from_numpy(new[w.initializer]), axis=w.axis) <= 15, w.layer
            assert q.meta["quant"][w.layer]["axis"] == w.axis
    fp32 = accuracy(digits, digits_onnx, "onnxruntime")
    assert abs(accuracy(digits, q, "onnxruntime") - fp32) <= 0.02


def test_realize_onnx_static_qdq(digits, digits_onnx, tmp_path):
    import onnx

    out = realize_onnx(digits_onnx.path, Quantize(8, activations=8), tmp_path / "int8.onnx",
                       calibration=digits.calibration)
    ops = [n.op_type for n in onnx.load(str(out)).graph.node]
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    assert out.stat().st_size < digits_onnx.path.stat().st_size / 2.5
    fp32 = accuracy(digits, digits_onnx, "onnxruntime")
    assert abs(accuracy(digits, workbench.load(out), "onnxruntime") - fp32) <= 0.01
    # The same through compress(): a variant handle with lineage.
    q = compress(digits_onnx, Quantize(8, activations=8), task=digits)
    assert q.meta["realised"] == "onnxruntime-static-qdq" and "QuantizeLinear" in [
        n.op_type for n in onnx.load(str(q.path)).graph.node]


def test_realize_onnx_refuses_what_ort_cannot_do(digits, digits_onnx, tmp_path):
    out = tmp_path / "x.onnx"
    with pytest.raises(workbench.WorkbenchError, match="mixes"):
        realize_onnx(digits_onnx.path, Quantize(8, per_layer={"classifier": 4}), out)
    with pytest.raises(workbench.WorkbenchError, match="MatMulNBits"):
        realize_onnx(digits_onnx.path, Quantize(4), out)
    with pytest.raises(workbench.WorkbenchError, match="calibration"):
        realize_onnx(digits_onnx.path, Quantize(8, activations=8), out)
    with pytest.raises(workbench.WorkbenchError, match="fp16"):
        realize_onnx(digits_onnx.path, {"*": {"dtype": "fp16"}}, out)
    assert not out.exists()
    # A torch variant's meta["quant"] is a recipe too; layer names match the exported file's.
    q = compress(digits.model, Quantize(8, exclude=["classifier"]))
    realize_onnx(digits_onnx.path, q.meta["quant"], out, calibration=digits.calibration, mode="static")
    assert abs(accuracy(digits, workbench.load(out), "onnxruntime") - accuracy(digits, digits.model)) <= 0.01


# ------------------------------------------------------------------------------------------------- TFLite


def test_tflite_dynamic_and_static_int8(digits, digits_tflite):
    fp32 = accuracy(digits, digits_tflite, "litert")
    dyn = compress(digits_tflite, Quantize(8))
    assert dyn.framework == "tflite" and dyn.lineage == (Quantize(8),) and dyn.origin is digits_tflite
    assert dyn.meta["quant"] == {"*": {"bits": 8, "granularity": "channel", "group_size": None, "symmetric": True,
                                       "activations": None}}  # a whole-model recipe names its float activations
    assert dyn.path.stat().st_size < digits_tflite.path.stat().st_size / 2.5
    assert abs(accuracy(digits, dyn, "litert") - fp32) <= 0.01
    static = compress(digits_tflite, Quantize(8, activations=8), task=digits)
    assert static.path.stat().st_size < digits_tflite.path.stat().st_size / 2.5
    assert abs(accuracy(digits, static, "litert") - fp32) <= 0.02


def test_tflite_refuses_unsupported_settings(digits, digits_tflite):
    with pytest.raises(workbench.WorkbenchError, match="4 or 8 bits"):
        compress(digits_tflite, Quantize(2))
    with pytest.raises(workbench.WorkbenchError, match="cannot name PyTorch layers"):
        compress(digits_tflite, Quantize(8, exclude=["classifier"]))
    with pytest.raises(workbench.WorkbenchError, match="symmetric"):
        compress(digits_tflite, Quantize(8, symmetric=False))
    with pytest.raises(workbench.WorkbenchError, match="FULLY_CONNECTED only"):  # convolutions would stay float
        compress(digits_tflite, Quantize(4, granularity="group", group_size=32))
    with pytest.raises(workbench.WorkbenchError, match="task.calibration"):
        compress(digits_tflite, Quantize(8, activations=8))


# --------------------------------------------------------------------------------------------------- slow


@pytest.mark.slow
def test_activations_int8_run_on_litert(digits):
    q = compress(digits.model, Quantize(8, activations=8), task=digits)
    assert abs(accuracy(digits, q, "litert") - accuracy(digits, digits.model)) <= 0.02


@pytest.mark.slow
def test_minilm_quantisation_and_realised_files(tmp_path):
    import onnx
    from onnx import numpy_helper

    task = zoo.load("minilm")
    fp32 = accuracy(task, task.model, limit=200)
    q8 = compress(task.model, Quantize(8))
    assert abs(accuracy(task, q8, limit=200) - fp32) <= 0.02
    assert "bert.embeddings.word_embeddings" not in q8.meta["quant"]
    assert "bert.embeddings.word_embeddings" in compress(task.model, Quantize(8, embeddings=True)).meta["quant"]
    src = workbench.load(workbench.runtime(task.model, "onnxruntime").artifact)
    # MatMul weights are (in, out): one scale per column, not per row.
    q4 = compress(src, Quantize(4))
    inits = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(q4.path)).graph.initializer}
    mm = [w for w in onnx_weights(onnx.load(str(src.path))) if w.op_type == "MatMul"]
    assert len(mm) == 36 and mm[0].layer == "bert.encoder.layer.0.attention.self.query" and mm[0].axis == 1
    w = torch.from_numpy(inits[mm[0].initializer])
    assert max_distinct(w, axis=1) <= 15 < max_distinct(w, axis=0)
    size = src.path.stat().st_size
    dyn = realize_onnx(src.path, Quantize(8, embeddings=True), tmp_path / "dyn.onnx")
    assert dyn.stat().st_size * 3 <= size
    assert abs(accuracy(task, workbench.load(dyn), "onnxruntime", limit=200) - fp32) <= 0.03
    nbits = realize_onnx(src.path, Quantize(4, granularity="group", group_size=32, embeddings=True),
                         tmp_path / "nbits.onnx")
    assert nbits.stat().st_size < dyn.stat().st_size
    assert "MatMulNBits" in [n.op_type for n in onnx.load(str(nbits)).graph.node]
    assert accuracy(task, workbench.load(nbits), "onnxruntime", limit=200) >= fp32 - 0.05


@pytest.mark.slow
def test_silero_vad_bits_are_measured():
    task = zoo.load("silero-vad")
    fp32 = accuracy(task, task.model)
    acc = {b: accuracy(task, compress(task.model, Quantize(b))) for b in (8, 4, 2)}
    assert abs(acc[8] - fp32) <= 0.02 and acc[8] >= acc[4] - 0.02 and acc[4] >= acc[2]
