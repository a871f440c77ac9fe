"""`Quantize` on ONNX and TFLite files, and `realize_onnx`: real integer ONNX files from a quantisation recipe.

ONNX: weight fake-quantisation rewrites the float initializers of Conv / Gemm / MatMul (and, when asked,
Gather embedding tables) in a copy of the file; ``activations=8`` produces a real static int8 QDQ model with
ONNX Runtime's quantiser, calibrated on the task. A layer is named after its weight initializer without
``.weight`` (``stem.conv``) or, for weights the exporter renamed, after the PyTorch module recorded in the
node's metadata (``bert.encoder.layer.0.attention.self.query``), so `exclude`/`per_layer` and
`meta["quant"]` use the same names as the PyTorch path.

TFLite: `ai_edge_quantizer` recipes (dynamic int8/int4 weights, static int8, fp16 weights), in place. Files
from other toolchains are first made readable to it (`workbench.formats.tflite_graph`: old operator codes,
float16 weights behind DEQUANTIZE, no signature); each variant's ``meta["route"]`` says what was done.

Variant files are written once under ``cache_dir()/"variants"``, keyed by the source's fingerprint, the
config and the library versions.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from workbench.compression.base import base_name, technique
from workbench.compression.quantize import (
    FP16_MAX,
    Quantize,
    config_hash,
    fake_quantize,
    layer_entry,
    match_layer,
    require_rtn,
)
from workbench.core.errors import WorkbenchError
from workbench.core.handle import ModelHandle
from workbench.core.quant import FP16, LayerQuant, QuantRecord, quant_meta
from workbench.formats.onnx_file import onnx_layer_name
from workbench.formats.onnx_optimize import fused_layers

ORT_MODES = ("static", "dynamic", "nbits")
TFLITE_BITS = (4, 8)
TFLITE_BLOCKS = (32, 64, 128, 256)


@dataclass(frozen=True)
class OnnxWeight:
    """One quantisable weight initializer of an ONNX graph.

    Attributes:
        layer: its layer name (see the module docstring).
        initializer: the initializer's name.
        node: the consuming node's name (what ONNX Runtime's quantisers exclude by).
        op_type: ``Conv``, ``Gemm``, ``MatMul`` or ``Gather``.
        axis: the output-channel axis of the initializer (Conv 0; Gemm 0 with transB=1 else 1; MatMul's
            ``(in, out)`` weight 1; Gather's table 0, one row per token).
    """

    layer: str
    initializer: str
    node: str
    op_type: str
    axis: int


_WEIGHT_SLOTS = {"Conv": (1, 0), "Gemm": (1, None), "MatMul": (1, 1), "Gather": (0, 0)}  # op: (input, out axis)


def onnx_weights(model: Any) -> list[OnnxWeight]:
    """The quantisable weight initializers of an `onnx.ModelProto`, in graph order (each once); layers merged into a
    fused node (`onnx_optimize.fused_layers`: q/k/v in Attention) come last, each under the fused node's name."""
    inits = {i.name: i for i in model.graph.initializer}
    found: dict[str, OnnxWeight] = {}
    for node in model.graph.node:
        slot, axis = _WEIGHT_SLOTS.get(node.op_type, (None, None))
        if slot is None or len(node.input) <= slot or node.input[slot] not in inits or node.input[slot] in found:
            continue
        init = inits[node.input[slot]]
        if node.op_type in ("MatMul", "Gemm", "Gather") and len(init.dims) != 2:
            continue
        if node.op_type == "Gemm":
            axis = 0 if any(a.name == "transB" and a.i for a in node.attribute) else 1
        found[init.name] = OnnxWeight(onnx_layer_name(node, init.name), init.name, node.name, node.op_type, axis)
    fused = [OnnxWeight(layer, init, node.name, op, 1 if op == "MatMul" else 0)
             for node in model.graph.node for layer, op, init in fused_layers(node)]
    seen: dict[str, int] = {}
    out = []
    for w in [*found.values(), *fused]:  # two weights from one module (rare): keep names unique
        seen[w.layer] = seen.get(w.layer, 0) + 1
        out.append(w if seen[w.layer] == 1 else dataclasses.replace(w, layer=f"{w.layer}#{seen[w.layer]}"))
    return out


def _select(name: str, weights: list[OnnxWeight], cfg: Quantize) -> dict[str, tuple[OnnxWeight, int]]:
    """{layer: (weight, bits)} this config quantises; unknown exclude/per_layer names raise."""
    layers = [w.layer for w in weights]
    unknown = [n for n in (*cfg.exclude, *(p for p, _ in cfg.per_layer))
               if not any(x == n or x.startswith(n + ".") for x in layers)]
    if unknown:
        raise WorkbenchError(
            f"{name}: no quantisable layer is called {', '.join(map(repr, unknown))}. ONNX layers: "
            f"{', '.join(layers[:6])}{', ...' if len(layers) > 6 else ''} ({len(layers)} in all)."
        )
    chosen = {}
    for w in weights:
        if w.op_type == "Gather" and not cfg.embeddings and match_layer(w.layer, [p for p, _ in cfg.per_layer]) is None:
            continue
        bits = cfg.bits_for(w.layer)
        if bits is not None:
            chosen[w.layer] = (w, bits)
    return chosen


# ------------------------------------------------------------------------------------------------- ONNX


@technique(Quantize, "onnx")
def quantize_onnx(handle: ModelHandle, cfg: Quantize, task: Any) -> ModelHandle:
    """Quantise an ONNX model: fake-quantised weight initializers, fp16 rounding, or real static int8 QDQ."""
    require_rtn(handle, cfg)
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(handle.path))
    weights = onnx_weights(model)
    chosen = {} if cfg.dtype else _select(handle.name, weights, cfg)
    if cfg.activations:
        calibration = getattr(task, "calibration", None)
        if not calibration:
            raise WorkbenchError(
                f"{handle.name}: Quantize(activations=8) calibrates on task.calibration; pass task=... to compress()."
            )
        out = _variant_path(handle, cfg, ".onnx", arrays_digest(calibration))
        if not out.is_file():
            realize_onnx(handle.path, cfg, out, calibration=calibration, mode="static")
        quant = QuantRecord.of_layers((layer, layer_entry(8, cfg, op=w.op_type, initializer=w.initializer, act_bits=8))
                                      for layer, (w, _) in chosen.items())
        return _file_variant(handle, cfg, out, {**quant_meta(quant), "realised": "onnxruntime-static-qdq"})
    if not cfg.dtype and not chosen:
        raise WorkbenchError(f"{handle.name}: no Conv/Gemm/MatMul weight initializer to quantise in this ONNX model.")
    out = _variant_path(handle, cfg, ".onnx")
    quant = QuantRecord()
    by_init = {w.initializer: (layer, w, bits) for layer, (w, bits) in chosen.items()}
    for init in model.graph.initializer:
        arr = numpy_helper.to_array(init)
        if cfg.dtype == "fp16":
            if arr.dtype == np.float32 and arr.size:
                if np.abs(arr).max() > FP16_MAX:
                    raise WorkbenchError(f"{handle.name}: initializer {init.name} exceeds float16's range (±65504).")
                init.CopyFrom(numpy_helper.from_array(arr.astype(np.float16).astype(np.float32), init.name))
            continue
        if init.name not in by_init or arr.dtype.kind != "f":
            continue
        layer, w, bits = by_init[init.name]
        q = _fake_quantize_np(arr, bits, cfg, w.axis)
        init.CopyFrom(numpy_helper.from_array(q, init.name))
        quant = quant.with_layer(layer, layer_entry(bits, cfg, op=w.op_type, initializer=w.initializer, axis=w.axis))
    if cfg.dtype == "fp16":
        quant = FP16
    if not out.is_file():
        _atomic_write(out, lambda tmp: onnx.save(model, str(tmp)))
    return _file_variant(handle, cfg, out, quant_meta(quant))


