"""Prune's TFLite path: zero the weights of CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED / ... ops in a new file.

The weights are those `tflite_graph.tflite_weights` reads (float16 weights behind DEQUANTIZE included), and
the variant is written with `tflite_graph.with_weights`, so each weight keeps its stored dtype and the graph
is otherwise the same; 1x1 depthwise weights (per-channel scales: folded BatchNorms) are left alone.
Unstructured (global or per layer, with `Prune.per_layer` ratios) and 2:4 sparsity, as on ONNX files (the
same `zero_smallest_arrays`); channel pruning rewrites layers and needs the ONNX or PyTorch source. Variant
files are written once under ``cache_dir()/"variants"``, keyed by the source's fingerprint and the config;
their meta holds the keys the ONNX path writes (``sparsity``, ``pruned_layers``, ``prune_skipped`` for 2:4,
``prune_per_layer`` with per-layer ratios).

Example:
    >>> from workbench.core.paths import data_file
    >>> hand = workbench.load(data_file("foreign/hand_recrop.tflite"))
    >>> sparse = workbench.compress(hand, Prune(0.5))
    >>> round(sparse.meta["sparsity"], 2), len(sparse.meta["pruned_layers"]), sparse.meta["route"]
    (0.5, 20, ['prune-unstructured-0.50: tflite in place: unstructured zeros written into the float32 weights'])

    Its 33 weights include 13 1x1 depthwise ones (folded BatchNorm scales), which stay as they are.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import numpy as np

from workbench.compression.base import base_name, covered, technique
from workbench.compression.prune import Prune, Scope, Structure
from workbench.compression.prune_layers import check_exclude, n_m_mask
from workbench.compression.prune_onnx import zero_smallest_arrays
from workbench.core.errors import WorkbenchError
from workbench.core.handle import ModelHandle


@technique(Prune, "tflite")
def _prune_tflite(handle: ModelHandle, cfg: Prune, task: Any = None) -> ModelHandle:
    """The variant of a TFLite-file model with its weights pruned (see the module docstring)."""
    from workbench.formats.tflite_graph import tflite_weights

    if cfg.structure in (Structure.CHANNEL, Structure.LAYER):
        raise WorkbenchError(
            f"{handle.name}: {cfg.structure.value} pruning removes channels or layers, which a TFLite file cannot be "
            "rewritten for here. Prune the ONNX or PyTorch source of this model with structure='channel' and convert it to "
            "TFLite, or use structure='unstructured' or '2:4' on this file."
        )
    weights = [w for w in tflite_weights(handle.path) if w.array is not None and w.dtype != "int4"
               and not _channel_scale(w)]
    if not weights:
        raise WorkbenchError(
            f"{handle.name}: no prunable weight in this TFLite file (no constant float or int8 weight of a CONV_2D, "
            "DEPTHWISE_CONV_2D, FULLY_CONNECTED, TRANSPOSE_CONV, CONV_3D or BATCH_MATMUL op), so Prune has nothing "
            "to act on. Prune the model before quantising it to int4, or prune its ONNX or PyTorch source."
        )
    names = [w.layer for w in weights]
    known = sorted({p for n in names for p in _prefixes(n)})
    check_exclude(known, (*cfg.exclude, *cfg.per_layer_ratios), handle.name)
    weights = [w for w in weights if not _excluded(w.layer, cfg.exclude)]
    if not weights:
        raise WorkbenchError(f"{handle.name}: exclude={list(cfg.exclude)} leaves no weight to prune.")
    arrays = {w.layer: w.array.copy() for w in weights}
    ratios = cfg.overridden(arrays)
    skipped: list[str] = []
    if cfg.structure is Structure.N_M:
        for w in weights:
            view = _out_in(arrays[w.layer], w.axis)
            if view.shape[1] % 4:
                skipped.append(w.layer)
                continue
            arrays[w.layer] = _from_out_in(view * n_m_mask(view), w.axis, arrays[w.layer].shape)
        if len(skipped) == len(weights):
            raise WorkbenchError(
                f"{handle.name}: 2:4 sparsity groups 4 consecutive inputs of each output channel; no weight of this "
                "model has a multiple of 4 inputs per channel (depthwise 3x3 kernels have 9). Use "
                "structure='unstructured'."
            )
    else:
        zero_smallest_arrays(arrays, cfg.ratio, per_layer=cfg.scope is Scope.LAYER, ratios=ratios)
    pruned = [n for n in arrays if n not in skipped and ratios.get(n) != 0]  # a 0 override: as if excluded
    out = _write_variant(handle, cfg, {n: arrays[n] for n in pruned})
    total = sum(arrays[n].size for n in pruned)
    stored = sorted({w.dtype for w in weights if w.layer in pruned})
    meta = {"sparsity": float(sum(int((arrays[n] == 0).sum()) for n in pruned) / total) if total else 0.0,
            "pruned_layers": pruned, **({"prune_skipped": skipped} if cfg.structure is Structure.N_M else {}),
            **({"prune_per_layer": ratios} if cfg.per_layer else {}),
            "route": [*handle.meta.get("route", []),
                      f"{cfg.label}: tflite in place: {cfg.structure.value} zeros written into the "
                      f"{'/'.join(stored)} weights"]}
    from workbench.formats.loader import load

    lineage = (*handle.lineage, cfg)
    new = load(out, example_inputs=handle.example_inputs,
               name=f"{base_name(handle)}|{'+'.join(c.label for c in lineage)}")
    return dataclasses.replace(new, lineage=lineage, origin=handle.origin if handle.origin is not None else handle,
                               meta={**handle.meta, **meta})


def _out_in(arr: np.ndarray, axis: int) -> np.ndarray:
    """An ``(out, in)`` view: output channels first, each channel's inputs flattened in stored order (for
    OHWI convolutions the input channels are innermost, so groups of 4 run along them)."""
    return np.moveaxis(arr, axis, 0).reshape(arr.shape[axis], -1)


def _from_out_in(view: np.ndarray, axis: int, shape: tuple[int, ...]) -> np.ndarray:
    moved = (shape[axis], *(s for i, s in enumerate(shape) if i != axis))
    return np.moveaxis(view.reshape(moved), 0, axis)


def _channel_scale(w: Any) -> bool:
    """A 1x1 DEPTHWISE_CONV_2D weight is one scale per channel (a folded BatchNorm, as in MediaPipe's files):
    zeroing one of its values silences a whole channel, so, like BatchNorm on the PyTorch path, it is not pruned."""
    return w.op_type == "DEPTHWISE_CONV_2D" and w.array.size == w.array.shape[w.axis]


def _prefixes(name: str) -> list[str]:
    """``"a/b/Kernel"`` -> ``a``, ``a/b``, ``a/b/Kernel``; ``"blocks.0.conv"`` -> ``blocks``, ``blocks.0``, ..."""
    sep = "/" if "/" in name else "."
    parts = name.split(sep)
    return [sep.join(parts[:i]) for i in range(1, len(parts) + 1)]


def _excluded(layer: str, exclude: tuple[str, ...]) -> bool:
    return covered(layer, exclude) or any(layer.startswith(e + "/") for e in exclude)


def _write_variant(handle: ModelHandle, cfg: Prune, arrays: dict[str, np.ndarray]) -> Any:
    from workbench.core.paths import cache_dir
    from workbench.formats.tflite_graph import with_weights

    key = hashlib.sha256(f"{handle.fingerprint}|{cfg.to_json()}".encode()).hexdigest()[:24]
    out = cache_dir() / "variants" / f"{base_name(handle)}-{cfg.kind}-{key}.tflite"
    if not out.is_file():
        with_weights(handle.path, arrays, out)
    return out
