"""Compute per inference: MACs in total and per layer, counted by `torch.utils.flop_counter`, plus bytes.

PyTorch's own FLOP counter walks the real dispatched ops (convolutions, matmuls, attention), so it follows any
model the zoo or a user provides without a hand-written table of layer formulas. MACs = FLOPs / 2.

`profile_layers` also reports, per layer, the bytes its weights take at the layer's storage dtype and the bytes
of the activations it reads and writes (measured at batch 1 with temporary hooks that are removed afterwards),
which is what the device estimator (`workbench.hardware.roofline`) needs for a roofline. With
``functional=True`` it adds the work that happens outside weight-holding modules: attention's matmuls and the
element-wise "glue" kernels (residual adds, activations, softmax, transposes) a runtime launches between layers.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from workbench.core.errors import WorkbenchError
from workbench.core.handle import ModelHandle
from workbench.core.quant import quant_record

COLUMNS = [
    "layer", "type", "params", "macs", "weight_shape",
    "kind", "calls", "weight_bits", "weight_bytes", "input_bytes", "output_bytes", "input_elems", "output_elems",
]
"""Columns of `profile_layers` (the first five are the original ones; the rest were added for estimates)."""

KINDS = ("conv", "conv1d", "depthwise", "linear", "attention", "embedding", "norm", "elementwise", "other")
"""Values of the `kind` column: what sort of kernel a row stands for."""

# Dispatched ops that never become a kernel of their own in a deployed graph: allocations and constants that a
# converter folds away. (Views are recognised by the op schema; transpose/permute are kept: runtimes copy them.)
_FREE = {"lift_fresh", "lift_fresh_copy", "empty", "empty_like", "empty_strided", "zeros", "zeros_like", "ones",
         "ones_like", "full", "full_like", "new_ones", "new_zeros", "new_empty", "scalar_tensor", "arange",
         "_local_scalar_dense", "detach", "alias", "clone", "contiguous", "copy_", "dropout", "native_dropout"}
# Ops a converter folds into the preceding convolution / matmul (BatchNorm at inference, ReLU-family activations).
_FUSED = {"native_batch_norm", "_native_batch_norm_legit_no_training", "_native_batch_norm_legit", "batch_norm",
          "relu", "relu_", "relu6", "hardtanh", "hardtanh_", "threshold"}
_MATERIALISED_VIEWS = {"transpose", "permute"}


def _is_simulated_quant(op: str) -> bool:
    """Fake-quant ops simulate int8 in float; a real int8 graph folds them into its kernels."""
    return "fake_quantize" in op or op.startswith(("quantize_per_", "dequantize_per_"))


def _check(handle: ModelHandle) -> None:
    if handle.framework != "torch" or handle.module is None:
        raise WorkbenchError(f"{handle.name}: MACs are counted on the PyTorch model; this is {handle.framework}.")
    if not handle.example_inputs:
        raise WorkbenchError(f"{handle.name}: counting MACs needs example inputs (workbench.load(..., example_inputs=...)).")


def _batch(handle: ModelHandle, batch: int) -> list[Any]:
    import torch

    return [torch.from_numpy(np.ascontiguousarray(a[:batch])) for a in handle.example_inputs]


def _counter() -> Any:
    """A FLOP counter that also knows CPU scaled-dot-product attention (PyTorch counts only the GPU kernels)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

    def cpu_sdpa(query: Any, key: Any, value: Any, *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
        return sdpa_flop_count(query, key, value)

    extra = {}
    op = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    if op is not None:
        extra[op] = cpu_sdpa
    return FlopCounterMode(display=False, custom_mapping=extra)


def _flop_counts(handle: ModelHandle, batch: int = 1) -> dict[str, dict[Any, int]]:
    import torch

    _check(handle)
    counter = _counter()
    with counter, torch.no_grad():
        handle.module(*_batch(handle, batch))
    return counter.get_flop_counts()


def count_macs(handle: ModelHandle, *, batch: int = 1) -> int:
    """Multiply-accumulates for one inference of `batch` samples (default 1)."""
    counts = _flop_counts(handle, batch)
    return int(sum(counts.get("Global", {}).values()) // 2)


def _tensors(obj: Any) -> list[Any]:
    """Every tensor inside nested tuples / lists / dicts / HF ModelOutputs."""
    import torch

    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, dict) or hasattr(obj, "to_tuple"):
        obj = obj.to_tuple() if hasattr(obj, "to_tuple") else list(obj.values())
    if isinstance(obj, (list, tuple)):
        return [t for item in obj for t in _tensors(item)]
    return []


def _nbytes(ts: list[Any]) -> tuple[int, int]:
    return sum(t.numel() * t.element_size() for t in ts), sum(t.numel() for t in ts)


class _Trace:
    """One batch-1 forward under the FLOP counter, with temporary hooks recording activation sizes and glue ops."""

    def __init__(self, handle: ModelHandle) -> None:
        import torch
        from torch.utils._python_dispatch import TorchDispatchMode
        from torch.utils.flop_counter import flop_registry

        _check(handle)
        self.sizes: dict[str, list[int]] = {}   # module -> [in bytes, out bytes, in elems, out elems, calls]
        self.glue: dict[tuple[str, str], list[int]] = {}  # (module, op) -> same
        modules = dict(handle.module.named_modules())
        owns = {n: any(True for _ in m.parameters(recurse=False)) and not any(True for _ in m.children())
                for n, m in modules.items()}
        stack: list[str] = [""]
        trace = self
        cpu_sdpa = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)

        class Recorder(TorchDispatchMode):
            def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
                out = func(*args, **(kwargs or {}))
                name = func.overloadpacket.__name__
                if owns.get(stack[-1]) or name in _FREE or name in _FUSED or _is_simulated_quant(name):
                    return out
                if func.overloadpacket in flop_registry or func.overloadpacket is cpu_sdpa:
                    return out  # MACs: counted in the layer / attention rows
                if func.is_view and name not in _MATERIALISED_VIEWS:
                    return out
                ib, ie = _nbytes(_tensors([args, kwargs or {}]))
                ob, oe = _nbytes(_tensors(out))
                if name in _MATERIALISED_VIEWS:  # a copy: read and write the output once
                    ib, ie = ob, oe
                s = trace.glue.setdefault((stack[-1], name), [0, 0, 0, 0, 0])
                for i, v in enumerate((ib, ob, ie, oe, 1)):
                    s[i] += v
                return out

        def pre(name: str):
            def hook(_mod: Any, _args: Any) -> None:
                stack.append(name)
            return hook

        def post(name: str):
            def hook(_mod: Any, args: Any, kwargs: Any, output: Any) -> None:
                if stack[-1] == name:
                    stack.pop()
                ib, ie = _nbytes(_tensors(list(args) + list(kwargs.values())))
                ob, oe = _nbytes(_tensors(output))
                s = self.sizes.setdefault(name, [0, 0, 0, 0, 0])
                for i, v in enumerate((ib, ob, ie, oe, 1)):
                    s[i] += v
            return hook

        counter = _counter()
        hooks = []
        try:
            for name, mod in modules.items():
                if name:
                    hooks.append(mod.register_forward_pre_hook(pre(name)))
                    hooks.append(mod.register_forward_hook(post(name), with_kwargs=True))
            with counter, Recorder(), torch.no_grad():
                handle.module(*_batch(handle, 1))
        finally:
            for h in hooks:
                h.remove()
        self.counts = counter.get_flop_counts()
        self.modules = modules


