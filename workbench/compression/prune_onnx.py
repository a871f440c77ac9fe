"""Prune's ONNX path: zero the weight initialisers of Conv/Gemm/MatMul nodes (unstructured or 2:4) in a new file.

Channel pruning needs the PyTorch model (it rewrites layers) and is refused here. Variant files are written
once under ``cache_dir()/"variants"``, keyed by the source's fingerprint and the config.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from workbench.compression.base import CompressionConfig, base_name, covered
from workbench.compression.prune_layers import check_exclude, n_m_mask
from workbench.core.errors import WorkbenchError
from workbench.core.handle import ModelHandle


def prunable_weights(proto: Any) -> list[tuple[str, str, str, bool]]:
    """(initializer, node name, op type, input-axis-first) for each Conv/Gemm/MatMul weight initializer."""
    from onnx import helper

    inits = {i.name: len(i.dims) for i in proto.graph.initializer}
    out, seen = [], set()
    for node in proto.graph.node:
        if node.op_type not in ("Conv", "Gemm", "MatMul") or len(node.input) < 2:
            continue
        w = node.input[1]
        if w in seen or inits.get(w, 0) < 2 or (node.op_type == "MatMul" and inits[w] != 2):
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        # Conv: (out, in/g, k...); Gemm: (out, in) with transB=1 else (in, out); MatMul: (in, out).
        in_first = node.op_type == "MatMul" or (node.op_type == "Gemm" and not attrs.get("transB", 0))
        seen.add(w)
        out.append((w, node.name, node.op_type, in_first))
    return out


def _as_out_in(w: np.ndarray, in_first: bool) -> np.ndarray:
    return w.T if in_first else w.reshape(w.shape[0], -1)


def prune_onnx_model(handle: ModelHandle, cfg: CompressionConfig, *, ratio: float, per_layer: bool,
                     two_four: bool, exclude: tuple[str, ...]) -> ModelHandle:
    """The variant of an ONNX-file model with its weight initialisers pruned.

    Args:
        handle: the ONNX model (its file is read, never changed).
        cfg: the config, appended to the lineage and hashed into the variant file's name.
        ratio: fraction of weights to zero (unstructured).
        per_layer: rank the weights within each initialiser, else over all of them together.
        two_four: 2:4 sparsity along each weight's input axis instead (initialisers whose input is not a
            multiple of 4 are skipped).
        exclude: layer or node names (covering dotted sub-names) left as they are.

    Returns:
        A new ONNX handle with ``sparsity``, ``pruned_layers`` (and, for 2:4, ``prune_skipped``) in its meta.
    """
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(str(handle.path))
    weights = prunable_weights(proto)
    parts = [w[0].split(".") for w in weights]  # "blocks.0.dw.conv.weight" -> also "blocks", "blocks.0", ...
    known = sorted({n.name for n in proto.graph.node if n.name} | {".".join(p[:i]) for p in parts
                                                                    for i in range(1, len(p) + 1)})
    check_exclude(known, exclude, handle.name)
    weights = [w for w in weights if not (covered(w[0], exclude) or w[1] in exclude)]
    if not weights:
        raise WorkbenchError(f"{handle.name}: no Conv/Gemm/MatMul weight initializer to prune"
                             + (" outside the excluded layers" if exclude else "")
                             + "; nothing here is a pruned variant. Check that this graph has weight layers.")
    inits = {i.name: i for i in proto.graph.initializer}
    arrays = {w[0]: numpy_helper.to_array(inits[w[0]]).copy() for w in weights}
    skipped: list[str] = []
    if two_four:
        for name, _, _, in_first in weights:
            w2 = _as_out_in(arrays[name], in_first)
            if w2.shape[1] % 4:
                skipped.append(name)
                continue
            keep = n_m_mask(w2)
            arrays[name] = (w2 * keep).T.copy() if in_first else (w2 * keep).reshape(arrays[name].shape)
    elif ratio > 0:
        groups = [[n] for n in arrays] if per_layer else [list(arrays)]
        for names in groups:
            mags = np.concatenate([np.abs(arrays[n]).ravel() for n in names])
            k = int(round(ratio * mags.size))
            drop = np.zeros(mags.size, dtype=bool)
            drop[np.argpartition(mags, k - 1)[:k] if k else []] = True
            start = 0
            for n in names:
                a = arrays[n]
                a[drop[start:start + a.size].reshape(a.shape)] = 0
                start += a.size
    pruned = [n for n in arrays if n not in skipped]
    for n in pruned:
        inits[n].CopyFrom(numpy_helper.from_array(arrays[n], n))
    key = hashlib.sha256(f"{handle.fingerprint}|{cfg.to_json()}".encode()).hexdigest()[:24]
    out = _variants_dir() / f"{base_name(handle)}-{cfg.kind}-{key}.onnx"
    if not out.is_file():
        from workbench.core.paths import atomic_write

        atomic_write(out, lambda tmp: onnx.save(proto, str(tmp)))
    from workbench.formats.loader import load

    lineage = (*handle.lineage, cfg)
    new = load(out, example_inputs=handle.example_inputs,
               name=f"{base_name(handle)}|{'+'.join(c.label for c in lineage)}")
    total = sum(arrays[n].size for n in pruned)
    meta = {"sparsity": float(sum(int((arrays[n] == 0).sum()) for n in pruned) / total) if total else 0.0,
            "pruned_layers": pruned, **({"prune_skipped": skipped} if two_four else {})}
    return dataclasses.replace(new, lineage=lineage, origin=handle.origin if handle.origin is not None else handle,
                               meta={**handle.meta, **meta})


def _variants_dir() -> Path:
    from workbench.core.paths import cache_dir

    return cache_dir() / "variants"
