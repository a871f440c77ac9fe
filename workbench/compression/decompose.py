"""Tensor decomposition of k x k convolutions: Tucker-2 and CP chains of smaller convolutions (`LowRank`'s
``method="tucker"`` and ``method="cp"``).

A Conv2d weight (``C_out x C_in x kh x kw``, ``groups=1``, a kernel larger than 1 x 1) is a 4-way tensor. Its
decompositions come from `tensorly` (numpy backend, float64): written by hand here is only the mapping of the
factors onto convolutions, which no library does for a plain ``nn.Conv2d``.

* **Tucker-2** (Kim et al., ICLR 2016, "Compression of deep convolutional neural networks for fast and low power
  mobile applications"): `tensorly.decomposition.partial_tucker` on the two channel modes gives
  ``W ~ core x_0 U_out x_1 U_in``, i.e. 1x1 conv ``C_in -> R_in`` (``U_in^T``, no bias) -> ``kh x kw`` conv
  ``R_in -> R_out`` (the core; the original stride, padding, dilation and padding mode) -> 1x1 conv
  ``R_out -> C_out`` (``U_out``, the original bias). ``R_in = round(rank_ratio * C_in)``,
  ``R_out = round(rank_ratio * C_out)`` (at least 1): ``rank_ratio`` is the share of each channel mode kept. A
  channel side narrower than ``min_features``, or whose rank would be its full width, is kept whole (no 1x1 on
  that side: Tucker-1), so a stem with one input channel still shrinks its output side.
* **CP** (Lebedev et al., ICLR 2015, "Speeding-up convolutional neural networks using fine-tuned
  CP-decomposition"): `tensorly.decomposition.parafac` (ALS, SVD initialisation completed at random from
  ``seed``) gives ``W ~ sum_r w_r a_r (x) b_r (x) h_r (x) v_r``, i.e. 1x1 conv ``C_in -> R`` -> ``kh x 1``
  depthwise -> ``1 x kw`` depthwise -> 1x1 conv ``R -> C_out`` (bias). The largest CP rank a tensor can need is
  the product of its sizes over the largest one, so ``R = round(rank_ratio * C_out*C_in*kh*kw / max(...))``
  (at least 1): at 1.0 a CP could be exact, as Tucker and SVD are at 1.0. A layer with fewer than
  ``min_features`` channels on both sides is left as it is.

A layer is decomposed only where both its parameters and its MACs drop. MACs are counted per output position:
the first 1x1 runs at the input resolution (``stride_h * stride_w`` times the output positions), CP's ``kh x 1``
at the output height and the input width. Linear and 1x1 layers are matrices, whose Tucker decomposition *is*
the SVD: ``method="tucker"`` and ``"cp"`` factorise them by SVD as ``method="svd"`` does (`workbench.compression
.lowrank`). Conv1d and grouped / depthwise convolutions are left as they are.
"""

from __future__ import annotations

import warnings
from typing import Any

KXK_METHODS = ("tucker", "cp")
"""The `LowRank` methods that decompose k x k convolutions."""

_CP_ITERATIONS = 100
_CP_TOL = 1e-6


def kxk_candidates(module: Any) -> dict[str, Any]:
    """Conv2d layers with ``groups=1`` and a kernel larger than 1x1 (what Tucker-2 and CP decompose)."""
    from torch import nn

    return {name: m for name, m in module.named_modules()
            if name and isinstance(m, nn.Conv2d) and m.groups == 1 and tuple(m.kernel_size) != (1, 1)}


def _sizes(layer: Any) -> tuple[int, int, int, int, int, int]:
    """(C_in, C_out, kh, kw, stride_h, stride_w) of a Conv2d."""
    c_out, c_in, kh, kw = (int(d) for d in layer.weight.shape)
    sh, sw = (int(s) for s in layer.stride)
    return c_in, c_out, kh, kw, sh, sw


def tucker_ranks(layer: Any, rank_ratio: float, min_features: int) -> tuple[int | None, int | None]:
    """``(R_in, R_out)`` for Tucker-2; ``None`` for a side kept whole (narrower than `min_features`, or full)."""
    c_in, c_out, *_ = _sizes(layer)

    def side(c: int) -> int | None:
        r = max(1, round(rank_ratio * c))
        return r if c >= min_features and r < c else None

    return side(c_in), side(c_out)


def cp_rank(layer: Any, rank_ratio: float) -> int:
    """The CP rank: `rank_ratio` of the largest rank the kernel tensor can have (its size over its largest mode)."""
    c_in, c_out, kh, kw, *_ = _sizes(layer)
    bound = c_in * c_out * kh * kw // max(c_in, c_out, kh, kw)
    return max(1, round(rank_ratio * bound))


