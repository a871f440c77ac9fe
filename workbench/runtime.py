"""Runners: call a model on numpy arrays in PyTorch, ONNX Runtime or LiteRT.

`runtime(handle, name)` converts the handle to the runtime's format when needed (cached, see `convert`) and
returns a `Runner`. Every runner takes numpy arrays, one per model input, and returns a list of numpy arrays,
so evaluation code never cares which runtime it talks to.
"""

from __future__ import annotations

import contextlib
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from workbench.errors import WorkbenchError
from workbench.model import ModelHandle, TensorSpec, _first_line, describe_signature

RUNTIMES = ("torch", "onnxruntime", "litert", "tflite_runtime")
NATIVE = {"torch": "torch", "onnx": "onnxruntime", "tflite": "litert"}


def available_runtimes() -> list[str]:
    """Runtimes importable here; ``tflite_runtime`` is an optional extra."""
    return [r for r in RUNTIMES if r != "tflite_runtime" or importlib.util.find_spec("tflite_runtime")]


@dataclass(eq=False)
class Runner:
    """A model bound to one runtime. Call it with numpy arrays, one per input; get a list of arrays back.

    Attributes:
        runtime: ``"torch"``, ``"onnxruntime"``, ``"litert"`` or ``"tflite_runtime"``.
        handle: the model it runs.
        artifact: the file the runtime executes (`None` for an in-memory torch module).
        threads: intra-op threads (`None`: the runtime's default).
        version: the runtime library's version.
    """

    runtime: str
    handle: ModelHandle
    artifact: Path | None
    threads: int | None
    version: str
    inputs: list[TensorSpec]
    _call: Callable[[list[np.ndarray]], list[np.ndarray]] = field(repr=False)
    _flexible_batch: bool = field(default=True, repr=False)

    def __call__(self, *arrays: Any) -> list[np.ndarray]:
        if len(arrays) == 1 and isinstance(arrays[0], (list, tuple)):
            arrays = tuple(arrays[0])
        checked = check_inputs(self.handle.name, self.inputs, arrays, flexible_batch=self._flexible_batch)
        try:
            return self._call(checked)
        except WorkbenchError:
            raise
        except Exception as e:
            raise WorkbenchError(
                f"{self.handle.name} failed in {self.runtime}: {_first_line(e)}. "
                f"Expected inputs {describe_signature(self.inputs)}."
            ) from e


def check_inputs(
    model_name: str, specs: Sequence[TensorSpec], arrays: Sequence[Any], *, flexible_batch: bool = True
) -> list[np.ndarray]:
    """Validate arrays against a signature; raise a `WorkbenchError` naming the expected signature."""
    sig = describe_signature(specs)
    if specs and len(arrays) != len(specs):
        raise WorkbenchError(f"{model_name} takes {len(specs)} input(s) {sig}; got {len(arrays)}.")
    out = []
    for i, a in enumerate(arrays):
        if hasattr(a, "detach"):
            a = a.detach().cpu().numpy()
        if not isinstance(a, np.ndarray):
            raise WorkbenchError(f"{model_name}: input {i} is a {type(a).__name__}; pass numpy arrays {sig}.")
        if i < len(specs):
            s = specs[i]
            if s.dtype is not None and a.dtype.name != s.dtype and _lossless_int(a, s.dtype):
                a = a.astype(s.dtype)  # token ids: int64 from tokenizers, int32 in TFLite files
            if s.dtype is not None and a.dtype.name != s.dtype:
                raise WorkbenchError(
                    f"{model_name}: input {s.name!r} has dtype {a.dtype.name}, expected {s.dtype} "
                    f"(signature {sig}); convert with arr.astype(np.{s.dtype})."
                )
            if s.shape is not None:
                ok = a.ndim == len(s.shape) and all(
                    d is None or d == n or (j == 0 and flexible_batch) for j, (d, n) in enumerate(zip(s.shape, a.shape))
                )
                if not ok:
                    raise WorkbenchError(
                        f"{model_name}: input {s.name!r} has shape {tuple(a.shape)}, expected {s.describe()} "
                        f"(N = any batch size; signature {sig})."
                    )
        out.append(np.ascontiguousarray(a))
    return out