def _fake_quantize_np(arr: np.ndarray, bits: int, cfg: Quantize, axis: int) -> np.ndarray:
    import torch

    q = fake_quantize(torch.from_numpy(np.array(arr, copy=True)), bits, granularity=cfg.granularity,
                      group_size=cfg.group_size, symmetric=cfg.symmetric, axis=axis)
    return q.numpy().astype(arr.dtype)


def realize_onnx(
    onnx_path: str | os.PathLike,
    quant: Quantize | QuantRecord | Mapping[str, Any],
    out_path: str | os.PathLike,
    *,
    calibration: Sequence[np.ndarray] | None = None,
    mode: str | None = None,
) -> Path:
    """Write a real integer ONNX model for a quantisation recipe with ONNX Runtime's quantisers.

    Args:
        onnx_path: the float model (one file).
        quant: a `Quantize` config, or a variant's quantisation: its `QuantRecord` (`quant_record(variant)`)
            or its ``meta["quant"]`` dict (``{layer: {"bits", "granularity", "group_size", "symmetric", ...}}``);
            layers it does not name stay float.
        out_path: where to write the quantised model (written atomically).
        calibration: calibration inputs, one array per model input (``task.calibration``); needed by static.
        mode: ``"static"`` (int8 QDQ, per-channel MinMax, activations uint8: right for CNNs), ``"dynamic"``
            (int8 weights, activations quantised at run time: right for transformers) or ``"nbits"``
            (MatMulNBits 2/4/8-bit blockwise weights of MatMul/Gather). `None` picks static when the recipe
            quantises activations, dynamic for 8-bit weights, nbits below 8 bits. Measured here: dynamic
            int8 (ConvInteger) wrecks silero-vad's Conv1d stack (frame accuracy 0.96 -> 0.41) while static
            QDQ keeps 0.94, so pass ``mode="static"`` for convolutional models.

    Returns:
        `out_path`.

    Raises:
        WorkbenchError: a recipe ONNX Runtime cannot realise (mixed bit-widths, groups in int8 modes, Conv
            weights below 8 bits, fp16, no calibration for static).

    Example:
        >>> float_file = workbench.runtime(task.model, "onnxruntime").artifact
        >>> realize_onnx(float_file, Quantize(8, activations=8), "digits-int8.onnx", calibration=task.calibration)
        PosixPath('digits-int8.onnx')
    """
    import onnx

    src, out = Path(onnx_path), Path(out_path)
    model = onnx.load(str(src))
    weights = onnx_weights(model)
    layers = _recipe_layers(src.name, weights, quant)
    if not layers:
        raise WorkbenchError(f"{src}: the recipe names no weight of this ONNX model; nothing to realise.")
    settings = {e.setting for e in layers.values()}
    if len(settings) > 1:
        raise WorkbenchError(
            f"{src}: ONNX Runtime's quantisers take one setting per model; this recipe mixes "
            f"{sorted(settings, key=str)}. Realise mixed precision per layer group yourself, or use one bit-width."
        )
    bits, granularity, group_size, symmetric = settings.pop()
    wants_act = any(e.quantises_activations for e in layers.values())
    mode = mode or ("static" if wants_act else "dynamic" if bits == 8 else "nbits")
    if mode not in ORT_MODES:
        raise WorkbenchError(f"mode must be one of {ORT_MODES} or None, got {mode!r}.")
    # A fused node (Attention: query, key and value) is quantised only when the recipe covers all its layers.
    left = {w.node for w in weights if w.layer not in layers}
    chosen = {w.node for w in weights if w.layer in layers} - left
    skip = list(dict.fromkeys(w.node for w in weights if w.node not in chosen))
    if mode in ("static", "dynamic") and (bits != 8 or granularity == "group"):
        raise WorkbenchError(
            f"{src}: {mode} int8 quantisation realises 8-bit per-channel or per-tensor weights; the recipe has "
            f"{bits} bits per {granularity}. Use mode='nbits' for 4-bit blockwise MatMul weights."
        )
    if mode == "nbits":
        other = sorted({w.op_type for w in weights if w.node in chosen} - {"MatMul", "Gather"})
        if other or granularity == "tensor":
            raise WorkbenchError(
                f"{src}: MatMulNBits quantises MatMul/Gather weights blockwise or per channel; this recipe also "
                f"names {other or granularity} weights, which ONNX Runtime has no low-bit kernel for. Exclude those "
                "layers, or realise 8 bits with mode='static'."
            )
    if mode == "static" and not calibration:
        raise WorkbenchError(f"{src}: static int8 quantisation needs calibration inputs (task.calibration).")
    writers = {"static": _ort_static, "dynamic": _ort_dynamic, "nbits": _ort_nbits}
    _atomic_write(out, lambda tmp: writers[mode](src, tmp, model=model, skip=skip, bits=bits, symmetric=symmetric,
                                                  granularity=granularity, group_size=group_size,
                                                  calibration=calibration, weights=weights, chosen=chosen))
    return out


