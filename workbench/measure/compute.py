"""Compute per inference: MACs in total and per layer, counted by `torch.utils.flop_counter`.

PyTorch's own FLOP counter walks the real dispatched ops (convolutions, matmuls, attention), so it follows any
model the zoo or a user provides without a hand-written table of layer formulas. MACs = FLOPs / 2.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from workbench.errors import WorkbenchError
from workbench.model import ModelHandle


def _flop_counts(handle: ModelHandle, batch: int = 1) -> dict[str, dict[Any, int]]:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    if handle.framework != "torch" or handle.module is None:
        raise WorkbenchError(f"{handle.name}: MACs are counted on the PyTorch model; this is {handle.framework}.")
    if not handle.example_inputs:
        raise WorkbenchError(f"{handle.name}: counting MACs needs example inputs (workbench.load(..., example_inputs=...)).")
    args = [torch.from_numpy(np.ascontiguousarray(a[:batch])) for a in handle.example_inputs]
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        handle.module(*args)
    return counter.get_flop_counts()


def count_macs(handle: ModelHandle, *, batch: int = 1) -> int:
    """Multiply-accumulates for one inference of `batch` samples (default 1)."""
    counts = _flop_counts(handle, batch)
    return int(sum(counts.get("Global", {}).values()) // 2)


def profile_layers(handle: ModelHandle) -> pd.DataFrame:
    """Per-layer parameters and MACs (batch 1) for every leaf module that holds weights or does compute.

    Returns:
        DataFrame with `layer`, `type`, `params`, `macs`, `weight_shape`.
    """
    counts = _flop_counts(handle, 1)
    rows = []
    for name, mod in handle.module.named_modules():
        if not name or any(True for _ in mod.children()):
            continue
        params = sum(p.numel() for p in mod.parameters(recurse=False))
        key = next((k for k in counts if k.endswith(name) and k.split(".", 1)[-1] == name), None)
        macs = int(sum(counts[key].values()) // 2) if key else 0
        if params == 0 and macs == 0:
            continue
        w = getattr(mod, "weight", None)
        rows.append({
            "layer": name,
            "type": type(mod).__name__,
            "params": params,
            "macs": macs,
            "weight_shape": tuple(w.shape) if w is not None and hasattr(w, "shape") else None,
        })
    return pd.DataFrame(rows, columns=["layer", "type", "params", "macs", "weight_shape"])
