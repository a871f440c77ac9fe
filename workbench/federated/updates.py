"""Client updates: a model delta compressed by the workbench's own techniques, and its bytes on the wire.

A client's update is the difference between its locally trained weights and the global ones (a *delta*).
`compress_delta` loads the delta into a copy of the model, so that `workbench.compress` applies the configs of
`update` to it exactly as to a model: `Quantize(8)` rounds every Conv/Linear delta per output channel onto the
int8 grid, `Prune(0.9)` keeps the 10 % largest delta entries by magnitude (top-k), and both chain. What the
techniques leave float (biases, BatchNorm) stays float32, as in a quantised model.

The techniques return dequantised float tensors (fake quantisation), which would cost 4 bytes a value on the
wire. `encode` is the adapter that writes what they produced as what a device would send: the integer codes
(int8, or two per byte at <= 4 bits) with one float32 scale per channel, recovered exactly from the grid
(``scale = max|w_c| / qmax``); the nonzeros of a pruned tensor with a bit mask or their indices, whichever is
smaller; fp16 as float16. `decode` reverses it on the server. Nothing here re-implements a quantiser: the
rounding is `Quantize`'s and the ranking `Prune`'s, and the blob is only their result in its packed form.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from workbench.core.errors import WorkbenchError

# kinds of one tensor in a blob (one header byte each, followed by bits and granularity)
F32, F16, Q_DENSE, Q_MASK, Q_IDX, F32_MASK, F32_IDX = range(7)
TENSOR, CHANNEL = 0, 1


def check_update(update: Any) -> tuple[Any, ...]:
    """`update` (None, one config or a sequence of them) as a validated tuple of configs.

    Accepted: `Quantize` with integer bits (symmetric, per channel or per tensor, weights only) or
    ``dtype="fp16"``, and `Prune` with ``structure="unstructured"`` or ``"2:4"``; each at most once.
    """
    from workbench.compression import Prune, Quantize

    configs = () if update is None else (update,) if not isinstance(update, (list, tuple)) else tuple(update)
    kinds = [type(c) for c in configs]
    for c in configs:
        if isinstance(c, Quantize):
            if c.dtype is None and (c.activations or not c.symmetric or c.granularity == "group" or c.method != "rtn"):
                raise WorkbenchError(f"update: {c.label} is not one a client update can take; use Quantize(bits) "
                                     "(symmetric, per channel or granularity='tensor', weights only) or "
                                     "Quantize(dtype='fp16').")
        elif isinstance(c, Prune):
            if c.structure.value not in ("unstructured", "2:4"):
                raise WorkbenchError(f"update: {c.label} changes layer shapes; a delta keeps the model's shapes, so "
                                     "prune it with structure='unstructured' (top-k) or '2:4'.")
        else:
            raise WorkbenchError(f"update takes Quantize and Prune configs (e.g. Quantize(8), Prune(0.9)); got "
                                 f"{c!r}.")
    if len(set(kinds)) != len(kinds):
        raise WorkbenchError("update: give each technique once, e.g. [Prune(0.9), Quantize(8)].")
    return configs


def update_label(configs: tuple[Any, ...]) -> str:
    """``"fp32"`` for uncompressed updates, else the configs' labels joined by ``+``."""
    return "+".join(c.label for c in configs) if configs else "fp32"


def compress_delta(handle: Any, delta: dict[str, np.ndarray], configs: tuple[Any, ...]) -> dict[str, Any]:
    """The delta after `configs` (applied by `workbench.compress` to a copy of `handle`'s module holding it).

    Returns:
        ``{"tensors": {name: float32 array}, "quant": {name: (bits, granularity)}, "sparse": set of names,
        "fp16": bool}`` – what `encode` packs.
    """
    import torch

    from workbench.compression import compress
    from workbench.compression.base import copy_module
    from workbench.core.quant import quant_record
    from workbench.formats.loader import load

    if not configs:
        return {"tensors": delta, "quant": {}, "sparse": set(), "fp16": False}
    module = copy_module(handle)
    state = module.state_dict()
    state.update({k: torch.from_numpy(v) for k, v in delta.items()})
    module.load_state_dict(state)
    variant = compress(load(module, example_inputs=handle.example_inputs, name="delta"), *configs)
    out = {k: v.detach().numpy().astype(np.float32) for k, v in variant.module.state_dict().items() if k in delta}
    record = quant_record(variant)
    quant = {e.param: (e.bits, CHANNEL if e.granularity == "channel" else TENSOR) for e in record.entries()
             if e.param in out}
    sparse = {f"{n}.weight" for n in variant.meta.get("pruned_layers", ())} & set(out)
    return {"tensors": out, "quant": quant, "sparse": sparse, "fp16": bool(record.is_fp16)}


def _scales(w: np.ndarray, bits: int, granularity: int) -> np.ndarray:
    qmax = 2 ** (bits - 1) - 1
    rows = w.reshape(len(w), -1) if granularity == CHANNEL and w.ndim else w.reshape(1, -1)
    return (np.abs(rows).max(axis=1) / qmax).astype(np.float32)


def _codes(w: np.ndarray, scales: np.ndarray, granularity: int) -> np.ndarray:
    rows = w.reshape(len(scales), -1)
    safe = np.where(scales > 0, scales, 1.0)[:, None]
    return np.rint(rows / safe).astype(np.int8).reshape(-1)


