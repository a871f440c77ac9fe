"""LiteRT language-model files on the tiny Llama: the re-authored model against transformers, the converted file's
signatures, KV cache and tokenizer folder, reading it back, quantised conversions, and the configs and files it
refuses."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from workbench.core.errors import WorkbenchError
from workbench.core.lm import lm_spec
from workbench.formats.litert_lm import (
    META_FILE,
    artifact_files,
    build_model,
    check_recipe,
    convert_lm,
    is_litert_lm,
    litert_lm_file,
    litert_model_config,
    load_litert_lm,
    signature_names,
    tokenizer_dir,
)

pytest.importorskip("litert_torch")


@pytest.fixture(scope="module")
def fp32_file(tiny_lm):
    """The tiny model's float32 LiteRT LM file (converted once, in a child process, ~15 s)."""
    return litert_lm_file(tiny_lm)


def test_reauthored_model_matches_transformers(tiny_lm, tiny_lm_dir):
    import torch

    from workbench.formats.litert_lm import generative

    model, mcfg = build_model(tiny_lm_dir, kv_cache=64)
    ids = torch.tensor([[5, 17, 99, 3, 250, 7, 42, 8, 300, 11]])
    kv = generative()["kv_cache"].KVCache.from_model_config(64, mcfg)
    with torch.no_grad():
        ours = model(ids.int(), torch.arange(10, dtype=torch.int), kv)["logits"]
        ref = tiny_lm.module(ids).logits
    assert ours.shape == ref.shape and float((ours - ref).abs().max()) < 1e-4
    assert mcfg.lm_head_share_weight_with_embedding and mcfg.block_config(0).attn_config.num_query_groups == 2


def test_converted_file_has_prefill_decode_signatures_kv_cache_and_tokenizer(tiny_lm, fp32_file):
    from ai_edge_litert.interpreter import Interpreter

    assert is_litert_lm(fp32_file) and is_litert_lm(fp32_file.parent)
    assert set(signature_names(fp32_file)) == {"prefill_32", "prefill_128", "decode"}
    sigs = Interpreter(model_path=str(fp32_file)).get_signature_list()
    spec = lm_spec(tiny_lm)
    kv = [f"kv_cache_{kind}_{i}" for i in range(spec.layers) for kind in "kv"]
    for name in ("prefill_128", "decode"):
        assert set(sigs[name]["inputs"]) == {"tokens", "input_pos", *kv}
        assert set(sigs[name]["outputs"]) == {"logits", *kv}  # prefill returns logits too (for perplexity)
    files = {p.relative_to(fp32_file.parent).as_posix() for p in artifact_files(fp32_file)}
    assert {"model.tflite", "model.tokenizer/tokenizer.json", f"model.tokenizer/{META_FILE}"} <= files
    meta = json.loads((tokenizer_dir(fp32_file) / META_FILE).read_text())
    assert meta["kv_cache"] == 256 and meta["weights"] == "fp32" and meta["lm"] == tiny_lm.meta["lm"]
    assert litert_lm_file(tiny_lm) == fp32_file  # cached: the same file, no second conversion


def test_file_loads_back_as_a_language_model_handle(tiny_lm, fp32_file):
    h = load_litert_lm(fp32_file)
    assert (h.framework, h.source_format, h.path) == ("tflite", "litert_lm", fp32_file)
    assert h.meta["lm"] == tiny_lm.meta["lm"] and h.num_params == tiny_lm.num_params
    assert (tokenizer_dir(fp32_file) / "tokenizer.json").is_file()
    assert h.meta["tokenizer"] == str(tokenizer_dir(fp32_file))
    assert h.meta["litert_lm"]["kv_cache"] == 256 and h.meta["litert_lm"]["prefill"] == [32, 128]
    assert h.inputs[0].name == "input_ids" and h.outputs[0].shape == (None, None, lm_spec(tiny_lm).vocab)
    assert load_litert_lm(fp32_file.parent).fingerprint == h.fingerprint  # the folder form reads the same file


