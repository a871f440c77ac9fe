"""Weight-only quantisation of a causal language model: its decoder's linear layers on ONNX Runtime's int grids.

`Quantize(bits, group_size=g, symmetric=.., method=..)` on a language-model handle rounds the weights of every
linear layer of the decoder (attention q/k/v/o, MLP gate/up/down) in blocks of `g` consecutive *input* weights
per output row, and writes the dequantised float values back, so the variant runs everywhere in float and its
perplexity is the quantised model's. The blocks are ONNX Runtime's MatMulNBits blocks: a MatMul's weight is the
transpose of `nn.Linear.weight` (K x N) and its blocks run along K, the input dimension — one block here is one
row slice ``weight[n, k:k+g]``.

Methods:

* ``"rtn"`` (round to nearest): exactly ONNX Runtime's formula — for 2, 4 and 8 bits the library's own C++
  quantiser (``quantize_matmul_{2,4,8}bits`` in ``onnxruntime.capi._pybind_state``, what
  `MatMulNBitsQuantizer`'s default configuration and ONNX Runtime GenAI's model builder call), dequantised
  as MatMulNBits does (``(q - zero_point) * scale``); 3, 5, 6 and 7 bits (no ORT kernel; simulated) use the
  same affine formula (`affine_grid`). Symmetric blocks take ``scale = v / -2**(b-1)`` for the block's value of
  largest magnitude ``v`` and the implied zero point ``2**(b-1)``; asymmetric blocks ``(max - min) / (2**b - 1)``
  over the range widened to include 0 and an integer zero point. Re-quantising the result with the same
  setting gives the same floats bit for bit (the builder's re-quantisation is idempotent): symmetric grids are
  by construction, asymmetric scales are nudged by at most a few float32 ulps to a fixed point of the formula.
* ``"hqq"`` (half-quadratic quantisation, asymmetric): ONNX Runtime's `HQQWeightOnlyQuantizer` (its torch
  proximal solver) fits each block's zero point to minimise an l_0.7 reconstruction error, no data needed.
  Its zero points are floats: ORT stores them as float MatMulNBits zero points; an RTN re-quantisation (the
  GenAI builder's default) moves HQQ's values onto the nearest RTN grid instead.

Embeddings and the LM head stay float unless ``embeddings=True`` (or a `per_layer` entry names them). A tied LM
head (SmolLM2: ``lm_head.weight`` *is* ``model.embed_tokens.weight``) is one tensor, quantised once, in blocks
along the hidden dimension — the same blocks for its Gather and its MatMul use. ``meta["quant"]`` records one
entry per quantised weight (`workbench.core.quant` format); ``meta["lm_quant"]`` adds the method and what
happened to the embeddings and LM head.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from workbench.compression.base import copy_module, technique, torch_variant
from workbench.compression.quantize import Quantize, match_layer
from workbench.core.errors import WorkbenchError
from workbench.core.handle import ModelHandle
from workbench.core.quant import LayerQuant, quant_meta, quant_record

NATIVE_BITS = (2, 4, 8)
"""Bit-widths ONNX Runtime quantises (and MatMulNBits runs) natively; others are simulated."""
MAX_NUDGE_ULPS = 32


# ------------------------------------------------------------------------------------------ the numbers


def _roundf(x: np.ndarray) -> np.ndarray:
    """C's roundf (half away from zero) of float32 values, exactly (in float64)."""
    x = x.astype(np.float64)
    return np.trunc(x + np.copysign(0.5, x))


def _blocks(w_kn: np.ndarray, group_size: int) -> tuple[np.ndarray, int]:
    """A (K, N) float32 weight as (N, blocks, group_size) rows of K, zero-padded; and K."""
    k, n = w_kn.shape
    pad = (-k) % group_size
    rows = np.pad(np.ascontiguousarray(w_kn.T, dtype=np.float32), ((0, 0), (0, pad)))
    return rows.reshape(n, -1, group_size), k


