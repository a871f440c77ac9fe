"""Pruning: zero the weights that matter least (unstructured, 2:4) or remove whole channels and heads (channel).

Three structures, one config:

* ``"unstructured"`` – magnitude pruning with `torch.nn.utils.prune` (global or per layer), made permanent with
  `prune.remove`, so the variant's weights hold the zeros and no masks or hooks remain. The model keeps its
  size and speed in dense runtimes; it compresses well and runs faster only on sparse kernels.
* ``"2:4"`` – semi-structured N:M sparsity: in every group of 4 consecutive weights along a layer's input
  (Linear: ``in_features``; Conv: ``in_channels/groups * kernel`` flattened per output channel) the 2 of
  smallest magnitude become zero – the pattern sparse tensor cores accelerate.
* ``"channel"`` – structured pruning with torch-pruning's dependency graph: output channels of Conv/Linear
  layers (with everything coupled to them: BatchNorm, depthwise convs, the next layer's inputs) and, for
  HF-style attention (modules with ``query/key/value`` and ``num_attention_heads``), whole heads are removed,
  so the layers physically shrink and MACs drop.

Layers that are never pruned: those named in ``exclude`` (with their submodules), and fixed transforms a zoo
model declares (Silero VAD's STFT basis). Channel pruning also keeps the output width of the model's last
layer (the classifier head; its input may shrink) and the layers whose width is part of a model's contract
(Silero VAD's LSTM cell and decoder). An excluded or protected layer keeps its weight shape *exactly*, so the
layer feeding it keeps its output width too.

Example:
    >>> task = workbench.zoo.load("digits-cnn")
    >>> prune_plan(task.model, Prune(0.5, structure="channel"))[["layer", "shape_before", "shape_after"]]
    >>> small = workbench.compress(task.model, Prune(0.5, structure="channel"))
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import math
from dataclasses import KW_ONLY, dataclass
from enum import StrEnum
from numbers import Real
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from workbench.compression.base import (
    CompressionConfig,
    base_name,
    compress,
    copy_module,
    layer_names,
    technique,
    torch_variant,
)
from workbench.core.errors import WorkbenchError, first_line
from workbench.core.handle import ModelHandle


class _Choice(StrEnum):
    def __repr__(self) -> str:  # Prune(ratio=0.5, structure='channel', ...) reads like the call that made it
        return repr(self.value)


class Structure(_Choice):
    UNSTRUCTURED = "unstructured"
    CHANNEL = "channel"
    N_M = "2:4"


class Scope(_Choice):
    GLOBAL = "global"
    LAYER = "layer"


class Importance(_Choice):
    L1 = "l1"
    L2 = "l2"


def _choice(enum: type[StrEnum], field: str, value: Any) -> StrEnum:
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(repr(e.value) for e in enum)
        raise ValueError(f"Prune: {field} must be one of {allowed}, got {value!r}") from None


@dataclass(frozen=True)
class Prune(CompressionConfig):
    """Prune a model's Conv/Linear weights.

    Args:
        ratio: fraction to remove, in [0, 1): of the weights (unstructured), of the channels and heads (channel).
            ``"2:4"`` always removes exactly half, so it requires ``ratio=0.5``.
        structure: ``"unstructured"``, ``"channel"`` or ``"2:4"`` (see the module docstring).
        scope: ``"global"`` ranks all layers together (each layer loses a different share); ``"layer"``
            removes ``floor(n * ratio)`` of each layer's n weights / channels / heads (so a layer never
            empties, and 0.5 halves every even width). Ignored by ``"2:4"``, which is per group of 4.
        importance: ``"l1"`` or ``"l2"`` norm of a channel's weights (summed over its dependency group,
            normalised by the group mean for global ranking). For single weights (unstructured, 2:4) both
            rank identically, by absolute value.
        exclude: module names (a name covers its submodules) left exactly as they are.
        round_to: channel pruning only: keep a multiple of this many channels in every pruned layer (e.g. 8,
            the SIMD block of ONNX Runtime's NCHWc convolution kernels; odd widths such as 19 or 67, which global
            ranking leaves, ran slower *than the unpruned model* here). The kept count is rounded to the
            nearest multiple (at least one multiple), so the ratio achieved differs slightly from `ratio`.

    Example:
        >>> Prune(0.5, structure="channel").label
        'prune-channel-0.50'
        >>> Prune(0.5, structure="2:4", exclude=["classifier"]).label
        'prune-2:4-x1'
    """

    kind: ClassVar[str] = "prune"

    ratio: float
    _: KW_ONLY
    structure: Structure = Structure.UNSTRUCTURED
    scope: Scope = Scope.GLOBAL
    importance: Importance = Importance.L1
    exclude: tuple[str, ...] = ()
    round_to: int | None = None

    def __post_init__(self) -> None:
        r = self.ratio
        if isinstance(r, bool) or not isinstance(r, Real) or not math.isfinite(r) or not 0.0 <= r < 1.0:
            raise ValueError(f"Prune: ratio must be a number in [0, 1) (the fraction removed), got {r!r}")
        object.__setattr__(self, "ratio", float(r))
        object.__setattr__(self, "structure", _choice(Structure, "structure", self.structure))
        object.__setattr__(self, "scope", _choice(Scope, "scope", self.scope))
        object.__setattr__(self, "importance", _choice(Importance, "importance", self.importance))
        if self.structure is Structure.N_M and self.ratio != 0.5:
            raise ValueError(f"Prune: '2:4' keeps 2 of every 4 weights, so ratio must be 0.5, got {r!r}")
        object.__setattr__(self, "exclude", layer_names("Prune", self.exclude))
        if self.round_to is not None:
            if isinstance(self.round_to, bool) or not isinstance(self.round_to, int) or self.round_to < 2:
                raise ValueError(f"Prune: round_to must be None or an integer >= 2 (e.g. 8), got {self.round_to!r}")
            if self.structure is not Structure.CHANNEL:
                raise ValueError(f"Prune: round_to applies to structure='channel' only, not {self.structure.value!r}")

    def to_dict(self) -> dict[str, Any]:
        return {k: v.value if isinstance(v, StrEnum) else v for k, v in super().to_dict().items()}

    @property
    def label(self) -> str:
        """``prune-<structure>-<ratio>`` plus ``-layer``, ``-l2`` (channel) and ``-x<n excluded>`` when set."""
        if self.structure is Structure.N_M:
            text = "prune-2:4"
        else:
            text = f"prune-{self.structure.value}-{self.ratio:.2f}"
            text += "-layer" if self.scope is Scope.LAYER else ""
        text += "-l2" if self.structure is Structure.CHANNEL and self.importance is Importance.L2 else ""
        text += f"-mult{self.round_to}" if self.round_to else ""
        return text + (f"-x{len(self.exclude)}" if self.exclude else "")


# Layers a zoo model's design fixes, by module class name. "fixed": non-learned transforms that no structure
# prunes. "shape": layers whose width is part of the model's contract (the LSTM cell, whose state is a model
# input, and the decoder); channel pruning leaves them exactly as they are.
_PROTECTED: dict[str, dict[str, tuple[str, ...]]] = {
    "SileroVAD": {"fixed": ("stft_conv",), "shape": ("ih", "hh", "final_conv")},
}


# ------------------------------------------------------------------------------------------------ torch


def _weight_layers(module: Any) -> dict[str, Any]:
    import torch.nn as nn

    kinds = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
    return {n: m for n, m in module.named_modules() if n and isinstance(m, kinds)}


def _covered(name: str, prefixes: tuple[str, ...] | list[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _check_exclude(names: list[str], exclude: tuple[str, ...], model: str) -> None:
    unknown = [e for e in exclude if e not in names]
    if unknown:
        hints = {e: difflib.get_close_matches(e, names, n=3) for e in unknown}
        said = "; ".join(f"{e!r} (did you mean {', '.join(h)}?)" if h else repr(e) for e, h in hints.items())
        listed = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
        raise WorkbenchError(f"Prune: {model} has no layer named {said}. Its layers: {listed}.")


def _protected(module: Any, kind: str) -> tuple[str, ...]:
    return _PROTECTED.get(type(module).__name__, {}).get(kind, ())


@technique(Prune, "torch")
def _prune_torch(handle: ModelHandle, cfg: Prune, task: Any = None) -> ModelHandle:
    import torch

    if isinstance(handle.module, torch.jit.ScriptModule):
        raise WorkbenchError(f"{handle.name} is TorchScript; Prune edits an nn.Module's layers. Load the original "
                             "nn.Module, or export to ONNX and prune that (unstructured or 2:4).")
    _check_exclude([n for n, _ in handle.module.named_modules() if n], cfg.exclude, handle.name)
    if cfg.structure is Structure.CHANNEL and not handle.example_inputs:
        raise WorkbenchError(f"{handle.name}: channel pruning traces the model and needs example inputs "
                             "(workbench.load(model, example_inputs=[...])).")
    module = copy_module(handle)
    fixed = _protected(module, "fixed")
    shape = _protected(module, "shape") if cfg.structure is Structure.CHANNEL else ()
    layers = {n: m for n, m in _weight_layers(module).items() if not _covered(n, (*cfg.exclude, *fixed))}
    if cfg.structure is Structure.CHANNEL:
        meta = _channel(module, handle, cfg, frozen=(*cfg.exclude, *fixed, *shape))
    elif cfg.structure is Structure.N_M:
        meta = _n_m_torch(layers)
    else:
        meta = _unstructured_torch(layers, cfg)
    meta["prune_protected"] = [p for p in (*fixed, *shape) if p not in cfg.exclude]
    return torch_variant(handle, module, cfg, meta=meta)


def _zero_fraction(weights: list[Any]) -> float:
    total = sum(int(w.numel()) for w in weights)
    return float(sum(int((w == 0).sum()) for w in weights) / total) if total else 0.0


def _unstructured_torch(layers: dict[str, Any], cfg: Prune) -> dict[str, Any]:
    from torch.nn.utils import prune

    params = [(m, "weight") for m in layers.values()]
    if params and cfg.ratio > 0:
        if cfg.scope is Scope.GLOBAL:
            prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=cfg.ratio)
        else:  # per layer; "l2" ranks single weights exactly as "l1" does (by |w|)
            for m, name in params:
                prune.l1_unstructured(m, name, amount=cfg.ratio)
        for m, name in params:
            prune.remove(m, name)  # make the zeros permanent: no weight_orig, mask or forward pre-hook left
    return {"sparsity": _zero_fraction([m.weight for m in layers.values()]), "pruned_layers": list(layers)}


def _n_m_mask(w2d: np.ndarray, n: int = 2, m: int = 4) -> np.ndarray:
    """Keep mask for an ``(out, in)`` array: the `n` largest |w| of every `m` consecutive inputs survive."""
    groups = np.abs(w2d).reshape(w2d.shape[0], -1, m)
    drop = np.argsort(groups, axis=-1, kind="stable")[..., : m - n]
    keep = np.ones(groups.shape, dtype=bool)
    np.put_along_axis(keep, drop, False, axis=-1)
    return keep.reshape(w2d.shape)


def _n_m_torch(layers: dict[str, Any]) -> dict[str, Any]:
    import torch

    done, skipped = [], []
    for name, mod in layers.items():
        w = mod.weight.data
        flat = w.reshape(w.shape[0], -1)
        if flat.shape[1] % 4:
            skipped.append(name)
            continue
        keep = torch.from_numpy(_n_m_mask(flat.numpy())).reshape(w.shape)
        with torch.no_grad():
            w.mul_(keep.to(w.dtype))
        done.append(name)
    return {"sparsity": _zero_fraction([layers[n].weight for n in done]), "pruned_layers": done,
            "prune_skipped": skipped}


# ---------------------------------------------------------------------------------------------- channel


@dataclass
class _Group:
    """One dependency group: channels pruned together, scored per unit (a channel, or a whole head)."""

    root: Any
    handler: Any
    names: list[str]
    scores: Any  # torch 1-D, per unit
    unit: int = 1  # channels per unit (head_dim for attention groups)
    remove: list[int] = dataclasses.field(default_factory=list)  # unit indices


def _attention_modules(module: Any) -> dict[Any, Any]:
    """HF-style self-attention (query/key/value Linears + num_attention_heads) keyed by its q, k and v."""
    import torch.nn as nn

    out = {}
    for m in module.modules():
        qkv = [getattr(m, a, None) for a in ("query", "key", "value")]
        if all(isinstance(x, nn.Linear) for x in qkv) and hasattr(m, "num_attention_heads") and hasattr(
                m, "attention_head_size"):
            out.update({x: m for x in qkv})
    return out


def _head_layer(module: Any, example: list[Any], traced: set[Any]) -> Any:
    """The last Conv/Linear the forward pass runs that feeds the outputs: the model's head."""
    import torch

    order: list[Any] = []
    hooks = [m.register_forward_hook(lambda mod, _i, _o: order.append(mod))
             for m in _weight_layers(module).values() if m in traced]
    try:
        with torch.no_grad():
            module(*example)
    finally:
        for h in hooks:
            h.remove()
    return order[-1] if order else None