def _pack(codes: np.ndarray, bits: int) -> bytes:
    if bits > 4:
        return codes.astype(np.int8).tobytes()
    u = (codes.astype(np.int16) + 8).astype(np.uint8)  # [-7, 7] -> [1, 15]: one nibble each
    u = np.concatenate([u, np.zeros(len(u) % 2, np.uint8)])
    return (u[0::2] | (u[1::2] << 4)).astype(np.uint8).tobytes()


def _unpack(buf: memoryview, n: int, bits: int) -> tuple[np.ndarray, int]:
    if bits > 4:
        return np.frombuffer(buf[:n], np.int8).astype(np.float32), n
    size = (n + 1) // 2
    u = np.frombuffer(buf[:size], np.uint8)
    both = np.stack([u & 15, u >> 4], axis=1).reshape(-1)[:n]
    return both.astype(np.float32) - 8, size


def _where(flat: np.ndarray) -> tuple[int, bytes]:
    """The positions of nonzeros as the smaller of a bit mask and (count + uint16/uint32 indices)."""
    idx = np.flatnonzero(flat)
    dtype = np.uint16 if len(flat) <= 65536 else np.uint32
    as_idx = np.uint32(len(idx)).tobytes() + idx.astype(dtype).tobytes()
    as_mask = np.packbits(flat != 0).tobytes()
    return (1, as_idx) if len(as_idx) < len(as_mask) else (0, as_mask)


def encode(update: dict[str, Any], names: list[str]) -> bytes:
    """The bytes a client sends for a compressed delta (`compress_delta`'s result), tensors in `names` order.

    Layout: a header of three bytes per tensor (kind, bits, granularity), then each tensor's segments.
    """
    header, body = [], []
    for name in names:
        w = update["tensors"][name]
        bits, gran = update["quant"].get(name, (0, TENSOR))
        sparse = name in update["sparse"]
        flat = w.reshape(-1)
        if bits:
            scales = _scales(w, bits, gran)
            codes = _codes(w, scales, gran)
            body.append(scales.tobytes())
            if sparse:
                by_idx, where = _where(codes)
                body += [where, _pack(codes[codes != 0], bits)]
                kind = Q_IDX if by_idx else Q_MASK
            else:
                body.append(_pack(codes, bits))
                kind = Q_DENSE
        elif sparse:
            by_idx, where = _where(flat)
            body += [where, flat[flat != 0].astype(np.float32).tobytes()]
            kind = F32_IDX if by_idx else F32_MASK
        elif update["fp16"]:
            body.append(flat.astype(np.float16).tobytes())
            kind = F16
        else:
            body.append(flat.astype(np.float32).tobytes())
            kind = F32
        header += [kind, bits, gran]
    return bytes(header) + b"".join(body)


def decode(blob: bytes, shapes: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """The dense float32 delta from `encode`'s bytes; `shapes` lists the tensors in the order they were encoded."""
    buf = memoryview(blob)
    header, pos = buf[: 3 * len(shapes)], 3 * len(shapes)
    out: dict[str, np.ndarray] = {}
    for i, (name, shape) in enumerate(shapes.items()):
        kind, bits, gran = header[3 * i: 3 * i + 3]
        n = int(np.prod(shape, dtype=np.int64))
        if kind in (F32, F16):
            dtype, width = (np.float32, 4) if kind == F32 else (np.float16, 2)
            out[name] = np.frombuffer(buf[pos: pos + n * width], dtype).astype(np.float32).reshape(shape)
            pos += n * width
            continue
        scales = None
        if kind in (Q_DENSE, Q_MASK, Q_IDX):
            rows = shape[0] if gran == CHANNEL and shape else 1
            scales = np.frombuffer(buf[pos: pos + 4 * rows], np.float32)
            pos += 4 * rows
        if kind == Q_DENSE:
            codes, size = _unpack(buf[pos:], n, bits)
            pos += size
            values = codes.reshape(len(scales), -1) * scales[:, None]
            out[name] = values.reshape(shape).astype(np.float32)
            continue
        if kind in (Q_MASK, F32_MASK):
            size = (n + 7) // 8
            where = np.flatnonzero(np.unpackbits(np.frombuffer(buf[pos: pos + size], np.uint8))[:n])
            pos += size
        else:
            count = int(np.frombuffer(buf[pos: pos + 4], np.uint32)[0])
            dtype, width = (np.uint16, 2) if n <= 65536 else (np.uint32, 4)
            where = np.frombuffer(buf[pos + 4: pos + 4 + count * width], dtype).astype(np.int64)
            pos += 4 + count * width
        flat = np.zeros(n, np.float32)
        if scales is not None:
            codes, size = _unpack(buf[pos:], len(where), bits)
            pos += size
            per_row = n // len(scales)
            flat[where] = codes * scales[where // per_row]
        else:
            flat[where] = np.frombuffer(buf[pos: pos + 4 * len(where)], np.float32)
            pos += 4 * len(where)
        out[name] = flat.reshape(shape)
    if pos != len(blob):
        raise WorkbenchError(f"a client update of {len(blob)} bytes decoded to {pos}: the blob is corrupt.")
    return out