def cost(layer: Any, method: str, rank: Any) -> tuple[int, int, int, int]:
    """``(params_before, params_after, macs_before, macs_after)`` of the weights (bias excluded), MACs per output
    position (see the module docstring)."""
    c_in, c_out, kh, kw, sh, sw = _sizes(layer)
    before = c_in * c_out * kh * kw
    if method == "tucker":
        r_in, r_out = rank
        a, b = r_in or c_in, r_out or c_out
        params = (c_in * a if r_in else 0) + a * b * kh * kw + (b * c_out if r_out else 0)
        macs = (c_in * a * sh * sw if r_in else 0) + a * b * kh * kw + (b * c_out if r_out else 0)
        return before, params, before, macs
    r = rank
    params = r * (c_in + kh + kw + c_out)
    macs = c_in * r * sh * sw + r * kh * sw + r * kw + r * c_out
    return before, params, before, macs


def decide_kxk(layer: Any, method: str, rank_ratio: float, min_features: int) -> tuple[Any, str]:
    """``(rank, action)`` for a k x k conv: action ``"factorise"`` or ``"skip: <reason>"`` (exclusion is the
    caller's). `rank` is ``(R_in, R_out)`` for Tucker (``None``: that side whole), an int for CP."""
    c_in, c_out, *_ = _sizes(layer)
    if method == "tucker":
        rank: Any = tucker_ranks(layer, rank_ratio, min_features)
        if rank == (None, None):
            why = (f"{max(c_in, c_out)} channels < min_features={min_features}" if max(c_in, c_out) < min_features
                   else f"rank_ratio {rank_ratio:g} keeps every channel of the sides with >= {min_features}")
            return rank, f"skip: {why}"
    else:
        rank = cp_rank(layer, rank_ratio)
        if max(c_in, c_out) < min_features:
            return rank, f"skip: {max(c_in, c_out)} channels < min_features={min_features}"
    p0, p1, m0, m1 = cost(layer, method, rank)
    if p1 >= p0:
        return rank, f"skip: rank {_rank_text(rank)} saves no parameters ({p1} >= {p0})"
    if m1 >= m0:
        return rank, f"skip: rank {_rank_text(rank)} saves no MACs ({m1} >= {m0} per output position)"
    return rank, "factorise"


def _rank_text(rank: Any) -> str:
    return "x".join("whole" if r is None else str(r) for r in rank) if isinstance(rank, tuple) else str(rank)


def _weight(layer: Any) -> Any:
    return layer.weight.detach().double().cpu().numpy()


def tucker_factors(layer: Any, rank: tuple[int | None, int | None]) -> tuple[Any, Any, Any]:
    """``(core, U_out or None, U_in or None)`` of `tensorly`'s partial Tucker on the channel modes (numpy)."""
    from tensorly.decomposition import partial_tucker

    w = _weight(layer)
    r_in, r_out = rank
    modes = [m for m, r in ((0, r_out), (1, r_in)) if r is not None]
    ranks = [r for r in (r_out, r_in) if r is not None]
    if not modes:
        return w, None, None
    (core, factors), _ = partial_tucker(w, rank=ranks, modes=modes, init="svd", n_iter_max=100, tol=1e-8)
    found = dict(zip(modes, factors))
    return core, found.get(0), found.get(1)


def cp_factors(layer: Any, rank: int, seed: int = 0) -> tuple[Any, Any, Any, Any]:
    """``(out, in, h, v)`` factor matrices of `tensorly`'s CP-ALS (the weights folded into `out`), numpy."""
    from tensorly.decomposition import parafac

    w = _weight(layer)
    with warnings.catch_warnings():  # rank > a mode's size: tensorly completes the SVD init at random, and says so
        warnings.simplefilter("ignore", UserWarning)
        cp = parafac(w, rank=rank, init="svd", n_iter_max=_CP_ITERATIONS, tol=_CP_TOL, random_state=seed)
    weights, (f_out, f_in, f_h, f_v) = cp
    return f_out * weights[None, :], f_in, f_h, f_v


