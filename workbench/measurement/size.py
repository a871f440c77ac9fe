"""Size of what a device receives: artefact bytes, deflated bytes, parameters, non-zeros, bits per weight."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from workbench.core.handle import ModelHandle


def deflated_size(path: Path, *, level: int = 9) -> int:
    """Bytes after deflate (zlib) — what sparsity and low bit-widths buy over the air."""
    comp = zlib.compressobj(level)
    total = 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            total += len(comp.compress(chunk))
    return total + len(comp.flush())


def weight_arrays(handle: ModelHandle) -> dict[str, np.ndarray]:
    """Every weight tensor of the model as numpy (torch parameters, ONNX initialisers, TFLite constants)."""
    if handle.framework == "torch":
        return {n: p.detach().cpu().float().numpy() for n, p in handle.module.named_parameters()}
    if handle.framework == "onnx":
        import onnx
        from onnx import numpy_helper

        proto = onnx.load(str(handle.path))
        return {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    if handle.framework == "tflite" and handle.path is not None:
        from workbench.formats.tflite_graph import tflite_weights

        # the layer weights (fp16 and int8 read as float); biases and other constants are counted in num_params
        return {w.layer: w.array for w in tflite_weights(handle.path) if w.array is not None}
    return {}


def count_nonzero(handle: ModelHandle) -> int | None:
    """Non-zero weights (None where the format's weights are not readable here)."""
    arrays = weight_arrays(handle)
    if not arrays:
        return None
    return int(sum(int(np.count_nonzero(a)) for a in arrays.values()))

