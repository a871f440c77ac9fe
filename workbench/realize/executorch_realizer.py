"""ExecuTorch: fp32 lowered to XNNPACK, or int8 XNNPACK through PT2E (`workbench.formats.pte_file.to_pte`).

8-bit variants become int8 programs: static (int8 weights per channel and int8 activations, calibrated on the
task) for convolutional models and variants that quantise activations, dynamic (activations quantised at run
time) for the rest (transformers), as the ONNX Runtime realiser picks. Other widths and fp16 fall back to the fp32
program with the reason in the note. The note also names any operator the XNNPACK partitioner left to
ExecuTorch's portable (reference) kernels, since those run outside the delegate.
"""

from __future__ import annotations

from typing import Any

from workbench.core.errors import WorkbenchError
from workbench.core.handle import ModelHandle
from workbench.realize.common import Needs, Realized, fallback_note, has_conv, join_notes

FP16_REASON = ("fp16 is not lowered for ExecuTorch here: XNNPACK's fp16 kernels need an fp16 graph with fp16 "
               "inputs, and this x86 build runs them through conversions")
"""Why an fp16 variant runs as the fp32 program on 'executorch'."""


BOOKKEEPING_OPS = ("executorch_prim::", "dim_order_ops::", "aten::sym_size")
"""Portable-kernel operators the note leaves out: shape reads, views and layout copies, not computation."""


def realize_variant(handle: ModelHandle, runtime: str, task: Any, needs: Needs) -> Realized:
    from workbench.formats.pte_file import QUANT_MODES, pte_handle, to_pte

    sparse_note = needs.sparse_note
    if not needs.quantised:
        base = to_pte(handle)
        base_handle = pte_handle(handle, base)
        return Realized(runtime, base_handle, base, not sparse_note,
                        join_notes("fp32 XNNPACK", delegation_note(base_handle), batch_note(handle, base_handle),
                                   sparse_note))
    try:
        if needs.quant.is_fp16:
            raise WorkbenchError(FP16_REASON)
        bits = needs.quant.bit_widths
        if len(bits) > 1:
            raise WorkbenchError(f"mixed bit-widths {sorted(bits)} are not one XNNPACK quantizer config")
        b = bits.pop()
        if b != 8:
            raise WorkbenchError(f"{b}-bit weights: the XNNPACK quantizer's PT2E configs here are int8")
        calibration = getattr(task, "calibration", None)
        static = bool(calibration) and (needs.quant.quantises_activations or has_conv(handle))
        mode = "int8" if static else "int8-dynamic"
        out = to_pte(handle, mode, calibration if static else None)
        real = pte_handle(handle, out, meta={"realised": QUANT_MODES[mode]})
        return Realized(runtime, real, out, not sparse_note,
                        join_notes(QUANT_MODES[mode], delegation_note(real), batch_note(handle, real), sparse_note),
                        "int8")
    except (WorkbenchError, ValueError, RuntimeError) as e:
        base = to_pte(handle)  # the fp32 program of the fake-quantised weights
        base_handle = pte_handle(handle, base)
        return Realized(runtime, base_handle, base, False,
                        join_notes(fallback_note(e, sparse_note), delegation_note(base_handle),
                                   batch_note(handle, base_handle)))


def delegation_note(handle: ModelHandle) -> str:
    """Which operators run on ExecuTorch's portable kernels instead of XNNPACK ("" when all are delegated)."""
    info = handle.meta.get("pte", {})
    ops = [op.removesuffix(".out") for op in info.get("portable_ops", ())
           if not op.startswith(BOOKKEEPING_OPS)]
    if not info.get("delegates"):
        return "nothing delegated to XNNPACK (portable kernels only)"
    if len(ops) > 8:
        ops = [*ops[:8], f"{len(ops) - 8} more"]
    return f"{', '.join(ops)} on portable kernels (not delegated to XNNPACK)" if ops else ""


def batch_note(source: ModelHandle, real: ModelHandle) -> str:
    """Says so when the program takes a fixed batch the source model does not (`to_pte`'s fallback), else ""."""
    free = bool(source.inputs) and source.inputs[0].shape is not None and source.inputs[0].shape[:1] == (None,)
    got = real.inputs[0].shape[0] if real.inputs and real.inputs[0].shape else None
    if not free or got is None:
        return ""
    return (f"exported for batch {got}: the dynamic-batch program failed at another batch (an operator on portable "
            "kernels kept the traced shape), so rows run one call at a time")
