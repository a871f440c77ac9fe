"""Loading language models: Hugging Face folders and GGUF files in, clear errors for everything that is not one."""

from __future__ import annotations

import json
import shutil
import struct

import numpy as np
import pytest
import torch

import workbench
from workbench.core.lm import LMSpec, is_language_model, lm_spec
from workbench.formats.lm_folder import lm_folder_of, save_lm_folder, tokenizer_of


def copy_of(src, tmp_path, name="m"):
    out = tmp_path / name
    shutil.copytree(src, out)
    return out


def test_a_folder_loads_as_a_causal_language_model(tiny_lm, tiny_lm_dir):
    spec = lm_spec(tiny_lm)
    assert is_language_model(tiny_lm) and tiny_lm.framework == "torch"
    assert spec == LMSpec("llama", 2, 64, 4, 2, 16, 128, spec.vocab, 256, True)
    assert tiny_lm.inputs[0].name == "input_ids" and tiny_lm.inputs[0].dtype == "int64"
    assert tiny_lm.outputs[0].shape == (None, None, spec.vocab)
    assert tiny_lm.num_params == sum(p.numel() for p in tiny_lm.module.parameters())
    ids = tokenizer_of(tiny_lm)("The for statement")["input_ids"]
    assert len(ids) >= 2 and max(ids) < spec.vocab


def test_the_torch_runner_returns_logits_for_every_position(tiny_lm):
    run = workbench.runtime(tiny_lm, "torch")
    ids = np.asarray([[1, 5, 9, 13]], np.int64)
    (logits,) = run(ids)
    with torch.no_grad():
        ref = tiny_lm.module(torch.from_numpy(ids)).logits.numpy()
    assert logits.shape == (1, 4, lm_spec(tiny_lm).vocab) and np.allclose(logits, ref, atol=1e-6)


def test_generate_is_greedy_and_timed(tiny_lm):
    run = workbench.runtime(tiny_lm, "torch", threads=1)
    a = run.generate("The for statement", 8, chat=False)
    b = run.generate("The for statement", 8, chat=False)
    assert a.token_ids == b.token_ids and 1 <= a.new_tokens <= 8 and a.ttft_ms > 0
    assert a.tokens_per_s is None or a.tokens_per_s > 0
    seen = []
    run.generate("The for statement", 4, chat=False, stream=seen.append)
    assert seen and all(isinstance(s, str) for s in seen)
    with pytest.raises(workbench.WorkbenchError, match="max_new_tokens"):
        run.generate("x", 0)


def test_generate_on_a_cnn_says_it_needs_a_language_model(digits):
    with pytest.raises(workbench.WorkbenchError, match="not a language model"):
        workbench.runtime(digits.model, "torch").generate("hello")


def test_pickled_weights_are_refused_and_nothing_is_unpickled(tiny_lm_dir, tmp_path):
    folder = copy_of(tiny_lm_dir, tmp_path)
    (folder / "model.safetensors").unlink()
    marker = tmp_path / "ran"
    import pickle

    class Boom:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (folder / "pytorch_model.bin").write_bytes(pickle.dumps(Boom()))
    with pytest.raises(workbench.WorkbenchError, match="pickle"):
        workbench.load(folder)
    with pytest.raises(workbench.WorkbenchError, match="pickle"):
        workbench.load(folder / "pytorch_model.bin")
    assert not marker.exists()


def test_a_folder_without_weights_or_tokenizer_says_what_is_missing(tiny_lm_dir, tmp_path):
    folder = copy_of(tiny_lm_dir, tmp_path, "noweights")
    (folder / "model.safetensors").unlink()
    with pytest.raises(workbench.WorkbenchError, match="no weights"):
        workbench.load(folder)
    folder = copy_of(tiny_lm_dir, tmp_path, "notok")
    (folder / "tokenizer.json").unlink()
    with pytest.raises(workbench.WorkbenchError, match="tokenizer.json"):
        workbench.load(folder)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(workbench.WorkbenchError, match="not a model folder"):
        workbench.load(empty)


def test_a_config_that_does_not_match_the_weights_is_refused(tiny_lm_dir, tmp_path):
    folder = copy_of(tiny_lm_dir, tmp_path)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["num_hidden_layers"] = 3  # the weights hold two
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(workbench.WorkbenchError, match="does not match the weights"):
        workbench.load(folder)
    cfg["num_hidden_layers"], cfg["intermediate_size"] = 2, 96  # wrong shapes
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(workbench.WorkbenchError, match="config.json"):
        workbench.load(folder)


