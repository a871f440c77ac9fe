"""Which layers pruning touches: weight layers by name, the ``exclude`` check, the model's own protection marker.

Shared by the torch, channel, ONNX and plan code of `Prune`. A model protects layers by carrying two optional
attributes (on its class or its instance), read with `getattr` so that compression knows no model by name:

* ``prune_fixed``: names of fixed, non-learned transforms (Silero VAD's STFT basis) that no structure prunes;
* ``prune_protected``: names of layers whose width is part of the model's contract (Silero VAD's LSTM cell
  and decoder); channel pruning leaves them exactly as they are.

A name covers its submodules.

Example:
    >>> import torch.nn as nn
    >>> net = nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU(), nn.Conv1d(4, 2, 1))
    >>> net.prune_fixed = ("0",)
    >>> protected_layers(net)
    (('0',), ())
    >>> list(weight_layers(net))
    ['0', '2']
"""

from __future__ import annotations

import difflib
from typing import Any

import numpy as np

from workbench.core.errors import WorkbenchError

FIXED_MARKER = "prune_fixed"
"""Attribute naming the layers no structure prunes (fixed transforms)."""
PROTECTED_MARKER = "prune_protected"
"""Attribute naming the layers channel pruning leaves exactly (their width is part of the model's contract)."""


def weight_layers(module: Any) -> dict[str, Any]:
    """The Conv1d/2d/3d and Linear submodules of `module`, by name, in model order."""
    import torch.nn as nn

    kinds = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
    return {n: m for n, m in module.named_modules() if n and isinstance(m, kinds)}


def check_exclude(names: list[str], exclude: tuple[str, ...], model: str) -> None:
    """Raise `WorkbenchError` naming close matches when an ``exclude`` entry is not one of `names`."""
    unknown = [e for e in exclude if e not in names]
    if unknown:
        hints = {e: difflib.get_close_matches(e, names, n=3) for e in unknown}
        said = "; ".join(f"{e!r} (did you mean {', '.join(h)}?)" if h else repr(e) for e, h in hints.items())
        listed = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
        raise WorkbenchError(f"Prune: {model} has no layer named {said}. Its layers: {listed}.")


def protected_layers(module: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(fixed, protected)``: the layer names `module` marks with ``prune_fixed`` and ``prune_protected``."""
    return _marker(module, FIXED_MARKER), _marker(module, PROTECTED_MARKER)


def _marker(module: Any, attr: str) -> tuple[str, ...]:
    value = getattr(module, attr, ())
    names = (value,) if isinstance(value, str) else tuple(value)
    if not all(isinstance(n, str) and n for n in names):
        raise WorkbenchError(f"{type(module).__name__}.{attr} must be a tuple of layer names, got {value!r}.")
    return names


def n_m_mask(w2d: np.ndarray, n: int = 2, m: int = 4) -> np.ndarray:
    """Keep mask for an ``(out, in)`` array: the `n` largest |w| of every `m` consecutive inputs survive.

    Example:
        >>> n_m_mask(np.array([[4.0, -1.0, 0.5, 3.0]])).astype(int)
        array([[1, 0, 0, 1]])
    """
    groups = np.abs(w2d).reshape(w2d.shape[0], -1, m)
    drop = np.argsort(groups, axis=-1, kind="stable")[..., : m - n]
    keep = np.ones(groups.shape, dtype=bool)
    np.put_along_axis(keep, drop, False, axis=-1)
    return keep.reshape(w2d.shape)
