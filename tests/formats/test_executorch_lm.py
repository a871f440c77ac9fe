"""ExecuTorch language-model files without converting anything: the decoder the converter exports against
transformers, configurations it cannot express refused with the reason, and damaged or incomplete files refused
when loaded (a damaged program in a child process). Loading a real file: tests/runtimes/test_executorch_lm_runner.py."""

from __future__ import annotations

import json
import shutil

import pytest

from workbench.core.errors import WorkbenchError
from workbench.formats.executorch_lm import FORMAT, META_FILE, convert_lm, is_executorch_lm, load_executorch_lm


def test_the_xnnpack_decoder_matches_transformers_with_its_cache(tiny_lm, tiny_lm_dir):
    import torch

    from workbench.formats.executorch_lm import check_config
    from workbench.nets.llama_decoder import XnnpackDecoder

    theta = check_config(json.loads((tiny_lm_dir / "config.json").read_text()), 64)
    decoder = XnnpackDecoder(tiny_lm.module, 64, theta).eval()
    ids = torch.arange(3, 43).view(1, 40) % tiny_lm.meta["lm"]["vocab"]
    with torch.no_grad():
        ref = tiny_lm.module(ids).logits
        full = decoder(ids, torch.arange(40))
        first = decoder(ids[:, :30], torch.arange(30))
        rest = torch.cat([decoder(ids[:, i:i + 1], torch.tensor([i])) for i in range(30, 40)], dim=1)
    assert (full - ref).abs().max() < 1e-4
    assert (torch.cat([first, rest], dim=1) - ref).abs().max() < 1e-4
    assert decoder.lm_head is tiny_lm.module.lm_head  # shares the weights: nothing copied, nothing changed


@pytest.mark.parametrize("change, message", [
    ({"model_type": "gpt2"}, "model_type 'gpt2'"),
    ({"hidden_act": "gelu"}, "hidden_act 'gelu'"),
    ({"rope_parameters": {"rope_type": "linear", "factor": 2.0}}, "RoPE type 'linear'"),
    ({"sliding_window": 128}, "sliding-window"),
])
def test_unsupported_configs_are_refused_with_the_reason(tiny_lm_dir, tmp_path, change, message):
    folder = tmp_path / "m"
    shutil.copytree(tiny_lm_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, **change}))
    with pytest.raises(WorkbenchError, match=message):
        convert_lm(folder, tmp_path / "out" / "model.pte")


def test_bad_recipes_and_folders_are_refused(tiny_lm_dir, tmp_path):
    with pytest.raises(WorkbenchError, match="store weights as fp32, int8, int4"):
        convert_lm(tiny_lm_dir, tmp_path / "a.pte", weights="int3")
    with pytest.raises(WorkbenchError, match="groups of 32, 64, 128, 256"):
        convert_lm(tiny_lm_dir, tmp_path / "a.pte", weights="int4", group_size=48)
    with pytest.raises(WorkbenchError, match="kv_cache must be between"):
        convert_lm(tiny_lm_dir, tmp_path / "a.pte", kv_cache=100_000)
    bare = tmp_path / "bare"
    shutil.copytree(tiny_lm_dir, bare)
    (bare / "tokenizer.json").unlink()
    with pytest.raises(WorkbenchError, match="no tokenizer.json"):
        convert_lm(bare, tmp_path / "a.pte")


def fake_pair(tiny_lm, tiny_lm_dir, folder, content: bytes):
    """A ``model.pte`` holding `content` beside a well-formed tokenizer folder."""
    folder.mkdir(parents=True)
    pte = folder / "model.pte"
    pte.write_bytes(content)
    side = folder / "model.tokenizer"
    side.mkdir()
    shutil.copy2(tiny_lm_dir / "tokenizer.json", side / "tokenizer.json")
    meta = {"format": FORMAT, "lm": tiny_lm.meta["lm"], "weights": "fp32", "group_size": None, "kv_cache": 64,
            "method": "forward", "eos_token_ids": [2], "num_params": 1}
    (side / META_FILE).write_text(json.dumps(meta))
    return pte


def test_damaged_or_incomplete_files_are_refused_when_loaded(tiny_lm, tiny_lm_dir, tmp_path):
    pte = fake_pair(tiny_lm, tiny_lm_dir, tmp_path / "bad", b"\x00" * 64)
    assert is_executorch_lm(pte) and is_executorch_lm(pte.parent)
    with pytest.raises(WorkbenchError, match="not an ExecuTorch program"):
        load_executorch_lm(pte.parent)
    ok = fake_pair(tiny_lm, tiny_lm_dir, tmp_path / "ok", b"\x3c\x00\x00\x00ET12" + b"\x00" * 56)
    with pytest.raises(WorkbenchError, match="(not a loadable|crashed).*ExecuTorch"):  # opened in a child process
        load_executorch_lm(ok)
    (ok.parent / "model.tokenizer" / "tokenizer.json").unlink()
    with pytest.raises(WorkbenchError, match="no tokenizer.json"):
        load_executorch_lm(ok)
    (pte.parent / "model.tokenizer" / META_FILE).write_text(json.dumps({"format": "something else"}))
    with pytest.raises(WorkbenchError, match="not a edge-workbench/executorch-lm/1 file"):
        load_executorch_lm(pte)
    shutil.rmtree(pte.parent / "model.tokenizer")
    assert not is_executorch_lm(pte)
    with pytest.raises(WorkbenchError, match="no ExecuTorch language-model file"):
        load_executorch_lm(pte.parent)
