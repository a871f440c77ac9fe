"""`workbench.load` on every format: framework, signature, parameter count, fingerprint, and outputs that agree
with PyTorch on each runtime that applies."""

from __future__ import annotations

import copy
import re
import shutil

import numpy as np
import pytest
import torch
from tiny_models import TINY_INPUT_SHAPE, TINY_OUTPUT_SHAPE, TINY_PARAMS, TinyCNN, make_tiny_cnn

import workbench
from workbench import ModelHandle, TensorSpec, WorkbenchError

FORMATS = ["module", "torchscript", "pt2", "onnx", "onnx_external", "tflite"]
FRAMEWORK = {"module": "torch", "torchscript": "torch", "pt2": "torch", "onnx": "onnx", "onnx_external": "onnx",
             "tflite": "tflite"}
# Runtimes each format must run on (TorchScript cannot be converted to TFLite: see test_torchscript_refuses_litert).
RUNTIMES = {
    "module": ["torch", "onnxruntime", "litert"],
    "torchscript": ["torch", "onnxruntime"],
    "pt2": ["torch", "onnxruntime", "litert"],
    "onnx": ["onnxruntime"],
    "onnx_external": ["onnxruntime"],
    "tflite": ["litert"],
}
SHA256 = re.compile(r"^[0-9a-f]{64}$")


@pytest.fixture(scope="module")
def handles(model_files, tiny_model, tiny_inputs) -> dict[str, ModelHandle]:
    out = {"module": workbench.load(tiny_model, example_inputs=[tiny_inputs])}
    for fmt, path in model_files.items():
        # TorchScript records no shapes, so it needs example inputs; the other formats carry their signature.
        out[fmt] = workbench.load(path, example_inputs=[tiny_inputs] if fmt == "torchscript" else None)
    return out


@pytest.mark.parametrize("fmt", FORMATS)
def test_framework_and_signature(handles, fmt):
    h = handles[fmt]
    assert isinstance(h, ModelHandle)
    assert h.framework == FRAMEWORK[fmt]
    assert len(h.inputs) == 1 and len(h.outputs) == 1
    (inp,), (out,) = h.inputs, h.outputs
    assert all(isinstance(s, TensorSpec) for s in (inp, out))
    assert inp.dtype == "float32" and out.dtype == "float32"
    assert isinstance(inp.name, str) and inp.name and isinstance(out.name, str) and out.name
    if fmt == "tflite":
        # litert_torch converts at batch 1, as edge devices run it; the file records that fixed batch.
        assert inp.shape == (1, 1, 8, 8)
        assert out.shape == (1, 3)
    else:
        assert inp.shape == TINY_INPUT_SHAPE  # dynamic batch recorded as None
        assert out.shape == TINY_OUTPUT_SHAPE
    if fmt in ("module", "torchscript", "pt2", "onnx", "onnx_external"):
        assert inp.name == "x"  # forward()'s argument name, carried into the exported files
    if fmt in ("module", "torchscript", "onnx", "onnx_external"):
        assert out.name == "output"
    if fmt == "module":
        assert h.module is not None
    if h.framework != "torch":
        assert h.module is None
    else:
        assert isinstance(h.module, torch.nn.Module)


@pytest.mark.parametrize("fmt", FORMATS)
def test_num_params_matches_torch(handles, tiny_model, fmt):
    # The tiny model has no BatchNorm, so no converter folds anything away: the count is exact everywhere.
    # (Shape / axes constants, e.g. ReduceMean's axes, are not parameters.)
    assert sum(p.numel() for p in tiny_model.parameters()) == TINY_PARAMS
    assert handles[fmt].num_params == TINY_PARAMS


@pytest.mark.parametrize("fmt", FORMATS)
def test_fingerprint_is_sha256_and_stable(handles, model_files, tiny_model, tiny_inputs, fmt):
    h = handles[fmt]
    assert SHA256.match(h.fingerprint), h.fingerprint
    if fmt == "module":
        again = workbench.load(copy.deepcopy(tiny_model), example_inputs=[tiny_inputs])
    else:
        again = workbench.load(model_files[fmt], example_inputs=[tiny_inputs] if fmt == "torchscript" else None)
    assert again.fingerprint == h.fingerprint


