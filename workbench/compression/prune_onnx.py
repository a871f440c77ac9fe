"""Prune's ONNX path: zero the weight initialisers of Conv/Gemm/MatMul nodes (unstructured or 2:4) in a new file.

Channel pruning needs the PyTorch model (it rewrites layers) and is refused here. Variant files are written
once under ``cache_dir()/"variants"``, keyed by the source's fingerprint and the config.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
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
                     two_four: bool, exclude: tuple[str, ...],
                     overrides: tuple[tuple[str, float], ...] = ()) -> ModelHandle:
    """The variant of an ONNX-file model with its weight initialisers pruned.

    Args:
        handle: the ONNX model (its file is read, never changed).
        cfg: the config, appended to the lineage and hashed into the variant file's name.
        ratio: fraction of weights to zero (unstructured).
        per_layer: rank the weights within each initialiser, else over all of them together.
        two_four: 2:4 sparsity along each weight's input axis instead (initialisers whose input is not a
            multiple of 4 are skipped).
        exclude: layer or node names (covering dotted sub-names) left as they are.
        overrides: ``(name, ratio)`` pairs (`Prune.per_layer`, unstructured): the initialisers a name covers
            (dotted, or a node's name), the most specific name winning, are pruned alone at its ratio (0: left as
            they are); the others follow `per_layer` at `ratio`.

    Returns:
        A new ONNX handle with ``sparsity``, ``pruned_layers`` (and, for 2:4, ``prune_skipped``; with
        `overrides`, ``prune_per_layer``) in its meta.
    """
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(str(handle.path))
    weights = prunable_weights(proto)
    parts = [w[0].split(".") for w in weights]  # "blocks.0.dw.conv.weight" -> also "blocks", "blocks.0", ...
    known = sorted({n.name for n in proto.graph.node if n.name} | {".".join(p[:i]) for p in parts
                                                                    for i in range(1, len(p) + 1)})
    check_exclude(known, (*exclude, *(n for n, _ in overrides)), handle.name)
    idle = [n for n, r in overrides if not any(_override(w[0], w[1], ((n, r),)) is not None for w in weights)]
    if idle:
        raise WorkbenchError(f"Prune: per_layer names {', '.join(map(repr, idle))} of {handle.name}, which hold no "
                             "Conv/Gemm/MatMul weight initializer, so no ratio of theirs can apply. Name the weight "
                             f"layers (e.g. {', '.join(w[0] for w in weights[:3])}) or a prefix of theirs.")
    weights = [w for w in weights if not (covered(w[0], exclude) or w[1] in exclude)]
    ratios = {w[0]: r for w in weights if (r := _override(w[0], w[1], overrides)) is not None}
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
    else:
        zero_smallest_arrays(arrays, ratio, per_layer=per_layer, ratios=ratios)
    pruned = [n for n in arrays if n not in skipped and ratios.get(n) != 0]  # a 0 override: as if excluded
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
            "pruned_layers": pruned, **({"prune_skipped": skipped} if two_four else {}),
            **({"prune_per_layer": ratios} if overrides else {})}
    return dataclasses.replace(new, lineage=lineage, origin=handle.origin if handle.origin is not None else handle,
                               meta={**handle.meta, **meta})


def zero_smallest_arrays(arrays: dict[str, np.ndarray], ratio: float, *, per_layer: bool,
                         ratios: Mapping[str, float] | None = None) -> None:
    """Zero, in place, the `ratio` of smallest-magnitude values: of each array (`per_layer`) or of all together;
    the arrays named in `ratios` (`Prune.per_layer`) alone at their own ratio (0: left as they are).

    Example:
        >>> a = {"x": np.array([3.0, -1.0, 0.5, 2.0]), "y": np.array([0.1, 4.0])}
        >>> zero_smallest_arrays(a, 0.5, per_layer=False)
        >>> a["x"].tolist(), a["y"].tolist()
        ([3.0, 0.0, 0.0, 2.0], [0.0, 4.0])
        >>> a = {"x": np.array([3.0, -1.0, 0.5, 2.0]), "y": np.array([0.1, 4.0])}
        >>> zero_smallest_arrays(a, 0.5, per_layer=False, ratios={"x": 0.25, "y": 0.0})
        >>> a["x"].tolist(), a["y"].tolist()
        ([3.0, -1.0, 0.0, 2.0], [0.1, 4.0])
    """
    ratios = ratios or {}
    rest = [n for n in arrays if n not in ratios]
    groups = [([n], r) for n, r in ratios.items() if n in arrays]
    if per_layer:
        groups += [([n], ratio) for n in rest]
    elif rest:
        groups.append((rest, ratio))
    for names, r in groups:
        mags = np.concatenate([np.abs(arrays[n]).ravel() for n in names])
        k = int(round(r * mags.size))
        if not k:
            continue
        drop = np.zeros(mags.size, dtype=bool)
        drop[np.argpartition(mags, k - 1)[:k]] = True
        start = 0
        for n in names:
            a = arrays[n]
            a[drop[start:start + a.size].reshape(a.shape)] = 0
            start += a.size


def _override(init: str, node: str, overrides: tuple[tuple[str, float], ...]) -> float | None:
    """The ratio of the most specific override naming initialiser `init` (or a dotted prefix of it) or its node."""
    hits = [(len(n), r) for n, r in overrides if init == n or init.startswith(n + ".") or node == n]
    return max(hits)[1] if hits else None


def _variants_dir() -> Path:
    from workbench.core.paths import cache_dir

    return cache_dir() / "variants"
