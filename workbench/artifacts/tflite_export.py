"""TFLite targets: fp32 (`convert.to_tflite`, litert_torch) and fp16 / dynamic int8 / static int8 / int4 via the
`Quantize` TFLite path (`quantize_files.quantize_tflite`, ai_edge_quantizer recipes).

TFLite recipes quantise every op they support, model-wide: a variant's per-layer exclusions cannot be carried
(the manifest says so), and the int4 recipe leaves ops it has no 4-bit kernel for (e.g. depthwise
convolutions) in float — `storage` in the manifest shows how many weights each type holds.

Accuracy control (`workbench.artifacts.accuracy_control`) keeps chosen activation tensors float: the producer and
consumer ops of each (`keep_float_units`) get ai_edge_quantizer's ``no_quantize`` in the recipe, and the
calibration ranges are computed once and reused for every candidate.
"""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Sequence

import numpy as np

from workbench.artifacts.targets import Built, Target, cache_file, carried
from workbench.core.errors import WorkbenchError, first_line
from workbench.core.handle import ModelHandle
from workbench.core.quant import quant_record

CONFIGS = {
    "tflite-fp16": {"dtype": "fp16"},
    "tflite-dynamic": {"bits": 8},
    "tflite-int8": {"bits": 8, "activations": 8},
    "tflite-int4": {"bits": 4},
}
"""The `Quantize` options of each quantised TFLite target (``Quantize(**CONFIGS[name])``)."""


def build_float(handle: ModelHandle, target: Target, calibration: list[Any] | None) -> Built:
    """``tflite``: the float32 conversion (`convert.to_tflite`) as it is."""
    from workbench.formats.convert import to_tflite

    realized, notes = carried(handle, target)
    base = to_tflite(handle)
    how = "litert_torch.convert" if handle.framework == "torch" else "as loaded"
    return Built(base, {"converter": how, "batch": "fixed at 1 (resize the input to batch more)"},
                 tuple(notes), realized)


def build_quantized(handle: ModelHandle, target: Target, calibration: list[Any] | None,
                    keep_float: Sequence[str] = ()) -> Built:
    """``tflite-fp16``, ``tflite-dynamic``, ``tflite-int8``, ``tflite-int4``: `Quantize(**CONFIGS[name])` on the
    float32 conversion; `keep_float`: activation tensors (`keep_float_units`) whose ops stay float."""
    from workbench.compression.base import base_name, compress
    from workbench.compression.quantize import Quantize
    from workbench.formats.convert import to_tflite
    from workbench.formats.loader import load

    realized, notes = carried(handle, target)
    base = to_tflite(handle)
    quant = quant_record(handle)
    if handle.framework == "tflite" and quant:
        raise WorkbenchError(f"{handle.name}: this TFLite file is already quantised; export it with target 'tflite'.")
    cfg = Quantize(**CONFIGS[target.name])
    if cfg.activations and not calibration:
        raise WorkbenchError(
            f"{handle.name}: {target.name} calibrates activation ranges; pass task=... (its calibration split) or "
            "calibration=[arrays] to export()."
        )
    if any(getattr(c, "exclude", ()) or getattr(c, "per_layer", ()) for c in handle.lineage
           if getattr(c, "kind", "") == "quantize") and quant.integer_layers:
        notes.append("TFLite recipes quantise every supported op: the variant's per-layer exclusions are not carried")
    if keep_float:
        path = _keep_float_file(handle, target, cfg, calibration, keep_float)
        recipe = {"quantizer": "ai_edge_quantizer", "config": cfg.to_dict(), "label": cfg.label,
                  "kept_float": list(keep_float)}
        if cfg.activations:
            recipe["calibration_samples"] = int(len(calibration[0]))
        return Built(path, recipe, tuple(notes), realized)
    source = load(base, name=base_name(handle), example_inputs=handle.example_inputs)
    try:
        variant = compress(source, cfg, task=SimpleNamespace(calibration=calibration) if cfg.activations else None)
    except WorkbenchError as e:
        ints = [s.name for s in handle.inputs if s.dtype and np.dtype(s.dtype).kind in "iu"]
        why = (f" Its integer inputs ({', '.join(ints)}) are indices, not activations: full-integer quantisation "
               "suits convolutional and float-input models." if ints and cfg.activations else "")
        raise WorkbenchError(
            f"{handle.name}: {target.name} does not apply: the file ai_edge_quantizer writes for it could not be "
            f"made or does not run in LiteRT ({first_line(e)}).{why} Use tflite-dynamic or tflite-fp16."
        ) from e
    recipe = {"quantizer": "ai_edge_quantizer", "config": cfg.to_dict(), "label": cfg.label}
    if cfg.activations:
        recipe["calibration_samples"] = int(len(calibration[0]))
    return Built(Path(variant.path), recipe, tuple(notes), realized)


