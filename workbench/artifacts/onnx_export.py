"""ONNX targets: fp32 (`convert.to_onnx`), fp16 (`realize`'s converter), static / dynamic int8 and MatMulNBits
4-bit (`quantize_files.realize_onnx`). Every file is one self-contained .onnx with a dynamic batch dimension.

A variant quantised to the target's own bit-width is realised with its own recipe (its `QuantRecord`: its
exclusions and granularity); any other variant gets the target's default recipe applied to its float export.
Each target's builder is found through `targets.TARGETS` (`build_float`, `build_fp16`, `build_quantized`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from workbench.artifacts.targets import Built, Target, cache_file, carried
from workbench.core.errors import WorkbenchError
from workbench.core.handle import ModelHandle
from workbench.core.quant import QuantRecord, quant_record

NBITS_OPS = ("MatMul", "Gather")
INT4_BLOCK = 32


def build_float(handle: ModelHandle, target: Target, calibration: list[Any] | None) -> Built:
    """``onnx``: the float32 conversion (`convert.to_onnx`), with ONNX Runtime's transformer fusions for a
    BERT-like model (`onnx_optimize.transformer_onnx`: what ONNX Runtime runs fastest, so what to ship)."""
    from workbench.formats.onnx_optimize import transformer_onnx

    realized, notes = carried(handle, target)
    fused = transformer_onnx(handle)
    base = fused.path
    converter = "torch.onnx.export (dynamo)" if handle.framework == "torch" else "as loaded"
    if fused.is_fused:
        converter = ("torch.onnx.export (TorchScript, eager attention)" if handle.framework == "torch" else converter
                     ) + " + onnxruntime.transformers.optimizer"
    return _built(base, {"converter": converter, **({"fusions": fused.fused} if fused.is_fused else {}),
                         **({"fusion_note": fused.note} if fused.note and not fused.is_fused else {})}, notes, realized)


def build_fp16(handle: ModelHandle, target: Target, calibration: list[Any] | None) -> Built:
    """``onnx-fp16``: ONNX Runtime's float16 converter on the float32 conversion, float32 I/O kept."""
    from workbench.formats.convert import to_onnx
    from workbench.realize.onnxruntime_realizer import onnx_fp16

    realized, notes = carried(handle, target)
    base = to_onnx(handle)
    out = cache_file(handle, target, "fp16", None)
    if not out.is_file():
        onnx_fp16(base, out)
    return _built(out, {"converter": "onnxruntime.transformers.float16", "keep_io_types": True}, notes, realized)


QUANTIZERS = {"static": "onnxruntime quantize_static (QDQ, MinMax)", "dynamic": "onnxruntime quantize_dynamic",
              "nbits": "onnxruntime MatMulNBitsQuantizer"}
"""The ONNX Runtime quantiser behind each `realize_onnx` mode, for the manifest's recipe."""


def build_quantized(handle: ModelHandle, target: Target, calibration: list[Any] | None,
                    keep_float: Sequence[str] = ()) -> Built:
    """``onnx-int8`` (static), ``onnx-int8-dynamic`` and ``onnx-int4`` (MatMulNBits): `realize_onnx` with the
    variant's own recipe when it is quantised to the target's bits, else the target's default recipe.

    `keep_float` (accuracy control, `workbench.artifacts.accuracy_control`): weight layers left out of the
    recipe, and (static) activation tensors whose Quantize/DequantizeLinear pair is removed from the file."""
    from workbench.formats.convert import to_onnx
    from workbench.formats.onnx_optimize import transformer_onnx

    realized, notes = carried(handle, target)
    base = transformer_onnx(handle).path if target.bits == 8 and not target.calibrated else to_onnx(handle)
    recipe, mode, why, tensors, ops = _recipe(handle, target, base, keep_float)
    if mode == "static" and not calibration:
        raise WorkbenchError(
            f"{handle.name}: {target.name} calibrates activation ranges; pass task=... (its calibration split) or "
            "calibration=[arrays] to export()."
        )
    from workbench.compression.quantize_files import realize_onnx

    out = cache_file(handle, target, {"mode": mode, "recipe": recipe.to_dict(), "base": base.name},
                     calibration if mode == "static" else None)
    if not out.is_file():
        realize_onnx(base, recipe, out, calibration=calibration if mode == "static" else None, mode=mode)
    out = _keep_float_file(handle, target, recipe, out, tensors, calibration) if tensors else out
    entries = list(recipe.layer_entries.values())
    first = entries[0]
    info = {"quantizer": QUANTIZERS[mode], "mode": mode, "bits": first.bits, "granularity": first.granularity,
            "group_size": first.group_size, "symmetric": first.symmetric, "layers": len(entries), "source": why,
            "quantized_layers": ops, **({"kept_float": list(keep_float)} if keep_float else {})}
    if mode == "static":
        info["calibration_samples"] = int(len(calibration[0]))
    return _built(out, info, notes, realized)


