"""Size of what a device receives: artefact bytes, deflated bytes, parameters, non-zeros, bits per weight.

The Huffman-coded size (Deep Compression's entropy-coded weights, ``size_coded_bytes``) lives in
`workbench.measurement.coding`.
"""

from __future__ import annotations

import functools
import zlib
from pathlib import Path

import numpy as np

from workbench.core.handle import ModelHandle


def artifact_files(path: Path) -> list[Path]:
    """The files an artefact consists of: every file of a folder (an ONNX Runtime GenAI or IR export), an OpenVINO
    IR's ``.xml`` with the ``.bin`` beside it that holds its weights, else the file itself."""
    path = Path(path)
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file())
    weights = path.with_suffix(".bin")
    return [path, weights] if path.suffix == ".xml" and weights.is_file() else [path]


def artifact_size(path: Path) -> int:
    """Bytes a device stores for the artefact at `path` (all of `artifact_files`)."""
    return sum(p.stat().st_size for p in artifact_files(path))


def deflated_size(path: Path, *, level: int = 9) -> int:
    """Bytes after deflate (zlib) — what sparsity and low bit-widths buy over the air (all of `artifact_files`,
    each deflated on its own). Cached per file path, size and modification time (the Huffman-coded size of a
    float model reuses it)."""
    return sum(_deflated_file(str(p), p.stat().st_size, p.stat().st_mtime_ns, level) for p in artifact_files(path))


@functools.lru_cache(maxsize=256)
def _deflated_file(path: str, _size: int, _mtime: int, level: int) -> int:
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