def affine_grid(w_kn: np.ndarray, bits: int, group_size: int, symmetric: bool) -> tuple[Any, Any, Any]:
    """ONNX Runtime's block quantisation formula in numpy, for any bit-width.

    Args:
        w_kn: the MatMul weight, (K, N) float32 (`nn.Linear.weight.T`).
        bits / group_size / symmetric: the setting; blocks of `group_size` run along K.

    Returns:
        ``(codes, scales, zero_points)``: codes (N, blocks, group_size) in ``[0, 2**bits - 1]``, float32 scales
        and integer zero points (N, blocks, 1).
    """
    x, _ = _blocks(w_kn, group_size)
    kmax = np.float32(2**bits - 1)
    if symmetric:
        mid = 2 ** (bits - 1)
        lo, hi = x.min(axis=2, keepdims=True), x.max(axis=2, keepdims=True)
        v = np.where(np.abs(hi) > np.abs(lo), hi, lo)
        scale = (v / np.float32(-mid)).astype(np.float32)
        zp = np.full(scale.shape, mid, np.float32)
    else:
        lo = np.minimum(x.min(axis=2, keepdims=True), np.float32(0))
        hi = np.maximum(x.max(axis=2, keepdims=True), np.float32(0))
        scale = ((hi - lo) / kmax).astype(np.float32)
        with np.errstate(divide="ignore", invalid="ignore"):
            zfp = np.where(scale != 0, np.float32(0) - lo / scale, lo).astype(np.float32)
        zp = np.clip(_roundf(zfp), 0, float(kmax)).astype(np.float32)
    with np.errstate(divide="ignore"):
        recip = np.where(scale != 0, np.float32(1) / scale, np.float32(0)).astype(np.float32)
    codes = np.clip(_roundf((x * recip).astype(np.float32) + zp), 0, float(kmax))
    return codes.astype(np.float32), scale, zp