def _channel(module: Any, handle: ModelHandle, cfg: Prune, frozen: tuple[str, ...]) -> dict[str, Any]:
    import torch
    import torch.nn as nn
    import torch_pruning as tp

    example = [torch.from_numpy(np.ascontiguousarray(a)) for a in handle.example_inputs]
    names = {m: n for n, m in module.named_modules()}
    frozen_mods = {m for n, m in module.named_modules() if n and _covered(n, frozen)}
    try:
        dg = tp.DependencyGraph().build_dependency(module, example_inputs=example)
    except Exception as e:
        raise WorkbenchError(f"{handle.name}: torch-pruning could not trace the model ({first_line(e)}); "
                             "use structure='unstructured' or '2:4' instead.") from e
    head = _head_layer(module, example, set(dg.module2node))
    attention = _attention_modules(module)
    imp = tp.importance.MagnitudeImportance(p=1 if cfg.importance is Importance.L1 else 2,
                                            group_reduction="mean", normalizer="mean")
    groups: list[_Group] = []
    for group in dg.get_all_groups(ignored_layers=[head, *frozen_mods], root_module_types=[nn.modules.conv._ConvNd,
                                                                                           nn.Linear]):
        members = [dep.target.module for dep, _ in group]
        if frozen_mods.intersection(members):
            continue  # a protected layer would change shape (as an input of this group)
        scores = imp(group)
        if scores is None:
            continue
        outs = [m for dep, _ in group if dg.is_out_channel_pruning_fn(dep.handler)
                and isinstance(m := dep.target.module, (nn.modules.conv._ConvNd, nn.Linear))]
        g = _Group(group[0].dep.target.module, group[0].dep.handler, [names[m] for m in outs], scores)
        attn = next((attention[m] for m in outs if m in attention), None)
        if attn is not None:
            g.unit = int(attn.attention_head_size)
            g.scores = scores.view(-1, g.unit).mean(1)  # one score per head: heads go whole
        groups.append(g)
    _select(groups, cfg, handle.name)

    shapes = {n: tuple(m.weight.shape) for n, m in _weight_layers(module).items()}
    attn_modules = list(dict.fromkeys(attention.values()))  # in model order
    heads_before = {names[a]: int(a.num_attention_heads) for a in attn_modules}
    params_before = sum(p.numel() for p in module.parameters())
    for g in groups:
        if g.remove:
            idxs = [u * g.unit + i for u in g.remove for i in range(g.unit)]
            pg = dg.get_pruning_group(g.root, g.handler, idxs)
            if not dg.check_pruning_group(pg):  # pragma: no cover - _select never empties a group
                raise WorkbenchError(f"{handle.name}: pruning {g.names} would leave a layer with no channels.")
            pg.prune()
    for a in attn_modules:  # HF attention reads these to split heads (transformers < 5 does)
        a.all_head_size = a.query.out_features
        a.num_attention_heads = a.query.out_features // a.attention_head_size
    _check_runs(module, handle, example)

    after = {n: tuple(m.weight.shape) for n, m in _weight_layers(module).items()}
    changed = [n for n in after if after[n] != shapes[n]]
    w_before = sum(math.prod(shapes[n]) for n in changed)
    w_after = sum(math.prod(after[n]) for n in changed)
    return {
        "sparsity": 1 - w_after / w_before if w_before else 0.0,  # weights removed from the layers that shrank
        "pruned_layers": changed,
        "channels": {n: [shapes[n][0], after[n][0]] for n in changed if after[n][0] != shapes[n][0]},
        "heads": {n: [h, int(a.num_attention_heads)] for a, n in ((a, names[a]) for a in attn_modules)
                  if (h := heads_before[n]) != a.num_attention_heads},
        "params_removed": int(params_before - sum(p.numel() for p in module.parameters())),
        "prune_head": names.get(head),
    }


