"""Realisation: turn a variant into the artefact a runtime actually executes, as far as that runtime can.

A compressed torch variant holds its compression as values (zeros, weights on a b-bit grid, fp16-rounded
floats, smaller layers). Whether a runtime *executes* that compression is a separate question, answered here
once for `measure` and `export` alike:

=============  =================================================================================
channel prune  real everywhere (the layers are smaller)
unstructured,  simulated everywhere: dense kernels multiply the zeros (the deflated size shows the gain)
2:4 sparsity
8-bit weights  onnxruntime: static QDQ int8 for models with convolutions (calibrated on the task),
               dynamic int8 for the rest (transformers); litert: static int8 for convolutional models,
               dynamic-range int8 otherwise (ai_edge_quantizer)
4-bit weights  onnxruntime: MatMulNBits (linear layers only); litert: dynamic int4
fp16           onnxruntime: fp16 graph (I/O kept fp32); litert: fp16 weights
other widths   simulated (the float artefact is measured) — said so in `note`
=============  =================================================================================
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.core.errors import WorkbenchError, first_line
from workbench.core.handle import ModelHandle
from workbench.core.paths import atomic_write
from workbench.formats.loader import load


@dataclass(frozen=True)
class Realized:
    """What a runtime will execute for a variant.

    Attributes:
        runtime: the runtime name.
        handle: the handle to run (the torch variant itself, or a handle of the realised file).
        path: the artefact the runtime loads (TorchScript for torch, .onnx, .tflite).
        realized: True when everything the variant's compression promises is executed for real.
        note: what is real and what is simulated, in words.
        compute_dtype: the dtype the runtime computes in when quantisation changed it (``"int8"`` for static,
            dynamic and dynamic-range int8 kernels), else None (the weights' own float type); device
            estimates use it so they cost the same kernels that were measured.
    """

    runtime: str
    handle: ModelHandle
    path: Path | None
    realized: bool
    note: str
    compute_dtype: str | None = None


def prune_structures(handle: ModelHandle) -> set[str]:
    return {str(getattr(c, "structure", "")) for c in handle.lineage if getattr(c, "kind", "") == "prune"}


def quant_summary(handle: ModelHandle) -> tuple[bool, set[int], bool]:
    quant = handle.meta.get("quant") or {}
    fp16 = quant.get("*", {}).get("dtype") == "fp16"
    bits = {int(e["bits"]) for e in quant.values() if isinstance(e, dict) and "bits" in e}
    acts = any(isinstance(e, dict) and e.get("activations") for e in quant.values())
    return fp16, bits, acts


def _cache_file(handle: ModelHandle, tag: str, suffix: str) -> Path:
    from workbench.compression.base import base_name
    from workbench.core.paths import cache_dir

    key = hashlib.sha256(f"{handle.fingerprint}|{tag}".encode()).hexdigest()[:20]
    return cache_dir() / "realized" / f"{base_name(handle)}-{tag}-{key}{suffix}"


def torchscript_file(handle: ModelHandle) -> Path:
    """The variant saved as TorchScript (what a PyTorch deployment loads), cached by fingerprint."""
    import numpy as np
    import torch

    out = _cache_file(handle, "torchscript", ".pt")
    if out.is_file():
        return out
    if not handle.example_inputs:
        raise WorkbenchError(f"{handle.name}: saving TorchScript needs example inputs.")
    args = tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in handle.example_inputs)
    module = handle.module
    with torch.no_grad():
        scripted = module if isinstance(module, torch.jit.ScriptModule) else torch.jit.trace(
            module, args, check_trace=False, strict=False)
    return atomic_write(out, lambda tmp: torch.jit.save(scripted, str(tmp)))


def realize(handle: ModelHandle, runtime: str, task: Any = None) -> Realized:
    """The artefact `runtime` executes for `handle`, realising its compression where the runtime can.

    Args:
        handle: a model or variant.
        runtime: ``"torch"``, ``"onnxruntime"``, ``"litert"`` or ``"tflite_runtime"``.
        task: supplies calibration data for static int8.

    Returns:
        A `Realized` record. A compression the runtime cannot execute falls back to the float artefact with
        `realized=False` and the reason in `note` — never an exception for that alone.
    """
    fp16, bits, acts = quant_summary(handle)
    structures = prune_structures(handle)
    sparse = sorted(structures & {"unstructured", "2:4"})
    sparse_note = f"{'/'.join(sparse)} sparsity simulated (dense kernels)" if sparse else ""
    if handle.framework != "torch":
        return Realized(runtime, handle, handle.path, not sparse, _join(f"{handle.framework} file as loaded", sparse_note))
    if runtime == "torch":
        path = torchscript_file(handle)
        quantised = fp16 or bool(bits)
        note = _join("fake-quantised float weights" if quantised else "float weights", sparse_note)
        return Realized(runtime, handle, path, not quantised and not sparse, note)
    if runtime == "onnxruntime":
        return _realize_onnx(handle, task, fp16, bits, acts, sparse_note)
    if runtime in ("litert", "tflite_runtime"):
        return _realize_tflite(handle, runtime, task, fp16, bits, acts, sparse_note)
    raise WorkbenchError(f"Unknown runtime {runtime!r}.")


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def _has_conv(handle: ModelHandle) -> bool:
    from torch import nn

    return any(isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)) for m in handle.module.modules())


def _realize_onnx(handle: ModelHandle, task: Any, fp16: bool, bits: set[int], acts: bool, sparse_note: str) -> Realized:
    from workbench.formats.convert import to_onnx

    base = to_onnx(handle)
    if not fp16 and not bits:
        return Realized("onnxruntime", load(base, name=handle.name), base, not sparse_note, _join("fp32", sparse_note))
    try:
        if fp16:
            out = _cache_file(handle, "ort-fp16", ".onnx")
            if not out.is_file():
                onnx_fp16(base, out)
            what, mode = "fp16 graph (fp32 I/O)", "fp16"
        else:
            from workbench.compression.quantize_files import realize_onnx

            if len(bits) > 1:
                raise WorkbenchError(f"mixed bit-widths {sorted(bits)} have no single ONNX Runtime kernel")
            b = bits.pop()
            calibration = getattr(task, "calibration", None)
            if b == 8:
                mode = "static" if (acts or _has_conv(handle)) and calibration else "dynamic"
            else:
                mode = "nbits"
            out = _cache_file(handle, f"ort-{mode}{b}", ".onnx")
            if not out.is_file():
                realize_onnx(base, handle.meta["quant"], out, calibration=calibration, mode=mode)
            what = {"static": "int8 QDQ (static, calibrated)", "dynamic": "int8 dynamic",
                    "nbits": f"MatMulNBits {b}-bit"}[mode]
        return Realized("onnxruntime", load(out, name=handle.name), out, not sparse_note, _join(what, sparse_note),
                        "int8" if mode in ("static", "dynamic") else None)
    except (WorkbenchError, ValueError, RuntimeError) as e:
        return Realized("onnxruntime", load(base, name=handle.name), base, False,
                        _join(f"not realised ({first_line(e)}); fp32 artefact of fake-quantised weights", sparse_note))


def onnx_fp16(src: Path, out: Path) -> None:
    """fp16 graph with fp32 inputs/outputs, via ONNX Runtime's own converter."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
    _toposort(model.graph)
    atomic_write(out, lambda tmp: onnx.save_model(model, str(tmp)))


def _toposort(graph: Any) -> None:
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


def _realize_tflite(handle: ModelHandle, runtime: str, task: Any, fp16: bool, bits: set[int], acts: bool,
                    sparse_note: str) -> Realized:
    from workbench.formats.convert import to_tflite

    base = to_tflite(handle)
    base_handle = load(base, name=handle.name)
    if not fp16 and not bits:
        return Realized(runtime, base_handle, base, not sparse_note, _join("fp32", sparse_note))
    try:
        from workbench.compression.base import compress
        from workbench.compression.quantize import Quantize

        if fp16:
            cfg, what = Quantize(dtype="fp16"), "fp16 weights"
        else:
            if len(bits) > 1:
                raise WorkbenchError(f"mixed bit-widths {sorted(bits)} are not one TFLite recipe")
            b = bits.pop()
            static = b == 8 and (acts or _has_conv(handle)) and getattr(task, "calibration", None)
            cfg = Quantize(b, activations=8 if static else None)
            what = "int8 static (calibrated)" if static else f"int{b} dynamic-range weights"
        variant = compress(base_handle, cfg, task=task)
        return Realized(runtime, variant, variant.path, not sparse_note, _join(what, sparse_note),
                        "int8" if not fp16 and b == 8 else None)
    except (WorkbenchError, ValueError, RuntimeError) as e:
        return Realized(runtime, base_handle, base, False,
                        _join(f"not realised ({first_line(e)}); fp32 artefact of fake-quantised weights", sparse_note))
