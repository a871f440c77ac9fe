"""Export targets: what each one writes, which runtime checks it, and how a variant's compression carries over.

Each target names a file format, the runtime that runs it (and checks parity), a precision, and its `Exporter`:
the module and functions that build it, in `workbench.artifacts.onnx_export`, `.tflite_export` and
`.torch_export`. A builder returns a `Built` (the candidate file, the recipe used, and notes on what is real) and
reuses `workbench.formats.convert`, `workbench.realize` and `workbench.compression.quantize_files` for every
conversion and quantisation. Adding a target is a builder function (or module) plus one line in `TARGETS`.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from workbench.artifacts.parity import Tolerance
from workbench.core.errors import WorkbenchError
from workbench.core.handle import ModelHandle
from workbench.core.quant import quant_record

PRECISION_BITS = {"fp32": 32, "fp16": 16, "int8": 8, "int4": 4}

LM_TOLERANCES: dict[str, Tolerance] = {
    "fp32": Tolerance(metric_drop=0.05, agreement=0.99),
    "int8": Tolerance(metric_drop=1.0, agreement=0.90),
    "int4": Tolerance(metric_drop=5.0, agreement=0.85),
}
"""Parity bounds of a language model's export: `metric_drop` in perplexity points, `agreement` = greedy next-token
agreement with the source variant over every held-out position (fp32 >= 0.99, int8 >= 0.9, int4 >= 0.85). Raw
output differences are not bounded: a language task's outputs are per-token losses and token ids."""


@dataclass(frozen=True)
class Exporter:
    """Where a target's exporter lives: a module and the names of its functions (imported when first used).

    Attributes:
        module: e.g. ``"workbench.artifacts.onnx_export"``.
        build: ``build(handle, target, calibration) -> Built``.
        storage: ``storage(path, handle) -> {type: {"tensors", "elements", "bytes"}}`` of a built file.
    """

    module: str
    build: str
    storage: str = "storage"

    def function(self, which: str) -> Callable[..., Any]:
        """The function named by field `which` (``"build"`` or ``"storage"``)."""
        return getattr(importlib.import_module(self.module), getattr(self, which))


_ONNX, _TFLITE, _TORCH = ("workbench.artifacts.onnx_export", "workbench.artifacts.tflite_export",
                           "workbench.artifacts.torch_export")
ONNX_FLOAT = Exporter(_ONNX, "build_float")
ONNX_FP16 = Exporter(_ONNX, "build_fp16")
ONNX_QUANTIZED = Exporter(_ONNX, "build_quantized")
TFLITE_FLOAT = Exporter(_TFLITE, "build_float")
TFLITE_QUANTIZED = Exporter(_TFLITE, "build_quantized")
TORCHSCRIPT = Exporter(_TORCH, "build_torchscript")
PT2 = Exporter(_TORCH, "build_pt2")
GENAI = Exporter("workbench.artifacts.genai_export", "build_genai")
LITERT_LM = Exporter("workbench.artifacts.litert_lm_export", "build_litert_lm")
OPENVINO_LM = Exporter("workbench.artifacts.openvino_lm_export", "build_openvino_lm")
OPENVINO_IR = Exporter("workbench.artifacts.openvino_export", "build_ir")
EXECUTORCH_FLOAT = Exporter("workbench.artifacts.executorch_export", "build_float")
EXECUTORCH_INT8 = Exporter("workbench.artifacts.executorch_export", "build_int8")
EXECUTORCH_LM = Exporter("workbench.artifacts.executorch_lm_export", "build_executorch_lm")


@dataclass(frozen=True)
class Target:
    """One export target.

    Attributes:
        name: e.g. ``"onnx-int8"``.
        format: ``"onnx"``, ``"tflite"``, ``"torchscript"`` or ``"pt2"``.
        runtime: the runtime that executes the file (and in which parity is checked).
        suffix: the file extension.
        precision: ``"fp32"``, ``"fp16"``, ``"int8"`` or ``"int4"`` (of the weights the target quantises).
        weights / activations: what the file stores and computes in, in words.
        calibrated: whether the target needs calibration inputs (static int8).
        description: one line for listings.
        hint: what to try instead when this target fails parity (part of the error message).
        exporter: the functions that build the file and read its storage.
        lm_exporter: the same for a language model (its generative form, e.g. an ONNX Runtime GenAI folder), or
            `None` when the target has none.
    """

    name: str
    format: str
    runtime: str
    suffix: str
    precision: str
    weights: str
    activations: str
    calibrated: bool
    description: str
    hint: str = ""
    exporter: Exporter | None = field(default=None, repr=False)
    lm_exporter: Exporter | None = field(default=None, repr=False)

    @property
    def bits(self) -> int:
        return PRECISION_BITS[self.precision]

    def build(self, handle: ModelHandle, calibration: list[Any] | None) -> Built:
        return self._exporter(handle).function("build")(handle, self, calibration)

    def storage(self, path: Path, handle: ModelHandle | None = None) -> dict[str, dict[str, int]]:
        """What the built file stores, by tensor type (tensors, elements, bytes); `handle`: the loaded file."""
        return self._exporter(handle).function("storage")(path, handle)

    def _exporter(self, handle: ModelHandle | None = None) -> Exporter:
        from workbench.core.lm import is_language_model

        if handle is not None and is_language_model(handle):
            if self.lm_exporter is None:
                lm = [t.name for t in TARGETS.values() if t.lm_exporter is not None]
                raise WorkbenchError(f"Export target {self.name!r} has no form for a language model; targets that "
                                     f"do: {', '.join(lm)}.")
            return self.lm_exporter
        if self.exporter is None:
            raise WorkbenchError(f"Export target {self.name!r} names no exporter (Target(..., exporter=Exporter(...))).")
        return self.exporter