def _ort_grid(w_kn: np.ndarray, bits: int, group_size: int, symmetric: bool) -> tuple[Any, Any, Any]:
    """`affine_grid`'s result from ONNX Runtime's own C++ quantiser (2, 4 or 8 bits), unpacked."""
    from onnxruntime.capi import _pybind_state as ort

    fn = {2: ort.quantize_matmul_2bits, 4: ort.quantize_matmul_4bits, 8: ort.quantize_matmul_8bits}[bits]
    k, n = w_kn.shape
    per = 8 // bits
    blocks = -(-k // group_size)
    packed = np.zeros((n, blocks, -(-group_size // per)), np.uint8)
    zp_packed = np.zeros((n, -(-blocks // per)), np.uint8)
    scales = np.zeros((n, blocks), np.float32)
    fn(packed, np.ascontiguousarray(w_kn, dtype=np.float32), scales, zp_packed, group_size, n, k, symmetric)
    mask = (1 << bits) - 1
    codes = np.stack([(packed >> (bits * j)) & mask for j in range(per)], axis=-1).reshape(n, blocks, -1)
    if symmetric:
        zp = np.full((n, blocks), 2 ** (bits - 1), np.float32)
    else:
        zp = np.stack([(zp_packed >> (bits * j)) & mask for j in range(per)], axis=-1).reshape(n, -1)[:, :blocks]
    codes = codes[:, :, :group_size].astype(np.float32)
    zp = zp.astype(np.float32)[..., None]
    flat = codes.reshape(n, -1)
    flat[:, k:] = zp[:, -1]  # the padding of a short last block is the code of 0.0, as `affine_grid` has it
    return flat.reshape(codes.shape), scales[..., None], zp


def grid(w_kn: np.ndarray, bits: int, group_size: int, symmetric: bool) -> tuple[Any, Any, Any]:
    """``(codes, scales, zero_points)`` of RTN block quantisation (ORT's C++ for 2/4/8 bits, else `affine_grid`)."""
    if bits in NATIVE_BITS and group_size >= 16 and group_size & (group_size - 1) == 0:
        return _ort_grid(w_kn, bits, group_size, symmetric)
    return affine_grid(w_kn, bits, group_size, symmetric)


def _dequantise(codes: np.ndarray, scale: np.ndarray, zp: np.ndarray, k: int) -> np.ndarray:
    """(N, blocks, g) codes back to the (K, N) float32 weight, as MatMulNBits computes it."""
    n = codes.shape[0]
    return ((codes - zp).astype(np.float32) * scale).astype(np.float32).reshape(n, -1)[:, :k].T


def _fixed_point_scales(codes: np.ndarray, scale: np.ndarray, zp: np.ndarray, bits: int) -> tuple[Any, int]:
    """Asymmetric scales nudged (a few float32 ulps) so that re-quantising the dequantised block reproduces the
    same scale, zero point and codes; returns the scales and how many blocks found no such scale."""
    kmax = np.float32(2**bits - 1)
    g = codes.shape[-1]
    q, z, s = codes.reshape(-1, g), zp.reshape(-1, 1), scale.reshape(-1, 1)
    best = s.copy()
    todo = np.arange(len(s))
    up, down = s.copy(), s.copy()
    for step in range(2 * MAX_NUDGE_ULPS + 1):
        if step % 2:
            up[todo] = np.nextafter(up[todo], np.float32(np.inf))
            cand = up[todo]
        elif step:
            down[todo] = np.nextafter(down[todo], np.float32(-np.inf))
            cand = down[todo]
        else:
            cand = s[todo]
        qt, zt = q[todo], z[todo]
        d = ((qt - zt).astype(np.float32) * cand).astype(np.float32)
        lo = np.minimum(d.min(axis=1, keepdims=True), np.float32(0))
        hi = np.maximum(d.max(axis=1, keepdims=True), np.float32(0))
        s2 = ((hi - lo) / kmax).astype(np.float32)
        with np.errstate(divide="ignore", invalid="ignore"):
            zfp = np.where(s2 != 0, np.float32(0) - lo / s2, lo).astype(np.float32)
            recip = np.where(s2 != 0, np.float32(1) / s2, np.float32(0)).astype(np.float32)
        z2 = np.clip(_roundf(zfp), 0, float(kmax))
        c2 = np.clip(_roundf((d * recip).astype(np.float32) + z2.astype(np.float32)), 0, float(kmax))
        ok = ((s2 == cand) & (z2 == zt) & (c2 == qt).all(axis=1, keepdims=True))[:, 0]
        best[todo[ok]] = cand[ok]
        todo = todo[~ok]
        if not len(todo):
            break
    return best.reshape(scale.shape), len(todo)


def rtn_weight(w_kn: np.ndarray, bits: int, group_size: int, symmetric: bool) -> np.ndarray:
    """Round-to-nearest block quantisation of a (K, N) MatMul weight, dequantised; re-quantising it with the same
    setting returns it unchanged (see the module docstring)."""
    codes, scale, zp = grid(w_kn, bits, group_size, symmetric)
    if not symmetric:
        scale, _ = _fixed_point_scales(codes, scale, zp, bits)
    return _dequantise(codes, scale, zp, w_kn.shape[0])


def hqq_weight(w_kn: np.ndarray, bits: int, group_size: int) -> np.ndarray:
    """HQQ block quantisation (ONNX Runtime's `HQQWeightOnlyQuantizer`) of a (K, N) MatMul weight, dequantised."""
    import torch
    from onnxruntime.quantization.matmul_nbits_quantizer import HQQWeightOnlyQuantConfig, HQQWeightOnlyQuantizer

    k, _ = w_kn.shape
    quantizer = HQQWeightOnlyQuantizer(HQQWeightOnlyQuantConfig(block_size=group_size, bits=bits))
    rows = torch.from_numpy(np.ascontiguousarray(w_kn.T, dtype=np.float32))  # (N, K), as ORT passes B.T
    q, scale, zero = quantizer.quantize_internal(rows, bits=bits, group_size=group_size)
    n = q.shape[0]
    blocks = q.reshape(n, -1, group_size).float()
    out = (blocks - zero.reshape(n, -1, 1)) * scale.reshape(n, -1, 1)
    return out.reshape(n, -1)[:, :k].T.numpy().astype(np.float32)


def quantise_linear_weight(weight: Any, bits: int, group_size: int, symmetric: bool, method: str = "rtn") -> Any:
    """An `nn.Linear` / `nn.Embedding` weight (rows of input weights) on its grid, as a float tensor like it.

    Example:
        >>> import torch
        >>> w = torch.randn(8, 64)
        >>> q = quantise_linear_weight(w, 4, 32, symmetric=False)
        >>> max(len(set(row[i:i + 32].tolist())) for row in q for i in (0, 32)) <= 16
        True
        >>> torch.equal(quantise_linear_weight(q, 4, 32, symmetric=False), q)     # idempotent
        True
    """
    import torch

    w_kn = weight.detach().to(torch.float32).cpu().numpy().T
    out = hqq_weight(w_kn, bits, group_size) if method == "hqq" else rtn_weight(w_kn, bits, group_size, symmetric)
    return torch.from_numpy(np.ascontiguousarray(out.T)).to(weight.dtype)


# ------------------------------------------------------------------------------------------------ technique


def lm_weight_layers(module: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(decoder linear layers, embedding-like layers) of a causal LM as {name: module}. The embedding-like ones
    are the input embedding and an LM head that does not share its weight."""
    from torch import nn

    emb = module.get_input_embeddings()
    head = module.get_output_embeddings()
    names = {id(m): n for n, m in module.named_modules()}
    extra = {names[id(emb)]: emb}
    if head is not None and head.weight is not emb.weight:
        extra[names[id(head)]] = head
    linear = {n: m for n, m in module.named_modules() if isinstance(m, nn.Linear) and m is not head}
    return linear, extra


def _check_lm_config(handle: ModelHandle, cfg: Quantize) -> None:
    if cfg.activations is not None:
        raise WorkbenchError(
            f"{handle.name}: a language model is quantised weight-only (its runtimes keep activations float); "
            "drop activations=8, e.g. Quantize(4, group_size=32)."
        )
    if cfg.granularity != "group":
        raise WorkbenchError(
            f"{handle.name}: a language model's weights are quantised in blocks along each row's inputs, as ONNX "
            f"Runtime's MatMulNBits stores them; pass group_size (32, 64 or 128), e.g. Quantize({cfg.bits}, "
            f"group_size=32), instead of granularity={cfg.granularity!r}."
        )
    g = cfg.group_size
    if g < 16 or g & (g - 1):
        raise WorkbenchError(
            f"{handle.name}: group_size={g} is not a block size ONNX Runtime can store (a power of two from 16: "
            "16, 32, 64, 128, 256); use group_size=32, 64 or 128."
        )


@technique(Quantize, "lm")
def quantize_lm(handle: ModelHandle, cfg: Quantize, task: Any) -> ModelHandle:
    """Weight-only block quantisation of a language model; see the module docstring."""
    import torch

    if cfg.dtype == "fp16":
        from workbench.compression.quantize import quantize_torch

        return quantize_torch(handle, cfg, task)
    _check_lm_config(handle, cfg)
    linear, extra = lm_weight_layers(handle.module)
    candidates = {**linear, **extra}
    named = [*cfg.exclude, *(n for n, _ in cfg.per_layer)]
    unknown = [n for n in named if not any(c == n or c.startswith(n + ".") for c in candidates)]
    if unknown:
        raise WorkbenchError(
            f"{handle.name}: no quantisable layer is called {', '.join(map(repr, unknown))}; names look like "
            f"{', '.join(list(candidates)[:3])} (a parent such as 'model.layers.0' covers its layers)."
        )
    chosen = {n: m for n, m in linear.items() if cfg.bits_for(n) is not None}
    per_layer_names = [n for n, _ in cfg.per_layer]
    chosen.update({n: m for n, m in extra.items() if cfg.bits_for(n) is not None
                   and (cfg.embeddings or match_layer(n, per_layer_names) is not None)})
    if not chosen:
        raise WorkbenchError(f"{handle.name}: every linear layer is excluded; nothing to quantise.")
    module = copy_module(handle)
    quant = quant_record(handle)
    with torch.no_grad():
        for name in chosen:
            layer = module.get_submodule(name)
            bits = cfg.bits_for(name)
            layer.weight.copy_(quantise_linear_weight(layer.weight, bits, cfg.group_size, cfg.symmetric, cfg.method))
            quant = quant.with_layer(name, LayerQuant(bits, "group", cfg.group_size, cfg.symmetric,
                                                      module_type=type(layer).__name__, param=f"{name}.weight"))
    emb_name = next(iter(extra))
    head = module.get_output_embeddings()
    tied = head is not None and head.weight is module.get_input_embeddings().weight
    head_name = next((n for n, m in module.named_modules() if m is head), None)
    info = {
        "method": cfg.method,
        "bits": cfg.bits,
        "group_size": cfg.group_size,
        "symmetric": cfg.symmetric,
        "native": all(cfg.bits_for(n) in NATIVE_BITS for n in chosen),
        "embeddings": emb_name in chosen,
        "lm_head": (emb_name if tied else head_name) in chosen,
        "tied": bool(tied),
        "layers": len(chosen),
    }
    return torch_variant(handle, module, cfg, meta={**quant_meta(quant), "lm_quant": info})
