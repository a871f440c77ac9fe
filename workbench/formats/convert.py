"""Torch → ONNX and torch → TFLite conversion, cached by the model's fingerprint.

Conversions are slow (seconds for a CNN, a minute for a transformer to TFLite), so each result is kept on the
handle and on disk under the workbench cache (``$WORKBENCH_CACHE``, default ``~/.cache/edge-workbench``),
keyed by content fingerprint and library versions: a changed model or library never reuses a stale file.
Files are written to a temporary name and renamed, so an interrupted conversion leaves nothing half-written.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from workbench.core.errors import WorkbenchError, first_line
from workbench.core.handle import ModelHandle, fixed_batch_of
from workbench.core.paths import atomic_write, cache_dir


def _versions(kind: str) -> str:
    import torch

    parts = [f"torch={torch.__version__}"]
    if kind == "onnx":
        import onnx
        import onnxscript

        parts += [f"onnx={onnx.__version__}", f"onnxscript={onnxscript.__version__}"]
    else:
        from importlib.metadata import version

        parts += [f"litert-torch={version('litert-torch')}"]
    return ",".join(parts)


def _cache_path(handle: ModelHandle, kind: str, suffix: str) -> Path:
    key = hashlib.sha256(f"{handle.fingerprint}|{kind}|{_versions(kind)}".encode()).hexdigest()[:24]
    return cache_dir() / "conversions" / f"{handle.name}-{key}{suffix}"


def _require_examples(handle: ModelHandle, target: str) -> list[np.ndarray]:
    if handle.framework != "torch":
        raise WorkbenchError(f"{handle.name}: only PyTorch models convert to {target}; this is {handle.framework}.")
    if not handle.example_inputs:
        raise WorkbenchError(
            f"{handle.name}: converting to {target} needs sample inputs. Load the model with "
            "workbench.load(model, example_inputs=[...]) (one array per input, batch first)."
        )
    return handle.example_inputs


def _converted(handle: ModelHandle, kind: str, suffix: str, target: str, export: Any) -> Path:
    """The handle's `kind` artefact: the file it came from, or a cached conversion made once."""
    if handle.framework == kind:
        assert handle.path is not None
        return handle.path
    cached = handle._artifacts.get(kind)
    if cached is not None and cached.is_file():
        return cached
    out = _cache_path(handle, kind, suffix)
    if not out.is_file():
        export(handle, _require_examples(handle, target), out)
    handle._artifacts[kind] = out
    return out


def to_onnx(handle: ModelHandle) -> Path:
    """Export a torch handle to a single self-contained ONNX file with a dynamic batch dimension."""
    return _converted(handle, "onnx", ".onnx", "ONNX", _export_onnx)


def _export_onnx(handle: ModelHandle, examples: list[np.ndarray], out: Path) -> None:
    import torch

    module = handle.module
    fixed = fixed_batch_of(handle.inputs)  # exported for one batch size (a .pt2 fixed at 1): keep it
    # Otherwise a batch of >= 2 keeps the exporter from specialising the batch dimension to 1.
    args = tuple(torch.from_numpy(np.ascontiguousarray(_at_batch(a, fixed) if fixed else batch_at_least_2(a)))
                 for a in examples)
    input_names = [s.name for s in handle.inputs]
    output_names = [s.name for s in handle.outputs] or None

    def write(tmp_file: Path) -> None:
        try:
            with quiet_conversion():
                if isinstance(module, torch.jit.ScriptModule):
                    # The dynamo exporter cannot trace TorchScript; the TorchScript exporter can.
                    torch.onnx.export(
                        module, args, str(tmp_file), dynamo=False, input_names=input_names,
                        output_names=output_names,
                        dynamic_axes={n: {0: "batch"} for n in [*input_names, *(output_names or [])]},
                    )
                else:
                    batch = torch.export.Dim("batch", min=1, max=4096)
                    torch.onnx.export(
                        module, args, str(tmp_file), dynamo=True, external_data=False,
                        input_names=input_names, output_names=output_names,
                        dynamic_shapes=None if fixed else tuple({0: batch} for _ in args),
                    )
        except Exception as e:
            raise WorkbenchError(
                f"{handle.name}: torch.onnx.export failed: {first_line(e)}. If an operator is unsupported, "
                "replace it or export the model to ONNX yourself and load the .onnx file."
            ) from e

    atomic_write(out, write)


def to_tflite(handle: ModelHandle) -> Path:
    """Convert a torch handle to a TFLite flatbuffer with litert_torch (batch 1, as edge devices run it)."""
    return _converted(handle, "tflite", ".tflite", "TFLite", _export_tflite)


def _export_tflite(handle: ModelHandle, examples: list[np.ndarray], out: Path) -> None:
    import torch

    module = handle.module
    if isinstance(module, torch.jit.ScriptModule):
        raise WorkbenchError(
            f"{handle.name}: litert_torch cannot convert TorchScript. Load the original nn.Module or a "
            "torch.export (.pt2) file to run it on LiteRT."
        )
    args = tuple(torch.from_numpy(np.ascontiguousarray(a[:1])) for a in examples)

    def write(tmp_file: Path) -> None:
        try:
            with quiet_conversion():
                # litert_torch prints a coloured step-by-step log (rich) into every notebook and terminal; the
                # user can still turn it on with LITERT_TORCH_SHOW_PROGRESS=y.
                os.environ.setdefault("LITERT_TORCH_SHOW_PROGRESS", "n")
                import litert_torch  # ~5 s import: only paid by users who convert to TFLite

                litert_torch.convert(module, args).export(str(tmp_file))
        except WorkbenchError:
            raise
        except Exception as e:
            raise WorkbenchError(
                f"{handle.name}: litert_torch could not convert the model to TFLite: {first_line(e)}."
            ) from e

    atomic_write(out, write)


def _at_batch(a: np.ndarray, n: int) -> np.ndarray:
    """`a` with exactly `n` rows (repeating rows when it has fewer)."""
    return np.resize(a, (n, *a.shape[1:])) if a.shape[0] != n else a


def batch_at_least_2(a: np.ndarray) -> np.ndarray:
    if a.ndim == 0 or a.shape[0] >= 2:
        return a
    return np.concatenate([a, a], axis=0)


@contextlib.contextmanager
def quiet_conversion(*more_loggers: str):
    """Silence the exporters' progress chatter (warnings, prints, and the log lines of torch.onnx, torch.export,
    absl, litert_torch and `more_loggers`), keeping exceptions."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "absl", "litert_torch", *more_loggers)]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, lvl in zip(loggers, levels):
            lg.setLevel(lvl)


def clear_cache() -> None:
    """Delete every cached conversion."""
    shutil.rmtree(cache_dir() / "conversions", ignore_errors=True)
