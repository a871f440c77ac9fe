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

Each runtime's realiser is one module with ``realize_variant(handle, runtime, task, needs) -> Realized``
(`needs`: a `Needs`), found by name in `REALIZERS`; adding a runtime is that module plus one line there.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from workbench.core.errors import WorkbenchError
from workbench.core.handle import ModelHandle
from workbench.core.lm import is_language_model
from workbench.core.quant import quant_record
from workbench.realize.common import Needs, Realized, join_notes, prune_structures


@dataclass(frozen=True)
class RealizerEntry:
    """Where a runtime's realiser lives."""

    module: str  # defines realize_variant(handle, runtime, task, needs) -> Realized
    lm_module: str = ""  # defines realize_lm(handle, runtime, task, needs) -> Realized, for language models


REALIZERS: dict[str, RealizerEntry] = {
    "torch": RealizerEntry("workbench.realize.torch_realizer", "workbench.realize.torch_lm_realizer"),
    "onnxruntime": RealizerEntry("workbench.realize.onnxruntime_realizer", "workbench.realize.genai_realizer"),
    "litert": RealizerEntry("workbench.realize.litert_realizer", "workbench.realize.litert_lm_realizer"),
    "openvino": RealizerEntry("workbench.realize.openvino_realizer", "workbench.realize.openvino_lm_realizer"),
    "executorch": RealizerEntry("workbench.realize.executorch_realizer", "workbench.realize.executorch_lm_realizer"),
    "tflite_runtime": RealizerEntry("workbench.realize.litert_realizer"),
}


def realize(handle: ModelHandle, runtime: str, task: Any = None) -> Realized:
    """The artefact `runtime` executes for `handle`, realising its compression where the runtime can.

    Args:
        handle: a model or variant.
        runtime: ``"torch"``, ``"onnxruntime"``, ``"litert"`` or ``"tflite_runtime"`` (`REALIZERS`).
        task: supplies calibration data for static int8.

    Returns:
        A `Realized` record. A compression the runtime cannot execute falls back to the float artefact with
        `realized=False` and the reason in `note` — never an exception for that alone.

    Example:
        >>> q8 = workbench.compress(task.model, workbench.Quantize(8))
        >>> real = realize(q8, "onnxruntime", task)
        >>> real.realized, real.note, real.compute_dtype
        (True, 'int8 QDQ (static, calibrated)', 'int8')
    """
    structures = prune_structures(handle)
    sparse = sorted(structures & {"unstructured", "2:4"})
    sparse_note = f"{'/'.join(sparse)} sparsity simulated (dense kernels)" if sparse else ""
    needs = Needs(quant_record(handle), sparse_note)
    if is_language_model(handle):
        entry = REALIZERS.get(runtime)
        if entry is None or not entry.lm_module:
            raise WorkbenchError(f"{handle.name} is a language model; runtime {runtime!r} does not run language models.")
        return importlib.import_module(entry.lm_module).realize_lm(handle, runtime, task, needs)
    if handle.framework != "torch":
        done = handle.meta.get("realised")  # the file already holds integer/fp16 kernels (quantised in place)
        if handle.framework == "onnx" and runtime == "onnxruntime" and needs.quantised and not done:
            # an ONNX file whose weights were fake-quantised in place: made real like a torch variant's export
            return importlib.import_module(REALIZERS[runtime].module).realize_variant(handle, runtime, task, needs)
        simulated = needs.quantised and not done
        return Realized(runtime, handle, handle.path, not sparse and not simulated,
                        join_notes(f"{handle.framework} file as loaded" + (f" ({done})" if done else ""),
                                   "quantisation simulated (float kernels)" if simulated else "", sparse_note))
    entry = REALIZERS.get(runtime)
    if entry is None:
        raise WorkbenchError(f"Unknown runtime {runtime!r}.")
    return importlib.import_module(entry.module).realize_variant(handle, runtime, task, needs)


__all__ = ["REALIZERS", "Needs", "Realized", "RealizerEntry", "prune_structures", "realize"]
