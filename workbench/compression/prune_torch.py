"""Prune's torch path for single weights: magnitude (unstructured) and 2:4 sparsity, zeroed in place.

The weights themselves hold the zeros: `torch.nn.utils.prune` masks are made permanent with `prune.remove`,
so no ``weight_orig``, mask or forward pre-hook remains. Channel pruning, which changes the layers' shapes,
is in `workbench.compression.channel_pruning`.
"""

from __future__ import annotations

from typing import Any

from workbench.compression.prune_layers import check_exclude, n_m_mask
from workbench.core.errors import WorkbenchError
from workbench.core.handle import ModelHandle


def check_torch_model(handle: ModelHandle, names: list[str], exclude: tuple[str, ...], *, traced: bool) -> None:
    """Refuse, before any work, what Prune cannot edit: TorchScript, unknown ``exclude`` names, and tracing
    (`traced`, for channel pruning) without example inputs.

    Args:
        handle: the torch model.
        names: its module names (``named_modules``, without the root).
        exclude: the config's excluded layer names.
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


def zero_smallest(layers: dict[str, Any], ratio: float, *, per_layer: bool) -> dict[str, Any]:
    """Zero the `ratio` of the layers' weights with the smallest |w|, over all layers or within each.

    Returns:
        The variant's meta: ``sparsity`` and ``pruned_layers``.
    """
    from torch.nn.utils import prune

    params = [(m, "weight") for m in layers.values()]
    if params and ratio > 0:
        if not per_layer:
            prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=ratio)
        else:  # per layer; "l2" ranks single weights exactly as "l1" does (by |w|)
            for m, name in params:
                prune.l1_unstructured(m, name, amount=ratio)
        for m, name in params:
            prune.remove(m, name)  # make the zeros permanent: no weight_orig, mask or forward pre-hook left
    return {"sparsity": zero_fraction([m.weight for m in layers.values()]), "pruned_layers": list(layers)}


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
