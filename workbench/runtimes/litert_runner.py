"""The LiteRT runner (``ai-edge-litert``), and ``tflite_runtime`` when that optional extra is installed.

Both read the same flatbuffer through the same interpreter API; torch models are converted with litert-torch
first (cached). Full-integer models take int8 inputs: arrays are quantised and dequantised at the boundary.
"""

from __future__ import annotations

import numpy as np

from workbench.core.errors import WorkbenchError
from workbench.core.handle import ModelHandle, TensorSpec
from workbench.runtimes.runner import Runner, in_fixed_batches


def make_runner(handle: ModelHandle, threads: int | None, name: str = "litert") -> Runner:
    from workbench.formats.convert import to_tflite

    if handle.framework == "onnx":
        raise WorkbenchError(f"{handle.name} is an ONNX model; run it with 'onnxruntime', not {name!r}.")
    path = to_tflite(handle)
    if name == "litert":
        from importlib.metadata import version

        from ai_edge_litert.interpreter import Interpreter

        ver = version("ai-edge-litert")
    else:  # optional extra runtime; see DESIGN.md for why it is never the default
        from importlib.metadata import version

        from tflite_runtime.interpreter import Interpreter  # type: ignore[import-not-found]

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
        # Fixed-batch flatbuffer (how edge models are converted): run it chunk by chunk.
        return in_fixed_batches(invoke, arrays, b0)

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
