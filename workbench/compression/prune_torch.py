"""Prune's torch path for single weights: magnitude (unstructured) and 2:4 sparsity, zeroed in place.

The weights themselves hold the zeros: `torch.nn.utils.prune` masks are made permanent with `prune.remove`,
so no ``weight_orig``, mask or forward pre-hook remains. Channel pruning, which changes the layers' shapes,
is in `workbench.compression.channel_pruning`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from workbench.compression.prune_layers import check_exclude, n_m_mask
from workbench.core.errors import WorkbenchError
from workbench.core.handle import ModelHandle


def check_torch_model(handle: ModelHandle, names: list[str], exclude: tuple[str, ...], *, traced: bool) -> None:
    """Refuse, before any work, what Prune cannot edit: TorchScript, unknown ``exclude`` (or ``per_layer``)
    names, and tracing (`traced`, for channel pruning) without example inputs.

    Args:
        handle: the torch model.
        names: its module names (``named_modules``, without the root).
        exclude: the config's excluded layer names (and its `per_layer` names).
        traced: whether the structure traces the model (channel pruning).
    """
    import torch

    if isinstance(handle.module, torch.jit.ScriptModule):
        raise WorkbenchError(f"{handle.name} is TorchScript; Prune edits an nn.Module's layers. Load the original "
                             "nn.Module, or export to ONNX and prune that (unstructured or 2:4).")
    check_exclude(names, exclude, handle.name)
    if traced and not handle.example_inputs:
        raise WorkbenchError(f"{handle.name}: channel pruning traces the model and needs example inputs "
                             "(workbench.load(model, example_inputs=[...])).")


def zero_fraction(weights: list[Any]) -> float:
    """Fraction of zeros over all the tensors in `weights` (0.0 when there are none)."""
    total = sum(int(w.numel()) for w in weights)
    return float(sum(int((w == 0).sum()) for w in weights) / total) if total else 0.0


def zero_smallest(layers: dict[str, Any], ratio: float, *, per_layer: bool,
                  ratios: Mapping[str, float] | None = None) -> dict[str, Any]:
    """Zero the `ratio` of the layers' weights with the smallest |w|, over all layers or within each.

    Args:
        layers: the Conv/Linear modules to prune, by name (changed in place).
        ratio: fraction of weights to zero.
        per_layer: zero `ratio` of each layer; else rank the layers together.
        ratios: layers pruned alone at a ratio of their own (`Prune.per_layer`), by name; 0 leaves one as it
            is, out of ``pruned_layers`` and ``sparsity`` (as if excluded). The other layers follow `per_layer`
            at `ratio`.

    Returns:
        The variant's meta: ``sparsity`` and ``pruned_layers`` (and ``prune_per_layer``, the `ratios` that
        applied, when `ratios` is given).

    Example:
        >>> import torch.nn as nn
        >>> layers = {"a": nn.Linear(10, 10), "b": nn.Linear(10, 10), "c": nn.Linear(10, 10)}
        >>> meta = zero_smallest(layers, 0.5, per_layer=False, ratios={"b": 0.9, "c": 0.0})
        >>> [round(float((m.weight == 0).float().mean()), 2) for m in layers.values()], meta["pruned_layers"]
        ([0.5, 0.9, 0.0], ['a', 'b'])
    """
    from torch.nn.utils import prune

    own = {n: float(r) for n, r in (ratios or {}).items() if n in layers}
    layers = {n: m for n, m in layers.items() if own.get(n) != 0}  # a 0 override: left out, like an excluded layer
    rest = [(m, "weight") for n, m in layers.items() if n not in own]
    if rest and ratio > 0:
        if not per_layer:
            prune.global_unstructured(rest, pruning_method=prune.L1Unstructured, amount=ratio)
        else:  # per layer; "l2" ranks single weights exactly as "l1" does (by |w|)
            for m, name in rest:
                prune.l1_unstructured(m, name, amount=ratio)
    for n, r in own.items():
        if r > 0:
            prune.l1_unstructured(layers[n], "weight", amount=r)
    for m in layers.values():
        if prune.is_pruned(m):
            prune.remove(m, "weight")  # make the zeros permanent: no weight_orig, mask or forward pre-hook left
    meta = {"sparsity": zero_fraction([m.weight for m in layers.values()]), "pruned_layers": list(layers)}
    return meta if ratios is None else {**meta, "prune_per_layer": own}


def zero_two_of_four(layers: dict[str, Any]) -> dict[str, Any]:
    """2:4 sparsity: the 2 smallest of every 4 consecutive inputs of each output become zero.

    Layers whose flattened input is not a multiple of 4 are left as they are.

    Returns:
        The variant's meta: ``sparsity`` (of the pruned layers), ``pruned_layers`` and ``prune_skipped``.
    """
    import torch

    done, skipped = [], []
    for name, mod in layers.items():
        w = mod.weight.data
        flat = w.reshape(w.shape[0], -1)
        if flat.shape[1] % 4:
            skipped.append(name)
            continue
        keep = torch.from_numpy(n_m_mask(flat.numpy())).reshape(w.shape)
        with torch.no_grad():
            w.mul_(keep.to(w.dtype))
        done.append(name)
    return {"sparsity": zero_fraction([layers[n].weight for n in done]), "pruned_layers": done,
            "prune_skipped": skipped}
