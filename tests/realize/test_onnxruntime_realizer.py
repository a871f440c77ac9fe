"""The ONNX Runtime realiser: a BERT-like transformer runs the fused graph in fp32 and quantised after fusion in
dynamic int8 (QAttention), its layers honoured; a CNN keeps the plain export."""

from __future__ import annotations

import collections

import numpy as np
import pytest
from tiny_bert import LAYERS, TinyBert, tiny_bert_inputs

import workbench
from workbench import Quantize, compress
from workbench.formats.convert import to_onnx
from workbench.realize import realize


@pytest.fixture(scope="module")
def bert():
    return workbench.load(TinyBert(), example_inputs=tiny_bert_inputs(), name="tiny-bert")


def ops(path) -> collections.Counter:
    import onnx

    return collections.Counter(n.op_type for n in onnx.load(str(path)).graph.node)


@pytest.mark.slow  # two TorchScript exports + fusion + quantisation: ~20 s on a quiet 2-core VM
def test_a_transformer_runs_fused_in_fp32_and_quantised_after_fusion_in_int8(bert):
    fp32 = realize(bert, "onnxruntime")
    assert fp32.realized and "Attention x2" in fp32.note and ops(fp32.path)["Attention"] == LAYERS
    int8 = realize(compress(bert, Quantize(8)), "onnxruntime")
    found = ops(int8.path)
    assert int8.realized and int8.compute_dtype == "int8" and int8.note.startswith("int8 dynamic; ONNX Runtime")
    assert found["QAttention"] == LAYERS and found["MatMulInteger"] == 3 * LAYERS and found["MatMul"] == 0
    assert found["EmbedLayerNormalization"] == 1  # Quantize(8) leaves embeddings float (embeddings=False)
    x = tiny_bert_inputs()
    ref = workbench.runtime(bert, "torch")(*x)[0]
    got = workbench.runtime(int8.handle, "onnxruntime", threads=1)(*x)[0]
    cos = (got * ref).sum(-1) / np.linalg.norm(got, axis=-1) / np.linalg.norm(ref, axis=-1)
    assert cos.min() > 0.98  # int8 weights, same model


@pytest.mark.slow
def test_an_excluded_attention_layer_keeps_its_block_float(bert):
    v = compress(bert, Quantize(8, exclude=["bert.encoder.layer.1.attention.self.value"]))
    found = ops(realize(v, "onnxruntime").path)
    assert (found["QAttention"], found["Attention"]) == (LAYERS - 1, 1)


def test_a_cnn_keeps_the_plain_export(tiny_handle):
    fp32 = realize(tiny_handle, "onnxruntime")
    assert fp32.path == to_onnx(tiny_handle) and fp32.note == "fp32"