def tucker_chain(layer: Any, rank: tuple[int | None, int | None]) -> Any:
    """An ``nn.Sequential``: [1x1 C_in -> R_in] -> k x k R_in -> R_out -> [1x1 R_out -> C_out] (a side whose rank
    is ``None`` has no 1x1). At full ranks it computes the same function as `layer`.

    Example:
        >>> import torch
        >>> chain = tucker_chain(torch.nn.Conv2d(32, 64, 3, padding=1), (8, 16))
        >>> [tuple(m.weight.shape) for m in chain]
        [(8, 32, 1, 1), (16, 8, 3, 3), (64, 16, 1, 1)]
    """
    import torch
    from torch import nn

    core, u_out, u_in = tucker_factors(layer, rank)
    c_in, c_out, kh, kw, *_ = _sizes(layer)
    kw_ = {"device": layer.weight.device, "dtype": layer.weight.dtype}
    a, b = int(core.shape[1]), int(core.shape[0])
    has_bias = layer.bias is not None
    mid = nn.Conv2d(a, b, (kh, kw), stride=layer.stride, padding=layer.padding, dilation=layer.dilation,
                    bias=has_bias and u_out is None, padding_mode=layer.padding_mode, **kw_)
    parts, weights = [mid], [core]
    if u_in is not None:
        parts.insert(0, nn.Conv2d(c_in, a, 1, bias=False, **kw_))
        weights.insert(0, u_in.T[:, :, None, None])
    if u_out is not None:
        parts.append(nn.Conv2d(b, c_out, 1, bias=has_bias, **kw_))
        weights.append(u_out[:, :, None, None])
    with torch.no_grad():
        for m, w in zip(parts, weights):
            m.weight.copy_(torch.as_tensor(w.copy()).to(m.weight))
        if has_bias:
            parts[-1].bias.copy_(layer.bias.detach())
    return nn.Sequential(*parts).train(layer.training)


def cp_chain(layer: Any, rank: int, seed: int = 0) -> Any:
    """An ``nn.Sequential``: 1x1 C_in -> R, kh x 1 depthwise, 1 x kw depthwise, 1x1 R -> C_out (the bias).

    Example:
        >>> import torch
        >>> chain = cp_chain(torch.nn.Conv2d(32, 64, 3, padding=1), 12)
        >>> [(tuple(m.weight.shape), m.groups) for m in chain]
        [((12, 32, 1, 1), 1), ((12, 1, 3, 1), 12), ((12, 1, 1, 3), 12), ((64, 12, 1, 1), 1)]
    """
    import torch
    from torch import nn

    f_out, f_in, f_h, f_v = cp_factors(layer, rank, seed)
    c_in, c_out, kh, kw, sh, sw = _sizes(layer)
    pad, dil = layer.padding, tuple(layer.dilation)
    pad_h, pad_w = (pad, pad) if isinstance(pad, str) else ((pad[0], 0), (0, pad[1]))
    kw_ = {"device": layer.weight.device, "dtype": layer.weight.dtype}
    parts = [
        nn.Conv2d(c_in, rank, 1, bias=False, **kw_),
        nn.Conv2d(rank, rank, (kh, 1), stride=(sh, 1), padding=pad_h, dilation=(dil[0], 1), groups=rank,
                  bias=False, padding_mode=layer.padding_mode, **kw_),
        nn.Conv2d(rank, rank, (1, kw), stride=(1, sw), padding=pad_w, dilation=(1, dil[1]), groups=rank,
                  bias=False, padding_mode=layer.padding_mode, **kw_),
        nn.Conv2d(rank, c_out, 1, bias=layer.bias is not None, **kw_),
    ]
    weights = [f_in.T[:, :, None, None], f_h.T[:, None, :, None], f_v.T[:, None, None, :], f_out[:, :, None, None]]
    with torch.no_grad():
        for m, w in zip(parts, weights):
            m.weight.copy_(torch.as_tensor(w.copy()).to(m.weight))
        if layer.bias is not None:
            parts[-1].bias.copy_(layer.bias.detach())
    return nn.Sequential(*parts).train(layer.training)


def decompose(layer: Any, method: str, rank: Any, seed: int = 0) -> Any:
    """`layer` replaced by its `method` chain (``"tucker"`` or ``"cp"``) at `rank`."""
    if method == "tucker":
        return tucker_chain(layer, rank)
    if method == "cp":
        return cp_chain(layer, rank, seed)
    raise ValueError(f"decompose: method must be one of {KXK_METHODS}, got {method!r}")


def chain_kernel(chain: Any) -> Any:
    """The k x k kernel (float64 tensor, ``C_out x C_in x kh x kw``) a Tucker or CP chain computes, its strides
    aside: 1x1 convs mix channels, a dense k x k conv follows a 1x1 kernel, depthwise ones multiply along their
    axis."""
    import torch

    k = None
    for m in chain:
        w = m.weight.detach().double()
        if k is None:
            k = w
        elif m.groups == 1 and tuple(w.shape[2:]) == (1, 1):
            k = torch.einsum("ba,aihw->bihw", w[:, :, 0, 0], k)
        elif m.groups == m.in_channels == m.out_channels:  # depthwise (one channel: also groups=1)
            k = k * w
        else:  # a dense k x k conv after 1x1 ones
            k = torch.einsum("bahw,ai->bihw", w, k[:, :, 0, 0])
    return k


def energy_kept(layer: Any, chain: Any) -> float:
    """``1 - ||W - W_hat||^2 / ||W||^2``: the share of the layer's weight (squared) its chain keeps."""
    w = layer.weight.detach().double().cpu()
    total = float((w ** 2).sum())
    return 1.0 - float(((chain_kernel(chain).cpu() - w) ** 2).sum()) / total if total > 0 else 1.0