def keep_float_units(handle: ModelHandle) -> list[dict[str, Any]]:
    """The activation tensors of the float conversion that accuracy control may keep float, each with the ops
    that read or write it: ``{"name", "kind", "op_type", "consumers", "ops"}`` (the fields of
    `accuracy_control.Unit`; ``ops`` are ai_edge_quantizer op scopes)."""
    from ai_edge_quantizer.utils import tfl_flatbuffer_utils as tfl

    model = tfl.read_model(str(_quantizable(handle)))
    graph = model.subgraphs[0]
    ops = [(tfl.TFL_OP_CODE_TO_NAME.get(model.operatorCodes[op.opcodeIndex].builtinCode), op) for op in graph.operators]
    producer: dict[int, tuple[str, str]] = {}
    readers: dict[int, list[tuple[str, str]]] = {}
    for kind, op in ops:
        if kind is None:  # an op the quantiser does not know stays float anyway
            continue
        entry = (str(kind.value if hasattr(kind, "value") else kind), tfl.get_op_scope(op, graph.tensors))
        for t in op.outputs:
            producer[int(t)] = entry
        for t in op.inputs:
            if t >= 0:
                readers.setdefault(int(t), []).append(entry)
    units = []
    for i, t in enumerate(graph.tensors):
        buf = model.buffers[t.buffer] if 0 < t.buffer < len(model.buffers) else None
        if buf is not None and (buf.data is not None or getattr(buf, "size", 0)):
            continue  # a constant (weight, bias, shape): not an activation
        src, users = producer.get(i), readers.get(i, [])
        if src is None and not users:
            continue
        name = t.name.decode() if isinstance(t.name, bytes) else str(t.name)
        units.append({"name": name, "kind": "activation", "op_type": src[0] if src else "input",
                      "consumers": tuple(sorted({u[0] for u in users})),
                      "ops": tuple(sorted({s for _, s in ([src] if src else []) + users}))})
    return units


_CALIBRATED: dict[str, Any] = {}  # {file + calibration digest: ai_edge_quantizer calibration result}, last one


def _quantizable(handle: ModelHandle) -> Path:
    """The float conversion as ai_edge_quantizer reads it (`tflite_graph.prepare_for_quantizer` when needed)."""
    from workbench.core.paths import atomic_write
    from workbench.formats.convert import to_tflite
    from workbench.formats.tflite_graph import prepare_for_quantizer, quantizer_fixes

    base = to_tflite(handle)
    if not quantizer_fixes(base, signature=True):
        return Path(base)
    out = Path(base).with_name(Path(base).stem + "-prepared.tflite")
    if not out.is_file():
        atomic_write(out, lambda tmp: prepare_for_quantizer(base, tmp, signature=True))
    return out