def _select(groups: list[_Group], cfg: Prune, model: str) -> None:
    """Fill each group's `remove` (unit indices), per layer or by global rank; never empty a group."""
    if cfg.ratio == 0:
        return
    if cfg.scope is Scope.LAYER:
        for g in groups:
            g.remove = sorted(np.argsort(g.scores.numpy(), kind="stable")[: int(len(g.scores) * cfg.ratio)].tolist())
        _round(groups, cfg.round_to)
        return
    for heads in (False, True):  # heads and channels are ranked in separate pools
        pool = [g for g in groups if (g.unit > 1) == heads]
        if not pool:
            continue
        scores = np.concatenate([g.scores.numpy() for g in pool])
        owner = np.concatenate([np.full(len(g.scores), i) for i, g in enumerate(pool)])
        local = np.concatenate([np.arange(len(g.scores)) for g in pool])
        lowest = np.argsort(scores, kind="stable")[: int(len(scores) * cfg.ratio)]
        for i, g in enumerate(pool):
            g.remove = sorted(local[lowest[owner[lowest] == i]].tolist())
            if len(g.remove) == len(g.scores):
                what = "head" if heads else "channel"
                raise WorkbenchError(
                    f"Prune: global {what} pruning at ratio {cfg.ratio} would remove every {what} of "
                    f"{', '.join(g.names)} in {model}. Lower the ratio, use scope='layer', or exclude that layer.")
    _round(groups, cfg.round_to)


