"""ONNX Runtime: an fp16 graph, static QDQ / dynamic int8, or MatMulNBits low-bit weights (`realize_onnx`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.core.errors import WorkbenchError
from workbench.core.handle import ModelHandle
from workbench.core.paths import atomic_write
from workbench.formats.loader import load
from workbench.formats.onnx_optimize import FUSION_VERSION
from workbench.realize.common import Needs, Realized, cache_file, fallback_note, has_conv, join_notes

MODE_NOTES = {"static": "int8 QDQ (static, calibrated)", "dynamic": "int8 dynamic", "nbits": "MatMulNBits {b}-bit"}
"""What each `realize_onnx` mode executes, in words."""


def realize_variant(handle: ModelHandle, runtime: str, task: Any, needs: Needs) -> Realized:
    """What ONNX Runtime runs for a variant. A BERT-like transformer runs ONNX Runtime's fused graph
    (`onnx_optimize.transformer_onnx`: Attention, EmbedLayerNormalization, BiasGelu) in fp32 and, quantised
    after fusion, in dynamic int8 (QAttention); static int8, MatMulNBits and fp16 start from the unfused export,
    whose layers their recipes name one by one."""
    from workbench.formats.convert import to_onnx
    from workbench.formats.onnx_optimize import transformer_onnx

    sparse_note = needs.sparse_note
    fused = transformer_onnx(handle)
    if not needs.quantised:
        return Realized(runtime, load(fused.path, name=handle.name), fused.path, not sparse_note,
                        join_notes("fp32", fused.note, sparse_note))
    base, fusion_note = to_onnx(handle), ""
    try:
        if needs.quant.is_fp16:
            out = cache_file(handle, "ort-fp16", ".onnx")
            if not out.is_file():
                onnx_fp16(base, out)
            what, mode = "fp16 graph (fp32 I/O)", "fp16"
        else:
            from workbench.compression.quantize_files import realize_onnx

            bits = needs.quant.bit_widths
            if len(bits) > 1:
                raise WorkbenchError(f"mixed bit-widths {sorted(bits)} have no single ONNX Runtime kernel")
            b = bits.pop()
            calibration = getattr(task, "calibration", None)
            if b == 8:
                mode = "static" if (needs.quant.quantises_activations or has_conv(handle)) and calibration else "dynamic"
            else:
                mode = "nbits"
            tag = f"ort-{mode}{b}"
            if mode == "dynamic" and fused.is_fused:
                base, fusion_note, tag = fused.path, fused.note, f"{tag}-fused{FUSION_VERSION}"
            out = cache_file(handle, tag, ".onnx")
            if not out.is_file():
                realize_onnx(base, needs.quant, out, calibration=calibration, mode=mode)
            what = MODE_NOTES[mode].format(b=b)
        return Realized(runtime, load(out, name=handle.name), out, not sparse_note,
                        join_notes(what, fusion_note, sparse_note), "int8" if mode in ("static", "dynamic") else None)
    except (WorkbenchError, ValueError, RuntimeError) as e:
        return Realized(runtime, load(base, name=handle.name), base, False, fallback_note(e, sparse_note))


def onnx_fp16(src: Path, out: Path) -> None:
    """fp16 graph with fp32 inputs/outputs, via ONNX Runtime's own converter."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
    toposort(model.graph)
    atomic_write(out, lambda tmp: onnx.save_model(model, str(tmp)))


def toposort(graph: Any) -> None:
    """Order nodes so each comes after its producers: ORT's fp16 converter appends the input casts at the end,
    which ORT accepts but the ONNX checker (and other tools) reject. Kahn's algorithm; no library exposes it."""
    available = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        ready = [n for n in pending if all(i in available for i in n.input)]
        if not ready:
            raise WorkbenchError("fp16 conversion produced a graph with a cycle or a dangling input")
        for n in ready:
            ordered.append(n)
            available.update(n.output)
        pending = [n for n in pending if n not in ready]
    del graph.node[:]
    graph.node.extend(ordered)