def _recipe_layers(name: str, weights: list[OnnxWeight], quant: Any) -> dict[str, LayerQuant]:
    if isinstance(quant, Quantize):
        if quant.dtype:
            raise WorkbenchError(f"{name}: realize_onnx writes integer models; fp16 files are produced at export.")
        return {layer: layer_entry(bits, quant, act_bits=quant.activations)
                for layer, (_, bits) in _select(name, weights, quant).items()}
    if isinstance(quant, Mapping):
        quant = QuantRecord.from_dict(quant)
    if not isinstance(quant, QuantRecord):
        raise WorkbenchError(
            f"realize_onnx takes a Quantize config or a meta['quant'] dict, got {type(quant).__name__}."
        )
    if quant.whole_model is not None:
        raise WorkbenchError(
            f"{name}: realize_onnx writes integer models; {quant.whole_model.to_dict()} is realised at export."
        )
    out = {}
    for w in weights:  # a torch layer wrapped by ActivationFakeQuant exports as "<layer>.layer"
        entry = quant.for_layer(w.layer)
        if entry is not None:
            out[w.layer] = entry
    return out


def _ort_static(src: Path, out: Path, *, model: Any, skip: list[str], symmetric: bool, granularity: str,
                calibration: Sequence[np.ndarray], **_: Any) -> None:
    """`quantize_static`: QDQ, int8 weights (the recipe's granularity), uint8 activations, MinMax calibration.
    kws DS-CNN, 1 thread, int8/fp32 (QDQ per channel / per tensor / QOperator per channel / per tensor): 0.91 /
    0.94 / 0.95 / 0.95x; 2x wider 1.43 / 1.46 / 1.43 / 1.50x; 4x wider 2.26 / 2.33 / 2.24 / 2.30x. Format and
    granularity move speed less than the noise, model size decides it: QDQ (every runtime reads it) stays."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    inits = {i.name for i in model.graph.initializer}
    names = [i.name for i in model.graph.input if i.name not in inits]
    arrays = [np.asarray(a) for a in calibration]
    if len(arrays) != len(names):
        raise WorkbenchError(
            f"{src}: the model takes {len(names)} inputs {names}; calibration has {len(arrays)} arrays."
        )

    dims = [i.type.tensor_type.shape.dim for i in model.graph.input if i.name not in inits]
    fixed = {d[0].dim_value for d in dims if len(d) and d[0].HasField("dim_value") and d[0].dim_value > 0}
    step = fixed.pop() if len(fixed) == 1 else 16  # a file exported for one batch size is calibrated at it

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.starts = iter(range(0, len(arrays[0]) - step + 1 if fixed else len(arrays[0]), step))

        def get_next(self) -> dict[str, np.ndarray] | None:
            i = next(self.starts, None)
            return None if i is None else {n: a[i:i + step] for n, a in zip(names, arrays)}

    quantize_static(str(src), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=granularity == "channel",
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, nodes_to_exclude=skip,
                    calibrate_method=CalibrationMethod.MinMax, extra_options={"WeightSymmetric": symmetric})


def _ort_dynamic(src: Path, out: Path, *, skip: list[str], symmetric: bool, granularity: str, **_: Any) -> None:
    """`quantize_dynamic`: int8 weights (u8 x s8 VNNI kernels), activations quantised per call. MiniLM, fused
    (`onnx_optimize`), 1 thread: per channel 0.8838 accuracy (fp32 0.8850), per tensor 0.8762 and slower (5.6 vs
    4.6 ms), ``reduce_range`` 0.8825 and no faster: off. ``MatMulConstBOnly`` keeps activation x activation
    MatMuls float; ``DefaultTensorType`` types fused nodes' outputs that shape inference does not know."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(out), per_channel=granularity == "channel", weight_type=QuantType.QInt8,
                     nodes_to_exclude=skip, extra_options={"WeightSymmetric": symmetric, "MatMulConstBOnly": True,
                                                           "DefaultTensorType": onnx.TensorProto.FLOAT})


