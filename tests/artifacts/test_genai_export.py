"""Language-model export to ONNX Runtime GenAI folders (tiny model): signed manifests that cover every file,
token-agreement parity, and verification that refuses any changed, missing or extra file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import workbench
from workbench.core.errors import WorkbenchError

pytest.importorskip("onnxruntime_genai")


@pytest.fixture(scope="module")
def lm_task(tiny_lm):
    from tiny_lm import tiny_lm_texts

    return workbench.Task.from_text(tiny_lm, tiny_lm_texts(240)[200:240], seq_len=32)


@pytest.fixture(scope="module")
def exported(tiny_lm, lm_task, keypair, tmp_path_factory):
    """The fp32 export of the tiny model and the int4 export of its asymmetric 4-bit variant, signed."""
    out = tmp_path_factory.mktemp("genai-export")
    variant = workbench.compress(tiny_lm, workbench.Quantize(4, group_size=32, symmetric=False))
    fp32 = workbench.export(tiny_lm, "onnx", out, task=lm_task, sign_with=keypair[0], limit=4)
    int4 = workbench.export(variant, "onnx-int4", out, task=lm_task, sign_with=keypair[0], limit=4)
    return fp32, int4


def test_export_writes_a_signed_folder_with_every_file(exported, keypair):
    fp32, int4 = exported
    for art in exported:
        assert art.path.is_dir() and art.signed and art.parity["passed"]
        names = {f["name"] for f in art.manifest["artifact"]["files"]}
        assert names == {p.name for p in art.path.iterdir()} >= {"genai_config.json", "model.onnx",
                                                                  "model.onnx.data", "tokenizer.json"}
        assert art.size_bytes == sum(p.stat().st_size for p in art.path.iterdir())
        assert workbench.verify(art.path, keypair[1]).sha256 == art.sha256
        assert art.parity["agreement_kind"] == "LanguageTask fidelity"
    assert fp32.parity["agreement"] >= 0.99 and int4.parity["agreement"] >= 0.85
    assert int4.manifest["recipe"]["source"] == "the variant's own recipe" and int4.manifest["realized"]
    assert int4.manifest["recipe"]["symmetric"] is False and int4.manifest["recipe"]["block_size"] == 32
    assert int4.size_bytes < fp32.size_bytes
    assert workbench.load(int4.path).meta["genai"]["bits"] == 4


@pytest.mark.parametrize("damage", ["model.onnx.data", "genai_config.json", "missing", "extra"])
def test_verify_refuses_any_changed_file(exported, keypair, tmp_path, damage):
    art = exported[1]
    folder = Path(shutil.copytree(art.path, tmp_path / art.path.name))
    shutil.copy(art.manifest_path, tmp_path / art.manifest_path.name)
    if damage == "missing":
        (folder / "tokenizer.json").unlink()
    elif damage == "extra":
        (folder / "notes.txt").write_text("hello")
    else:
        data = bytearray((folder / damage).read_bytes())
        data[len(data) // 2] ^= 1
        (folder / damage).write_bytes(bytes(data))
    match = {"missing": "missing: tokenizer.json", "extra": "not signed: notes.txt"}.get(damage, damage)
    with pytest.raises(WorkbenchError, match=match):
        workbench.verify(folder, keypair[1])
    workbench.verify(art.path, keypair[1])  # the original still verifies


def test_language_model_export_needs_a_task_and_no_encryption(tiny_lm, keypair, tmp_path):
    with pytest.raises(WorkbenchError, match="Task.from_text"):
        workbench.export(tiny_lm, "onnx", tmp_path)
    with pytest.raises(WorkbenchError, match="folder"):
        workbench.export(tiny_lm, "onnx", tmp_path, task=object(), sign_with=keypair[0],
                         encrypt_with=b"k" * 32)


def test_target_without_a_language_model_form_is_refused(tiny_lm, lm_task, tmp_path):
    with pytest.raises(WorkbenchError, match="no form for a language model"):
        workbench.export(tiny_lm, "torchscript", tmp_path, task=lm_task)
