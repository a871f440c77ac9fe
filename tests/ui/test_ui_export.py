"""The Export button: rebuilds the clicked variant, writes the artefact and its (signed) manifest, shows parity."""

from __future__ import annotations

import json

import pytest

import workbench
from workbench import ui

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_explorer_export_writes_a_signed_artifact(frame, click_point, tmp_path):
    ex = ui.TradeoffExplorer(frame, out_dir=tmp_path / "out")
    i = next(i for i, t in enumerate(ex.figure.data) if t.name == "8-bit")
    k = list(ex.figure.data[i].customdata).index("q8@raspberry-pi-4")
    click_point(ex.figure, i, k)
    assert ex.export.target.value == "onnx-int8" and ex.export.sign.value
    ex.export.button.click()
    assert ex.export.last_error is None, ex.export.errors.value
    art = ex.export.artifact
    assert art.path.is_file() and art.path.parent == tmp_path / "out" and art.signed
    assert art.manifest["lineage"] and art.manifest["lineage"][0]["type"] == "quantize"
    public = tmp_path / "out" / "keys" / "signing-key.pub.pem"
    assert workbench.verify(art.path, public).sha256 == art.sha256
    report = ex.export.report.value
    assert "passed" in report and "signature verifies" in report and art.path.name in report


def test_export_panel_picks_and_exports(frame, tmp_path):
    panel = ui.ExportPanel(frame, out_dir=tmp_path)
    # the smallest variant within 0.02 of the original accuracy
    assert panel.variant.label == "q8 on onnxruntime"
    assert "Variant: Not pruned, 8-bit (q8)" in panel.details.value
    panel.variant.value = "channel-0.50@raspberry-pi-4"
    assert "Variant: Half the channels, 32-bit float (channel-0.50)" in panel.details.value
    panel.export.target.value = "onnx"
    panel.export.sign.value = False
    panel.export.button.click()
    assert panel.export.last_error is None, panel.export.errors.value
    art = panel.export.artifact
    assert art.path.name.endswith(".onnx") and not art.signed
    assert json.loads(art.manifest_path.read_text())["target"] == "onnx"
    assert "wb-manifest" in panel.export.report.value
    assert workbench.load(art.path).num_params < 136_000  # the channel-pruned model, rebuilt from its row


