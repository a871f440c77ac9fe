"""LiteRT (and tflite_runtime): the `Quantize` TFLite path applied to the float conversion (ai_edge_quantizer)."""

from __future__ import annotations

from typing import Any

from workbench.core.errors import WorkbenchError
from workbench.core.handle import ModelHandle
from workbench.formats.loader import load
from workbench.realize.common import Needs, Realized, fallback_note, has_conv, join_notes


def realize_variant(handle: ModelHandle, runtime: str, task: Any, needs: Needs) -> Realized:
    from workbench.formats.convert import to_tflite

    sparse_note = needs.sparse_note
    base = to_tflite(handle)
    base_handle = load(base, name=handle.name)
    if not needs.quantised:
        return Realized(runtime, base_handle, base, not sparse_note, join_notes("fp32", sparse_note))
    try:
        from workbench.compression.base import compress
        from workbench.compression.quantize import Quantize

        fp16 = needs.quant.is_fp16
        if fp16:
            cfg, what = Quantize(dtype="fp16"), "fp16 weights"
        else:
            bits = needs.quant.bit_widths
            if len(bits) > 1:
                raise WorkbenchError(f"mixed bit-widths {sorted(bits)} are not one TFLite recipe")
            b = bits.pop()
            static = b == 8 and (needs.quant.quantises_activations or has_conv(handle)) and getattr(
                task, "calibration", None)
            cfg = Quantize(b, activations=8 if static else None)
            what = "int8 static (calibrated)" if static else f"int{b} dynamic-range weights"
        variant = compress(base_handle, cfg, task=task)
        return Realized(runtime, variant, variant.path, not sparse_note, join_notes(what, sparse_note),
                        "int8" if not fp16 and b == 8 else None)
    except (WorkbenchError, ValueError, RuntimeError) as e:
        return Realized(runtime, base_handle, base, False, fallback_note(e, sparse_note))
