"""Low-rank factorisation: replace a wide layer by two thin ones found with a truncated SVD.

A Linear (or 1x1 Conv1d/Conv2d with ``groups=1``) weight ``W`` (out x in) is approximated by its best rank-r
approximation ``U_r S_r V_r^T`` (Eckart-Young), with ``r = max(1, round(rank_ratio * min(in, out)))``. The layer
becomes an ``nn.Sequential`` of two layers, so ``classifier`` turns into ``classifier.0`` and ``classifier.1``:

* ``.0``: in -> r, no bias, weight ``sqrt(S_r) V_r^T`` (a 1x1 conv keeps the original stride and padding);
* ``.1``: r -> out, weight ``U_r sqrt(S_r)``, the original bias.

Parameters drop from ``in * out`` to ``r * (in + out)``, and so do MACs. A layer is factorised only where that
is a saving (``r * (in + out) < in * out``: a square layer needs ``rank_ratio < 0.5``); every eligible layer is
factorised by default, the classifier head included, except those named in ``exclude`` and those narrower than
``min_features`` on either side (a 256 -> 10 head saves little and loses a lot). Skipped layers and the reason
are listed in ``meta["lowrank_skipped"]``, factorised ones with their rank in ``meta["lowrank_factorised"]``;
`lowrank_plan` shows the same decisions, with the share of the weight's energy each rank keeps, before any work.

``method="tucker"`` and ``method="cp"`` also decompose k x k convolutions (``groups=1``) into a chain of smaller
convolutions: Tucker-2 (1x1 -> k x k -> 1x1) or CP (1x1 -> k x 1 depthwise -> 1 x k depthwise -> 1x1), found by
`tensorly`; their ranks, and when a layer qualifies, are in `workbench.compression.decompose`. Linear and 1x1
layers are matrices, whose Tucker decomposition is the SVD: those methods factorise them by SVD as above, so
``tucker`` and ``cp`` differ from ``svd`` only on k x k convolutions. A depthwise-separable network (the kws DS-CNN,
digits-cnn) has one such layer, its stem; a plain CNN (VGG/ResNet style) has many.

Truncation alone costs accuracy quickly on trained networks (their spectra are flat); follow it with
`Recover` to win most of it back.

Example:
    >>> task = workbench.zoo.load("digits-cnn")
    >>> plan = lowrank_plan(task.model, LowRank(0.25))
    >>> plan[["layer", "rank", "params_before", "params_after", "action"]].head(1).to_dict("records")
    [{'layer': 'blocks.0.pw.conv', 'rank': 8, 'params_before': 2048, 'params_after': 768, 'action': 'factorise'}]
    >>> thin = workbench.compress(task.model, LowRank(0.25), Recover(steps=20), task=task)
    >>> thin.num_params < task.model.num_params
    True
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, ClassVar

from workbench.compression.base import CompressionConfig, copy_module, covered, layer_names, technique, torch_variant
from workbench.compression.decompose import KXK_METHODS, cost, decide_kxk, decompose, energy_kept, kxk_candidates
from workbench.core.errors import WorkbenchError
from workbench.core.handle import ModelHandle
from workbench.core.quant import quant_meta, quant_record

METHODS = ("svd", *KXK_METHODS)
"""`LowRank` methods: ``svd`` (Linear and 1x1 layers only), ``tucker`` and ``cp`` (k x k convolutions as well)."""


@dataclass(frozen=True)
class LowRank(CompressionConfig):
    """Factorise Linear and 1x1 conv layers into two thinner layers by truncated SVD, and with ``method="tucker"``
    or ``"cp"`` k x k convolutions into chains of smaller convolutions.

    Args:
        rank_ratio: kept rank as a fraction of the largest rank, in (0, 1]: of ``min(in, out)`` for a matrix
            (SVD), of each channel side for Tucker-2, of ``C_out*C_in*kh*kw / max(C_out, C_in, kh, kw)`` for CP.
        exclude: module names (a name covers its submodules) left as they are.
        min_features: layers with fewer input or output features than this are left as they are (>= 1); for
            Tucker-2 such a channel side is kept whole, for CP both sides must be this narrow to skip the layer.
        method: ``"svd"`` (default), ``"tucker"`` or ``"cp"`` (see the module docstring).
        seed: the seed of CP's ALS initialisation (the same seed, the same factors).

    Example:
        >>> LowRank(0.25).label, LowRank(0.5, exclude=["classifier"]).exclude
        ('lowrank-0.25', ('classifier',))
        >>> LowRank(0.25, method="tucker").label, LowRank(0.25, method="cp").label
        ('lowrank-tucker-0.25', 'lowrank-cp-0.25')
    """

    kind: ClassVar[str] = "lowrank"

    rank_ratio: float
    exclude: tuple[str, ...] = ()
    min_features: int = 16
    method: str = "svd"
    seed: int = 0

    def __post_init__(self) -> None:
        r = self.rank_ratio
        if isinstance(r, bool) or not isinstance(r, Real) or not math.isfinite(r) or not 0.0 < r <= 1.0:
            raise ValueError(f"LowRank: rank_ratio must be a number in (0, 1] (the rank kept), got {r!r}")
        object.__setattr__(self, "rank_ratio", float(r))
        object.__setattr__(self, "exclude", layer_names("LowRank", self.exclude))
        m = self.min_features
        if isinstance(m, bool) or not isinstance(m, Integral) or m < 1:
            raise ValueError(f"LowRank: min_features must be a positive integer, got {m!r}")
        object.__setattr__(self, "min_features", int(m))
        if self.method not in METHODS:
            raise ValueError(f"LowRank: method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, Integral) or self.seed < 0:
            raise ValueError(f"LowRank: seed must be a non-negative integer, got {self.seed!r}")
        object.__setattr__(self, "seed", int(self.seed))

    @property
    def label(self) -> str:
        head = "lowrank" if self.method == "svd" else f"lowrank-{self.method}"
        return f"{head}-{self.rank_ratio:.2f}" + (f"-s{self.seed}" if self.seed and self.method == "cp" else "")

    def to_dict(self) -> dict[str, Any]:
        """As `CompressionConfig.to_dict`, without `method` and `seed` at their defaults (an SVD config's dict and
        digest, and so the store keys of sweeps, are what they were before those fields existed)."""
        d = super().to_dict()
        if self.method == "svd":
            d.pop("method")
        if self.seed == 0:
            d.pop("seed")
        return d


def rank_for(cfg: LowRank, in_features: int, out_features: int) -> int:
    """The rank `cfg` keeps for an (out x in) weight."""
    return max(1, round(cfg.rank_ratio * min(in_features, out_features)))


def _candidates(module: Any) -> dict[str, Any]:
    """Layers that factorise as a matrix: Linear, and Conv1d/Conv2d with 1x1 kernels and groups=1."""
    from torch import nn

    out = {}
    for name, m in module.named_modules():
        if not name:
            continue
        if isinstance(m, nn.Linear) or (
            isinstance(m, (nn.Conv1d, nn.Conv2d)) and m.groups == 1 and all(k == 1 for k in m.kernel_size)
        ):
            out[name] = m
    return out


def _features(layer: Any) -> tuple[int, int]:
    """(in, out) of a candidate layer."""
    w = layer.weight
    return int(w.shape[1]), int(w.shape[0])


def _check_exclude(module: Any, cfg: LowRank, model: str) -> None:
    names = [n for n, _ in module.named_modules() if n]
    unknown = [e for e in cfg.exclude if e not in names]
    if unknown:
        hints = {e: difflib.get_close_matches(e, names, n=3) for e in unknown}
        said = "; ".join(f"{e!r} (did you mean {', '.join(h)}?)" if h else repr(e) for e, h in hints.items())
        layers = list(_all_candidates(module, cfg))
        raise WorkbenchError(
            f"LowRank: exclude names no module of {model}: {said}. Factorisable layers: {', '.join(layers[:12])}"
            + (", ..." if len(layers) > 12 else "") + "."
        )


def _decide(name: str, layer: Any, cfg: LowRank) -> tuple[int, str]:
    """(rank, action) where action is ``"factorise"`` or ``"skip: <reason>"``."""
    n_in, n_out = _features(layer)
    r = rank_for(cfg, n_in, n_out)
    if covered(name, cfg.exclude):
        return r, "skip: excluded"
    if min(n_in, n_out) < cfg.min_features:
        return r, f"skip: {min(n_in, n_out)} features < min_features={cfg.min_features}"
    if r * (n_in + n_out) >= n_in * n_out:
        return r, f"skip: rank {r} saves no parameters ({r * (n_in + n_out)} >= {n_in * n_out})"
    return r, "factorise"


def _all_candidates(module: Any, cfg: LowRank) -> dict[str, tuple[Any, str]]:
    """``{name: (layer, method)}`` in module order: the matrix layers (SVD) and, for Tucker / CP, k x k convs."""
    matrices = _candidates(module)
    convs = kxk_candidates(module) if cfg.method in KXK_METHODS else {}
    return {name: (m, "svd" if name in matrices else cfg.method)
            for name, m in module.named_modules() if name in matrices or name in convs}


def _decisions(module: Any, cfg: LowRank) -> dict[str, tuple[Any, str, Any, str]]:
    """``{name: (layer, method, rank, action)}`` for every candidate layer."""
    out = {}
    for name, (layer, method) in _all_candidates(module, cfg).items():
        if method == "svd":
            rank, action = _decide(name, layer, cfg)
        elif covered(name, cfg.exclude):
            rank, action = None, "skip: excluded"
        else:
            rank, action = decide_kxk(layer, method, cfg.rank_ratio, cfg.min_features)
        out[name] = (layer, method, rank, action)
    return out


def _replacement(layer: Any, method: str, rank: Any, cfg: LowRank) -> Any:
    return factorise(layer, rank) if method == "svd" else decompose(layer, method, rank, cfg.seed)


def _recorded(rank: Any) -> Any:
    """A rank as `meta["lowrank_factorised"]` holds it: an int, or ``[R_in, R_out]`` for Tucker (a side kept
    whole: ``None``)."""
    return list(rank) if isinstance(rank, tuple) else rank


def lowrank_plan(handle: ModelHandle, cfg: LowRank) -> Any:
    """What `LowRank` would do to each factorisable layer, without changing the model.

    Returns:
        A DataFrame with one row per Linear / 1x1 conv layer (and, for ``tucker`` / ``cp``, per k x k conv with
        ``groups=1``): ``layer``, ``type``, ``method`` (``svd``, ``tucker`` or ``cp``: what that layer gets),
        ``in_features``, ``out_features``, ``rank`` (Tucker: ``(R_in, R_out)``, ``None`` for a side kept whole),
        ``params_before`` / ``params_after`` (weights and bias), ``macs_ratio`` (MACs after / before per output
        position; 1.0 for a skipped layer), ``energy_kept`` (share of the weight's squared norm the factors
        keep: the singular values' for SVD, the decomposition's, computed here, for Tucker / CP; 1.0 for a skipped
        layer) and ``action`` (``"factorise"`` or ``"skip: <why>"``).

    Example:
        >>> plan = lowrank_plan(task.model, LowRank(0.25))
        >>> int(plan.loc[plan.action == "factorise", "params_after"].sum())
        57088
        >>> cp = lowrank_plan(task.model, LowRank(0.25, method="cp"))
        >>> cp.head(1)[["layer", "method", "rank", "params_before", "params_after", "action"]].to_dict("records")
        [{'layer': 'stem.conv', 'method': 'cp', 'rank': 2, 'params_before': 288, 'params_after': 78, 'action': 'factorise'}]
    """
    import pandas as pd
    import torch

    _require_torch(handle)
    _check_exclude(handle.module, cfg, handle.name)
    rows = []
    for name, (layer, method, r, action) in _decisions(handle.module, cfg).items():
        n_in, n_out = _features(layer)
        bias = 0 if layer.bias is None else layer.bias.numel()
        energy, macs_ratio = 1.0, 1.0
        before = after = int(layer.weight.numel())
        if action == "factorise" and method == "svd":
            s2 = torch.linalg.svdvals(_matrix(layer).double()) ** 2
            energy = float(s2[:r].sum() / s2.sum()) if float(s2.sum()) > 0 else 1.0
            after = r * (n_in + n_out)
            macs_ratio = after / before
        elif action == "factorise":
            energy = energy_kept(layer, decompose(layer, method, r, cfg.seed))
            before, after, m0, m1 = cost(layer, method, r)
            macs_ratio = m1 / m0
        rows.append({
            "layer": name, "type": type(layer).__name__, "method": method, "in_features": n_in,
            "out_features": n_out, "rank": r, "params_before": before + bias, "params_after": after + bias,
            "macs_ratio": macs_ratio, "energy_kept": energy, "action": action,
        })
    return pd.DataFrame(rows, columns=["layer", "type", "method", "in_features", "out_features", "rank",
                                       "params_before", "params_after", "macs_ratio", "energy_kept", "action"])


def _require_torch(handle: ModelHandle) -> None:
    import torch

    if handle.framework != "torch" or handle.module is None:
        raise WorkbenchError(f"LowRank rewrites PyTorch layers; {handle.name} is {handle.framework}. Load the "
                             "PyTorch model instead (LowRank supports: torch).")
    if isinstance(handle.module, torch.jit.ScriptModule):
        raise WorkbenchError(f"{handle.name}: a TorchScript model's layers cannot be replaced; load the original "
                             "nn.Module instead (LowRank supports torch nn.Module models).")


def _matrix(layer: Any) -> Any:
    """The weight as an (out, in) matrix (a 1x1 kernel's trailing dims dropped)."""
    w = layer.weight.detach()
    return w.reshape(w.shape[0], w.shape[1])


def factorise(layer: Any, rank: int) -> Any:
    """Two layers whose composition is the best rank-`rank` approximation of `layer` (a Linear or 1x1 conv).

    Example:
        >>> import torch
        >>> pair = factorise(torch.nn.Linear(64, 32), 32)   # full rank: the same function
        >>> [type(m).__name__ for m in pair]
        ['Linear', 'Linear']
    """
    import torch
    from torch import nn

    w = _matrix(layer)
    u, s, vh = torch.linalg.svd(w.double(), full_matrices=False)
    root = s[:rank].sqrt()
    first_w = (root[:, None] * vh[:rank]).to(w.dtype)
    second_w = (u[:, :rank] * root[None, :]).to(w.dtype)
    n_in, n_out = _features(layer)
    has_bias = layer.bias is not None
    kw = {"device": w.device, "dtype": w.dtype}
    if isinstance(layer, nn.Linear):
        first = nn.Linear(n_in, rank, bias=False, **kw)
        second = nn.Linear(rank, n_out, bias=has_bias, **kw)
    else:
        conv = type(layer)
        first = conv(n_in, rank, 1, stride=layer.stride, padding=layer.padding, dilation=layer.dilation,
                     bias=False, padding_mode=layer.padding_mode, **kw)
        second = conv(rank, n_out, 1, bias=has_bias, **kw)
    with torch.no_grad():
        first.weight.copy_(first_w.reshape(first.weight.shape))
        second.weight.copy_(second_w.reshape(second.weight.shape))
        if has_bias:
            second.bias.copy_(layer.bias.detach())
    return nn.Sequential(first, second).train(layer.training)


@technique(LowRank, "torch")
def lowrank_torch(handle: ModelHandle, cfg: LowRank, task: Any = None) -> ModelHandle:
    """Factorise every eligible layer of a copy of `handle` (see the module docstring)."""
    _require_torch(handle)
    _check_exclude(handle.module, cfg, handle.name)
    decisions = _decisions(handle.module, cfg)
    done = {name: (method, rank) for name, (_, method, rank, action) in decisions.items() if action == "factorise"}
    skipped = {name: action.removeprefix("skip: ") for name, (*_, action) in decisions.items() if name not in done}
    if not done:
        kinds = "Linear or 1x1 conv" + (" or k x k conv (groups=1)" if cfg.method in KXK_METHODS else "")
        raise WorkbenchError(
            f"{cfg.label} factorises no layer of {handle.name}: "
            + ("; ".join(f"{n}: {why}" for n, why in list(skipped.items())[:6]) or f"it has no {kinds}")
            + ". Lower rank_ratio (a square layer saves parameters only below 0.5), min_features or exclude."
        )
    module = copy_module(handle)
    for name, (method, rank) in done.items():
        parent_name, _, attr = name.rpartition(".")
        parent = module.get_submodule(parent_name) if parent_name else module
        setattr(parent, attr, _replacement(module.get_submodule(name), method, rank, cfg))
    meta: dict[str, Any] = {"lowrank_factorised": {n: _recorded(r) for n, (_, r) in done.items()},
                            "lowrank_skipped": skipped}
    if cfg.method in KXK_METHODS:
        meta["lowrank_methods"] = {n: method for n, (method, _) in done.items()}
    quant = quant_record(handle)
    if quant:  # factorised layers hold fresh float weights: they are no longer quantised
        meta.update(quant_meta(quant.without(lambda layer: covered(layer, tuple(done)))))
    return torch_variant(handle, module, cfg, meta=meta)