def _keep_float_file(handle: ModelHandle, target: Target, cfg: Any, calibration: list[Any] | None,
                     keep_float: Sequence[str]) -> Path:
    """`cfg`'s ai_edge_quantizer recipe with ``no_quantize`` for the ops of `keep_float`'s tensors, cached.
    ai_edge_quantizer is driven here directly (not through `compress`) because `Quantize` cannot name TFLite
    tensors (its recipes are model-wide), and so the calibration is computed once for every candidate."""
    from ai_edge_quantizer import quantizer

    from workbench.compression.quantize_files import arrays_digest, tflite_recipe
    from workbench.core.paths import atomic_write

    units = {u["name"]: u for u in keep_float_units(handle)}
    unknown = [n for n in keep_float if n not in units]
    if unknown:
        raise WorkbenchError(f"{handle.name}: {target.name} has no activation tensor {', '.join(unknown[:4])}; "
                             f"tensors: {', '.join(list(units)[:6])}... ({len(units)} in all).")
    out = cache_file(handle, target, {"config": cfg.to_dict(), "keep_float": sorted(keep_float)},
                     calibration if cfg.activations else None)
    if out.is_file():
        return out
    recipe, needs_calibration = tflite_recipe(handle.name, cfg)
    scopes = sorted({s for n in keep_float for s in units[n]["ops"]})
    recipe = [*recipe, *({"regex": f"^{re.escape(s)}$", "operation": "*", "algorithm_key": "no_quantize"}
                         for s in scopes)]
    src = _quantizable(handle)
    qt = quantizer.Quantizer(str(src), recipe)
    result = None
    if needs_calibration:
        key = f"{src}:{src.stat().st_mtime_ns}:{arrays_digest(calibration)}"
        if key not in _CALIBRATED:
            full = quantizer.Quantizer(str(src), tflite_recipe(handle.name, cfg)[0])  # every tensor's range
            _CALIBRATED.clear()
            with _quiet():
                _CALIBRATED[key] = full.calibrate({_signature_key(src): _samples(src, calibration)}, num_threads=1)
        result = _CALIBRATED[key]

    def write(tmp: Path) -> None:
        with _quiet():
            qt.quantize(result, enable_progress_report=False).export_model(str(tmp), overwrite=True)

    atomic_write(out, write)
    return out


@contextlib.contextmanager
def _quiet():
    """The quantiser's progress bars and advice off the console (as `compress` does); errors still raise."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def _signature_key(path: Path) -> str:
    from ai_edge_litert.interpreter import Interpreter

    (key, _), = Interpreter(model_path=str(path)).get_signature_list().items()
    return key


def _samples(path: Path, calibration: list[Any]) -> list[dict[str, np.ndarray]]:
    """Calibration samples as ai_edge_quantizer takes them: one signature-input dict per sample."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path))
    (key, _), = interp.get_signature_list().items()
    by_index = {d["index"]: n for n, d in interp.get_signature_runner(key).get_input_details().items()}
    details = interp.get_input_details()
    names = [by_index[d["index"]] for d in details]
    return [{n: np.asarray(a[i:i + 1]).astype(d["dtype"]) for n, a, d in zip(names, calibration, details)}
            for i in range(len(calibration[0]))]


def storage(path: Path, handle: ModelHandle | None = None) -> dict[str, dict[str, int]]:
    """Constant-tensor storage by TFLite type: tensors, elements and bytes (INT4 elements pack two per byte)."""
    from ai_edge_litert.tools import flatbuffer_utils
    from ai_edge_quantizer.utils.tfl_flatbuffer_utils import TENSOR_CODE_TO_TYPE

    model = flatbuffer_utils.read_model(str(path))
    out: dict[str, dict[str, int]] = {}
    seen: set[int] = set()
    for graph in model.subgraphs:
        for t in graph.tensors:
            buf = model.buffers[t.buffer] if t.buffer < len(model.buffers) else None
            size = 0 if buf is None else (len(buf.data) if buf.data is not None else int(getattr(buf, "size", 0) or 0))
            if not size or t.buffer in seen:
                continue
            seen.add(t.buffer)
            row = out.setdefault(TENSOR_CODE_TO_TYPE.get(t.type, str(t.type)), {"tensors": 0, "elements": 0, "bytes": 0})
            row["tensors"] += 1
            row["elements"] += int(np.prod(t.shape)) if t.shape is not None and len(t.shape) else 1
            row["bytes"] += size
    return out