def test_remote_code_is_never_run(tiny_lm_dir, tmp_path):
    folder = copy_of(tiny_lm_dir, tmp_path)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["auto_map"] = {"AutoModelForCausalLM": "evil.Model"}
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(workbench.WorkbenchError, match="custom Python code"):
        workbench.load(folder)


def test_a_broken_gguf_file_gets_a_clear_error(tmp_path):
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"not a gguf file at all")
    with pytest.raises(workbench.WorkbenchError, match="not a GGUF file"):
        workbench.load(bad)
    # a valid header that promises tensors the file does not hold (truncated)
    header = b"GGUF" + struct.pack("<IQQ", 3, 5, 2)
    bad.write_bytes(header)
    with pytest.raises(workbench.WorkbenchError, match="damaged or truncated"):
        workbench.load(bad)


def test_a_variant_is_saved_as_a_folder_that_loads_back(tiny_lm, tmp_path):
    out = save_lm_folder(tiny_lm, tmp_path / "copy")
    again = workbench.load(out)
    ids = np.asarray([[3, 4, 5, 6]], np.int64)
    assert np.allclose(workbench.runtime(again, "torch")(ids)[0], workbench.runtime(tiny_lm, "torch")(ids)[0])
    assert lm_folder_of(tiny_lm) == tiny_lm.path  # an original is its own folder: nothing written


def test_a_gguf_file_loads_and_is_cached_as_a_folder(tiny_lm_dir, tmp_path, monkeypatch):
    """A GGUF file written by the `gguf` package (the real format), read back by transformers."""
    gguf = pytest.importorskip("gguf")
    from safetensors.numpy import load_file

    cfg = json.loads((tiny_lm_dir / "config.json").read_text())
    weights = load_file(str(tiny_lm_dir / "model.safetensors"))
    path = tmp_path / "tiny.gguf"
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(cfg["num_attention_heads"])
    w.add_head_count_kv(cfg["num_key_value_heads"])
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_rope_freq_base(cfg.get("rope_theta", 10000.0))
    w.add_vocab_size(cfg["vocab_size"])
    tok = json.loads((tiny_lm_dir / "tokenizer.json").read_text())
    vocab = sorted(tok["model"]["vocab"].items(), key=lambda kv: kv[1])
    w.add_tokenizer_model("gpt2")
    w.add_token_list([t for t, _ in vocab])
    w.add_token_types([1] * len(vocab))
    w.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in tok["model"]["merges"]])
    w.add_bos_token_id(cfg["bos_token_id"])
    w.add_eos_token_id(cfg["eos_token_id"])
    names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight"}
    per_layer = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
                 "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
                 "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm"}
    heads, kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]

    def permute(t, n):  # llama.cpp stores Q and K rotary halves interleaved (transformers undoes it on load)
        return t.reshape(n, 2, t.shape[0] // n // 2, *t.shape[1:]).swapaxes(1, 2).reshape(t.shape)

    for key, t in weights.items():
        if key.startswith("model.layers."):
            i, rest = key[len("model.layers."):].split(".", 1)
            mod, leaf = rest.rsplit(".", 1)
            t = permute(t, heads) if mod == "self_attn.q_proj" else permute(t, kv) if mod == "self_attn.k_proj" else t
            w.add_tensor(f"blk.{i}.{per_layer[mod]}.{leaf}", np.ascontiguousarray(t, np.float32))
        elif key in names:
            w.add_tensor(names[key], np.ascontiguousarray(t, np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))
    handle = workbench.load(path)
    assert lm_spec(handle).layers == 2 and handle.meta["source_file"] == str(path)
    ref = workbench.load(tiny_lm_dir)
    ids = np.asarray([[5, 6, 7, 8, 9]], np.int64)
    a, b = workbench.runtime(handle, "torch")(ids)[0], workbench.runtime(ref, "torch")(ids)[0]
    assert np.abs(a - b).max() < 1e-4  # the same weights, through llama.cpp's layout and back
    assert (tmp_path / "cache" / "lm").is_dir()
    # truncate the real file: a clear error, and the half-read file leaves no cache folder behind
    data = path.read_bytes()
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(workbench.WorkbenchError, match="damaged or truncated"):
        workbench.load(cut)
