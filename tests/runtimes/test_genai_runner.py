"""ONNX Runtime GenAI on the tiny language model: builder folders, logits against PyTorch, generation, reloading,
realisation of quantised variants, bad folders; SmolLM2 int4 answering a question (slow)."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest

import workbench
from workbench.core.errors import WorkbenchError
from workbench.formats.genai_folder import build_genai_folder, load_genai_folder
from workbench.realize.genai_realizer import realize_lm

pytest.importorskip("onnxruntime_genai")


@pytest.fixture(scope="module")
def ids(tiny_lm) -> np.ndarray:
    from tiny_lm import held_out_ids

    return held_out_ids(tiny_lm, 6, 48)


@pytest.fixture(scope="module")
def int4(tiny_lm):
    """An asymmetric 4-bit (blocks of 32) variant of the tiny model and its realised GenAI folder."""
    from workbench.realize import realize

    variant = workbench.compress(tiny_lm, workbench.Quantize(4, group_size=32, symmetric=False))
    return variant, realize(variant, "onnxruntime")


def perplexity(logits: np.ndarray, ids: np.ndarray) -> float:
    z = logits[:, :-1].astype(np.float64)
    logp = z - z.max(-1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(-1, keepdims=True))
    nll = -np.take_along_axis(logp, ids[:, 1:, None], -1)
    return math.exp(float(nll.mean()))


def test_fp32_folder_logits_match_torch(tiny_lm, ids):
    folder = build_genai_folder(tiny_lm.path)
    assert {"genai_config.json", "model.onnx", "model.onnx.data", "tokenizer.json"} <= {p.name for p in folder.iterdir()}
    assert build_genai_folder(tiny_lm.path) == folder  # cached: the same folder, no rebuild
    torch_logits = workbench.runtime(tiny_lm, "torch")(ids)[0]
    ort = workbench.runtime(tiny_lm, "onnxruntime", threads=1)
    logits = ort(ids)[0]
    assert ort.artifact == folder and logits.shape == torch_logits.shape and logits.dtype == np.float32
    assert np.abs(logits - torch_logits).max() < 1e-4


def test_int4_variant_realised_and_close_to_torch_fake_quant(int4, ids):
    variant, real = int4
    assert real.realized and "int4 MatMulNBits, block 32, asymmetric" in real.note
    assert real.handle.source_format == "genai" and real.handle.meta["genai"]["bits"] == 4
    fake = perplexity(workbench.runtime(variant, "torch")(ids)[0], ids)
    ort = perplexity(workbench.runtime(real.handle, "onnxruntime")(ids)[0], ids)
    # the builder's asymmetric grid is the workbench's: only int8 activations (accuracy level 4) differ
    assert abs(ort - fake) / fake < 0.01
    data = {p.name: p.stat().st_size for p in real.path.iterdir()}
    fp32 = build_genai_folder(variant.origin.path if variant.origin is not None else real.path)
    assert data["model.onnx.data"] < (fp32 / "model.onnx.data").stat().st_size


def test_an_hqq_variant_is_realised_by_onnx_runtimes_hqq_with_float_zero_points(tiny_lm, ids):
    from workbench.realize import realize

    variant = workbench.compress(tiny_lm, workbench.Quantize(4, group_size=32, method="hqq"))
    real = realize(variant, "onnxruntime")
    assert real.realized and "HQQ" in real.note  # not the builder's round-to-nearest: that would move the grid
    fake = perplexity(workbench.runtime(variant, "torch")(ids)[0], ids)
    ort = perplexity(workbench.runtime(real.handle, "onnxruntime")(ids)[0], ids)
    assert abs(ort - fake) / fake < 0.01


def test_hqq_with_embeddings_quantises_the_tied_table_too(tiny_lm, ids):
    import onnx

    from workbench.measurement.lm import folder_bytes
    from workbench.realize import realize

    head_only = realize(workbench.compress(tiny_lm, workbench.Quantize(4, group_size=32, method="hqq")), "onnxruntime")
    variant = workbench.compress(tiny_lm, workbench.Quantize(4, group_size=32, method="hqq", embeddings=True))
    real = realize(variant, "onnxruntime")
    ops = {n.op_type for n in onnx.load(str(real.path / "model.onnx"), load_external_data=False).graph.node}
    assert "GatherBlockQuantized" in ops and "Transpose" not in ops  # the table has its own int4 copy
    assert folder_bytes(real.path) < 0.8 * folder_bytes(head_only.path)
    fake = perplexity(workbench.runtime(variant, "torch")(ids)[0], ids)
    ort = perplexity(workbench.runtime(real.handle, "onnxruntime")(ids)[0], ids)
    assert abs(ort - fake) / fake < 0.02


def test_unsupported_bits_fall_back_to_fp32_simulated(tiny_lm):
    variant = workbench.compress(tiny_lm, workbench.Quantize(3, group_size=32))
    from workbench.core.quant import quant_record
    from workbench.realize.common import Needs

    real = realize_lm(variant, "onnxruntime", None, Needs(quant_record(variant)))
    assert not real.realized and real.note == "3-bit weights simulated (float kernels)"
    assert real.handle.meta["genai"] is None  # fp32 folder


def test_generate_returns_tokens_and_timings(tiny_lm):
    torch_gen = workbench.runtime(tiny_lm, "torch").generate("The import statement", 12, chat=False)
    gen = workbench.runtime(tiny_lm, "onnxruntime", threads=1).generate("The import statement", 12, chat=False)
    assert gen.new_tokens == len(gen.token_ids) >= 1 and gen.text
    assert gen.ttft_ms > 0 and (gen.tokens_per_s is None or gen.tokens_per_s > 0)
    assert gen.token_ids == torch_gen.token_ids  # greedy fp32: the same tokens as PyTorch
    chat = workbench.runtime(tiny_lm, "onnxruntime").generate("Hello", 4)  # chat template applied
    assert chat.prompt_tokens > len("Hello") // 4


def test_reloaded_genai_folder_runs(int4, tmp_path, ids):
    _, real = int4
    copy = shutil.copytree(real.path, tmp_path / "copy")
    handle = workbench.load(copy)
    assert handle.framework == "onnx" and handle.source_format == "genai" and handle.path == copy
    assert handle.meta["lm"]["layers"] == 2 and handle.meta["lm"]["vocab"] == 384
    assert handle.meta["tokenizer"] == str(copy) and "int4" in handle.meta["realised"]
    again = workbench.runtime(handle, "onnxruntime")(ids[:1])[0]
    first = workbench.runtime(real.handle, "onnxruntime")(ids[:1])[0]
    assert np.array_equal(again, first)


@pytest.mark.parametrize("damage", ["no config", "bad json", "no weights", "no tokenizer"])
def test_bad_folders_are_refused(int4, tmp_path, damage):
    _, real = int4
    folder = Path(shutil.copytree(real.path, tmp_path / "f"))
    if damage == "no config":
        (folder / "genai_config.json").unlink()
    elif damage == "bad json":
        (folder / "genai_config.json").write_text("{not json")
    elif damage == "no weights":
        (folder / "model.onnx.data").unlink()
    else:
        (folder / "tokenizer.json").unlink()
    with pytest.raises(WorkbenchError):
        load_genai_folder(folder)


def test_builder_refuses_bad_input(tmp_path):
    with pytest.raises(WorkbenchError, match="config.json"):
        build_genai_folder(tmp_path)
    with pytest.raises(WorkbenchError, match="block_size"):
        build_genai_folder(tmp_path, precision="int4", block_size=48)


@pytest.mark.slow
def test_smollm2_int4_answers_paris():
    import time

    from workbench.formats.lm_folder import load_lm
    from workbench.zoo.smollm2 import model_path

    model = load_lm(model_path())
    start = time.perf_counter()
    folder = build_genai_folder(model.path, precision="int4", block_size=32, symmetric=True)
    built_s = time.perf_counter() - start
    handle = load_genai_folder(folder)
    gen = workbench.runtime(handle, "onnxruntime", threads=2).generate("What is the capital of France?", 24)
    print(f"SmolLM2 int4: built in {built_s:.1f} s, {gen.tokens_per_s:.0f} tokens/s, ttft {gen.ttft_ms:.0f} ms: "
          f"{gen.text!r}")
    assert "paris" in gen.text.lower(), gen.text
    assert gen.tokens_per_s and gen.tokens_per_s > 0
    assert (folder / "model.onnx.data").stat().st_size < 120e6