def _ort_nbits(src: Path, out: Path, *, model: Any, skip: list[str], bits: int, symmetric: bool, granularity: str,
               group_size: int | None, weights: list[OnnxWeight], chosen: set[str], **_: Any) -> None:
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    ops = tuple(sorted({w.op_type for w in weights if w.node in chosen}))
    q = MatMulNBitsQuantizer(model, bits=bits, block_size=group_size or 32, is_symmetric=symmetric,
                             nodes_to_exclude=skip, op_types_to_quantize=ops,
                             channel_wised_quantize=granularity == "channel")
    q.process()
    q.model.save_model_to_file(str(out), False)


# ----------------------------------------------------------------------------------------------- TFLite


@technique(Quantize, "tflite")
def quantize_tflite(handle: ModelHandle, cfg: Quantize, task: Any) -> ModelHandle:
    """Quantise a TFLite flatbuffer in place with an ai_edge_quantizer recipe (see `tflite_recipe`).

    Files from other toolchains are first made readable to the quantiser (`tflite_graph.prepare_for_quantizer`:
    old operator codes upgraded, float16 weights behind DEQUANTIZE folded to float32, a signature added for
    calibration); ``meta["route"]`` says which steps were taken. When the quantiser leaves most weights float
    (it has no kernel for their ops at this setting) a `WorkbenchError` names those ops; when it leaves a few,
    ``meta["float_ops"]`` counts them by op.

    Example:
        >>> from workbench.core.paths import data_file
        >>> hand = workbench.load(data_file("foreign/hand_recrop.tflite"))
        >>> workbench.compress(hand, Quantize(8)).meta["route"]
        ['q8: tflite in place: operator codes upgraded, then ai_edge_quantizer dynamic int8']
    """
    require_rtn(handle, cfg)
    from workbench.formats.tflite_graph import quantizer_fixes, tflite_weights

    recipe, needs_calibration = tflite_recipe(handle.name, cfg)
    calibration = getattr(task, "calibration", None)
    if needs_calibration and not calibration:
        raise WorkbenchError(
            f"{handle.name}: static int8 TFLite quantisation calibrates on task.calibration; pass task=... to "
            "compress()."
        )
    ints = sorted({w.dtype for w in tflite_weights(handle.path) if w.dtype in ("int8", "int4")})
    if ints:
        raise WorkbenchError(
            f"{handle.name}: this TFLite file is already quantised ({'/'.join(ints)} weights); quantise the float "
            "file it was made from instead."
        )
    fixes = quantizer_fixes(handle.path, signature=needs_calibration)
    extra = [arrays_digest(calibration)] if needs_calibration else []
    setting = _tflite_setting(cfg)
    extra += [f"prepared: {', '.join(fixes)}"] if fixes else []  # files that need no step keep their old keys
    extra += [setting] if "(" in setting else []  # a recipe that changed (per-tensor int8) gets a new key
    out = _variant_path(handle, cfg, ".tflite", *extra)
    if not out.is_file():
        _atomic_write(out, lambda tmp: _quantize_tflite_file(
            handle.path, recipe, tmp, calibration if needs_calibration else None, fixes, cfg, setting))
    what = "fp16" if cfg.dtype else f"int{cfg.bits} weights" + (", int8 activations" if cfg.activations else "")
    quant = FP16 if cfg.dtype else QuantRecord(whole_model=layer_entry(
        cfg.bits, cfg, act_bits=cfg.activations, states_activations=True))
    route = f"{cfg.label}: tflite in place: " + (f"{', '.join(fixes)}, then " if fixes else "") + f"ai_edge_quantizer {setting}"
    meta = {**quant_meta(quant), "realised": f"ai_edge_quantizer ({what})",
            "route": [*handle.meta.get("route", []), route]}
    left = _float_ops(tflite_weights(out))
    return _file_variant(handle, cfg, out, {**meta, **({"float_ops": left} if left else {})})


