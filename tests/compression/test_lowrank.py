"""LowRank: config validation, the SVD factorisation, parameter savings, skipped layers, the zoo models."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import workbench
from workbench import zoo
from workbench.compression.base import compress, config_from_dict, copy_module
from workbench.compression.lowrank import LowRank, factorise, lowrank_plan, rank_for
from workbench.core.layers import count_macs

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _logits(task, handle) -> np.ndarray:
    return workbench.task.predict(workbench.runtime(handle, "torch"), task.eval_inputs)[0]


# ------------------------------------------------------------------------------------------------ config


@pytest.mark.parametrize("bad, match", [
    (dict(rank_ratio=0.0), r"rank_ratio must be a number in \(0, 1\]"),
    (dict(rank_ratio=1.5), r"rank_ratio must be"),
    (dict(rank_ratio=float("nan")), r"rank_ratio must be"),
    (dict(rank_ratio=True), r"rank_ratio must be"),
    (dict(rank_ratio="0.5"), r"rank_ratio must be"),
    (dict(rank_ratio=0.5, exclude=[""]), r"exclude must hold non-empty layer names"),
    (dict(rank_ratio=0.5, exclude=3), r"exclude must be a list of layer names"),
    (dict(rank_ratio=0.5, min_features=0), r"min_features must be a positive integer"),
])
def test_bad_configs_are_rejected(bad, match):
    with pytest.raises(ValueError, match=match):
        LowRank(**bad)


def test_label_round_trip_and_hashable():
    cfg = LowRank(0.25, exclude=["classifier", "blocks.0"], min_features=8)
    assert cfg.label == "lowrank-0.25" and cfg.exclude == ("classifier", "blocks.0")
    assert LowRank(0.5, exclude="classifier").exclude == ("classifier",)
    d = json.loads(cfg.to_json())
    assert d == {"type": "lowrank", "rank_ratio": 0.25, "exclude": ["classifier", "blocks.0"], "min_features": 8}
    assert config_from_dict(d) == cfg and hash(config_from_dict(d)) == hash(cfg)


# ---------------------------------------------------------------------------------------------- the maths


@pytest.mark.parametrize("layer", [
    torch.nn.Linear(48, 20),
    torch.nn.Linear(20, 48, bias=False),
    torch.nn.Conv2d(24, 40, 1, stride=2, padding=1),
    torch.nn.Conv1d(40, 24, 1),
])
def test_full_rank_factorisation_is_the_same_function(layer):
    torch.manual_seed(0)
    n_in, n_out = layer.weight.shape[:2][::-1]
    x = torch.randn(3, n_in, *((9, 9) if isinstance(layer, torch.nn.Conv2d) else (7,) if
                               isinstance(layer, torch.nn.Conv1d) else ()))
    pair = factorise(layer, min(n_in, n_out))
    assert pair[0].bias is None and (pair[1].bias is None) == (layer.bias is None)
    torch.testing.assert_close(pair(x), layer(x), atol=1e-5, rtol=1e-5)
    # Eckart-Young: the rank-r error equals the energy of the dropped singular values.
    w = layer.weight.detach().reshape(n_out, n_in)
    s = torch.linalg.svdvals(w)
    r = 3
    half = factorise(layer, r)
    approx = (half[1].weight.reshape(n_out, r) @ half[0].weight.reshape(r, n_in)).detach()
    torch.testing.assert_close(torch.linalg.norm(w - approx), s[r:].norm(), atol=1e-4, rtol=1e-4)


def test_full_rank_model_reproduces_the_original(digits):
    """Every eligible digits layer factorised at full rank (more parameters, same function)."""
    module = copy_module(digits.model)
    for name, m in list(module.named_modules()):
        if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (1, 1) or isinstance(m, torch.nn.Linear):
            parent, _, attr = name.rpartition(".")
            setattr(module.get_submodule(parent) if parent else module, attr, factorise(m, min(m.weight.shape[:2])))
    full = workbench.load(module, example_inputs=digits.example_inputs)
    assert np.abs(_logits(digits, full) - _logits(digits, digits.model)).max() < 1e-3


# ------------------------------------------------------------------------------------------- digits-cnn


def test_parameters_drop_as_planned_and_original_untouched(digits):
    fingerprint = digits.model.fingerprint
    cfg = LowRank(0.25)
    plan = lowrank_plan(digits.model, cfg)
    small = compress(digits.model, cfg)
    assert workbench.core.handle.module_fingerprint(digits.model.module) == fingerprint
    assert isinstance(digits.model.module.blocks[0].pw.conv, torch.nn.Conv2d)

    done = plan[plan.action == "factorise"]
    assert list(done.layer) == list(small.meta["lowrank_factorised"])
    assert small.num_params == digits.model.num_params - int((plan.params_before - plan.params_after).sum())
    for row in done.itertuples():
        r = rank_for(cfg, row.in_features, row.out_features)
        assert row.rank == r == small.meta["lowrank_factorised"][row.layer]
        first, second = small.module.get_submodule(f"{row.layer}.0"), small.module.get_submodule(f"{row.layer}.1")
        assert first.weight.shape[:2] == (r, row.in_features) and second.weight.shape[:2] == (row.out_features, r)
        assert row.params_after == r * (row.in_features + row.out_features) < row.params_before
        assert 0 < row.energy_kept < 1
    assert small.lineage == (cfg,) and small.origin is digits.model
    assert count_macs(small) < count_macs(digits.model)


def test_error_shrinks_as_rank_grows(digits):
    reference = _logits(digits, digits.model)
    errors, accuracies = [], []
    for ratio in (0.1, 0.25, 0.45):
        variant = compress(digits.model, LowRank(ratio))
        out = _logits(digits, variant)
        errors.append(float(np.abs(out - reference).max()))
        accuracies.append(float(np.mean(out.argmax(1) == digits.eval_labels)))
    assert errors[0] > errors[1] > errors[2] > 0, errors
    assert accuracies[0] < accuracies[2], accuracies


def test_skipped_and_excluded_layers_are_reported(digits):
    variant = compress(digits.model, LowRank(0.5, exclude=["blocks.0"]))
    skipped = variant.meta["lowrank_skipped"]
    assert skipped["blocks.0.pw.conv"] == "excluded"
    assert skipped["classifier"].startswith("10 features < min_features=16")
    assert "saves no parameters" in skipped["blocks.2.pw.conv"]  # square layer at ratio 0.5: no saving
    assert set(variant.meta["lowrank_factorised"]) == {"blocks.1.pw.conv", "blocks.3.pw.conv"}
    assert isinstance(variant.module.blocks[0].pw.conv, torch.nn.Conv2d)
    assert isinstance(variant.module.blocks[1].pw.conv, torch.nn.Sequential)
    assert list(lowrank_plan(digits.model, LowRank(0.5, exclude=["blocks.0"])).action.str.removeprefix("skip: ")
                .loc[lambda s: s != "factorise"]) == list(skipped.values())


def test_refuses_bad_input_before_work(digits):
    with pytest.raises(workbench.WorkbenchError, match=r"'blocks.0.pw.cnv' \(did you mean blocks.0.pw.conv"):
        compress(digits.model, LowRank(0.25, exclude=["blocks.0.pw.cnv"]))
    with pytest.raises(workbench.WorkbenchError, match="factorises no layer"):
        compress(digits.model, LowRank(1.0))  # full rank never saves parameters



def test_an_onnx_file_is_factorised_through_a_module_and_comes_back_as_onnx(digits):
    onnx = workbench.load(workbench.runtime(digits.model, "onnxruntime").artifact,
                          example_inputs=digits.example_inputs)
    thin = compress(onnx, LowRank(0.25))
    assert thin.framework == "onnx" and thin.num_params < onnx.num_params
    assert thin.meta["route"][0].startswith("onnx -> onnx2torch") and thin.meta["route"][-1] == "torch -> onnx"
    assert thin.origin is onnx


def test_quantised_layers_that_get_factorised_leave_the_quant_record(digits):
    quantize = pytest.importorskip("workbench.compression.quantize")
    q = compress(digits.model, quantize.Quantize(8))
    variant = compress(q, LowRank(0.25))
    assert "blocks.0.pw.conv" in q.meta["quant"] and "blocks.0.pw.conv" not in variant.meta["quant"]
    assert "stem.conv" in variant.meta["quant"] and "classifier" in variant.meta["quant"]


# ------------------------------------------------------------------------------------ the other zoo models


def test_silero_vad_lstm_cell_factorises_and_still_streams():
    vad = zoo.load("silero-vad")
    base = vad.evaluate(workbench.runtime(vad.model, "torch"))["frame_accuracy"]
    variant = compress(vad.model, LowRank(0.5))
    assert variant.meta["lowrank_factorised"] == {"ih": 64, "hh": 64}
    assert "final_conv" in variant.meta["lowrank_skipped"]
    got = vad.evaluate(workbench.runtime(variant, "torch"))["frame_accuracy"]
    assert base - 0.03 <= got <= base + 0.01, (base, got)


@pytest.mark.slow
def test_minilm_lowrank_runs_on_torch_and_onnxruntime():
    task = zoo.load("minilm")
    variant = compress(task.model, LowRank(0.25))
    linears = [n for n, m in task.model.module.named_modules() if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 37 and set(variant.meta["lowrank_factorised"]) == set(linears)  # 6 x 6 + pooler
    assert variant.num_params < task.model.num_params - 5_000_000
    torch_out = workbench.runtime(variant, "torch")(*task.example_inputs)[0]
    ort_out = workbench.runtime(variant, "onnxruntime")(*task.example_inputs)[0]
    np.testing.assert_allclose(ort_out, torch_out, atol=1e-4)
    result = task.evaluate(workbench.runtime(variant, "onnxruntime"), limit=48)
    assert 0.0 < result["cosine"] < 0.99  # a real (lossy) change, still a working encoder
