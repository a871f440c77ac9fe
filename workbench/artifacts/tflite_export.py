"""TFLite targets: fp32 (`convert.to_tflite`, litert_torch) and fp16 / dynamic int8 / static int8 / int4 via the
`Quantize` TFLite path (`quantize_files.quantize_tflite`, ai_edge_quantizer recipes).

TFLite recipes quantise every op they support, model-wide: a variant's per-layer exclusions cannot be carried
(the manifest says so), and the int4 recipe leaves ops it has no 4-bit kernel for (e.g. depthwise
convolutions) in float — `storage` in the manifest shows how many weights each type holds.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from workbench.artifacts.targets import Built, Target, carried
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


def build_quantized(handle: ModelHandle, target: Target, calibration: list[Any] | None) -> Built:
    """``tflite-fp16``, ``tflite-dynamic``, ``tflite-int8``, ``tflite-int4``: `Quantize(**CONFIGS[name])` on the
    float32 conversion."""
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