def _perturbed_model() -> torch.nn.Module:
    model = make_tiny_cnn()
    with torch.no_grad():
        model.fc.bias[0] += 0.5
    return model


def _replace_float(data: bytes, old: np.ndarray, new: np.ndarray) -> bytes:
    """Replace the raw little-endian bytes of a float32 array (a weight) inside a file."""
    needle = old.astype("<f4").tobytes()
    assert data.count(needle) == 1, "weight bytes not found exactly once"
    return data.replace(needle, new.astype("<f4").tobytes())


@pytest.mark.parametrize("fmt", FORMATS)
def test_fingerprint_changes_with_a_weight(handles, model_files, tiny_model, tiny_inputs, tmp_path, fmt):
    h = handles[fmt]
    bias = tiny_model.fc.bias.detach().numpy()
    new_bias = bias.copy()
    new_bias[0] += np.float32(0.5)
    if fmt == "module":
        changed = workbench.load(_perturbed_model(), example_inputs=[tiny_inputs])
    elif fmt == "torchscript":
        path = tmp_path / "changed.pt"
        torch.jit.save(torch.jit.script(_perturbed_model()), str(path))
        changed = workbench.load(path, example_inputs=[tiny_inputs])
    elif fmt == "pt2":
        path = tmp_path / "changed.pt2"
        ep = torch.export.export(
            _perturbed_model(), (torch.from_numpy(tiny_inputs),),
            dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=1024)},),
        )
        torch.export.save(ep, str(path))
        changed = workbench.load(path)
    elif fmt == "onnx":
        import onnx
        from onnx import numpy_helper

        proto = onnx.load(str(model_files["onnx"]))
        (init,) = [i for i in proto.graph.initializer if i.name == "fc.bias"]
        init.CopyFrom(numpy_helper.from_array(new_bias, "fc.bias"))
        path = tmp_path / "changed.onnx"
        onnx.save(proto, str(path))
        changed = workbench.load(path)
    elif fmt == "onnx_external":
        # Same .onnx file, different bytes in the external data file: the fingerprint covers both.
        src = model_files["onnx_external"]
        path = tmp_path / src.name
        shutil.copyfile(src, path)
        data = (src.parent / "x.onnx.data").read_bytes()
        (tmp_path / "x.onnx.data").write_bytes(_replace_float(data, bias, new_bias))
        changed = workbench.load(path)
    else:
        path = tmp_path / "changed.tflite"
        path.write_bytes(_replace_float(model_files["tflite"].read_bytes(), bias, new_bias))
        changed = workbench.load(path)
    assert SHA256.match(changed.fingerprint)
    assert changed.fingerprint != h.fingerprint
    # The edited weight really is a weight of the model: the output moves by exactly the bias change.
    native = {"torch": "torch", "onnx": "onnxruntime", "tflite": "litert"}[changed.framework]
    before = workbench.runtime(h, native)(tiny_inputs)[0]
    after = workbench.runtime(changed, native)(tiny_inputs)[0]
    np.testing.assert_allclose(after[:, 0] - before[:, 0], 0.5, atol=1e-4)
    np.testing.assert_allclose(after[:, 1:], before[:, 1:], atol=1e-5)


@pytest.mark.parametrize(
    "fmt,rt", [(fmt, rt) for fmt in FORMATS for rt in RUNTIMES[fmt]], ids=lambda v: str(v)
)
def test_outputs_agree_with_torch(handles, tiny_inputs, tiny_expected, fmt, rt):
    run = workbench.runtime(handles[fmt], rt)
    result = run(tiny_inputs)
    assert isinstance(result, list) and len(result) == 1
    (out,) = result
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    assert out.shape == (2, 3)
    assert np.max(np.abs(out - tiny_expected)) < 1e-4