def _round(groups: list[_Group], round_to: int | None) -> None:
    """Make each channel group keep a multiple of `round_to` channels (nearest, at least one multiple), removing
    the lowest-scored ones; groups narrower than `round_to`, and attention heads, are left as selected."""
    if not round_to:
        return
    for g in groups:
        n = len(g.scores)
        if g.unit > 1 or n <= round_to or not g.remove:
            continue
        keep = min(n, max(round_to, int(round((n - len(g.remove)) / round_to)) * round_to))
        g.remove = sorted(np.argsort(g.scores.numpy(), kind="stable")[: n - keep].tolist())


def _check_runs(module: Any, handle: ModelHandle, example: list[Any]) -> None:
    import torch

    from workbench.core.handle import flatten_outputs

    try:
        with torch.no_grad():
            outs = flatten_outputs(module(*example))
    except Exception as e:
        raise WorkbenchError(f"{handle.name}: the channel-pruned model no longer runs ({first_line(e)}). "
                             "Exclude the layers around the failing op with Prune(..., exclude=[...]).") from e
    got = [tuple(t.shape[1:]) for _, t in outs]
    want = [tuple(s.shape[1:]) if s.shape else None for s in handle.outputs]
    if any(w is not None and w != g for w, g in zip(want, got)):
        raise WorkbenchError(f"{handle.name}: channel pruning changed the output shapes {want} -> {got}. "
                             "Exclude the layers that produce the outputs with Prune(..., exclude=[...]).")