def test_int4_conversion_stores_4_bit_weights_and_shrinks(tiny_lm_dir, fp32_file, tmp_path):
    from workbench.artifacts.tflite_export import storage

    q4 = convert_lm(tiny_lm_dir, tmp_path / "q4.tflite", weights="int4", block_size=32, prefill=(32,),
                    kv_cache=64, isolated=False)
    kinds = storage(q4)
    assert "INT4" in kinds and kinds["INT4"]["elements"] >= 0.9 * load_litert_lm(q4).num_params
    assert q4.stat().st_size < fp32_file.stat().st_size
    h = load_litert_lm(q4)
    assert h.meta["quant"]["*"]["bits"] == 4 and h.meta["litert_lm"]["block_size"] == 32
    assert set(signature_names(q4)) == {"decode", "prefill_32"}


@pytest.mark.parametrize("change, message", [
    ({"model_type": "gpt2"}, "model_type 'gpt2'"),
    ({"attention_bias": True}, "biases"),
    ({"hidden_act": "gelu"}, "hidden_act 'gelu'"),
    ({"rope_parameters": {"rope_type": "llama3", "rope_theta": 5e5, "factor": 8.0}}, "RoPE type 'llama3'"),
])
def test_unsupported_configs_are_refused_with_the_reason(tiny_lm_dir, change, message):
    config = {**json.loads((tiny_lm_dir / "config.json").read_text()), **change}
    with pytest.raises(WorkbenchError, match=message):
        litert_model_config(config, 64)


def test_bad_recipes_and_folders_are_refused(tiny_lm_dir, tmp_path):
    assert check_recipe("int4", None) == 32 and check_recipe("int8", None) is None
    with pytest.raises(WorkbenchError, match="fp32, fp16, int8, int4"):
        check_recipe("int3", None)
    with pytest.raises(WorkbenchError, match="blocks of 32, 64, 128, 256"):
        check_recipe("int4", 48)
    bare = tmp_path / "bare"
    shutil.copytree(tiny_lm_dir, bare)
    (bare / "model.safetensors").unlink()
    with pytest.raises(WorkbenchError, match="safetensors"):
        convert_lm(bare, tmp_path / "x.tflite")
    with pytest.raises(WorkbenchError, match="kv_cache must be between 1 and the model's context"):
        litert_model_config(json.loads((tiny_lm_dir / "config.json").read_text()), 10_000)


def test_a_file_without_its_tokenizer_folder_or_with_bad_metadata_is_refused(fp32_file, tmp_path):
    lone = tmp_path / "lone.tflite"
    shutil.copy2(fp32_file, lone)
    assert not is_litert_lm(lone)
    with pytest.raises(WorkbenchError, match="lone.tokenizer"):
        load_litert_lm(lone)
    shutil.copytree(tokenizer_dir(fp32_file), tokenizer_dir(lone))
    assert load_litert_lm(lone).meta["lm"]["layers"] == 2
    (tokenizer_dir(lone) / META_FILE).write_text('{"format": "something else"}')
    with pytest.raises(WorkbenchError, match="not a edge-workbench/litert-lm/1 file"):
        load_litert_lm(lone)
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(b"\0" * 64)
    shutil.copytree(tokenizer_dir(fp32_file), tokenizer_dir(broken))
    with pytest.raises(WorkbenchError, match="not a readable TFLite flatbuffer|prefill and decode"):
        load_litert_lm(broken)
    with pytest.raises(WorkbenchError, match="no LiteRT language-model file"):
        load_litert_lm(tmp_path / "lone.tokenizer")


def test_example_inputs_fit_the_vocabulary(fp32_file):
    h = load_litert_lm(fp32_file)
    (ex,) = h.example_inputs
    assert ex.dtype == np.int64 and ex.shape == (2, 16) and ex.max() < h.meta["lm"]["vocab"]
