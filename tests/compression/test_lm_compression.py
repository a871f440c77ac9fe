"""Compression of a causal language model (the tiny Llama of tests/tiny_lm.py): weight-only quantisation on ONNX
Runtime's grids (RTN, HQQ), depth and MLP-channel pruning, distillation recovery; the real SmolLM2 behind `slow`."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import workbench
from workbench import Prune, Quantize, Recover, compress
from workbench.compression.lm_quantize import affine_grid, grid, quantise_linear_weight
from workbench.core.errors import WorkbenchError
from workbench.core.lm import lm_spec
from workbench.core.quant import quant_record

PROJ = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@pytest.fixture(scope="module")
def lm_task(tiny_lm):
    from tiny_lm import tiny_lm_texts

    return workbench.Task.from_text(tiny_lm, tiny_lm_texts(200), seq_len=64)


def projections(module):
    return {n: m for n, m in module.named_modules() if n.endswith(PROJ)}


def logits(module, ids):
    with torch.no_grad():
        return module(input_ids=torch.from_numpy(ids), use_cache=False).logits


def rel_error(variant, original) -> float:
    num = den = 0.0
    for name, layer in projections(original.module).items():
        w, q = layer.weight.detach(), variant.module.get_submodule(name).weight.detach()
        num, den = num + float(((q - w) ** 2).sum()), den + float((w**2).sum())
    return (num / den) ** 0.5


# ---------------------------------------------------------------------------------------------- configs


def test_group_size_implies_group_granularity_and_labels_stay_stable():
    assert Quantize(4, group_size=32) == Quantize(4, granularity="group", group_size=32)
    assert Quantize(4, group_size=32).label == "q4-group32"
    assert Quantize(4, group_size=64, symmetric=False).label == "q4-group64-asym"
    assert Quantize(3, group_size=32, method="hqq").label == "q3-group32-hqq"
    assert Quantize(4, group_size=32, method="hqq").symmetric is False
    assert "method" not in Quantize(8).to_dict()  # configs from before `method` keep their digest
    assert workbench.compression.config_from_dict(Quantize(4, group_size=32, method="hqq").to_dict()).method == "hqq"
    with pytest.raises(ValueError, match="only applies with granularity='group'"):
        Quantize(4, granularity="channel", group_size=32)


def test_prune_layer_config():
    assert Prune(0.25, structure="layer").label == "prune-layer-0.25"
    assert Prune(0.25, structure="layer").importance == "cosine"
    assert Prune(0.25, structure="layer", importance="perplexity").label == "prune-layer-0.25-ppl"
    assert Prune(0.5, structure="channel").importance == "l1"
    with pytest.raises(ValueError, match="does not apply"):
        Prune(0.5, structure="channel", importance="cosine")
    with pytest.raises(ValueError, match="does not apply"):
        Prune(0.5, structure="layer", importance="l2")


# ----------------------------------------------------------------------------------------- RTN numbers


@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("symmetric", [True, False])
def test_numpy_formula_is_onnxruntimes_and_requantising_changes_nothing(bits, symmetric):
    w = (np.random.default_rng(bits).standard_normal((80, 48)) * 0.05).astype(np.float32)  # K=80: a short block
    ort, ours = grid(w, bits, 32, symmetric), affine_grid(w, bits, 32, symmetric)
    for a, b in zip(ort, ours):
        np.testing.assert_array_equal(a, b)
    q = quantise_linear_weight(torch.from_numpy(w.T.copy()), bits, 32, symmetric)
    assert torch.equal(quantise_linear_weight(q, bits, 32, symmetric), q)


@pytest.mark.parametrize("bits, symmetric", [(4, True), (4, False), (8, False)])
def test_matmulnbits_quantizer_reproduces_the_fake_quantised_weights_exactly(tmp_path, bits, symmetric):
    """ONNX Runtime's own MatMulNBitsQuantizer (what the GenAI builder runs) re-quantises the variant's weights
    onto the same grid: the int model computes with exactly the float values torch saw."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer

    k, n = 128, 64
    w = torch.randn(n, k) * 0.02
    q = quantise_linear_weight(w, bits, 32, symmetric).numpy()
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [k, k])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [k, n])],
                              [numpy_helper.from_array(np.ascontiguousarray(q.T), "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    cfg = DefaultWeightOnlyQuantConfig(block_size=32, is_symmetric=symmetric, bits=bits)
    quantizer = MatMulNBitsQuantizer(model, algo_config=cfg)
    quantizer.process()
    path = tmp_path / "m.onnx"
    onnx.save(quantizer.model.model, path)
    assert any(node.op_type == "MatMulNBits" for node in onnx.load(path).graph.node)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    deq = sess.run(None, {"x": np.eye(k, dtype=np.float32)})[0]
    np.testing.assert_array_equal(deq, q.T)


# ------------------------------------------------------------------------------------------- quantise


@pytest.mark.parametrize("cfg", [Quantize(4, group_size=32), Quantize(4, group_size=64, symmetric=False),
                                 Quantize(3, group_size=32, symmetric=False), Quantize(8, group_size=128),
                                 Quantize(2, group_size=32)])
def test_quantise_lm_puts_every_block_on_its_grid_and_twice_is_once(tiny_lm, cfg):
    q = compress(tiny_lm, cfg)
    qq = compress(q, cfg)
    g = cfg.group_size
    for name, layer in projections(q.module).items():
        w = layer.weight.detach()
        assert torch.equal(w, qq.module.get_submodule(name).weight), name  # idempotent
        k = w.shape[1]
        assert max(len(row[i:i + g].unique()) for row in w for i in range(0, k, g)) <= 2**cfg.bits, name
        assert quant_record(q).for_layer(name).setting == (cfg.bits, "group", g, cfg.symmetric)
    assert not torch.equal(q.module.model.layers[0].mlp.up_proj.weight, tiny_lm.module.model.layers[0].mlp.up_proj.weight)
    assert q.meta["lm"] == tiny_lm.meta["lm"] and q.meta["lm_quant"]["method"] == "rtn"
    assert torch.equal(q.module.model.embed_tokens.weight, tiny_lm.module.model.embed_tokens.weight)  # float default
    assert tiny_lm.lineage == () and q.origin is tiny_lm


def test_tied_embedding_is_quantised_once_with_embeddings_true(tiny_lm):
    q = compress(tiny_lm, Quantize(4, group_size=32, embeddings=True))
    emb = q.module.model.embed_tokens.weight
    assert q.module.lm_head.weight is emb  # still one tensor
    assert not torch.equal(emb, tiny_lm.module.model.embed_tokens.weight)
    assert torch.equal(quantise_linear_weight(emb.detach(), 4, 32, True), emb)
    record = quant_record(q)
    assert "model.embed_tokens" in record.layer_entries and "lm_head" not in record.layer_entries
    assert q.meta["lm_quant"]["embeddings"] and q.meta["lm_quant"]["lm_head"] and q.meta["lm_quant"]["tied"]


@pytest.mark.parametrize("bits", [3, 4])
def test_hqq_reconstructs_weights_better_than_rtn(tiny_lm, bits):
    hqq = compress(tiny_lm, Quantize(bits, group_size=32, method="hqq"))
    rtn_asym = compress(tiny_lm, Quantize(bits, group_size=32, symmetric=False))
    rtn_sym = compress(tiny_lm, Quantize(bits, group_size=32))
    assert rel_error(hqq, tiny_lm) < rel_error(rtn_asym, tiny_lm) < rel_error(rtn_sym, tiny_lm)
    assert hqq.meta["lm_quant"]["method"] == "hqq" and hqq.name.endswith("q%d-group32-hqq" % bits)


def test_quantise_lm_refuses_what_it_cannot_store(tiny_lm, tiny_handle):
    with pytest.raises(WorkbenchError, match="group_size"):
        compress(tiny_lm, Quantize(4))
    with pytest.raises(WorkbenchError, match="power of two"):
        compress(tiny_lm, Quantize(4, group_size=48))
    with pytest.raises(WorkbenchError, match="weight-only"):
        compress(tiny_lm, Quantize(8, group_size=32, activations=8))
    with pytest.raises(WorkbenchError, match="no quantisable layer"):
        compress(tiny_lm, Quantize(4, group_size=32, exclude=["model.layers.9"]))
    with pytest.raises(WorkbenchError, match="language models"):
        compress(tiny_handle, Quantize(4, group_size=32, method="hqq"))


def test_per_layer_and_exclude_on_a_language_model(tiny_lm):
    q = compress(tiny_lm, Quantize(4, group_size=32, per_layer={"model.layers.1": 8}, exclude=["model.layers.0.mlp"]))
    record = quant_record(q)
    assert record.for_layer("model.layers.1.mlp.down_proj").bits == 8
    assert record.for_layer("model.layers.0.self_attn.q_proj").bits == 4
    assert record.for_layer("model.layers.0.mlp.up_proj") is None
    assert torch.equal(q.module.model.layers[0].mlp.up_proj.weight, tiny_lm.module.model.layers[0].mlp.up_proj.weight)


# ---------------------------------------------------------------------------------------------- prune


@pytest.mark.parametrize("importance", ["cosine", "perplexity"])
def test_depth_pruning_drops_the_least_important_layer_and_saves(tiny_lm, lm_task, importance, tmp_path):
    from workbench.formats.lm_folder import save_lm_folder

    v = compress(tiny_lm, Prune(0.5, structure="layer", importance=importance), task=lm_task)
    scores = v.meta["layer_importance"]["scores"]
    assert len(scores) == 2 and v.meta["kept_layers"] == [int(np.argmax(scores))]
    assert len(v.module.model.layers) == 1 and v.module.config.num_hidden_layers == 1
    assert lm_spec(v).layers == 1 and len(tiny_lm.module.model.layers) == 2  # original intact
    assert v.module.model.layers[0].self_attn.layer_idx == 0
    kept = tiny_lm.module.model.layers[v.meta["kept_layers"][0]]
    assert torch.equal(v.module.model.layers[0].mlp.up_proj.weight, kept.mlp.up_proj.weight)
    back = workbench.load(save_lm_folder(v, tmp_path / "v"))
    ids = lm_task.eval_inputs[0][:2]
    torch.testing.assert_close(logits(back.module, ids), logits(v.module, ids))
    with torch.no_grad():  # generates with its KV cache
        out = v.module.generate(torch.from_numpy(ids[:1, :8]), max_new_tokens=4, do_sample=False)
    assert out.shape == (1, 12)


def test_depth_pruning_scores_are_measured(tiny_lm, lm_task):
    v = compress(tiny_lm, Prune(0.5, structure="layer", importance="perplexity"), task=lm_task)
    ids = torch.from_numpy(lm_task.calibration[0][:8])
    with torch.no_grad():  # the score of layer i is the perplexity without it
        alone = float(torch.exp(v.module(input_ids=ids, labels=ids, use_cache=False).loss))
    assert alone == pytest.approx(v.meta["layer_importance"]["scores"][1 - v.meta["kept_layers"][0]], rel=1e-5)


def test_mlp_channel_pruning_is_the_same_model_with_those_channels_zeroed(tiny_lm, lm_task, tmp_path):
    import copy

    from workbench.formats.lm_folder import save_lm_folder

    v = compress(tiny_lm, Prune(0.3, structure="channel", round_to=1), task=lm_task)  # unrounded: floor(I * r)
    keep = 128 - int(128 * 0.3)
    assert compress(tiny_lm, Prune(0.3, structure="channel"), task=lm_task).module.config.intermediate_size == 88
    assert v.module.config.intermediate_size == keep and lm_spec(v).intermediate == keep
    zeroed = copy.deepcopy(tiny_lm.module)
    for layer, small in zip(zeroed.model.layers, v.module.model.layers):
        rows = layer.mlp.gate_proj.weight
        assert small.mlp.gate_proj.weight.shape == (keep, 64) and small.mlp.down_proj.weight.shape == (64, keep)
        kept = [int(torch.nonzero((rows == r).all(dim=1))[0]) for r in small.mlp.gate_proj.weight]
        gone = sorted(set(range(128)) - set(kept))
        with torch.no_grad():
            layer.mlp.down_proj.weight[:, gone] = 0
    ids = lm_task.eval_inputs[0][:2]
    torch.testing.assert_close(logits(v.module, ids), logits(zeroed, ids), rtol=1e-4, atol=1e-5)
    back = workbench.load(save_lm_folder(v, tmp_path / "v"))
    torch.testing.assert_close(logits(back.module, ids), logits(v.module, ids))
    assert v.num_params < tiny_lm.num_params


def test_activation_aware_channels_beat_the_weakest_by_weight(tiny_lm, lm_task):
    aware = compress(tiny_lm, Prune(0.5, structure="channel"), task=lm_task)
    blind = compress(tiny_lm, Prune(0.5, structure="channel"))
    assert aware.meta["pruned_channels"]["importance"] == "activation"
    assert blind.meta["pruned_channels"]["importance"] == "l1"
    ids = lm_task.eval_inputs[0][:8]
    ref = logits(tiny_lm.module, ids)
    err = [float((logits(v.module, ids) - ref).pow(2).mean()) for v in (aware, blind)]
    assert err[0] < err[1]


def test_prune_lm_errors_and_unstructured(tiny_lm, lm_task):
    with pytest.raises(WorkbenchError, match="pass the task"):
        compress(tiny_lm, Prune(0.5, structure="layer"))
    with pytest.raises(WorkbenchError, match="at least 0.5"):
        compress(tiny_lm, Prune(0.25, structure="layer"), task=lm_task)
    sparse = compress(tiny_lm, Prune(0.5))
    assert torch.equal(sparse.module.lm_head.weight, tiny_lm.module.lm_head.weight)  # the tied head is left alone
    w = sparse.module.model.layers[0].mlp.up_proj.weight
    assert 0.3 < float((w == 0).float().mean()) < 0.7


def test_quant_record_follows_dropped_layers(tiny_lm, lm_task):
    v = compress(tiny_lm, Quantize(4, group_size=32, per_layer={"model.layers.1": 8}),
                 Prune(0.5, structure="layer"), task=lm_task)
    kept = v.meta["kept_layers"][0]
    assert quant_record(v).for_layer("model.layers.0.mlp.up_proj").bits == (8 if kept == 1 else 4)
    assert quant_record(v).for_layer("model.layers.1.mlp.up_proj") is None


# -------------------------------------------------------------------------------------------- recover


def test_distillation_recovers_agreement_after_depth_pruning(tiny_lm, lm_task):
    from workbench.runtimes import runtime

    pruned = compress(tiny_lm, Prune(0.5, structure="layer"), task=lm_task)
    healed = compress(pruned, Recover(method="distill", steps=25, batch_size=8, lr=2e-3), task=lm_task)
    rec = healed.meta["recover"]
    assert rec["loss"] == "kl" and rec["final_loss"] < rec["initial_loss"]
    before = lm_task.evaluate(runtime(pruned, "torch"), limit=8)
    after = lm_task.evaluate(runtime(healed, "torch"), limit=8)
    assert after["agreement"] > before["agreement"]
    assert healed.origin is tiny_lm and len(healed.module.model.layers) == 1


def test_finetune_keeps_quantised_weights_on_their_grid(tiny_lm, lm_task):
    q = compress(tiny_lm, Quantize(4, group_size=32), Recover(method="finetune", steps=4, batch_size=4, lr=1e-3),
                 task=lm_task)
    assert q.meta["recover"]["loss"] == "cross_entropy" and q.meta["recover"]["quantised_params"]
    w = q.module.model.layers[0].mlp.up_proj.weight.detach()
    assert torch.equal(quantise_linear_weight(w, 4, 32, True), w)
    q0 = compress(tiny_lm, Quantize(4, group_size=32))
    assert not torch.equal(w, q0.module.model.layers[0].mlp.up_proj.weight)  # it did train


# ------------------------------------------------------------------------------------- the real SmolLM2


@pytest.mark.slow
def test_smollm2_weights_lie_on_a_float_offset_grid_that_only_hqq_keeps():
    """SmolLM2 was distributed at Q4_1 (blocks of 32: ``min + d * q``, a float offset). HQQ's float zero points
    keep that grid almost exactly; ONNX Runtime's RTN rounds the zero point to an integer, which shifts the grid
    by up to half a step: asymmetric RTN moves the weights about as much as symmetric RTN (~8 %)."""
    from workbench.compression.lm_quantize import lm_weight_layers
    from workbench.zoo.smollm2 import model_path

    lm = workbench.load(model_path())
    linear, _ = lm_weight_layers(lm.module)

    def error(bits, symmetric, method="rtn"):
        num = den = 0.0
        for layer in list(linear.values())[:7]:  # the first decoder layer
            w = layer.weight.detach()
            d = quantise_linear_weight(w, bits, 32, symmetric, method) - w
            num, den = num + float((d.double() ** 2).sum()), den + float((w.double() ** 2).sum())
        return (num / den) ** 0.5

    hqq, asym, sym, q3 = error(4, False, "hqq"), error(4, False), error(4, True), error(3, False)
    assert hqq < 0.01 < 0.05 < asym < sym < q3


def test_sensitivity_ranks_a_language_models_layers_by_perplexity(tiny_lm):
    from tiny_lm import tiny_lm_texts

    task = workbench.Task.from_text(tiny_lm, tiny_lm_texts(200), seq_len=64)
    sens = workbench.sensitivity(task, "quantize", levels=[2], limit=4, progress=False)
    assert len(sens) == 2 * 7 + 1 and set(sens["metric"]) == {"perplexity"}  # 7 linears per layer + the LM head
    base = task.evaluate(workbench.runtime(tiny_lm, "torch"), limit=4)["perplexity"]
    assert sens["baseline"].iloc[0] == pytest.approx(base)
    assert (sens["drop"] == sens["value"] - sens["baseline"]).all()  # lower is better: a positive drop is worse
    assert sens["drop"].max() > 0
    with pytest.raises(workbench.WorkbenchError, match="runtime='torch'"):
        workbench.sensitivity(task, "quantize", levels=[2], runtime="onnxruntime", limit=2, progress=False)
