"""ONNX Runtime's transformer fusions (`workbench.formats.onnx_optimize`): they fire on a tiny Hugging Face BERT,
the fused file computes what the model computes, its fused layers keep their names (so an exclusion still applies
to one attention block), a CNN is left untouched, and a failing optimizer falls back to the unfused export."""

from __future__ import annotations

import collections

import numpy as np
import pytest
import torch
from tiny_bert import LAYERS, TinyBert, tiny_bert_inputs

import workbench
from workbench.formats import onnx_optimize
from workbench.formats.convert import to_onnx
from workbench.formats.onnx_optimize import fuse_transformer, fused_layers, transformer_onnx


@pytest.fixture(scope="module")
def bert():
    return workbench.load(TinyBert(), example_inputs=tiny_bert_inputs(), name="tiny-bert")


def ops(path) -> collections.Counter:
    import onnx

    return collections.Counter(n.op_type for n in onnx.load(str(path)).graph.node)


def test_fusions_fire_on_a_bert_and_the_fused_file_computes_the_same(bert):
    attention = bert.module.bert.config._attn_implementation
    fused = transformer_onnx(bert)
    assert fused.is_fused and fused.path.name.endswith("-fused.onnx")
    assert fused.fused["Attention"] == LAYERS and fused.fused["EmbedLayerNormalization"] == 1
    assert fused.fused["BiasGelu"] == LAYERS and "SkipLayerNormalization" not in fused.fused  # slow CPU kernel
    found = ops(fused.path)
    assert found["Attention"] == LAYERS and found["Softmax"] == 0 and found["SkipLayerNormalization"] == 0
    assert "Attention x2" in fused.note and "eager attention" in fused.note
    x = tiny_bert_inputs()
    got = workbench.runtime(workbench.load(fused.path), "onnxruntime", threads=1)(*x)[0]
    want = workbench.runtime(bert, "torch")(*x)[0]
    np.testing.assert_allclose(got, want, atol=2e-4)
    assert bert.module.bert.config._attn_implementation == attention  # the export switched a copy to eager
    assert transformer_onnx(bert).path == fused.path  # cached


def test_fused_nodes_keep_the_layer_names_so_a_recipe_can_exclude_one_block(bert, tmp_path):
    import onnx

    from workbench import Quantize
    from workbench.compression.quantize_files import onnx_weights, realize_onnx

    fused = transformer_onnx(bert)
    model = onnx.load(str(fused.path))
    held = {n.op_type: [layer for layer, _, _ in fused_layers(n)] for n in model.graph.node if fused_layers(n)}
    assert held["Attention"] == [f"bert.encoder.layer.{LAYERS - 1}.attention.self.{p}" for p in ("query", "key",
                                                                                                  "value")]
    layers = {w.layer for w in onnx_weights(model)}
    assert "bert.encoder.layer.0.attention.self.query" in layers and "bert.encoder.layer.0.output.dense" in layers
    out = realize_onnx(fused.path, Quantize(8, exclude=["bert.encoder.layer.0.attention.self.query"]),
                       tmp_path / "q.onnx", mode="dynamic")
    q = ops(out)
    assert (q["QAttention"], q["Attention"]) == (LAYERS - 1, 1)  # block 0 stays float: its query is excluded
    assert q["EmbedLayerNormalization"] == 1 and q["QEmbedLayerNormalization"] == 0  # embeddings not asked for
    assert q["MatMulInteger"] == 3 * LAYERS
    q_all = ops(realize_onnx(fused.path, Quantize(8, embeddings=True), tmp_path / "qe.onnx", mode="dynamic"))
    assert (q_all["QAttention"], q_all["QEmbedLayerNormalization"]) == (LAYERS, 1)


def test_a_cnn_is_left_untouched(tiny_handle):
    plain = to_onnx(tiny_handle)
    assert transformer_onnx(tiny_handle) == onnx_optimize.Fused(plain)
    assert fuse_transformer(plain) == onnx_optimize.Fused(plain)


def broken_optimizer(monkeypatch, tmp_path):
    import onnxruntime.transformers.optimizer as ort_optimizer

    def broken(*args, **kwargs):
        raise RuntimeError("optimizer exploded")

    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))  # no cached outcome of the other tests
    monkeypatch.setattr(ort_optimizer, "optimize_model", broken)


def test_a_failing_optimizer_leaves_the_file_as_exported(monkeypatch, tmp_path):
    path = tmp_path / "bert.onnx"
    with torch.no_grad():
        torch.onnx.export(TinyBert(), tuple(torch.from_numpy(a) for a in tiny_bert_inputs()), str(path),
                          dynamo=False, opset_version=17, input_names=["input_ids", "attention_mask"])
    broken_optimizer(monkeypatch, tmp_path)
    got = fuse_transformer(path)
    assert got.path == path and not got.is_fused
    assert got.note == "transformer fusions not applied (optimizer exploded); left as exported"


@pytest.mark.slow
def test_a_failing_optimizer_falls_back_to_the_unfused_export_in_realize(monkeypatch, tmp_path):
    from workbench.realize import realize

    broken_optimizer(monkeypatch, tmp_path)
    handle = workbench.load(TinyBert(), example_inputs=tiny_bert_inputs(), name="tiny-bert")
    got = transformer_onnx(handle)
    assert not got.is_fused and got.path == to_onnx(handle)
    assert "transformer fusions not applied (optimizer exploded)" in got.note
    real = realize(handle, "onnxruntime")
    assert real.path == to_onnx(handle) and "not applied" in real.note and real.realized


def test_a_fusion_that_changes_the_outputs_is_refused(bert, monkeypatch, tmp_path):
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path))
    monkeypatch.setattr(onnx_optimize, "DRIFT_LIMIT", -1.0)  # any difference at all counts as a change
    got = transformer_onnx(bert)
    assert not got.is_fused and "outputs differ" in got.note
