"""Language-model export to OpenVINO LM folders (tiny model): openvino-int4 with token-agreement parity, a signed
manifest that covers every file, the recipe a 4-bit variant keeps, and `workbench.load` reading the folder back."""

from __future__ import annotations

import pytest

import workbench
from workbench.core.errors import WorkbenchError

pytest.importorskip("openvino")
pytest.importorskip("nncf")


@pytest.fixture(scope="module")
def lm_task(tiny_lm):
    from tiny_lm import tiny_lm_texts

    return workbench.Task.from_text(tiny_lm, tiny_lm_texts(240)[200:240], seq_len=32)


@pytest.fixture(scope="module")
def exported(tiny_lm, lm_task, keypair, tmp_path_factory):
    """openvino-int4 of the tiny model (the target's default recipe), signed."""
    out = tmp_path_factory.mktemp("openvino-lm-export")
    return workbench.export(tiny_lm, "openvino-int4", out, task=lm_task, sign_with=keypair[0], limit=4)


def test_int4_export_is_a_signed_folder_with_every_file_and_passes_parity(exported, keypair):
    art = exported
    assert art.path.is_dir() and art.signed and art.parity["passed"] and art.manifest["realized"]
    assert art.parity["agreement"] >= 0.85 and art.parity["agreement_kind"] == "LanguageTask fidelity"
    names = {f["name"] for f in art.manifest["artifact"]["files"]}
    assert names == {p.name for p in art.path.iterdir()} >= {"openvino_model.xml", "openvino_model.bin",
                                                              "openvino_lm.json", "config.json", "tokenizer.json"}
    assert art.size_bytes == sum(p.stat().st_size for p in art.path.iterdir())
    assert workbench.verify(art.path, keypair[1]).sha256 == art.sha256
    recipe = art.manifest["recipe"]
    assert recipe["weights"] == "int4_asym" and recipe["group_size"] == 32 and recipe["backup"] == "int8_asym"
    assert recipe["source"].startswith("the target's default")


def test_a_4_bit_variant_keeps_its_own_recipe(tiny_lm):
    from workbench.artifacts.openvino_lm_export import DEFAULTS
    from workbench.core.quant import quant_record
    from workbench.realize.openvino_lm_realizer import options_for

    variant = workbench.compress(tiny_lm, workbench.Quantize(4, group_size=64, symmetric=False))
    own, realised, _ = options_for(quant_record(variant), variant.meta["lm_quant"])
    assert realised and (own.weights, own.group_size, own.backup) == ("int4_asym", 64, "none")
    assert DEFAULTS["openvino-int4"]["group_size"] == 32


def test_load_reads_the_exported_folder_back_and_it_runs(exported, lm_task):
    handle = workbench.load(exported.path)
    assert handle.framework == "openvino" and handle.meta["openvino_lm"]["weights"] == "int4_asym"
    assert handle.meta["openvino_lm"]["group_size"] == 32 and "u4" in handle.meta["openvino_lm"]["weight_types"]
    out, rows = lm_task.run(workbench.runtime(handle, "openvino"), limit=2)
    assert lm_task.score(out, rows)["agreement"] >= 0.85


def test_storage_counts_the_int4_weights(exported):
    from workbench.artifacts.targets import get_target

    store = get_target("openvino-int4").storage(exported.path, workbench.load(exported.path))
    assert store["uint4"]["elements"] > 0 and store["float16"]["elements"] > 0  # int4 codes and zero points, fp16 scales
    assert store["uint8"]["elements"] >= 384 * 64  # the (tied) embedding and LM head stay int8 by default


def test_a_loaded_folder_exports_only_at_its_own_precision(exported, lm_task, tmp_path):
    handle = workbench.load(exported.path)
    with pytest.raises(WorkbenchError, match="already an OpenVINO LM folder"):
        workbench.export(handle, "openvino", tmp_path, task=lm_task)