@dataclass(frozen=True)
class Built:
    """A candidate artefact (in the workbench cache) before parity, signing and copying out."""

    path: Path
    recipe: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    realized: bool = True


def _t(name: str, exporter: Exporter, fmt: str, runtime: str, suffix: str, precision: str, weights: str,
       activations: str, description: str, calibrated: bool = False) -> Target:
    return Target(name, fmt, runtime, suffix, precision, weights, activations, calibrated, description,
                  _HINTS.get(name, ""), exporter, _LM_EXPORTERS.get(name))


_LM_EXPORTERS = {  # a language model's generative form per target: an ONNX Runtime GenAI folder for ONNX, a
    # LiteRT file with prefill/decode signatures (and its tokenizer folder) for TFLite
    "onnx": GENAI, "onnx-int8": GENAI, "onnx-int4": GENAI,
    "tflite": LITERT_LM, "tflite-dynamic": LITERT_LM, "tflite-int4": LITERT_LM,
    "openvino": OPENVINO_LM, "openvino-int8": OPENVINO_LM, "openvino-int4": OPENVINO_LM,  # a stateful IR folder
    "executorch": EXECUTORCH_LM, "executorch-int8": EXECUTORCH_LM,  # a .pte with its KV cache inside
}


_HINTS = {  # what to try when a target fails parity (measured on the zoo)
    "onnx-int8": "static int8 suits convolutional models; for transformers try onnx-int8-dynamic",
    "onnx-int8-dynamic": "dynamic int8 suits transformers; convolutions fare better with onnx-int8 (static, "
                         "calibrated)",
    "tflite-int8": "full-integer quantisation suits convolutional models; try tflite-dynamic",
    "onnx-int4": "4-bit weights lose the most; try onnx-int8-dynamic",
    "tflite-int4": "4-bit weights lose the most; try tflite-dynamic",
    "executorch-int8": "PT2E static int8 (calibrated) suits convolutional models; for transformers try onnx-int8-dynamic",
    "openvino-int8": "NNCF int8 quantises activations too; if a transformer loses accuracy, try openvino-int4 "
                     "(weights only) or onnx-int8-dynamic",
    "openvino-int4": "int4 weight compression is meant for transformers (MatMul/embedding weights); for a CNN use "
                     "openvino-int8",
}