def _lossless_int(a: np.ndarray, dtype: str) -> bool:
    """True when integer `a` converts to integer `dtype` without changing any value."""
    target = np.dtype(dtype)
    if a.dtype.kind not in "iu" or target.kind not in "iu":
        return False
    if a.size == 0:
        return True
    info = np.iinfo(target)
    return bool(a.min() >= info.min and a.max() <= info.max)


def runtime(handle: ModelHandle, name: str = "onnxruntime", *, threads: int | None = None) -> Runner:
    """Bind a model to a runtime.

    Args:
        handle: the model.
        name: ``"torch"``, ``"onnxruntime"``, ``"litert"`` or ``"tflite_runtime"`` (when installed).
        threads: intra-op threads; `None` keeps the runtime's default.

    Returns:
        A callable `Runner`.

    Raises:
        WorkbenchError: unknown runtime, a conversion the workbench cannot do, or a failed conversion.

    Example:
        >>> task = workbench.zoo.load("digits-cnn")
        >>> run = workbench.runtime(task.model, "onnxruntime", threads=1)
        >>> run(task.example_inputs[0])[0].shape
        (2, 10)
    """
    if not isinstance(handle, ModelHandle):
        inner = getattr(handle, "model", None)  # a Task: run its model
        if not isinstance(inner, ModelHandle):
            raise WorkbenchError(
                f"runtime() takes a ModelHandle (from workbench.load) or a Task, got {type(handle).__name__}."
            )
        handle = inner
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise WorkbenchError(f"threads must be a positive integer or None, got {threads!r}.")
    if name not in RUNTIMES:
        raise WorkbenchError(f"Unknown runtime {name!r}. Choose one of: {', '.join(available_runtimes())}.")
    if name == "torch":
        return _torch_runner(handle, threads)
    if name == "onnxruntime":
        return _ort_runner(handle, threads)
    if name == "tflite_runtime" and not importlib.util.find_spec("tflite_runtime"):
        raise WorkbenchError("tflite_runtime is not installed (it is optional); use runtime 'litert' instead.")
    return _tflite_runner(handle, threads, name)


# ----------------------------------------------------------------------------------------------- torch


def _torch_runner(handle: ModelHandle, threads: int | None) -> Runner:
    import torch

    from workbench.model import flatten_outputs

    if handle.framework != "torch":
        raise WorkbenchError(
            f"{handle.name} is an {handle.framework.upper()} model; it runs in "
            f"{NATIVE[handle.framework]!r}, not 'torch'."
        )
    module = handle.module

    def call(arrays: list[np.ndarray]) -> list[np.ndarray]:
        with _torch_threads(threads), torch.no_grad():
            result = module(*[torch.from_numpy(a) for a in arrays])
        return [t.detach().cpu().numpy() for _, t in flatten_outputs(result)]

    return Runner("torch", handle, handle.path, threads, torch.__version__, handle.inputs, call)


@contextlib.contextmanager
def _torch_threads(threads: int | None):
    import torch

    if threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# ---------------------------------------------------------------------------------------- onnxruntime


def _ort_runner(handle: ModelHandle, threads: int | None) -> Runner:
    import onnxruntime as ort

    from workbench.convert import to_onnx

    if handle.framework == "tflite":
        raise WorkbenchError(f"{handle.name} is a TFLite model; run it with 'litert', not 'onnxruntime'.")
    path = to_onnx(handle)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = threads or 0
    opts.inter_op_num_threads = 1
    try:
        from workbench.formats.onnx_file import session_source

        session = ort.InferenceSession(session_source(path), opts, providers=["CPUExecutionProvider"])
    except Exception as e:
        raise WorkbenchError(f"{path}: ONNX Runtime cannot load the model: {_first_line(e)}.") from e
    names = [i.name for i in session.get_inputs()]
    specs = handle.inputs if handle.framework == "onnx" else _renamed(handle.inputs, names)

    def call(arrays: list[np.ndarray]) -> list[np.ndarray]:
        return list(session.run(None, dict(zip(names, arrays))))

    fixed_batch = any(s.shape and s.shape[0] is not None for s in specs)
    return Runner("onnxruntime", handle, path, threads, ort.__version__, specs, call, not fixed_batch)


