"""Exporter contract: every target on every zoo task it applies to loads in its runtime and passes parity with
the default tolerances; the manifest describes the file; artefact sizes come out in the expected order.

digits-cnn runs in the default suite; MiniLM and Silero VAD (minutes of conversion) are marked slow.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import workbench
from workbench.artifacts import DEFAULT_TOLERANCES, TARGETS
from workbench.artifacts.manifest import manifest_bytes, sha256_file

ONNX = ("onnx", "onnx-fp16", "onnx-int8", "onnx-int8-dynamic", "onnx-int4")
TFLITE = ("tflite", "tflite-fp16", "tflite-dynamic", "tflite-int8", "tflite-int4")
TORCH = ("torchscript", "pt2")


def pytest_generate_tests(metafunc):
    if "target" in metafunc.fixturenames:
        metafunc.parametrize("target", metafunc.cls.targets)


class ExporterContract:
    """What every exporter promises, for each of its `targets` on `task_name`."""

    task_name = "digits-cnn"
    targets: tuple[str, ...] = ()

    def test_one_file_that_runs_in_its_runtime(self, artifact, target):
        art = artifact(self.task_name, target)
        t = TARGETS[target]
        assert art.path.is_file() and art.path.suffix == t.suffix
        assert sorted(p.name for p in art.path.parent.iterdir()) == sorted([art.path.name, art.manifest_path.name])
        task = workbench.zoo.load(self.task_name)
        handle = workbench.load(art.path, example_inputs=task.example_inputs)
        out = workbench.runtime(handle, t.runtime, threads=1)(*[a[:1] for a in task.example_inputs])
        ref = workbench.runtime(task.model, "torch")(*[a[:1] for a in task.example_inputs])
        assert [o.shape for o in out] == [r.shape for r in ref]

    def test_parity_passes_with_default_tolerance(self, artifact, target):
        art = artifact(self.task_name, target)
        p = art.parity
        tol = DEFAULT_TOLERANCES[TARGETS[target].precision]
        assert p["passed"] and p["tolerance"] == tol.to_dict()
        assert p["artifact_runtime"] == TARGETS[target].runtime
        task = workbench.zoo.load(self.task_name)
        assert p["samples"] == len(task.eval_inputs[0]) and p["metric"] == task.metric
        assert p["source"][task.metric] - p["artifact"][task.metric] <= tol.metric_drop
        assert p["agreement"] >= tol.agreement
        assert p["delta"][task.metric] == pytest.approx(p["artifact"][task.metric] - p["source"][task.metric])
        if tol.max_rel_error is not None:
            assert p["max_rel_error"] <= tol.max_rel_error

    def test_manifest_describes_the_file(self, artifact, target, keypair):
        art = artifact(self.task_name, target)
        m = art.manifest
        t = TARGETS[target]
        assert art.manifest_path.read_bytes() == manifest_bytes(m)
        assert m["artifact"] == {"file": art.path.name, "sha256": sha256_file(art.path),
                                 "size_bytes": art.path.stat().st_size}
        assert (m["format"], m["target"], m["runtime"], m["precision"]["target"]) == (t.format, t.name, t.runtime,
                                                                                      t.precision)
        task = workbench.zoo.load(self.task_name)
        assert [i["name"] for i in m["inputs"]] and len(m["inputs"]) == len(task.model.inputs)
        assert len(m["outputs"]) == len(task.model.outputs)
        assert m["source"]["fingerprint"] == task.model.fingerprint and m["source"]["task"] == self.task_name
        assert m["lineage"] == [] and m["device"] == "raspberry-pi-5" and m["encryption"] is None
        assert {"torch", "onnxruntime", "ai-edge-litert", "workbench"} <= set(m["libraries"])
        assert m["created"].endswith("Z") and m["metrics"] == m["parity"]["artifact"]
        assert sum(row["elements"] for row in m["storage"].values()) >= task.model.num_params * 0.9
        v = workbench.verify(art.path, keypair[1])
        assert v.sha256 == art.sha256 and v.target == target
        json.dumps(m, allow_nan=False)  # plain JSON


class TestOnnx(ExporterContract):
    targets = ONNX


class TestTflite(ExporterContract):
    targets = TFLITE


class TestTorch(ExporterContract):
    targets = TORCH


@pytest.mark.slow
class TestOnnxMiniLM(TestOnnx):
    task_name = "minilm"


@pytest.mark.slow
class TestTfliteMiniLM(TestTflite):
    task_name = "minilm"


@pytest.mark.slow
class TestTorchMiniLM(TestTorch):
    task_name = "minilm"


@pytest.mark.slow
class TestOnnxVad(TestOnnx):
    task_name = "silero-vad"


@pytest.mark.slow
class TestTfliteVad(TestTflite):
    task_name = "silero-vad"


@pytest.mark.slow
class TestTorchVad(TestTorch):
    task_name = "silero-vad"


# --------------------------------------------------------------------------------------------------- sizes


def sizes(artifact, task_name, targets):
    return {t: artifact(task_name, t).size_bytes for t in targets}


def test_digits_onnx_sizes_in_order(artifact):
    s = sizes(artifact, "digits-cnn", ("onnx-int8", "onnx-int8-dynamic", "onnx-fp16", "onnx"))
    assert max(s["onnx-int8"], s["onnx-int8-dynamic"]) < s["onnx-fp16"] < s["onnx"]
    # onnx-int4 does not apply to this CNN (Conv + Gemm only; see NOT_APPLICABLE), so no int4 bar here


def test_digits_tflite_sizes_in_order(artifact):
    s = sizes(artifact, "digits-cnn", ("tflite-int4", "tflite-dynamic", "tflite-int8", "tflite-fp16", "tflite"))
    assert s["tflite-int4"] < min(s["tflite-dynamic"], s["tflite-int8"])
    assert max(s["tflite-dynamic"], s["tflite-int8"]) < s["tflite-fp16"] < s["tflite"]
    # int4 covers the full and pointwise convolutions and the classifier; depthwise kernels stay float
    storage = artifact("digits-cnn", "tflite-int4").manifest["storage"]
    assert storage["INT4"]["elements"] > 0.85 * workbench.zoo.load("digits-cnn").model.num_params


@pytest.mark.slow
def test_minilm_sizes_in_order(artifact):
    s = sizes(artifact, "minilm", ("onnx-int4", "onnx-int8-dynamic", "onnx-fp16", "onnx"))
    assert s["onnx-int4"] < s["onnx-int8-dynamic"] < s["onnx-fp16"] < s["onnx"]
    t = sizes(artifact, "minilm", ("tflite-int4", "tflite-dynamic", "tflite-fp16", "tflite"))
    assert t["tflite-int4"] < t["tflite-dynamic"] < t["tflite-fp16"] < t["tflite"]


@pytest.mark.slow
def test_vad_sizes_in_order(artifact):
    s = sizes(artifact, "silero-vad", ("onnx-int8", "onnx-fp16", "onnx", "tflite-int4", "tflite-dynamic",
                                       "tflite-fp16", "tflite"))
    assert s["onnx-int8"] < s["onnx-fp16"] < s["onnx"]
    assert s["tflite-dynamic"] < s["tflite-fp16"] < s["tflite"] and s["tflite-int4"] < s["tflite-fp16"]
    # Measured: tflite-int4 (425 kB) is *larger* than tflite-dynamic (351 kB) here: the int4 recipe leaves about
    # a fifth of the weights float (no 4-bit kernel for them), while dynamic int8 covers every weight.
    storage = artifact("silero-vad", "tflite-int4").manifest["storage"]
    assert storage["FLOAT32"]["elements"] > 0.1 * storage["INT4"]["elements"]


def test_fp32_targets_agree_with_source_to_float_precision(artifact):
    for target in ("onnx", "tflite", "torchscript", "pt2"):
        p = artifact("digits-cnn", target).parity
        assert p["agreement"] == 1.0 and p["max_rel_error"] < 1e-4, target


def test_onnx_targets_keep_a_dynamic_batch(artifact):
    task = workbench.zoo.load("digits-cnn")
    x = task.eval_inputs[0][:5]
    for target in ("onnx", "onnx-int8", "pt2"):
        art = artifact("digits-cnn", target)
        run = workbench.runtime(workbench.load(art.path), TARGETS[target].runtime, threads=1)
        assert run(x)[0].shape == (5, 10), target
        assert art.manifest["inputs"][0]["shape"][0] is None, target


def test_int8_targets_really_store_int8(artifact):
    for target in ("onnx-int8", "onnx-int8-dynamic", "tflite-int8", "tflite-dynamic"):
        storage = artifact("digits-cnn", target).manifest["storage"]
        assert storage["INT8"]["elements"] > 0.95 * workbench.zoo.load("digits-cnn").model.num_params, target
    assert "FLOAT" not in artifact("digits-cnn", "tflite-int8").manifest["storage"]  # integer model, int32 biases


def test_export_outputs_match_source_numerically(artifact):
    """The parity figures are real: recompute max abs error of the fp16 ONNX file by hand."""
    task = workbench.zoo.load("digits-cnn")
    art = artifact("digits-cnn", "onnx-fp16")
    x = task.eval_inputs[0]
    got = workbench.runtime(workbench.load(art.path), "onnxruntime", threads=1)(x)[0]
    want = workbench.runtime(task.model, "torch")(x)[0]
    assert float(np.max(np.abs(got - want))) == pytest.approx(art.parity["max_abs_error"], rel=1e-3, abs=1e-6)