@pytest.mark.parametrize("threads", [1, 2])
def test_threads_do_not_change_results(handles, tiny_inputs, tiny_expected, threads):
    for fmt, rt in (("onnx", "onnxruntime"), ("tflite", "litert"), ("module", "torch")):
        out = workbench.runtime(handles[fmt], rt, threads=threads)(tiny_inputs)[0]
        assert np.max(np.abs(out - tiny_expected)) < 1e-4


def test_torchscript_refuses_litert(handles):
    with pytest.raises(WorkbenchError, match="TorchScript"):
        workbench.runtime(handles["torchscript"], "litert")


@pytest.mark.parametrize("fmt", ["onnx", "onnx_external", "tflite"])
def test_file_handles_refuse_foreign_runtimes(handles, fmt):
    foreign = {"onnx": "litert", "onnx_external": "torch", "tflite": "onnxruntime"}[fmt]
    with pytest.raises(WorkbenchError):
        workbench.runtime(handles[fmt], foreign)


def test_module_without_example_inputs(tiny_model, tiny_inputs, tiny_expected):
    h = workbench.load(tiny_model)
    assert h.framework == "torch" and h.module is tiny_model
    assert [s.name for s in h.inputs] == ["x"]
    assert h.inputs[0].shape is None and h.inputs[0].dtype is None
    assert h.num_params == TINY_PARAMS
    assert SHA256.match(h.fingerprint)
    # Same weights, same fingerprint, whether or not example inputs were given.
    assert h.fingerprint == workbench.load(tiny_model, example_inputs=[tiny_inputs]).fingerprint
    # It still runs in PyTorch; converting it needs example inputs, and the error says so.
    out = workbench.runtime(h, "torch")(tiny_inputs)[0]
    assert np.max(np.abs(out - tiny_expected)) < 1e-6
    # (A model never converted before: the cache is keyed by content, so `tiny_model` may already have an ONNX.)
    fresh = workbench.load(make_tiny_cnn(seed=1))
    with pytest.raises(WorkbenchError, match="example_inputs"):
        workbench.runtime(fresh, "onnxruntime")


def test_torchscript_without_example_inputs(model_files):
    h = workbench.load(model_files["torchscript"])
    assert h.framework == "torch"
    assert [s.name for s in h.inputs] == ["x"] and h.inputs[0].shape is None
    assert h.num_params == TINY_PARAMS


def test_example_inputs_as_tensors_and_path_as_str(tiny_model, tiny_inputs, model_files):
    h = workbench.load(tiny_model, example_inputs=torch.from_numpy(tiny_inputs))
    assert h.inputs[0].shape == TINY_INPUT_SHAPE
    h2 = workbench.load(str(model_files["onnx"]))
    assert h2.framework == "onnx" and h2.path == model_files["onnx"]


def test_handle_repr_and_signature(handles):
    assert handles["onnx"].signature == "(x: float32[N, 1, 8, 8])"
    text = repr(handles["module"])
    assert "torch" in text and "x: float32[N, 1, 8, 8]" in text and "55" in text


def test_onnx_external_data_is_really_external(model_files):
    import onnx
    from onnx.external_data_helper import uses_external_data

    proto = onnx.load(str(model_files["onnx_external"]), load_external_data=False)
    assert proto.graph.initializer and all(uses_external_data(i) for i in proto.graph.initializer)


def test_torchscript_of_a_model_whose_code_path_contains_models_is_torchscript(tmp_path):
    """Traced Hugging Face models store code under .../transformers/models/...; that is not a .pt2 archive."""
    import zipfile

    class BertLike(TinyCNN):
        pass

    BertLike.__module__ = "transformers.models.bert.modeling_bert"
    path = tmp_path / "traced.pt"
    torch.jit.save(torch.jit.trace(BertLike().eval(), torch.zeros(2, 1, 8, 8)), str(path))
    assert any("/models/" in n for n in zipfile.ZipFile(path).namelist())
    handle = workbench.load(path)
    assert handle.source_format == "torchscript" and handle.num_params == TINY_PARAMS
