"""Prune: config validation, the three structures on the real zoo models, ONNX initialiser pruning, the plan."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import workbench
from workbench import zoo
from workbench.compression import prune_plan
from workbench.compression.base import compress, config_from_dict
from workbench.compression.prune import Prune, Structure
from workbench.core.layers import count_macs


def _weights(handle) -> dict[str, np.ndarray]:
    return {n: m.weight.detach().numpy().copy() for n, m in handle.module.named_modules()
            if isinstance(m, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Linear))}


def _assert_untouched(handle, fingerprint: str, weight: np.ndarray) -> None:
    assert workbench.core.handle.module_fingerprint(handle.module) == fingerprint == handle.fingerprint
    np.testing.assert_array_equal(next(iter(_weights(handle).values())), weight)


def _assert_clean(module) -> None:
    """No masks, hooks or parametrisations: the weights themselves carry the pruning."""
    for name, m in module.named_modules():
        assert not m._forward_pre_hooks and not m._forward_hooks, name
        assert not torch.nn.utils.parametrize.is_parametrized(m), name
    assert not [k for k in module.state_dict() if k.endswith(("_orig", "_mask"))]


# ------------------------------------------------------------------------------------------------ config


@pytest.mark.parametrize("bad, match", [
    (dict(ratio=1.0), r"ratio must be a number in \[0, 1\)"),
    (dict(ratio=-0.1), r"ratio must be"),
    (dict(ratio=float("nan")), r"ratio must be"),
    (dict(ratio=True), r"ratio must be"),
    (dict(ratio="0.5"), r"ratio must be"),
    (dict(ratio=0.5, structure="block"), r"structure must be one of 'unstructured', 'channel', '2:4'"),
    (dict(ratio=0.5, scope="model"), r"scope must be one of"),
    (dict(ratio=0.5, importance="l3"), r"importance must be one of"),
    (dict(ratio=0.3, structure="2:4"), r"'2:4' keeps 2 of every 4 weights, so ratio must be 0.5"),
    (dict(ratio=0.5, exclude=[""]), r"exclude must hold non-empty layer names"),
    (dict(ratio=0.5, exclude=3), r"exclude must be a list"),
])
def test_config_rejects_bad_values(bad, match):
    with pytest.raises(ValueError, match=match):
        Prune(**bad)


def test_config_normalises_round_trips_and_labels():
    cfg = Prune(0.25, structure="channel", scope="layer", importance="l2", exclude=["classifier", "stem"])
    assert cfg.structure is Structure.CHANNEL and cfg.exclude == ("classifier", "stem")
    assert hash(cfg) == hash(Prune(0.25, structure="channel", scope="layer", importance="l2",
                                   exclude=("classifier", "stem")))
    back = config_from_dict(json.loads(cfg.to_json()))
    assert back == cfg and json.loads(cfg.to_json())["structure"] == "channel"
    assert Prune(0.5, exclude="classifier").exclude == ("classifier",)
    assert [c.label for c in (Prune(0.5), Prune(0.25, structure="channel"), Prune(0.5, structure="2:4"), cfg)] == [
        "prune-unstructured-0.50", "prune-channel-0.25", "prune-2:4", "prune-channel-0.25-layer-l2-x2"]
    assert "structure='channel'" in repr(cfg)


def test_unknown_excluded_layer_is_rejected_before_work(digits):
    with pytest.raises(workbench.WorkbenchError, match=r"'classifer' \(did you mean classifier"):
        compress(digits.model, Prune(0.5, exclude=["classifer"]))


# ------------------------------------------------------------------------------------------ unstructured


@pytest.mark.parametrize("scope", ["global", "layer"])
def test_unstructured_reaches_the_sparsity_and_leaves_the_original(digits, scope):
    fp, w0 = digits.model.fingerprint, next(iter(_weights(digits.model).values()))
    before = _weights(digits.model)
    cfg = Prune(0.6, scope=scope, exclude=["classifier"])
    v = compress(digits.model, cfg)
    _assert_untouched(digits.model, fp, w0)
    _assert_clean(v.module)
    after = _weights(v)
    np.testing.assert_array_equal(after["classifier"], before["classifier"])
    pruned = [n for n in after if n != "classifier"]
    zeros = [np.mean(after[n] == 0) for n in pruned]
    overall = sum(np.sum(after[n] == 0) for n in pruned) / sum(after[n].size for n in pruned)
    assert overall == pytest.approx(0.6, abs=0.01) and v.meta["sparsity"] == pytest.approx(overall)
    if scope == "layer":
        assert all(z == pytest.approx(0.6, abs=0.01) for z in zeros)
    # The zeros are the smallest weights (of each layer, or of all layers together for global scope).
    pools = [[n] for n in pruned] if scope == "layer" else [pruned]
    for names in pools:
        kept = np.concatenate([np.abs(after[n][after[n] != 0]) for n in names])
        gone = np.concatenate([np.abs(before[n][after[n] == 0]) for n in names])
        assert kept.min() >= gone.max()
    assert v.lineage == (cfg,) and v.origin is digits.model and v.name.endswith("|" + cfg.label)
    assert digits.evaluate(workbench.runtime(v, "torch"))["accuracy"] > (0.9 if scope == "global" else 0.0)


# -------------------------------------------------------------------------------------------------- 2:4


def test_two_four_keeps_at_most_two_of_every_four_inputs(digits):
    fp, w0 = digits.model.fingerprint, next(iter(_weights(digits.model).values()))
    v = compress(digits.model, Prune(0.5, structure="2:4"))
    _assert_untouched(digits.model, fp, w0)
    _assert_clean(v.module)
    after, before = _weights(v), _weights(digits.model)
    skipped = set(v.meta["prune_skipped"])
    assert skipped == {"stem.conv", *(f"blocks.{i}.dw.conv" for i in range(5))}  # 9 inputs per output
    for name, w in after.items():
        flat = w.reshape(w.shape[0], -1)
        if name in skipped:
            np.testing.assert_array_equal(w, before[name])
            continue
        groups = flat.reshape(flat.shape[0], -1, 4)
        assert ((groups != 0).sum(-1) <= 2).all(), name
        assert np.mean(w == 0) == pytest.approx(0.5, abs=0.01), name
        # The two survivors are the two largest of their group.
        orig = np.abs(before[name].reshape(groups.shape))
        assert (np.sort(np.abs(groups), -1)[..., 2:] == np.sort(orig, -1)[..., 2:]).all()
    assert v.meta["sparsity"] == pytest.approx(0.5, abs=0.01)
    plan = prune_plan(digits.model, Prune(0.5, structure="2:4"))
    assert set(plan.loc[plan.note.str.startswith("skipped"), "layer"]) == skipped


# ---------------------------------------------------------------------------------------------- channel


def test_channel_layer_half_halves_every_prunable_layer(digits):
    fp, w0 = digits.model.fingerprint, next(iter(_weights(digits.model).values()))
    v = compress(digits.model, Prune(0.5, structure="channel", scope="layer"))
    _assert_untouched(digits.model, fp, w0)
    _assert_clean(v.module)
    before, after = _weights(digits.model), _weights(v)
    for name in before:
        if name == "classifier":  # the head keeps its 10 outputs; its inputs follow the last block
            assert after[name].shape == (10, 128)
        else:
            assert after[name].shape[0] == before[name].shape[0] // 2, name
    assert v.meta["channels"]["blocks.4.pw.conv"] == [256, 128]
    # Pointwise convs lose half their inputs and half their outputs: a quarter of their MACs stays.
    plan = prune_plan(digits.model, Prune(0.5, structure="channel", scope="layer"))
    pw = plan[plan.layer.str.endswith("pw.conv")]
    assert (pw.macs_after * 4 == pw.macs_before).all() and (pw.params_after * 4 == pw.params_before).all()
    assert count_macs(v) < 0.3 * count_macs(digits.model) and v.num_params < 0.3 * digits.model.num_params
    x = digits.eval_inputs[0][:16]
    ref = workbench.runtime(v, "torch")(x)[0]
    assert ref.shape == (16, 10)
    np.testing.assert_allclose(workbench.runtime(v, "onnxruntime")(x)[0], ref, atol=1e-4, rtol=1e-4)


def test_channel_global_ranks_across_layers_and_refuses_to_empty_one(digits):
    v = compress(digits.model, Prune(0.5, structure="channel"))
    kept = [a / b for b, a in v.meta["channels"].values()]
    assert len(set(np.round(kept, 3))) > 1  # layers lose different shares
    total_before = sum(b for n, (b, a) in v.meta["channels"].items() if "dw" not in n)
    total_after = sum(a for n, (b, a) in v.meta["channels"].items() if "dw" not in n)
    assert total_after == pytest.approx(total_before / 2, abs=2)
    with pytest.raises(workbench.WorkbenchError, match="would remove every channel of blocks.4.pw.conv"):
        compress(digits.model, Prune(0.99, structure="channel"))
    # Per layer, floor(n * ratio) channels go, so even 0.999 leaves one in each layer (without rounding); rounded
    # to the default multiple of 8, a layer keeps at least 8.
    tiny = compress(digits.model, Prune(0.999, structure="channel", scope="layer", round_to=1))
    assert {a for _, a in tiny.meta["channels"].values()} == {1}
    rounded = compress(digits.model, Prune(0.999, structure="channel", scope="layer"))
    assert {a for _, a in rounded.meta["channels"].values()} == {8}


def test_channel_respects_exclude_exactly(digits):
    v = compress(digits.model, Prune(0.5, structure="channel", scope="layer", exclude=["blocks.2.pw.conv"]))
    before, after = _weights(digits.model), _weights(v)
    assert after["blocks.2.pw.conv"].shape == before["blocks.2.pw.conv"].shape
    # Its input width is kept too, so the block feeding it keeps its channels.
    assert after["blocks.1.pw.conv"].shape[0] == 128 and after["blocks.3.pw.conv"].shape[0] == 128
    np.testing.assert_array_equal(after["blocks.2.pw.conv"], before["blocks.2.pw.conv"])


def test_prune_plan_matches_compress_and_leaves_the_model(digits):
    fp, w0 = digits.model.fingerprint, next(iter(_weights(digits.model).values()))
    cfg = Prune(0.25, structure="channel")
    plan = prune_plan(digits, cfg)  # a Task works too
    _assert_untouched(digits.model, fp, w0)
    v = compress(digits.model, cfg)
    shapes = {n: w.shape for n, w in _weights(v).items()}
    for row in plan.itertuples():
        if row.layer in shapes:
            assert tuple(row.shape_after) == shapes[row.layer], row.layer
    assert list(plan.columns) == ["layer", "type", "shape_before", "shape_after", "params_before", "params_after",
                                  "macs_before", "macs_after", "sparsity_after", "note"]
    totals = plan.attrs["totals"]
    assert totals["params_after"] == v.num_params and totals["macs_after"] == count_macs(v)
    assert totals["macs_before"] == count_macs(digits.model)
    assert plan.set_index("layer").loc["classifier", "note"] == "head: outputs kept"


def test_silero_channel_pruning_keeps_the_lstm_and_still_streams(vad):
    fp, w0 = vad.model.fingerprint, next(iter(_weights(vad.model).values()))
    v = compress(vad.model, Prune(0.5, structure="channel", scope="layer"))
    _assert_untouched(vad.model, fp, w0)
    before, after = _weights(vad.model), _weights(v)
    for name in ("stft_conv", "ih", "hh", "final_conv"):
        np.testing.assert_array_equal(after[name], before[name])
    assert {n: after[n].shape[0] for n in ("conv1", "conv2", "conv3", "conv4")} == {
        "conv1": 64, "conv2": 32, "conv3": 32, "conv4": 128}
    # Streaming evaluation (state carried frame to frame) runs on torch and on the exported ONNX file alike.
    result = vad.evaluate(workbench.runtime(v, "torch"), limit=300)
    assert set(result) >= {"frame_accuracy", "f1"}
    assert vad.evaluate(workbench.runtime(v, "onnxruntime"), limit=300) == pytest.approx(result, abs=0.01)


def test_silero_fixed_stft_is_never_pruned(vad):
    v = compress(vad.model, Prune(0.5))
    np.testing.assert_array_equal(_weights(v)["stft_conv"], _weights(vad.model)["stft_conv"])
    assert "stft_conv" in v.meta["prune_protected"] and "stft_conv" not in v.meta["pruned_layers"]


# ------------------------------------------------------------------------------------------------- ONNX


def test_onnx_unstructured_rewrites_initialisers(digits, digits_onnx):
    import onnx
    from onnx import numpy_helper

    from workbench.core.paths import cache_dir

    cfg = Prune(0.5, exclude=["classifier"])
    v = compress(digits_onnx, cfg)
    assert v.framework == "onnx" and v.path.parent == cache_dir() / "variants" and v.path != digits_onnx.path
    assert v.lineage == (cfg,) and v.origin is digits_onnx and v.fingerprint != digits_onnx.fingerprint
    inits = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(v.path)).graph.initializer}
    orig = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(digits_onnx.path)).graph.initializer}
    weights = [n for n in inits if n.endswith("conv.weight")]
    zeros = sum(int(np.sum(inits[n] == 0)) for n in weights) / sum(inits[n].size for n in weights)
    assert zeros == pytest.approx(0.5, abs=0.01) == v.meta["sparsity"]
    np.testing.assert_array_equal(inits["classifier.weight"], orig["classifier.weight"])
    np.testing.assert_array_equal(inits["stem.conv.weight_bias"], orig["stem.conv.weight_bias"])  # biases stay
    assert digits.evaluate(workbench.runtime(v, "onnxruntime"))["accuracy"] > 0.9
    plan = prune_plan(digits_onnx, Prune(0.5, structure="2:4"))
    assert plan.set_index("layer").loc["blocks.0.pw.conv.weight", "sparsity_after"] == pytest.approx(0.5)


def test_onnx_channel_pruning_goes_through_a_module_and_matches_the_torch_path(digits, digits_onnx):
    via_file = compress(digits_onnx, Prune(0.5, structure="channel"))
    direct = compress(digits.model, Prune(0.5, structure="channel"))
    assert via_file.framework == "onnx" and via_file.origin is digits_onnx
    assert via_file.meta["route"] == ["onnx -> onnx2torch", "prune-channel-0.50: torch", "torch -> onnx"]
    # Half the channels of the same layers; the choice differs a little (the file's BatchNorm is folded into the
    # convs, so channel magnitudes are scaled differently).
    assert via_file.num_params == pytest.approx(direct.num_params, rel=0.05)
    assert via_file.num_params < digits_onnx.num_params / 3
    # and the file shrinks with it (the exporter's per-node debugging notes are not written)
    assert via_file.path.stat().st_size < 0.45 * digits_onnx.path.stat().st_size
    a = digits.evaluate(workbench.runtime(via_file, "onnxruntime"))["accuracy"]
    assert a > 0.1 and via_file.meta["channels"]  # it runs, its classes are not collapsed, layers shrank


def test_onnx_refuses_unknown_layers(digits_onnx):
    with pytest.raises(workbench.WorkbenchError, match="no layer named 'blocks.9'"):
        compress(digits_onnx, Prune(0.5, exclude=["blocks.9"]))


# ------------------------------------------------------------------------------------------------ MiniLM


@pytest.mark.slow
def test_minilm_channel_pruning_removes_heads_and_ffn_width():
    task = zoo.load("minilm")
    fp = task.model.fingerprint
    v = compress(task.model, Prune(0.5, structure="channel", scope="layer"))
    assert task.model.fingerprint == fp == workbench.core.handle.module_fingerprint(task.model.module)
    _assert_clean(v.module)
    for layer in v.module.bert.encoder.layer:
        attn = layer.attention.self
        assert attn.num_attention_heads == 6 and attn.query.out_features == 6 * attn.attention_head_size == 192
        assert layer.intermediate.dense.out_features == 768 and layer.output.dense.out_features == 384
    assert v.meta["heads"]["bert.encoder.layer.0.attention.self"] == [12, 6]
    x = [a[:8] for a in task.eval_inputs]
    emb = workbench.runtime(v, "torch")(*x)[0]
    assert emb.shape == (8, 384)
    np.testing.assert_allclose(workbench.runtime(v, "onnxruntime")(*x)[0], emb, atol=1e-4)
    assert count_macs(v) < 0.6 * count_macs(task.model)
    # Half the heads and FFN width gone without fine-tuning: the embeddings still point the same way (~0.55).
    ref = workbench.runtime(task.model, "torch")(*x)[0]
    assert float(np.mean(np.sum(emb * ref, axis=1))) > 0.3


@pytest.mark.slow
def test_minilm_onnx_two_four_groups_along_the_matmul_input_axis():
    import onnx
    from onnx import numpy_helper

    task = zoo.load("minilm")
    original = workbench.load(workbench.runtime(task.model, "onnxruntime").artifact)
    v = compress(original, Prune(0.5, structure="2:4"))
    proto = onnx.load(str(v.path))
    inits = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    matmuls = [n.input[1] for n in proto.graph.node if n.op_type == "MatMul" and n.input[1] in inits]
    assert len(matmuls) >= 36 and set(matmuls) <= set(v.meta["pruned_layers"])
    for name in matmuls:
        w = inits[name]  # (in, out): groups of 4 run down the rows
        assert ((w.reshape(-1, 4, w.shape[1]) != 0).sum(1) <= 2).all(), name
    emb = workbench.runtime(v, "onnxruntime")(*[a[:4] for a in task.eval_inputs])[0]
    assert emb.shape == (4, 384)


def test_channel_pruning_rounds_to_multiples_of_eight_by_default(digits):
    odd = workbench.compress(digits.model, Prune(0.5, structure="channel", round_to=1))
    even = workbench.compress(digits.model, Prune(0.5, structure="channel"))
    widths = lambda h: [m.out_channels for m in h.module.modules() if isinstance(m, torch.nn.Conv2d)]
    assert any(w % 8 for w in widths(odd))  # what global ranking leaves (19, 67, ...): the reason for the default
    assert all(w % 8 == 0 for w in widths(even)) and widths(even) != widths(digits.model)
    assert widths(workbench.compress(digits.model, Prune(0.5, structure="channel", round_to=16))) == [
        16, 16, 32, 32, 64, 64, 64, 64, 112, 112, 128]
    # close to the asked ratio: within 10 % of the unrounded variant's parameter count
    assert abs(even.num_params - odd.num_params) < 0.1 * odd.num_params
    # the default is stored (so it is part of every key), and only another value shows in the label
    assert Prune(0.5, structure="channel").round_to == 8 and Prune(0.5).round_to is None
    assert Prune(0.5, structure="channel") == Prune(0.5, structure="channel", round_to=8)
    assert [Prune(0.5, structure="channel", round_to=r).label for r in (None, 8, 1, 4)] == [
        "prune-channel-0.50", "prune-channel-0.50", "prune-channel-0.50-mult1", "prune-channel-0.50-mult4"]
    assert config_from_dict(json.loads(Prune(0.5, structure="channel", round_to=1).to_json())).round_to == 1
    assert workbench.compress(digits.model, Prune(0.5, structure="channel", round_to=8)).fingerprint == even.fingerprint


@pytest.mark.parametrize("kw", [dict(round_to=0), dict(round_to=-8), dict(round_to=8.0), dict(round_to=True),
                                dict(round_to="8"), dict(round_to=8, structure="unstructured"),
                                dict(round_to=1, structure="2:4")])
def test_round_to_is_validated(kw):
    with pytest.raises(ValueError, match="round_to"):
        Prune(0.5, **{"structure": "channel", **kw})