# ------------------------------------------------------------------------------------------------- ONNX


def _onnx_weights(proto: Any) -> list[tuple[str, str, str, bool]]:
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


@technique(Prune, "onnx")
def _prune_onnx(handle: ModelHandle, cfg: Prune, task: Any = None) -> ModelHandle:
    if cfg.structure is Structure.CHANNEL:
        raise WorkbenchError(f"{handle.name}: channel pruning rewrites the layers and needs the PyTorch model; "
                             "on ONNX models Prune supports structure='unstructured' and '2:4'.")
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(str(handle.path))
    weights = _onnx_weights(proto)
    parts = [w[0].split(".") for w in weights]  # "blocks.0.dw.conv.weight" -> also "blocks", "blocks.0", ...
    known = sorted({n.name for n in proto.graph.node if n.name} | {".".join(p[:i]) for p in parts
                                                                    for i in range(1, len(p) + 1)})
    _check_exclude(known, cfg.exclude, handle.name)
    weights = [w for w in weights if not (_covered(w[0], cfg.exclude) or w[1] in cfg.exclude)]
    inits = {i.name: i for i in proto.graph.initializer}
    arrays = {w[0]: numpy_helper.to_array(inits[w[0]]).copy() for w in weights}
    skipped: list[str] = []
    if cfg.structure is Structure.N_M:
        for name, _, _, in_first in weights:
            w2 = _as_out_in(arrays[name], in_first)
            if w2.shape[1] % 4:
                skipped.append(name)
                continue
            keep = _n_m_mask(w2)
            arrays[name] = (w2 * keep).T.copy() if in_first else (w2 * keep).reshape(arrays[name].shape)
    elif cfg.ratio > 0:
        groups = [list(arrays)] if cfg.scope is Scope.GLOBAL else [[n] for n in arrays]
        for names in groups:
            mags = np.concatenate([np.abs(arrays[n]).ravel() for n in names])
            k = int(round(cfg.ratio * mags.size))
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
            "pruned_layers": pruned, **({"prune_skipped": skipped} if cfg.structure is Structure.N_M else {})}
    return dataclasses.replace(new, lineage=lineage, origin=handle.origin if handle.origin is not None else handle,
                               meta={**handle.meta, **meta})


