"""OpenVINO export targets: an IR folder that passes parity in OpenVINO, a signed manifest over both files, a
verify that refuses a changed model.bin, and `workbench.load` of the folder and of its model.xml."""

from __future__ import annotations

import shutil

import pytest

import workbench
from workbench.artifacts import TARGETS
from workbench.core.errors import WorkbenchError

pytest.importorskip("nncf")


@pytest.mark.parametrize("target", ["openvino", "openvino-int8"])
def test_ir_folder_passes_parity_and_is_signed(artifact, keypair, target):
    art = artifact("digits-cnn", target)
    assert art.path.is_dir() and sorted(p.name for p in art.path.iterdir()) == ["model.bin", "model.xml"]
    assert art.parity["passed"] and art.parity["artifact_runtime"] == "openvino"
    m = art.manifest
    assert [f["name"] for f in m["artifact"]["files"]] == ["model.bin", "model.xml"]
    assert (m["format"], m["runtime"], m["precision"]["target"]) == ("openvino", "openvino", TARGETS[target].precision)
    assert art.signed and workbench.verify(art.path, keypair[1]).sha256 == art.sha256
    for path in (art.path, art.path / "model.xml"):
        h = workbench.load(path)
        assert h.framework == "openvino" and h.inputs[0].shape == (None, 1, 32, 32)


def test_fp32_ir_agrees_to_float_precision_and_int8_stores_int8(artifact):
    p = artifact("digits-cnn", "openvino").parity
    assert p["agreement"] == 1.0 and p["max_rel_error"] < 1e-4
    storage = artifact("digits-cnn", "openvino-int8").manifest["storage"]
    assert storage["INT8"]["elements"] > 0.9 * workbench.zoo.load("digits-cnn").model.num_params
    assert artifact("digits-cnn", "openvino-int8").size_bytes < 0.6 * artifact("digits-cnn", "openvino").size_bytes


def test_verify_refuses_a_changed_bin(artifact, keypair, tmp_path):
    art = artifact("digits-cnn", "openvino")
    folder = tmp_path / art.path.name
    shutil.copytree(art.path, folder)
    shutil.copyfile(art.manifest_path, tmp_path / art.manifest_path.name)
    bin_ = folder / "model.bin"
    data = bytearray(bin_.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bin_.write_bytes(bytes(data))
    with pytest.raises(WorkbenchError, match="model.bin: sha256 .* differs from the signed"):
        workbench.verify(folder, keypair[1])


def test_int4_on_a_cnn_says_how_little_is_int4(artifact):
    art = artifact("digits-cnn", "openvino-int4")
    assert any("NNCF has no int4 convolution" in n for n in art.manifest["notes"])
    assert art.manifest["storage"]["INT4"]["elements"] == 10 * 256  # the classifier only


def test_folder_targets_refuse_encryption(tmp_path, keypair):
    task = workbench.zoo.load("digits-cnn")
    with pytest.raises(WorkbenchError, match="openvino exports as a folder of files"):
        workbench.export(task.model, "openvino", tmp_path, task=task, sign_with=keypair[0],
                         encrypt_with=workbench.keys.generate_secret(tmp_path / "k"))
