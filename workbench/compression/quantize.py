"""Quantisation: `Quantize` config, weight fake-quantisation of PyTorch models, int8 activation simulation.

On a PyTorch model `Quantize` rounds the weights of every Conv1d/2d/3d and Linear layer onto a b-bit grid and
writes the dequantised values back into the float parameters, so the variant runs everywhere (torch, ONNX
Runtime, LiteRT) and its accuracy is that of the quantised model. After it, every output channel (or group,
or the whole tensor) holds at most 2**bits distinct values. `meta["quant"]` records, per layer, what was done
(a `workbench.core.quant.QuantRecord`, read back with `quant_record(handle)`) so measurement and export can
realise it as a real integer file (`quantize_files.realize_onnx`).

Policy decisions:
    * Embedding tables (`nn.Embedding`) are quantised only with ``embeddings=True`` or when a `per_layer`
      entry covers them; by default only Conv and Linear weights are.
    * Biases, norms and other parameters stay float (as every int8 runtime keeps them).
    * Symmetric weights use the restricted range ``[-(2**(b-1)-1), 2**(b-1)-1]`` (zero exact, no -128),
      as ONNX Runtime and TFLite store symmetric weights; asymmetric use ``[0, 2**b-1]`` with a zero point.
    * ``dtype="fp16"`` rounds every float parameter and buffer through float16 and takes no other option.
    * ``activations=8`` calibrates input ranges on ``task.calibration`` and inserts an explicit
      `ActivationFakeQuant` module before each quantised layer (exported as QuantizeLinear/DequantizeLinear
      to ONNX and as QUANTIZE/DEQUANTIZE to TFLite); the layer's weights move to ``<layer>.layer.weight``.

The ONNX and TFLite paths live in `workbench.compression.quantize_files` (imported at the end of this module).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.ao.quantization.fx._decomposed  # registers quantized_decomposed before any export
from torch import nn

from workbench.compression.base import CompressionConfig, copy_module, layer_names, technique, torch_variant
from workbench.core.errors import WorkbenchError
from workbench.core.handle import ModelHandle
from workbench.core.quant import FP16, LayerQuant, quant_meta, quant_record

GRANULARITIES = ("channel", "tensor", "group")
METHODS = ("rtn", "hqq")
FP16_MAX = 65504.0


@dataclass(frozen=True)
class Quantize(CompressionConfig):
    """Quantise weights to `bits` (and optionally activations to int8), or round everything through fp16.

    Args:
        bits: weight bit-width, 2..8.
        granularity: ``"channel"`` (one scale per output channel), ``"tensor"`` or ``"group"``.
        group_size: consecutive input weights sharing a scale within an output channel (``"group"`` only).
        activations: ``None`` (float activations) or ``8`` (int8 inputs of every quantised layer).
        symmetric: symmetric (zero point 0) or asymmetric (min/max with a zero point) weights.
        exclude: layer (or parent module) names kept float.
        per_layer: ``{layer or parent module: bits}`` overrides; the most specific name wins.
        dtype: ``"fp16"`` for float16 rounding of every float parameter (no other option may be set).
        embeddings: also quantise `nn.Embedding` tables (per row).
        method: ``"rtn"`` (round to nearest) or ``"hqq"`` (half-quadratic: per-block zero points fitted to the
            weights, always asymmetric; language models only, see `workbench.compression.lm_quantize`).

    A `group_size` alone implies ``granularity="group"``; `symmetric` defaults to True, and to False for
    ``"hqq"``.

    Labels: ``q8``, ``q8a8``, ``q4-group32``, ``q4-tensor``, ``q4-asym``, ``q8-emb``, ``fp16``,
    ``q4-group32-hqq``; with `exclude` ``q8-skip2-<hash>``; with `per_layer` ``q-mixed-<hash>`` (hash: of the
    whole config, stable; ``method="rtn"`` is left out of `to_dict`, so configs from before it keep theirs).

    Example:
        >>> Quantize(4, granularity="group", group_size=32).label, Quantize(4, group_size=32, method="hqq").label
        ('q4-group32', 'q4-group32-hqq')
        >>> q8 = workbench.compress(task.model, Quantize(8, activations=8), task=task)
        >>> q8.name, quant_record(q8).for_layer("classifier").param, q8.meta["activation_ranges"]["classifier"]
        ... # doctest: +ELLIPSIS
        ('digits-cnn|q8a8', 'classifier.layer.weight', [0.0, 4.03...])
    """

    kind: ClassVar[str] = "quantize"

    bits: int = 8
    granularity: str | None = None
    group_size: int | None = None
    activations: int | None = None
    symmetric: bool | None = None
    exclude: tuple[str, ...] = ()
    per_layer: tuple[tuple[str, int], ...] = ()
    dtype: str | None = None
    embeddings: bool = False
    method: str = "rtn"

    def __post_init__(self) -> None:
        _check_bits("bits", self.bits)
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.granularity is None:
            object.__setattr__(self, "granularity", "group" if self.group_size is not None else "channel")
        if self.symmetric is None:
            object.__setattr__(self, "symmetric", self.method != "hqq")
        if self.method == "hqq":
            if self.symmetric:
                raise ValueError("method='hqq' fits a zero point per block (asymmetric); drop symmetric=True")
            if self.granularity != "group":
                raise ValueError("method='hqq' quantises blocks of weights; pass group_size, e.g. 32, 64 or 128")
        if self.granularity not in GRANULARITIES:
            raise ValueError(f"granularity must be one of {GRANULARITIES}, got {self.granularity!r}")
        if self.granularity == "group":
            if isinstance(self.group_size, bool) or not isinstance(self.group_size, int) or self.group_size < 1:
                raise ValueError(
                    "granularity='group' needs group_size, a positive int such as 32, 64 or 128; "
                    f"got {self.group_size!r}"
                )
        elif self.group_size is not None:
            raise ValueError(
                f"group_size={self.group_size!r} only applies with granularity='group', not {self.granularity!r}"
            )
        if self.activations is not None and (isinstance(self.activations, bool) or self.activations != 8):
            raise ValueError(f"activations must be None (float) or 8 (int8), got {self.activations!r}")
        if not isinstance(self.symmetric, bool) or not isinstance(self.embeddings, bool):
            raise ValueError("symmetric and embeddings must be True or False")
        object.__setattr__(self, "exclude", tuple(sorted(set(layer_names("Quantize", self.exclude)))))
        pairs = self.per_layer.items() if hasattr(self.per_layer, "items") else self.per_layer
        try:
            per_layer = {str(name): b for name, b in pairs}
        except (TypeError, ValueError):
            raise ValueError(
                f"per_layer must map layer names to bits, e.g. {{'classifier': 8}}; got {self.per_layer!r}"
            ) from None
        for name, b in per_layer.items():
            _check_bits(f"per_layer[{name!r}]", b)
        object.__setattr__(self, "per_layer", tuple(sorted(per_layer.items())))
        both = sorted(set(self.exclude) & set(per_layer))
        if both:
            raise ValueError(f"layer(s) {both} are both excluded and given bits in per_layer; pick one")
        if self.dtype is not None:
            if self.dtype != "fp16":
                raise ValueError(f"dtype must be None (integer quantisation) or 'fp16', got {self.dtype!r}")
            defaults = Quantize()
            changed = [f for f in ("bits", "granularity", "group_size", "activations", "symmetric", "exclude",
                                   "per_layer", "embeddings", "method") if getattr(self, f) != getattr(defaults, f)]
            if changed:
                raise ValueError(
                    f"dtype='fp16' rounds the whole model through float16 and takes no other option; "
                    f"remove {', '.join(changed)}"
                )

    @property
    def per_layer_bits(self) -> dict[str, int]:
        """`per_layer` as a dict."""
        return dict(self.per_layer)

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d["per_layer"] = self.per_layer_bits
        if d["method"] == "rtn":  # the default, left out so that configs from before `method` keep their digest
            del d["method"]
        return d

    @property
    def label(self) -> str:
        if self.dtype == "fp16":
            return "fp16"
        if self.per_layer:
            return f"q-mixed-{self.digest[:6]}"
        label = f"q{self.bits}" + ("a8" if self.activations else "")
        if self.granularity == "tensor":
            label += "-tensor"
        elif self.granularity == "group":
            label += f"-group{self.group_size}"
        label += "" if self.symmetric or self.method == "hqq" else "-asym"
        label += "-emb" if self.embeddings else ""
        label += "" if self.method == "rtn" else f"-{self.method}"
        if self.exclude:
            label += f"-skip{len(self.exclude)}-{self.digest[:6]}"
        return label

    def bits_for(self, layer: str) -> int | None:
        """Bits for a layer name (`None`: excluded); a name covers itself and every module below it."""
        if match_layer(layer, self.exclude) is not None:
            return None
        hit = match_layer(layer, [n for n, _ in self.per_layer])
        return self.per_layer_bits[hit] if hit is not None else self.bits


def _check_bits(what: str, b: Any) -> None:
    if isinstance(b, bool) or not isinstance(b, int) or not 2 <= b <= 8:
        raise ValueError(f"{what} must be an integer from 2 to 8, got {b!r}")


def match_layer(layer: str, names: Any) -> str | None:
    """The most specific of `names` equal to `layer` or a parent module of it."""
    hits = [n for n in names if layer == n or layer.startswith(n + ".")]
    return max(hits, key=len) if hits else None


# ------------------------------------------------------------------------------------------ the numbers


def fake_quantize(w: Any, bits: int, *, granularity: str = "channel", group_size: int | None = None,
                  symmetric: bool = True, axis: int = 0) -> Any:
    """Round a weight tensor onto a b-bit grid and return the dequantised float tensor (same shape, dtype).

    Args:
        w: the weight (a torch tensor).
        bits: bit-width (2..8).
        granularity: ``"channel"`` (one scale per index of `axis`), ``"tensor"`` or ``"group"``.
        group_size: for ``"group"``: consecutive weights per scale within one output channel (the last
            group of a channel may be shorter).
        symmetric: zero point 0 and range ``±(2**(bits-1)-1)``; else min/max with a zero point.
        axis: the output-channel axis (0 for Conv and Linear weights, 1 for an ONNX MatMul's ``(in, out)``).

    Example:
        >>> q = fake_quantize(torch.randn(16, 64), 4)
        >>> max(len(row.unique()) for row in q) <= 16
        True
    """
    import torch.nn.functional as F

    x = w.detach().to(torch.float32).movedim(axis, 0)
    shape = x.shape
    rows = x.reshape(1, -1) if granularity == "tensor" or x.ndim == 0 else x.reshape(shape[0], -1)
    width = rows.shape[1]
    if granularity == "group":
        rows = F.pad(rows, (0, (-width) % group_size)).reshape(-1, group_size)
    if symmetric:
        qmax = 2 ** (bits - 1) - 1
        scale = rows.abs().amax(dim=1, keepdim=True) / qmax
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        out = torch.clamp(torch.round(rows / scale), -qmax, qmax) * scale
    else:
        qmax = 2**bits - 1
        lo = rows.amin(dim=1, keepdim=True).clamp(max=0)
        hi = rows.amax(dim=1, keepdim=True).clamp(min=0)
        scale = (hi - lo) / qmax
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        zero = torch.clamp(torch.round(-lo / scale), 0, qmax)
        out = (torch.clamp(torch.round(rows / scale) + zero, 0, qmax) - zero) * scale
    if granularity == "group":
        out = out.reshape(shape[0], -1)[:, :width]
    return out.reshape(shape).movedim(0, axis).to(w.dtype)


def layer_entry(bits: int, cfg: Quantize, **extra: Any) -> LayerQuant:
    """One layer's `LayerQuant`: `bits` with the config's granularity, group size and symmetry (`extra`: more
    `LayerQuant` fields, such as ``param`` or ``act_bits``)."""
    return LayerQuant(bits, cfg.granularity, cfg.group_size, cfg.symmetric, **extra)


def effective_bits_per_weight(handle: ModelHandle) -> float:
    """Average storage bits per parameter implied by `handle.meta["quant"]` (fp32 scales included).

    Float parameters count 32 bits (16 after fp16); a quantised weight counts `bits` plus one 32-bit scale
    per channel / group / tensor (and an 8-bit zero point when asymmetric). Torch handles only.
    """
    if handle.module is None:
        raise WorkbenchError(
            f"{handle.name}: effective bits are computed on PyTorch models; this is {handle.framework}."
        )
    quant = quant_record(handle)
    params = dict(handle.module.named_parameters())
    total = sum(p.numel() for p in params.values())
    if quant.is_fp16:
        return 16.0
    bits = 32.0 * total
    for entry in quant.entries():
        w = params.get(entry.param or "")
        if w is None:
            continue
        n, channels = w.numel(), w.shape[0] if w.ndim else 1
        blocks = {"tensor": 1, "channel": channels}.get(entry.granularity)
        if blocks is None:
            blocks = channels * -(-(n // channels) // entry.group_size)
        bits += n * (entry.bits - 32) + blocks * (32 + (0 if entry.symmetric else 8))
    return bits / max(total, 1)


# ------------------------------------------------------------------------------------------------ torch


def _weight_layers(module: Any, cfg: Quantize) -> tuple[dict[str, Any], dict[str, Any]]:
    """(layers this config quantises, every layer it could name) as {name: module}."""
    dense = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
    candidates = {n: m for n, m in module.named_modules() if n and isinstance(m, (*dense, nn.Embedding))}
    chosen = {}
    for name, m in candidates.items():
        is_emb = isinstance(m, nn.Embedding)
        if is_emb and not cfg.embeddings and match_layer(name, [n for n, _ in cfg.per_layer]) is None:
            continue
        if cfg.bits_for(name) is not None:
            chosen[name] = m
    return chosen, candidates


def _check_names(handle: ModelHandle, cfg: Quantize, candidates: dict[str, Any]) -> None:
    names = [*cfg.exclude, *(n for n, _ in cfg.per_layer)]
    unknown = [n for n in names if not any(c == n or c.startswith(n + ".") for c in candidates)]
    if unknown:
        few = ", ".join(list(candidates)[:6])
        raise WorkbenchError(
            f"{handle.name}: no quantisable layer is called {', '.join(map(repr, unknown))} (exclude/per_layer "
            f"take Conv/Linear/Embedding layer names or a parent module's name). Layers: {few}"
            f"{', ...' if len(candidates) > 6 else ''} ({len(candidates)} in all; see profile_layers(handle))."
        )


@technique(Quantize, "torch")
def quantize_torch(handle: ModelHandle, cfg: Quantize, task: Any) -> ModelHandle:
    """Fake-quantise a PyTorch model's weights (and simulate int8 activations); see the module docstring."""
    if isinstance(handle.module, torch.jit.ScriptModule):
        raise WorkbenchError(
            f"{handle.name}: a TorchScript model's layers cannot be rewritten; quantise the original nn.Module, "
            "or its ONNX / TFLite file (Quantize supports torch, onnx and tflite models)."
        )
    require_rtn(handle, cfg)
    if cfg.dtype == "fp16":
        return _fp16_torch(handle, cfg)
    layers, candidates = _weight_layers(handle.module, cfg)  # validate on the original, before any work
    _check_names(handle, cfg, candidates)
    if not layers:
        raise WorkbenchError(
            f"{handle.name}: found no Conv/Linear layer to quantise (modules: "
            f"{', '.join(sorted({type(m).__name__ for m in handle.module.modules()}))[:200]}). A torch.export "
            "program has no layer modules: load the nn.Module or the ONNX file instead."
        )
    calibration = _calibration_inputs(handle, task) if cfg.activations else None
    module = copy_module(handle)
    layers = {name: module.get_submodule(name) for name in layers}
    quant = quant_record(handle)
    with torch.no_grad():
        for name, layer in layers.items():
            bits = cfg.bits_for(name)
            layer.weight.copy_(fake_quantize(layer.weight, bits, granularity=cfg.granularity,
                                             group_size=cfg.group_size, symmetric=cfg.symmetric))
            quant = quant.with_layer(name, layer_entry(bits, cfg, module_type=type(layer).__name__,
                                                       param=f"{name}.weight"))
    meta: dict[str, Any] = {}
    if calibration is not None:
        ranges = insert_activation_quant(module, layers, calibration)
        for name in ranges:
            quant = quant.with_layer(name, dataclasses.replace(quant.for_layer(name), act_bits=8,
                                                               param=f"{name}.layer.weight"))
        meta["activation_ranges"] = {**handle.meta.get("activation_ranges", {}), **ranges}
    return torch_variant(handle, module, cfg, meta={**quant_meta(quant), **meta})


def require_rtn(handle: ModelHandle, cfg: Quantize) -> None:
    """Refuse a `method` other than round-to-nearest on a model that is not a language model."""
    if cfg.method != "rtn":
        raise WorkbenchError(
            f"{handle.name}: Quantize(method={cfg.method!r}) is implemented for language models (their decoder's "
            "linear layers); quantise this model with the default method='rtn'."
        )


def _calibration_inputs(handle: ModelHandle, task: Any) -> list[Any]:
    calibration = getattr(task, "calibration", None)
    if task is None or not calibration:
        raise WorkbenchError(
            f"{handle.name}: Quantize(activations=8) calibrates activation ranges on task.calibration; pass the "
            "task: compress(handle, Quantize(8, activations=8), task=task) (or Task.from_model(handle, inputs))."
        )
    return list(calibration)


def _fp16_torch(handle: ModelHandle, cfg: Quantize) -> ModelHandle:
    module = copy_module(handle)
    tensors = [*module.named_parameters(), *module.named_buffers()]
    with torch.no_grad():
        for name, t in tensors:
            if t.is_floating_point():
                big = float(t.abs().max()) if t.numel() else 0.0
                if big > FP16_MAX:
                    raise WorkbenchError(
                        f"{handle.name}: {name} holds {big:.3g}, beyond float16's range (±{FP16_MAX:.0f}); fp16 "
                        "would turn it into inf. Keep this model in float32 or int8."
                    )
                t.copy_(t.half().to(t.dtype))
    return torch_variant(handle, module, cfg, meta=quant_meta(FP16))


# ----------------------------------------------------------------------------------- int8 activations


class ActivationFakeQuant(nn.Module):
    """Simulated per-tensor int8 quantisation of a layer's input, then the layer itself.

    A real module (no hook): its quantize/dequantize pair exports to ONNX as QuantizeLinear/DequantizeLinear
    and to TFLite as QUANTIZE/DEQUANTIZE, so every runtime simulates the same int8 activations.

    Attributes:
        layer: the wrapped Conv/Linear layer.
        scale / zero_point: int8 quantisation parameters of the input (asymmetric, range [-128, 127]).
    """

    def __init__(self, layer: nn.Module, lo: float, hi: float) -> None:
        super().__init__()
        lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
        self.scale = (hi - lo) / 255.0 if hi > lo else 1.0
        self.zero_point = int(min(127, max(-128, round(-128 - lo / self.scale))))
        self.layer = layer

    def extra_repr(self) -> str:
        return f"scale={self.scale!r}, zero_point={self.zero_point}"

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        if torch.compiler.is_exporting() or torch.compiler.is_compiling():
            # The quantize/dequantize pair that ONNX and LiteRT lower to real (De)QuantizeLinear ops.
            ops = torch.ops.quantized_decomposed
            q = ops.quantize_per_tensor(x, self.scale, self.zero_point, -128, 127, torch.int8)
            x = ops.dequantize_per_tensor(q, self.scale, self.zero_point, -128, 127, torch.int8)
        else:  # the same numbers, 3x faster in eager mode
            x = torch.fake_quantize_per_tensor_affine(x, self.scale, self.zero_point, -128, 127)
        return self.layer(x, *args, **kwargs)


def insert_activation_quant(module: nn.Module, layers: dict[str, nn.Module], calibration: list[Any],
                            batch_size: int = 32) -> dict[str, list[float]]:
    """Calibrate min/max of each layer's input on `calibration`, then wrap the layer in `ActivationFakeQuant`.

    Embedding layers (integer inputs) are left unwrapped. Returns ``{layer: [min, max]}``.
    """
    import numpy as np

    dense = {n: m for n, m in layers.items() if not isinstance(m, nn.Embedding)}
    ranges: dict[str, list[float]] = {}

    def observer(name: str) -> Any:
        def hook(_: nn.Module, args: tuple) -> None:
            x = args[0].detach()
            lo, hi = float(x.min()), float(x.max())
            old = ranges.get(name, [lo, hi])
            ranges[name] = [min(old[0], lo), max(old[1], hi)]
        return hook

    handles = [m.register_forward_pre_hook(observer(n)) for n, m in dense.items()]
    try:
        n = len(calibration[0])
        with torch.no_grad():
            for i in range(0, n, batch_size):
                module(*[torch.from_numpy(np.ascontiguousarray(a[i:i + batch_size])) for a in calibration])
    finally:
        for h in handles:
            h.remove()
    for name, layer in dense.items():
        lo, hi = ranges.get(name, [0.0, 0.0])  # a layer the calibration never reached keeps a trivial range
        parent_name, _, attr = name.rpartition(".")
        parent = module.get_submodule(parent_name) if parent_name else module
        setattr(parent, attr, ActivationFakeQuant(layer, lo, hi))
        ranges[name] = [lo, hi]
    return ranges


def config_hash(*parts: Any) -> str:
    """A short stable key for cached variant files."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]

