"""OpenVINO on the tiny language model: the stateful IR's logits against PyTorch, greedy generation, int4 realised
by NNCF, reloading and bad folders; SmolLM2 fp32 perplexity against PyTorch (slow)."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest

import workbench
from workbench.core.errors import WorkbenchError

pytest.importorskip("openvino")
pytest.importorskip("nncf")


@pytest.fixture(scope="module")
def ids(tiny_lm) -> np.ndarray:
    from tiny_lm import held_out_ids

    return held_out_ids(tiny_lm, 6, 48)


@pytest.fixture(scope="module")
def int4(tiny_lm):
    """An asymmetric 4-bit (groups of 32) variant of the tiny model and its realised OpenVINO LM folder."""
    from workbench.realize import realize

    variant = workbench.compress(tiny_lm, workbench.Quantize(4, group_size=32, symmetric=False))
    return variant, realize(variant, "openvino")


def perplexity(logits: np.ndarray, ids: np.ndarray) -> float:
    z = logits[:, :-1].astype(np.float64)
    logp = z - z.max(-1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(-1, keepdims=True))
    return math.exp(float(-np.take_along_axis(logp, ids[:, 1:, None], -1).mean()))


def test_fp32_logits_and_generation_match_torch(tiny_lm, ids):
    from workbench.formats.openvino_lm import MODEL_XML, build_openvino_lm

    run = workbench.runtime(tiny_lm, "openvino", threads=1)
    assert run.artifact == build_openvino_lm(tiny_lm)  # the cached fp32 conversion
    assert {MODEL_XML, "openvino_model.bin", "config.json", "tokenizer.json"} <= {p.name for p in run.artifact.iterdir()}
    torch_logits = workbench.runtime(tiny_lm, "torch")(ids)[0]
    logits = run(ids)[0]  # the whole batch in one call, from a fresh cache state
    assert logits.shape == torch_logits.shape and logits.dtype == np.float32
    assert np.abs(logits - torch_logits).max() < 1e-4
    assert np.array_equal(run(ids[:1])[0], logits[:1])  # the state was reset between calls
    torch_gen = workbench.runtime(tiny_lm, "torch").generate("The import statement", 12, chat=False)
    gen = run.generate("The import statement", 12, chat=False)
    assert gen.token_ids == torch_gen.token_ids  # greedy fp32: the same tokens as PyTorch
    assert gen.ttft_ms > 0 and (gen.tokens_per_s is None or gen.tokens_per_s > 0) and gen.text == torch_gen.text
    seen: list[str] = []
    chat = run.generate("Hello", 4, stream=seen.append)  # chat template applied
    assert chat.prompt_tokens > len("Hello") // 4 and seen and seen[-1] == chat.text


def test_int4_variant_realised_by_nncf_close_to_torch_fake_quant(int4, ids, tiny_lm):
    from workbench.measurement.lm import folder_bytes

    variant, real = int4
    assert real.realized and real.compute_dtype == "int8"
    assert real.note.startswith("int4 asymmetric, group 32, embedding and LM head float (NNCF compress_weights)")
    assert "activations quantised to int8 at run time" in real.note
    assert real.handle.framework == "openvino" and real.handle.meta["openvino_lm"]["weights"] == "int4_asym"
    assert "u4" in real.handle.meta["openvino_lm"]["weight_types"]
    fake = perplexity(workbench.runtime(variant, "torch")(ids)[0], ids)
    ov = perplexity(workbench.runtime(real.handle, "openvino", threads=1)(ids)[0], ids)
    assert abs(ov - fake) / fake < 0.01  # NNCF's grid re-quantises the variant's values; int8 activations differ
    fp32 = workbench.runtime(tiny_lm, "openvino").artifact
    assert (real.path / "openvino_model.bin").stat().st_size < 0.8 * (fp32 / "openvino_model.bin").stat().st_size
    assert folder_bytes(real.path) < folder_bytes(fp32)


def test_unsupported_bits_fall_back_to_fp32_simulated(tiny_lm):
    from workbench.core.quant import quant_record
    from workbench.realize.common import Needs
    from workbench.realize.openvino_lm_realizer import realize_lm

    variant = workbench.compress(tiny_lm, workbench.Quantize(3, group_size=32))
    real = realize_lm(variant, "openvino", None, Needs(quant_record(variant)))
    assert not real.realized and real.compute_dtype is None
    assert real.note.startswith("3-bit weights simulated (fp32 IR of the fake-quantised weights); fp32 arithmetic")


def test_reloaded_folder_runs_as_it_is(int4, tmp_path, ids):
    _, real = int4
    copy = shutil.copytree(real.path, tmp_path / "copy")
    handle = workbench.load(copy)
    assert handle.framework == "openvino" and handle.path == copy and handle.meta["tokenizer"] == str(copy)
    assert handle.meta["lm"]["layers"] == 2 and handle.meta["lm"]["vocab"] == 384
    assert "int4 asymmetric" in handle.meta["realised"]
    from workbench.realize import realize

    again = realize(handle, "openvino")
    assert again.path == copy and again.realized and again.note.startswith("OpenVINO LM folder as loaded (int4")
    assert np.array_equal(workbench.runtime(handle, "openvino")(ids[:2])[0],
                          workbench.runtime(real.handle, "openvino")(ids[:2])[0])


@pytest.mark.parametrize("damage", ["no weights", "no tokenizer", "bad config", "not a decoder"])
def test_bad_folders_are_refused(int4, tmp_path, damage):
    from workbench.formats.openvino_lm import load_openvino_lm

    _, real = int4
    folder = Path(shutil.copytree(real.path, tmp_path / "f"))
    if damage == "no weights":
        (folder / "openvino_model.bin").unlink()
    elif damage == "no tokenizer":
        (folder / "tokenizer.json").unlink()
    elif damage == "bad config":
        (folder / "config.json").write_text("{not json")
    else:
        (folder / "openvino_model.xml").write_text('<?xml version="1.0"?><net name="x" version="11"><layers/></net>')
    with pytest.raises(WorkbenchError):
        load_openvino_lm(folder)


@pytest.mark.slow  # int4 on OpenVINO is checked on the tiny model in the default run; here only the real model's fp32
def test_smollm2_fp32_perplexity_matches_torch():
    from workbench import zoo

    task = zoo.load("smollm2")
    torch_ppl = task.score(*task.run(workbench.runtime(task.model, "torch", threads=2), limit=8))["perplexity"]
    ov = workbench.runtime(task.model, "openvino", threads=2)
    ov_ppl = task.score(*task.run(ov, limit=8))["perplexity"]
    print(f"SmolLM2 fp32 perplexity: OpenVINO {ov_ppl:.4f}, torch {torch_ppl:.4f}")
    assert abs(ov_ppl - torch_ppl) / torch_ppl < 0.005, (ov_ppl, torch_ppl)