def _built(path: Path, recipe: dict[str, Any], notes: list[str], realized: bool) -> Built:
    check_single_file(path)
    return Built(path, recipe, tuple(notes), realized)


def _recipe(handle: ModelHandle, target: Target, base: Path,
            keep_float: Sequence[str] = ()) -> tuple[QuantRecord, str, str, list[str], dict[str, str]]:
    """(the recipe as a `QuantRecord` keyed by ONNX layer, the realize_onnx mode, where the recipe came from,
    the `keep_float` names that are activation tensors (not layers), ``{layer: op type}`` of the recipe).

    A `keep_float` name that is a weight layer leaves the recipe; any other name must be an activation tensor
    of a static (QDQ) file, or this raises."""
    import onnx

    from workbench.compression.quantize import Quantize, layer_entry
    from workbench.compression.quantize_files import onnx_weights

    weights = onnx_weights(onnx.load(str(base)))
    own = QuantRecord.of_layers(quant_record(handle).integer_layers)
    use_own = bool(own) and own.bit_widths == {target.bits}
    mode = "nbits" if target.bits == 4 else ("static" if target.calibrated else "dynamic")
    if target.bits == 4:
        picked = [w for w in weights if w.op_type in NBITS_OPS]
        if not picked:
            ops = sorted({w.op_type for w in weights})
            raise WorkbenchError(
                f"{handle.name}: {target.name} packs MatMul and Gather (embedding) weights with MatMulNBits, and this "
                f"model has none: its weights are in {', '.join(ops) or 'no'} ops, which ONNX Runtime has no 4-bit "
                "kernel for. Use onnx-int8, or tflite-int4 (which packs convolutions too)."
            )
        default = layer_entry(4, Quantize(4, granularity="group", group_size=INT4_BLOCK))
    else:
        picked = [w for w in weights if w.op_type != "Gather" or mode == "dynamic"]
        default = layer_entry(8, Quantize(8))
    recipe = QuantRecord()
    layers = {w.layer for w in weights}
    tensors = [n for n in keep_float if n not in layers]
    if tensors and mode != "static":
        raise WorkbenchError(f"{handle.name}: {target.name} keeps weight layers float, not tensors; "
                             f"{', '.join(tensors[:4])} name no weight layer of this ONNX model.")
    for w in picked:
        if w.layer in keep_float:
            continue
        entry = own.for_layer(w.layer) if use_own else default
        if entry is not None:
            recipe = recipe.with_layer(w.layer, entry.weights_only())
    if not recipe:
        raise WorkbenchError(f"{handle.name}: {target.name} found no weight to quantise in this ONNX model.")
    why = "the variant's own recipe" if use_own else "the target's default recipe"
    ops = {w.layer: w.op_type for w in picked if w.layer in recipe.layer_entries}
    return recipe, mode, why, tensors, ops


def _keep_float_file(handle: ModelHandle, target: Target, recipe: QuantRecord, qdq: Path, tensors: list[str],
                     calibration: list[Any] | None) -> Path:
    """The static file `qdq` with `tensors`' quantisers removed (`accuracy_control.keep_float_qdq`), cached."""
    from workbench.artifacts.accuracy_control import keep_float_qdq
    from workbench.core.paths import atomic_write

    out = cache_file(handle, target, {"mode": "static", "recipe": recipe.to_dict(), "keep_float": sorted(tensors)},
                     calibration)
    if not out.is_file():
        atomic_write(out, lambda tmp: keep_float_qdq(qdq, tensors, tmp))
    return out


def check_single_file(path: Path) -> None:
    """Refuse an ONNX file whose tensors live in side files: a device gets one file."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer):
        raise WorkbenchError(f"{path}: the ONNX file keeps tensors in external data files; exports must be one file.")


def storage(path: Path, handle: ModelHandle | None = None) -> dict[str, dict[str, int]]:
    """Initializer storage by data type: tensors, elements and bytes. MatMulNBits weights (stored as packed UINT8
    blocks) count under ``INT<bits>`` with their K x N elements, so the table says what the weights hold."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path), load_external_data=False)
    packed = {}  # MatMulNBits B input -> (bits, K * N)
    for node in model.graph.node:
        if node.op_type == "MatMulNBits" and len(node.input) > 1:
            attrs = {a.name: a.i for a in node.attribute}
            packed[node.input[1]] = (attrs.get("bits", 4), attrs.get("K", 0) * attrs.get("N", 0))
    out: dict[str, dict[str, int]] = {}
    for init in model.graph.initializer:
        name = onnx.TensorProto.DataType.Name(init.data_type)
        elements = int(np.prod(init.dims)) if len(init.dims) else 1
        if init.name in packed:
            bits, elements = packed[init.name]
            name = f"INT{bits}"
        nbytes = len(init.raw_data) if init.raw_data else numpy_helper.to_array(init).nbytes
        row = out.setdefault(name, {"tensors": 0, "elements": 0, "bytes": 0})
        row["tensors"] += 1
        row["elements"] += elements
        row["bytes"] += int(nbytes)
    return out