def tflite_recipe(name: str, cfg: Quantize) -> tuple[list[dict[str, Any]], bool]:
    """The ai_edge_quantizer recipe for a config, and whether it needs calibration.

    bits 8 / 4 per channel: ``dynamic_wi8_afp32`` / ``dynamic_wi4_afp32``; per tensor or blocks of 32..256:
    the same dynamic recipe with that granularity (dynamic int8 per tensor keeps DEPTHWISE_CONV_2D per channel:
    LiteRT's hybrid depthwise kernel is wrong with one scale); ``activations=8``: ``static_wi8_ai8``;
    ``dtype="fp16"``: float16 weight-only (FLOAT_CASTING). TFLite weights are symmetric, and its recipes name
    ops, not layers.
    """
    from ai_edge_quantizer import algorithm_manager, qtyping, recipe, recipe_manager

    if cfg.exclude or cfg.per_layer or cfg.embeddings:
        raise WorkbenchError(
            f"{name}: TFLite recipes quantise every supported op (embeddings included) and cannot name PyTorch "
            "layers; quantise the PyTorch model with exclude/per_layer and convert it instead."
        )
    if not cfg.symmetric:
        raise WorkbenchError(f"{name}: TFLite kernels take symmetric weights only; use symmetric=True.")
    ops = qtyping.TFLOperationName.ALL_SUPPORTED
    if cfg.dtype == "fp16":
        rm = recipe_manager.RecipeManager()
        rm.add_weight_only_config(regex=".*", operation_name=ops, num_bits=16,
                                  algorithm_key=algorithm_manager.AlgorithmName.FLOAT_CASTING)
        return rm.get_quantization_recipe(), False
    if cfg.bits not in TFLITE_BITS:
        raise WorkbenchError(
            f"{name}: TFLite quantises weights to {' or '.join(map(str, TFLITE_BITS))} bits, not {cfg.bits}."
        )
    grain = qtyping.QuantGranularity
    if cfg.granularity == "group" and cfg.group_size not in TFLITE_BLOCKS:
        raise WorkbenchError(
            f"{name}: TFLite blockwise quantisation takes group_size in {TFLITE_BLOCKS}, not {cfg.group_size}."
        )
    granularity = {"channel": grain.CHANNELWISE, "tensor": grain.TENSORWISE}.get(cfg.granularity) or getattr(
        grain, f"BLOCKWISE_{cfg.group_size}")
    if cfg.activations:
        if cfg.bits != 8 or cfg.granularity == "group":
            raise WorkbenchError(
                f"{name}: static TFLite quantisation takes int8 weights per channel or per tensor, with int8 "
                "activations."
            )
        if cfg.granularity == "channel":
            return recipe.static_wi8_ai8(), True
        rm = recipe_manager.RecipeManager()
        rm.add_static_config(".*", ops, activation_num_bits=8, weight_num_bits=8, weight_granularity=granularity)
        return rm.get_quantization_recipe(), True
    if cfg.granularity == "channel":
        return (recipe.dynamic_wi8_afp32() if cfg.bits == 8 else recipe.dynamic_wi4_afp32()), False
    rm = recipe_manager.RecipeManager()
    rm.add_dynamic_config(".*", ops, cfg.bits, granularity)
    if cfg.bits == 8 and cfg.granularity == "tensor":
        # Measured (ai-edge-litert 2.3): LiteRT's hybrid DEPTHWISE_CONV_2D kernel computes garbage from one
        # weight scale per tensor (digits-cnn accuracy 0.99 -> 0.11; static int8 per tensor is fine), so
        # depthwise weights keep one scale per channel. A later config for one op wins over ALL_SUPPORTED.
        rm.add_dynamic_config(".*", qtyping.TFLOperationName.DEPTHWISE_CONV_2D, 8, grain.CHANNELWISE)
    return rm.get_quantization_recipe(), False