def test_export_errors_stay_in_the_box(frame, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    box = ui.ExportBox(out_dir=blocker)
    box.button.click()  # nothing selected yet
    assert "click a point" in box.errors.value
    row = frame.iloc[2]
    box.set_row(row)
    box.sign.value = False
    box.target.value = "onnx"
    box.button.click()
    assert box.last_error is not None and box.artifact is None and box.errors.value
    other = frame.iloc[0].copy()
    other["task"] = "not-a-zoo-task"
    box.set_row(other)
    box.button.click()
    assert "pass task=" in box.errors.value


def test_suggested_targets():
    import pandas as pd

    from workbench.ui.export_box import suggest_target

    cases = {("onnxruntime", 32): "onnx", ("onnxruntime", 16): "onnx-fp16", ("onnxruntime", 8): "onnx-int8",
             ("onnxruntime", 4): "onnx-int4", ("litert", 8): "tflite-int8", ("litert", 2): "tflite-int4",
             ("torch", 8): "torchscript"}
    for (rt, bits), target in cases.items():
        assert suggest_target(pd.Series({"runtime": rt, "bits": bits})) == target
    from workbench.artifacts import TARGETS

    assert set(cases.values()) <= set(TARGETS)


def test_export_panel_shows_the_card_of_the_row_being_exported(frame, tmp_path):
    panel = ui.ExportPanel(frame, out_dir=tmp_path)
    assert panel.children[0] is panel.card and "wb-export-card" in panel.card._dom_classes
    card = panel.card.value
    assert "Exporting Not pruned, 8-bit (ONNX Runtime)" in card and "figures on this machine (measured)" in card
    assert "3.0× smaller (200 KB)" in card  # compared with the original (590 KB)
    panel.variant.value = "channel-0.50@raspberry-pi-4"  # below the bar: still its own card, not the best's
    assert panel.export.decision.row["variant"] == "channel-0.50" and "Half the channels" in panel.card.value
    assert "2.1× faster on this machine" in panel.card.value
    panel.variant.value = "unstructured-0.50+q4@raspberry-pi-4"  # simulated: said so, no false comparison
    assert panel.export.decision.row["variant"] == "unstructured-0.50+q4"
    assert "simulated" in panel.export.heading.value and "smaller" not in panel.card.value
    assert panel.last_error is None and panel.export.last_error is None


def test_explorer_export_box_card_follows_the_device(frame, click_point, tmp_path):
    ex = ui.TradeoffExplorer(frame, out_dir=tmp_path)
    ex.device.value = "raspberry-pi-4"
    i = next(i for i, t in enumerate(ex.figure.data) if t.name == "8-bit")
    k = list(ex.figure.data[i].customdata).index("q8@raspberry-pi-4")
    click_point(ex.figure, i, k)
    assert "figures on Raspberry Pi 4 (estimated)" in ex.export.card.value
    assert "2,000 mAh battery at 5 inferences/s" in ex.export.card.value


def test_export_panel_releases_an_update_with_its_size_and_encrypts_it(frame, tmp_path):
    panel = ui.ExportPanel(frame, out_dir=tmp_path)
    box = panel.export
    assert box.previous.options == (("none (a first release)", None),) and box.updates.value == ""
    box.target.value = "onnx"
    box.button.click()  # v1: q8 as plain ONNX
    assert box.last_error is None, box.errors.value
    v1 = box.artifact
    assert v1.version == 1 and "a first release" in box.report.value and box.updates.value == ""
    assert box.previous.options[1] == ("v1 digits-cnn-q8-onnx.onnx", str(v1.path))
    box.previous.value = str(v1.path)  # v2 updates v1, encrypted
    box.encrypt.value = True
    panel.variant.value = "channel-0.50@raspberry-pi-4"
    box.target.value = "onnx"
    box.button.click()
    assert box.last_error is None, box.errors.value
    v2 = box.artifact
    assert v2.version == 2 and v2.encrypted and v2.replaces["sha256"] == v1.sha256
    assert box.previous.value == str(v1.path)  # kept after the folder's releases were listed again
    row = box.update  # workbench.plan.update_size from v1 to v2, shown in the panel
    assert row["full_bytes"] == v2.size_bytes and row["old_bytes"] == v1.size_bytes and row["delta_bytes"] > 0
    assert "Update size over the air" in box.updates.value and f"{int(row['delta_bytes']):,} bytes" in box.updates.value
    assert "signed as replacing v1" in box.updates.value and "delta the plain models" in box.updates.value
    seen = box.evidence  # unreadable without the key, measured
    assert seen["deflate_ratio"] > 0.99 and not seen["loads_without_key"]
    assert "not a valid ONNX protobuf" in box.sealed.value and "Decrypt verifies" in box.sealed.value
    assert not box.decrypt_button.disabled
    box.decrypt_button.click()
    assert box.last_error is None, box.errors.value
    assert box.decrypted.is_file() and workbench.load(box.decrypted).num_params < 136_000
    assert box.evidence["plain_deflate_ratio"] < box.evidence["deflate_ratio"]
    assert "after the manifest verified" in box.sealed.value
    box.previous.value = None  # another previous release: the table follows, without exporting again
    assert box.updates.value == "" and box.update is None


def test_export_box_decrypts_only_what_verifies(frame, tmp_path):
    box = ui.ExportBox(out_dir=tmp_path)
    box.set_row(frame.iloc[2])
    box.target.value = "onnx"
    box.encrypt.value = True
    box.sign.value = False
    box.button.click()
    assert "needs a signature" in box.errors.value and box.artifact is None
    box.sign.value = True
    box.button.click()
    assert box.last_error is None, box.errors.value
    data = bytearray(box.artifact.path.read_bytes())
    data[len(data) // 2] ^= 1  # changed in transit
    box.artifact.path.write_bytes(bytes(data))
    box.decrypt_button.click()
    assert "differs from the signed" in box.errors.value and box.decrypted is None