TARGETS: dict[str, Target] = {t.name: t for t in (
    _t("onnx", ONNX_FLOAT, "onnx", "onnxruntime", ".onnx", "fp32", "float32", "float32",
       "ONNX, float32, dynamic batch"),
    _t("onnx-fp16", ONNX_FP16, "onnx", "onnxruntime", ".onnx", "fp16", "float16", "float16 (float32 I/O)",
       "ONNX, float16 graph with float32 inputs/outputs"),
    _t("onnx-int8", ONNX_QUANTIZED, "onnx", "onnxruntime", ".onnx", "int8", "int8 per channel",
       "uint8 (static, calibrated)",
       "ONNX static QDQ int8, per-channel weights, calibrated on the task (the choice for CNNs)", True),
    _t("onnx-int8-dynamic", ONNX_QUANTIZED, "onnx", "onnxruntime", ".onnx", "int8", "int8 per channel",
       "float32, quantised to int8 at run time", "ONNX dynamic int8 (the choice for transformers)"),
    _t("onnx-int4", ONNX_QUANTIZED, "onnx", "onnxruntime", ".onnx", "int4", "4-bit blocks of 32 (MatMul/Gather)",
       "float32", "ONNX MatMulNBits 4-bit weights of MatMul and Gather (embedding) layers"),
    _t("tflite", TFLITE_FLOAT, "tflite", "litert", ".tflite", "fp32", "float32", "float32",
       "TFLite flatbuffer, float32, batch 1"),
    _t("tflite-fp16", TFLITE_QUANTIZED, "tflite", "litert", ".tflite", "fp16", "float16", "float32",
       "TFLite with float16 weights"),
    _t("tflite-dynamic", TFLITE_QUANTIZED, "tflite", "litert", ".tflite", "int8", "int8 per channel",
       "float32 (dynamic range)", "TFLite dynamic-range int8: int8 weights, float activations"),
    _t("tflite-int8", TFLITE_QUANTIZED, "tflite", "litert", ".tflite", "int8", "int8 per channel",
       "int8 (static, calibrated)", "TFLite integer model: int8 weights and activations, calibrated on the task",
       True),
    _t("tflite-int4", TFLITE_QUANTIZED, "tflite", "litert", ".tflite", "int4", "int4 per channel where supported",
       "float32", "TFLite 4-bit weights for the ops the ai_edge_quantizer recipe supports"),
    _t("torchscript", TORCHSCRIPT, "torchscript", "torch", ".pt", "fp32", "as the variant (float storage)",
       "float32", "TorchScript archive for PyTorch deployments"),
    _t("pt2", PT2, "pt2", "torch", ".pt2", "fp32", "as the variant (float storage)", "float32",
       "torch.export archive (.pt2) with a dynamic batch dimension"),
    _t("openvino", OPENVINO_IR, "openvino", "openvino", "", "fp32", "float32", "float32",
       "OpenVINO IR folder (model.xml + model.bin), float32, dynamic batch"),
    _t("openvino-int8", OPENVINO_IR, "openvino", "openvino", "", "int8", "int8 per channel",
       "int8 (NNCF post-training, calibrated)", "OpenVINO IR with NNCF int8 weights and activations, calibrated on "
       "the task", True),
    _t("openvino-int4", OPENVINO_IR, "openvino", "openvino", "", "int4", "int4 groups of 32 (MatMul/embedding); "
       "int8 elsewhere", "float32", "OpenVINO IR with NNCF int4 weight compression, for transformers (a CNN's "
       "convolutions stay int8: little gain there)"),
    _t("executorch", EXECUTORCH_FLOAT, "pte", "executorch", ".pte", "fp32", "float32", "float32",
       "ExecuTorch program (.pte) lowered to XNNPACK, float32, dynamic batch"),
    _t("executorch-int8", EXECUTORCH_INT8, "pte", "executorch", ".pte", "int8", "int8 per channel",
       "int8 (static, calibrated)", "ExecuTorch program with PT2E int8 (XNNPACK quantizer), calibrated on the task, "
       "lowered to XNNPACK", True),
)}


def get_target(name: str) -> Target:
    if isinstance(name, Target):
        return name
    if name not in TARGETS:
        raise WorkbenchError(f"Unknown export target {name!r}. Targets: {', '.join(TARGETS)}.")
    return TARGETS[name]


def carried(handle: ModelHandle, target: Target) -> tuple[bool, list[str]]:
    """Whether the artefact executes the variant's own compression for real, and notes saying what is not."""
    from workbench.realize.common import prune_structures

    quant = quant_record(handle)
    fp16, bits, acts = quant.is_fp16, quant.bit_widths, quant.quantises_activations
    structures = prune_structures(handle)
    notes: list[str] = []
    realized = True
    if "channel" in structures:
        notes.append("channel pruning carried: the artefact's layers are smaller")
    sparse = sorted(structures & {"unstructured", "2:4"})
    if sparse:
        realized = False
        notes.append(f"{'/'.join(sparse)} sparsity carried as stored zeros: the file deflates smaller, but dense "
                     "kernels still compute them (no speedup)")
    tb = target.bits
    if fp16 and tb > 16:
        realized = False
        notes.append(f"the variant's fp16-rounded weights are stored as float32: {target.name} cannot store fp16 "
                     "(use a -fp16 target)")
    elif fp16 and tb < 16:
        notes.append(f"the variant's fp16-rounded weights are quantised further to {target.precision}")
    for b in sorted(bits):
        if b < tb:
            realized = False
            store = "as float values on their grid" if tb >= 16 else f"on the {tb}-bit grid"
            notes.append(f"the variant's {b}-bit weights are stored at {target.precision} {store}: {target.name} "
                         f"cannot store {b} bits")
        elif b > tb:
            notes.append(f"the variant's {b}-bit weights are re-quantised to {tb} bits by {target.name}")
    if acts and "int8" not in target.activations and "uint8" not in target.activations:
        realized = False
        notes.append("the variant's int8 activations are simulated by Quantize/Dequantize pairs around float kernels")
    return realized, notes


def cache_file(handle: ModelHandle, target: Target, recipe: Any, calibration: list[Any] | None) -> Path:
    """Where a built candidate for (variant, target, recipe, calibration, library versions) is cached."""
    from importlib.metadata import version

    from workbench.compression.base import base_name
    from workbench.compression.quantize_files import arrays_digest
    from workbench.core.paths import cache_dir

    libs = []
    for lib in ("torch", "onnx", "onnxruntime", "ai-edge-quantizer", "litert-torch", "openvino", "nncf", "executorch",
                "torchao"):
        try:
            libs.append(f"{lib}={version(lib)}")
        except Exception:  # noqa: BLE001 - an absent optional library is simply not part of the key
            continue
    parts = [handle.fingerprint, target.name, recipe, libs, arrays_digest(calibration) if calibration else ""]
    key = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]
    return cache_dir() / "export" / f"{base_name(handle)}-{target.name}-{key}{target.suffix}"
