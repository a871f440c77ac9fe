"""export() options: tolerances (a failed parity writes nothing), variants' compression carried into the file and
described in the manifest, task-less export, names, calibration and argument errors."""

from __future__ import annotations

import sys

import pytest

import workbench
from workbench import Prune, Quantize, compress
from workbench.artifacts import DEFAULT_TOLERANCES, Tolerance
from workbench.core.errors import WorkbenchError


@pytest.mark.parametrize("kwargs, match", [
    ({"metric_drop": -0.1}, "metric_drop must be >= 0"),
    ({"metric_drop": float("nan")}, "finite"),
    ({"agreement": 1.5}, r"agreement must be in \[0, 1\]"),
    ({"agreement": "high"}, "finite number"),
    ({"max_rel_error": -1.0}, "max_rel_error"),
    ({"max_rel_error": True}, "max_rel_error"),
])
def test_bad_tolerances_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Tolerance(**kwargs)


def test_every_target_names_its_builder_and_storage_reader():
    from workbench.artifacts import TARGETS

    for target in TARGETS.values():
        assert callable(target.exporter.function("build")) and callable(target.exporter.function("storage"))


def test_default_tolerances_loosen_with_precision():
    order = [DEFAULT_TOLERANCES[p] for p in ("fp32", "fp16", "int8", "int4")]
    assert [t.metric_drop for t in order] == sorted(t.metric_drop for t in order)
    assert [t.agreement for t in order] == sorted((t.agreement for t in order), reverse=True)


def test_exceeding_the_tolerance_raises_with_the_figures_and_writes_nothing(digits, tmp_path):
    strict = Tolerance(metric_drop=0.0, agreement=1.0, max_rel_error=1e-6)
    with pytest.raises(WorkbenchError) as err:
        workbench.export(digits.model, "onnx-int8", tmp_path / "out", task=digits, tolerance=strict)
    msg = str(err.value)
    assert "failed parity on 450 evaluation samples in onnxruntime" in msg
    assert "max |output difference|" in msg and "accuracy" in msg and "top-1 agreement" in msg
    assert not (tmp_path / "out").exists()


def test_a_wrong_answering_export_is_caught(digits, tmp_path, monkeypatch):
    """Break the artefact's runtime on purpose (shuffled logits): parity must fail."""
    import numpy as np

    from workbench.artifacts import parity

    real = parity.measure_parity

    def broken(task, source, artifact, *, limit=None):
        def wrong(*arrays):
            return [np.roll(o, 1, axis=1) for o in artifact(*arrays)]
        wrong.runtime = artifact.runtime
        return real(task, source, wrong, limit=limit)

    monkeypatch.setattr(sys.modules["workbench.artifacts.api"], "measure_parity", broken)
    with pytest.raises(WorkbenchError, match=r"accuracy fell .*top-1 agreement with the source"):
        workbench.export(digits.model, "onnx", tmp_path, task=digits)


def test_channel_pruned_variant_exports_its_smaller_layers(digits, tmp_path):
    small = compress(digits.model, Prune(0.5, structure="channel"), task=digits)
    art = workbench.export(small, "onnx", tmp_path, task=digits)
    full = workbench.export(digits.model, "onnx", tmp_path, task=digits, limit=32)
    assert art.path.name == "digits-cnn-prune-channel-0.50-onnx.onnx"
    assert art.manifest["lineage"] == [Prune(0.5, structure="channel").to_dict()]
    assert any("layers are smaller" in n for n in art.manifest["notes"]) and art.manifest["realized"]
    assert art.size_bytes < 0.6 * full.size_bytes
    assert art.manifest["source"]["params"] == small.num_params


def test_unrealisable_bit_width_is_said_in_the_manifest(digits, tmp_path):
    q4 = compress(digits.model, Quantize(4), task=digits)
    art = workbench.export(q4, "onnx", tmp_path, task=digits)
    assert not art.manifest["realized"]
    assert any("4-bit weights are stored at fp32" in n for n in art.manifest["notes"])
    art8 = workbench.export(q4, "onnx-int8", tmp_path, task=digits)
    assert any("4-bit weights are stored at int8" in n for n in art8.manifest["notes"])


def test_variants_own_int8_recipe_is_used(digits, tmp_path):
    q8 = compress(digits.model, Quantize(8, exclude=["classifier"]), task=digits)
    art = workbench.export(q8, "onnx-int8", tmp_path, task=digits)
    recipe = art.manifest["recipe"]
    assert recipe["source"] == "the variant's own recipe" and recipe["mode"] == "static"
    default = workbench.export(digits.model, "onnx-int8", tmp_path / "d", task=digits)
    assert recipe["layers"] == default.manifest["recipe"]["layers"] - 1  # the classifier stayed float
    assert art.manifest["realized"] and art.parity["passed"]


def test_task_less_export_checks_the_example_inputs(digits, tmp_path):
    handle = workbench.load(digits.model.module, example_inputs=digits.example_inputs, name="mine")
    art = workbench.export(handle, "onnx", tmp_path)
    assert art.parity["samples"] == len(digits.example_inputs[0]) and art.parity["metric"] == "fidelity"
    assert any("no task given" in n for n in art.manifest["notes"])
    with pytest.raises(WorkbenchError, match="calibrates"):
        workbench.export(handle, "onnx-int8", tmp_path)
    art8 = workbench.export(handle, "onnx-int8", tmp_path, calibration=digits.calibration)
    assert art8.manifest["recipe"]["calibration_samples"] == len(digits.calibration[0])


def test_a_task_can_be_passed_as_the_model(digits, tmp_path):
    art = workbench.export(digits, "onnx", tmp_path, name="my model!", limit=16)
    assert art.path.name == "my_model.onnx" and art.parity["samples"] == 16


@pytest.mark.parametrize("kwargs, match", [
    ({"target": "onnx-int3"}, "Unknown export target 'onnx-int3'"),
    ({"target": "onnx", "tolerance": 0.1}, "tolerance must be a workbench.Tolerance"),
    ({"target": "onnx", "sign_with": "missing.pem"}, "no such private signing key file"),
    ({"target": "onnx", "calibration": [1, 2]}, "calibration must be a list of numpy arrays"),
    ({"target": "onnx", "device": ""}, "device must be"),
])
def test_bad_arguments_are_explained_before_any_work(digits, tmp_path, kwargs, match):
    with pytest.raises(WorkbenchError, match=match):
        workbench.export(digits.model, out_dir=tmp_path / "o", task=digits, **kwargs)
    assert not (tmp_path / "o").exists()


def test_tflite_file_cannot_become_onnx(digits, tmp_path):
    tfl = workbench.load(workbench.runtime(digits.model, "litert").artifact)
    with pytest.raises(WorkbenchError, match="only PyTorch models convert to ONNX"):
        workbench.export(tfl, "onnx", tmp_path, task=digits)
    with pytest.raises(WorkbenchError, match="PyTorch"):
        workbench.export(tfl, "torchscript", tmp_path, task=digits)