def _tflite_setting(cfg: Quantize) -> str:
    """The recipe in words, for ``meta["route"]`` and messages (``"dynamic int8"``, ``"static int8"``, ...)."""
    if cfg.dtype:
        return "fp16 weights"
    grain = {"tensor": " per tensor", "group": f" blockwise {cfg.group_size}"}.get(cfg.granularity, "")
    if cfg.granularity == "tensor" and cfg.bits == 8 and not cfg.activations:
        grain += " (DEPTHWISE_CONV_2D per channel)"
    return f"{'static' if cfg.activations else 'dynamic'} int{cfg.bits}{grain}"


def _quantize_tflite_file(src: Path, recipe: Any, out: Path, calibration: Sequence[np.ndarray] | None,
                          fixes: tuple[str, ...], cfg: Quantize, setting: str) -> None:
    """Prepare `src` when `fixes` says so, quantise it to `out`, and refuse a result that is still mostly float."""
    from workbench.formats.tflite_graph import prepare_for_quantizer, tflite_weights

    source = Path(src)
    if fixes:  # `out` is a temporary file in its own folder (atomic_write), so this copy goes with it
        source = out.with_name("prepared.tflite")
        prepare_for_quantizer(src, source, signature=calibration is not None)
    _run_aeq(source, recipe, out, calibration)
    weights = tflite_weights(out)
    total = sum(w.array.size if w.array is not None else 0 for w in weights)
    left = [w for w in weights if w.dtype == "float32"]
    if not weights or sum(w.array.size for w in left) > 0.5 * total:
        ops = ", ".join(f"{op} ({n} weight{'s' * (n > 1)})" for op, n in _float_ops(left).items())
        if cfg.granularity == "group":
            hint = "blockwise groups apply to FULLY_CONNECTED only. Use granularity='channel'."
        elif cfg.bits == 4 and not cfg.dtype:
            hint = "its 4-bit kernels cover CONV_2D, FULLY_CONNECTED and EMBEDDING_LOOKUP. Use Quantize(8)."
        else:
            hint = "quantise the PyTorch or ONNX source of this model instead."
        raise WorkbenchError(
            f"{Path(src).name}: ai_edge_quantizer ({setting}) left {len(left)} of {len(weights)} weights float: it "
            f"has no kernel at this setting for {ops or 'any op of this model'}; {hint}"
        )