def _variants_dir() -> Path:
    from workbench.core.paths import cache_dir

    return cache_dir() / "variants"


# ------------------------------------------------------------------------------------------------- plan


def prune_plan(handle: ModelHandle, cfg: Prune, *, task: Any = None) -> pd.DataFrame:
    """Preview what `cfg` does to each layer, without changing `handle` (it prunes a copy).

    Args:
        handle: the model (a `ModelHandle`, or a `Task` whose model is used).
        cfg: the `Prune` config.
        task: passed on to the technique (pruning itself needs no data).

    Returns:
        One row per layer with weights or compute: ``layer``, ``type``, ``shape_before``, ``shape_after``,
        ``params_before``, ``params_after``, ``macs_before``, ``macs_after`` (batch 1; `None` for ONNX models),
        ``sparsity_after`` (fraction of zero weights) and ``note`` (``"pruned"``, ``"excluded"``,
        ``"protected"``, ``"head: outputs kept"``, ``"skipped: inputs not a multiple of 4"`` or ``""``).
        Totals are in ``df.attrs["totals"]`` (params, MACs and the variant's ``sparsity``), so every row
        stays a layer. The plan is exactly what ``compress(handle, cfg)`` produces (it runs the same code).

    Example:
        >>> plan = prune_plan(task.model, Prune(0.5, structure="2:4"))
        >>> plan[plan.note.str.startswith("skipped")].layer.tolist()
        ['stem.conv', 'blocks.0.dw.conv', ...]
    """
    if not isinstance(cfg, Prune):
        raise WorkbenchError(f"prune_plan() takes a Prune config, got {cfg!r}.")
    if not isinstance(handle, ModelHandle) and isinstance(getattr(handle, "model", None), ModelHandle):
        task, handle = task if task is not None else handle, handle.model
    variant = compress(handle, cfg, task=task)
    df = _torch_plan(handle, variant) if handle.framework == "torch" else _onnx_plan(handle, variant)
    notes = []
    for row in df.itertuples():
        if row.layer in variant.meta.get("prune_skipped", []):
            notes.append("skipped: inputs not a multiple of 4")
        elif _covered(row.layer, cfg.exclude):
            notes.append("excluded")
        elif _covered(row.layer, variant.meta.get("prune_protected", [])):
            notes.append("protected")
        elif cfg.structure is Structure.CHANNEL and row.layer == variant.meta.get("prune_head"):
            notes.append("head: outputs kept")
        elif row.layer in variant.meta.get("pruned_layers", []):
            notes.append("pruned")
        else:
            notes.append("")
    df["note"] = notes
    if cfg.structure is Structure.CHANNEL:
        df.loc[(df.note == "") & (df.shape_before != df.shape_after), "note"] = "pruned (coupled)"
    macs = df.macs_before.notna().all()
    df.attrs["totals"] = {
        "params_before": handle.num_params, "params_after": variant.num_params,
        "macs_before": int(df.macs_before.sum()) if macs else None,
        "macs_after": int(df.macs_after.sum()) if macs else None,
        "sparsity": variant.meta.get("sparsity", 0.0),
    }
    return df