def _kind(mod: Any) -> str:
    name = type(mod).__name__
    if "Embedding" in name:
        return "embedding"
    if "Norm" in name:
        return "norm"
    groups = getattr(mod, "groups", 1)
    if "Conv" in name:
        in_ch = getattr(mod, "in_channels", 0)
        if groups > 1 and groups == in_ch:
            return "depthwise"
        return "conv1d" if "1d" in name else "conv"
    if "Linear" in name or "Bilinear" in name:
        return "linear"
    return "other"


def profile_layers(handle: ModelHandle, *, functional: bool = False) -> pd.DataFrame:
    """Per-layer parameters, MACs and bytes (batch 1) for every leaf module that holds weights or does compute.

    Args:
        handle: a torch model with example inputs.
        functional: also add rows for work done outside weight-holding modules: one ``kind="attention"`` row per
            module that does MACs itself (``softmax(QKᵀ)V`` in a transformer block; then the rows' MACs add up
            to `count_macs`), and one ``kind="elementwise"`` row per (module, op) for the glue kernels a runtime
            launches between layers (residual adds, GELU, softmax, transposes), named ``"module:op"``.
            Allocations, views, and BatchNorm / ReLU-family ops (folded into the previous layer by every
            converter) are left out. Off by default.

    Returns:
        DataFrame with `layer`, `type`, `params`, `macs`, `weight_shape`, and `kind` (one of `KINDS`), `calls`
        (times the module / op ran), `weight_bits` (storage bits per weight: from the variant's `QuantRecord`
        when compression recorded them, else the parameter dtype), `weight_bytes` (parameters at those bits),
        `input_bytes` / `output_bytes` (activations read and written, as the torch model runs them) and
        `input_elems` / `output_elems` (the same as element counts, so a consumer can re-price activations at
        another dtype).

    Example:
        >>> df = profile_layers(workbench.zoo.load("digits-cnn").model)
        >>> int(df.macs.sum()) == count_macs(workbench.zoo.load("digits-cnn").model)
        True
    """
    tr = _Trace(handle)
    quant = quant_record(handle)
    modules = tr.modules
    macs_by_name = {
        k.split(".", 1)[1]: int(sum(v.values()) // 2) for k, v in tr.counts.items() if k != "Global" and "." in k
    }

    def called_children(name: str) -> list[str]:
        """Nearest descendants that ran (a ModuleList is never called itself: look through it)."""
        out = []
        for child, _ in modules[name].named_children():
            full = f"{name}.{child}" if name else child
            out.extend([full] if full in tr.sizes else called_children(full))
        return out

    rows = []
    for name, mod in modules.items():
        if not name:
            continue
        leaf = not any(True for _ in mod.children())
        params = sum(p.numel() for p in mod.parameters(recurse=False))
        if leaf:
            macs, kind, kind_type = macs_by_name.get(name, 0), _kind(mod), type(mod).__name__
        else:
            if not functional or name not in tr.sizes:
                continue
            macs = macs_by_name.get(name, 0) - sum(macs_by_name.get(c, 0) for c in called_children(name))
            kind, kind_type = "attention", "functional"
            if macs <= 0:
                continue
        if params == 0 and macs == 0:
            continue
        w = getattr(mod, "weight", None) if leaf else None
        elem_bits = [p.element_size() * 8 for p in mod.parameters(recurse=False)]
        bits = quant.weight_bits(name)
        if bits is None:
            bits = elem_bits[0] if elem_bits else 32
        s = tr.sizes.get(name, [0, 0, 0, 0, 0])
        rows.append({
            "layer": name if leaf else f"{name} (functional)",
            "type": kind_type,
            "params": params,
            "macs": macs,
            "weight_shape": tuple(w.shape) if w is not None and hasattr(w, "shape") else None,
            "kind": kind,
            "calls": int(s[4]),
            "weight_bits": int(bits),
            "weight_bytes": _weight_bytes(mod, bits) if params else 0,
            "input_bytes": int(s[0]),
            "output_bytes": int(s[1]),
            "input_elems": int(s[2]),
            "output_elems": int(s[3]),
        })
    if functional:
        for (module, op), s in tr.glue.items():
            rows.append({
                "layer": f"{module or '(top)'}:{op}", "type": op, "params": 0, "macs": 0, "weight_shape": None,
                "kind": "elementwise", "calls": int(s[4]), "weight_bits": 0, "weight_bytes": 0,
                "input_bytes": int(s[0]), "output_bytes": int(s[1]), "input_elems": int(s[2]),
                "output_elems": int(s[3]),
            })
    return pd.DataFrame(rows, columns=COLUMNS)


def _weight_bytes(mod: Any, bits: int) -> int:
    """The `weight` tensor at `bits` per element; any other parameter (bias, norm scale) at its own dtype."""
    total = 0.0
    for pname, p in mod.named_parameters(recurse=False):
        if pname == "weight":
            total += p.numel() * bits / 8
        else:
            total += p.numel() * p.element_size()
    return int(math.ceil(total))