def _float_ops(weights: list[Any]) -> dict[str, int]:
    """``{op type: number of float32 weights}`` of a quantised file's weights."""
    out: dict[str, int] = {}
    for w in weights:
        if w.dtype == "float32":
            out[w.op_type] = out.get(w.op_type, 0) + 1
    return out


def _run_aeq(src: Path, recipe: Any, out: Path, calibration: Sequence[np.ndarray] | None) -> None:
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_quantizer import quantizer

    qt = quantizer.Quantizer(str(src), recipe)
    result = None
    if qt.need_calibration:
        interp = Interpreter(model_path=str(src))
        (key, _), = interp.get_signature_list().items()
        by_index = {d["index"]: n for n, d in interp.get_signature_runner(key).get_input_details().items()}
        details = interp.get_input_details()
        names = [by_index[d["index"]] for d in details]
        samples = [{n: np.asarray(a[i:i + 1]).astype(d["dtype"]) for n, a, d in zip(names, calibration, details)}
                   for i in range(len(calibration[0]))]
        result = qt.calibrate({key: samples}, num_threads=1)
    qt.quantize(result, enable_progress_report=False).export_model(str(out), overwrite=True)


# ------------------------------------------------------------------------------------------------ files


def _variant_path(handle: ModelHandle, cfg: Quantize, suffix: str, *extra: str) -> Path:
    from importlib.metadata import version

    from workbench.core.paths import cache_dir

    libs = [version(p) for p in ("onnx", "onnxruntime", "ai-edge-quantizer")]
    key = config_hash(handle.fingerprint, cfg.to_dict(), libs, *extra)
    return cache_dir() / "variants" / f"{base_name(handle)}-{cfg.label}-{key}{suffix}"


def arrays_digest(arrays: Sequence[np.ndarray]) -> str:
    import hashlib

    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def _atomic_write(out: Path, write: Any) -> None:
    """`write(tmp_path)` via `atomic_write` (never a half-written file), with failures as WorkbenchError."""
    from workbench.core.paths import atomic_write

    def guarded(tmp_file: Path) -> None:
        try:
            with _quiet():
                write(tmp_file)
        except WorkbenchError:
            raise
        except Exception as e:
            from workbench.core.errors import first_line

            raise WorkbenchError(f"{out.name}: quantisation failed: {first_line(e)}") from e

    atomic_write(out, guarded)


@contextlib.contextmanager
def _quiet():
    """Silence the quantisers' advice, progress bars and debug warnings; exceptions still propagate."""
    before = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(before)


def _file_variant(handle: ModelHandle, cfg: Quantize, path: Path, meta: dict[str, Any]) -> ModelHandle:
    from workbench.formats.loader import load

    new = load(path, name=base_name(handle), example_inputs=handle.example_inputs)
    lineage = (*handle.lineage, cfg)
    return dataclasses.replace(
        new,
        name=f"{base_name(handle)}|{'+'.join(c.label for c in lineage)}",
        lineage=lineage,
        origin=handle.origin if handle.origin is not None else handle,
        meta={**handle.meta, **meta},
    )
