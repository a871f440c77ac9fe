"""Shared fixtures: a tiny CNN and the same model saved in every format `workbench.load` reads.

The conversions (ONNX, TFLite, torch.export) take seconds, so those files are made once per session; tests that
change a file copy it into their own `tmp_path` first. Conversions are cached under a per-session
``WORKBENCH_CACHE`` so test runs neither read nor fill the user's cache.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_models import TINY_INPUT_SHAPE, TINY_OUTPUT_SHAPE, TINY_PARAMS, TinyCNN, make_tiny_cnn  # noqa: F401

_OWN_CACHE: str | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _OWN_CACHE
    if "WORKBENCH_CACHE" not in os.environ:
        _OWN_CACHE = tempfile.mkdtemp(prefix="workbench-test-cache-")
        os.environ["WORKBENCH_CACHE"] = _OWN_CACHE


def pytest_unconfigure(config: pytest.Config) -> None:
    if _OWN_CACHE is not None:
        shutil.rmtree(_OWN_CACHE, ignore_errors=True)
        os.environ.pop("WORKBENCH_CACHE", None)


# ------------------------------------------------------------------------------------------ tiny model


@pytest.fixture(scope="session")
def tiny_model() -> TinyCNN:
    """The model every format fixture is made from (do not modify it; deepcopy first)."""
    return make_tiny_cnn()


@pytest.fixture(scope="session")
def tiny_inputs() -> np.ndarray:
    """A batch of 2 inputs, float32 (2, 1, 8, 8)."""
    return np.random.default_rng(0).standard_normal((2, 1, 8, 8)).astype(np.float32)


@pytest.fixture(scope="session")
def tiny_expected(tiny_model, tiny_inputs) -> np.ndarray:
    """PyTorch's output for `tiny_inputs`, (2, 3)."""
    with torch.no_grad():
        return tiny_model(torch.from_numpy(tiny_inputs)).numpy()


@pytest.fixture(scope="session")
def tiny_handle(tiny_model, tiny_inputs):
    import workbench

    return workbench.load(tiny_model, example_inputs=[tiny_inputs])


# -------------------------------------------------------------------------------------- saved formats


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tiny-models")


@pytest.fixture
def torchscript_file(tmp_path, tiny_model) -> Path:
    """TorchScript archive (torch.jit.save), in this test's tmp_path (cheap, so not shared)."""
    path = tmp_path / "tiny.pt"
    torch.jit.save(torch.jit.script(tiny_model), str(path))
    return path


@pytest.fixture(scope="session")
def pt2_file(model_dir, tiny_model, tiny_inputs) -> Path:
    """torch.export archive with a dynamic batch dimension."""
    path = model_dir / "tiny.pt2"
    batch = torch.export.Dim("batch", min=1, max=1024)
    ep = torch.export.export(tiny_model, (torch.from_numpy(tiny_inputs),), dynamic_shapes=({0: batch},))
    torch.export.save(ep, str(path))
    return path


@pytest.fixture(scope="session")
def onnx_file(model_dir, tiny_handle) -> Path:
    """Single-file ONNX made by the workbench's own exporter (dynamic batch)."""
    from workbench.formats.convert import to_onnx

    path = model_dir / "tiny.onnx"
    shutil.copyfile(to_onnx(tiny_handle), path)
    return path


@pytest.fixture(scope="session")
def onnx_external_file(model_dir, onnx_file) -> Path:
    """The same ONNX model with every initialiser in an external data file ``x.onnx.data`` beside it."""
    import onnx

    folder = model_dir / "external"
    folder.mkdir()
    path = folder / "x.onnx"
    onnx.save_model(
        onnx.load(str(onnx_file)), str(path), save_as_external_data=True, all_tensors_to_one_file=True,
        location="x.onnx.data", size_threshold=0,
    )
    assert (folder / "x.onnx.data").is_file()
    return path


@pytest.fixture(scope="session")
def tflite_file(model_dir, tiny_handle) -> Path:
    """TFLite flatbuffer made by the workbench's converter (litert_torch; batch fixed at 1)."""
    from workbench.formats.convert import to_tflite

    path = model_dir / "tiny.tflite"
    shutil.copyfile(to_tflite(tiny_handle), path)
    return path


@pytest.fixture(scope="session")
def model_files(pt2_file, onnx_file, onnx_external_file, tflite_file, model_dir, tiny_model) -> dict[str, Path]:
    """Every file format, by name: torchscript, pt2, onnx, onnx_external, tflite (shared: copy before editing)."""
    ts = model_dir / "tiny.pt"
    if not ts.exists():
        torch.jit.save(torch.jit.script(tiny_model), str(ts))
    return {"torchscript": ts, "pt2": pt2_file, "onnx": onnx_file, "onnx_external": onnx_external_file,
            "tflite": tflite_file}


# ------------------------------------------------------------------------------------ shared zoo fixtures


@pytest.fixture(scope="session")
def digits():
    """The default task (zoo tasks are cached per process and read-only: compression returns new models)."""
    from workbench import zoo

    return zoo.load("digits-cnn")


@pytest.fixture(scope="session")
def vad():
    from workbench import zoo

    return zoo.load("silero-vad")


@pytest.fixture(scope="session")
def digits_onnx(digits):
    """The default model as an ONNX-file handle (the workbench's own export)."""
    import workbench

    return workbench.load(workbench.runtime(digits.model, "onnxruntime").artifact)


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op thread for a module: small models train and stream several times faster on a busy 2-core
    machine. Use with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ------------------------------------------------------------------------------------ tiny language model


@pytest.fixture(scope="session")
def tiny_lm_dir(tmp_path_factory) -> Path:
    """A Hugging Face folder of a tiny trained Llama with its own tokenizer (tests/tiny_lm.py), built once per
    session (~10 s). Do not modify it: copy it first."""
    from tiny_lm import build_tiny_lm

    return build_tiny_lm(tmp_path_factory.mktemp("tiny-lm") / "tiny-lm")


@pytest.fixture(scope="session")
def tiny_lm(tiny_lm_dir):
    """The tiny language model's handle (`workbench.load` of `tiny_lm_dir`). Do not modify it."""
    import workbench

    return workbench.load(tiny_lm_dir)