_PLAN_COLUMNS = ["layer", "type", "shape_before", "shape_after", "params_before", "params_after", "macs_before",
                 "macs_after", "sparsity_after"]


def _torch_plan(handle: ModelHandle, variant: ModelHandle) -> pd.DataFrame:
    from workbench.core.layers import profile_layers

    before = profile_layers(handle).set_index("layer")
    after = profile_layers(variant).set_index("layer")
    mods = dict(variant.module.named_modules())
    rows = []
    for layer in before.index:
        b, a = before.loc[layer], after.loc[layer]
        w = getattr(mods[layer], "weight", None)
        rows.append([layer, b["type"], b["weight_shape"], a["weight_shape"], int(b["params"]), int(a["params"]),
                     int(b["macs"]), int(a["macs"]), float((w == 0).float().mean()) if w is not None else 0.0])
    return pd.DataFrame(rows, columns=_PLAN_COLUMNS)


def _onnx_plan(handle: ModelHandle, variant: ModelHandle) -> pd.DataFrame:
    import onnx
    from onnx import numpy_helper

    def weights(path: Path) -> dict[str, tuple[str, np.ndarray]]:
        proto = onnx.load(str(path))
        inits = {i.name: i for i in proto.graph.initializer}
        return {name: (op, numpy_helper.to_array(inits[name])) for name, _, op, _ in _onnx_weights(proto)}

    after = weights(variant.path)
    rows = [[name, op, w.shape, after[name][1].shape, w.size, after[name][1].size, None, None,
             float(np.mean(after[name][1] == 0))] for name, (op, w) in weights(handle.path).items()]
    return pd.DataFrame(rows, columns=_PLAN_COLUMNS)