def _renamed(specs: list[TensorSpec], names: list[str]) -> list[TensorSpec]:
    if len(specs) != len(names):
        return specs
    return [TensorSpec(n, s.shape, s.dtype) for s, n in zip(specs, names)]


# ------------------------------------------------------------------------------------- LiteRT / TFLite


def _tflite_runner(handle: ModelHandle, threads: int | None, name: str) -> Runner:
    from workbench.convert import to_tflite

    if handle.framework == "onnx":
        raise WorkbenchError(f"{handle.name} is an ONNX model; run it with 'onnxruntime', not {name!r}.")
    path = to_tflite(handle)
    if name == "litert":
        from ai_edge_litert.interpreter import Interpreter
        from importlib.metadata import version

        ver = version("ai-edge-litert")
    else:  # optional extra runtime; see DESIGN.md for why it is never the default
        from tflite_runtime.interpreter import Interpreter  # type: ignore[import-not-found]
        from importlib.metadata import version

        ver = version("tflite-runtime")
    interp = Interpreter(model_path=str(path), **({"num_threads": threads} if threads else {}))
    interp.allocate_tensors()
    in_details = interp.get_input_details()
    out_details = interp.get_output_details()
    if handle.framework == "tflite":
        specs = handle.inputs
    else:  # converted from torch: keep the torch input names, the file's shapes
        specs = [TensorSpec(s.name, (None, *s.shape[1:]) if s.shape else s.shape, s.dtype) for s in handle.inputs]
    model_batch = [int(d["shape"][0]) if len(d["shape"]) else 1 for d in in_details]
    dynamic = [bool(len(d.get("shape_signature", [])) and d["shape_signature"][0] < 0) for d in in_details]
    state = {"shapes": [tuple(d["shape"]) for d in in_details]}

    def invoke(arrays: list[np.ndarray]) -> list[np.ndarray]:
        shapes = [a.shape for a in arrays]
        if shapes != state["shapes"]:
            for d, a in zip(in_details, arrays):
                interp.resize_tensor_input(d["index"], a.shape)
            interp.allocate_tensors()
            state["shapes"] = shapes
        for d, a in zip(in_details, arrays):
            interp.set_tensor(d["index"], _quantize(a, d))
        interp.invoke()
        return [_dequantize(interp.get_tensor(d["index"]), d) for d in out_details]

    def call(arrays: list[np.ndarray]) -> list[np.ndarray]:
        n = arrays[0].shape[0] if arrays and arrays[0].ndim else 1
        b0 = model_batch[0] if model_batch else 1
        if all(dynamic) or n == b0:
            return invoke(arrays)
        if n == 0:  # an empty batch: run one padding sample to learn the output shapes, return none of it
            return [o[:0] for o in invoke([np.zeros((b0, *a.shape[1:]), a.dtype) for a in arrays])]
        if n % b0:
            raise WorkbenchError(
                f"{handle.name}: this TFLite model has a fixed batch of {b0}; pass a batch that is a multiple of it."
            )
        # Fixed-batch flatbuffer (how edge models are converted): run it chunk by chunk.
        chunks = [invoke([a[i:i + b0] for a in arrays]) for i in range(0, n, b0)]
        return [np.concatenate(parts, axis=0) for parts in zip(*chunks)]

    return Runner(name, handle, path, threads, ver, specs, call)


def _quantize(a: np.ndarray, detail: dict) -> np.ndarray:
    scale, zero = detail.get("quantization", (0.0, 0))
    target = np.dtype(detail["dtype"])
    if scale and target.kind in "iu" and a.dtype.kind == "f":
        info = np.iinfo(target)
        return np.clip(np.round(a / scale + zero), info.min, info.max).astype(target)
    return a.astype(target, copy=False)


def _dequantize(a: np.ndarray, detail: dict) -> np.ndarray:
    scale, zero = detail.get("quantization", (0.0, 0))
    if scale and a.dtype.kind in "iu":
        return ((a.astype(np.float32) - zero) * scale).astype(np.float32)
    return a.copy()
