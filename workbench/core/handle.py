"""`ModelHandle`: one object for a model in any of the five formats the workbench reads, and its fingerprints.

Loaders (`workbench.formats`) build handles; everything above them (runtimes, compression, measurement)
reads them. This module imports nothing heavier than numpy.
"""

from __future__ import annotations

import hashlib
import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Sequence

import numpy as np

from workbench.core.errors import WorkbenchError

if TYPE_CHECKING:  # pragma: no cover
    pass

Framework = Literal["torch", "onnx", "tflite", "openvino", "executorch"]
SourceFormat = Literal["module", "torchscript", "exported_program", "onnx", "tflite", "genai", "litert_lm", "openvino_ir",
                       "pte"]

FRAMEWORK_OF: dict[SourceFormat, Framework] = {
    "module": "torch",
    "torchscript": "torch",
    "exported_program": "torch",
    "onnx": "onnx",
    "tflite": "tflite",
    "genai": "onnx",        # an ONNX Runtime GenAI folder (a language model: model.onnx + genai_config.json)
    "litert_lm": "tflite",  # a LiteRT language-model file with prefill/decode signatures
    "openvino_ir": "openvino",  # an OpenVINO IR: model.xml (the graph) beside model.bin (the weights)
    "pte": "executorch",        # an ExecuTorch program (.pte flatbuffer, e.g. lowered to XNNPACK)
}


@dataclass(frozen=True)
class TensorSpec:
    """Name, shape and dtype of one model input or output.

    `shape` is a tuple of ints with `None` for a dynamic dimension (usually the batch), or `None` as a whole
    when the format does not record shapes (TorchScript loaded without `example_inputs`). `dtype` is a numpy
    dtype name such as ``"float32"``.
    """

    name: str
    shape: tuple[int | None, ...] | None
    dtype: str | None

    def describe(self) -> str:
        dims = "?" if self.shape is None else ", ".join("N" if d is None else str(d) for d in self.shape)
        return f"{self.name}: {self.dtype or '?'}[{dims}]"


def describe_signature(specs: Sequence[TensorSpec]) -> str:
    """`(x: float32[N, 1, 32, 32], h: float32[N, 128])` for error messages."""
    return "(" + ", ".join(s.describe() for s in specs) + ")"


def fixed_batch_of(specs: Sequence[TensorSpec]) -> int | None:
    """The batch size every input is fixed at (their first dimension, all equal), or `None` when any is free.

    Example:
        >>> fixed_batch_of([TensorSpec("x", (1, 3, 8, 8), "float32")]), fixed_batch_of([TensorSpec("x", (None, 3), "float32")])
        (1, None)
    """
    firsts = {s.shape[0] if s.shape else None for s in specs}
    if len(firsts) != 1:
        return None
    (b,) = firsts
    return b if isinstance(b, int) and b > 0 else None



@dataclass(eq=False)
class ModelHandle:
    """A loaded model: what it is, what it takes and returns, and a content fingerprint.

    Attributes:
        framework: ``"torch"``, ``"onnx"``, ``"tflite"``, ``"openvino"`` or ``"executorch"``.
        inputs: input specs, in call order.
        outputs: output specs, in return order.
        num_params: number of weights (parameters / initialisers / constant tensors).
        fingerprint: sha256 of the content (file bytes, or the module's structure and state).
        module: the `nn.Module` for torch handles, else `None`.
        path: the file the model came from, if any.
        source_format: the format it was read from.
        name: a short human name.
        example_inputs: sample inputs (batch >= 2 where known), used for conversion and tracing.
        lineage: the compression configs applied to reach this variant, in order (empty for an original).
        origin: for a variant, the uncompressed handle it came from (the teacher for distillation).
        meta: technique-specific facts a later step needs (e.g. calibrated activation ranges), JSON-friendly.
    """

    framework: Framework
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    num_params: int
    fingerprint: str
    source_format: SourceFormat
    name: str
    module: Any = None
    path: Path | None = None
    example_inputs: list[np.ndarray] | None = None
    lineage: tuple[Any, ...] = ()
    origin: Any = field(default=None, repr=False)
    meta: dict[str, Any] = field(default_factory=dict, repr=False)
    _artifacts: dict[str, Path] = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        return (
            f"ModelHandle(name={self.name!r}, framework={self.framework!r}, "
            f"inputs={describe_signature(self.inputs)}, outputs={describe_signature(self.outputs)}, "
            f"num_params={self.num_params:,}, fingerprint={self.fingerprint[:12]}…)"
        )

    @property
    def signature(self) -> str:
        """Human-readable input signature, e.g. ``(x: float32[N, 1, 32, 32])``."""
        return describe_signature(self.inputs)


# ----------------------------------------------------------------------------------------------- files


# --------------------------------------------------------------------------------------------- modules


def flatten_outputs(result: Any) -> list[tuple[str, Any]]:
    """Name the tensors a forward() returned: a tensor, a tuple/list of tensors, or a dict."""
    import torch

    if isinstance(result, torch.Tensor):
        return [("output", result)]
    if isinstance(result, dict):
        return [(str(k), v) for k, v in result.items() if isinstance(v, torch.Tensor)]
    if isinstance(result, (tuple, list)):
        flat = [t for t in result if isinstance(t, torch.Tensor)]
        return [(f"output_{i}", t) for i, t in enumerate(flat)]
    raise WorkbenchError(f"The model returned a {type(result).__name__}; expected tensors.")


# ------------------------------------------------------------------------------------------- helpers


def as_arrays(example_inputs: Any) -> list[np.ndarray]:
    """Normalise example inputs (array, tensor, or a sequence of them) to a list of numpy arrays."""
    items = example_inputs if isinstance(example_inputs, (list, tuple)) else [example_inputs]
    out = []
    for i, a in enumerate(items):
        if hasattr(a, "detach"):
            a = a.detach().cpu().numpy()
        if not isinstance(a, np.ndarray):
            raise WorkbenchError(f"example_inputs[{i}] is a {type(a).__name__}; pass numpy arrays or tensors.")
        out.append(a)
    return out


def file_sha256(paths: Sequence[Path]) -> str:
    """sha256 over the bytes of one or more files (a model and its external data)."""
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def module_fingerprint(module: Any) -> str:
    """sha256 over a module's class, structure and every tensor in its state_dict."""
    h = hashlib.sha256()
    cls = type(module)
    h.update(f"{cls.__module__}.{cls.__qualname__}\n{module!r}\n".encode())
    try:
        h.update(inspect.getsource(cls).encode())
    except (OSError, TypeError):
        pass
    for key, t in sorted(module.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{key}:{t.dtype}:{tuple(t.shape)}\n".encode())
        h.update(t.view(-1).view(dtype=_byte_dtype()).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _byte_dtype() -> Any:
    import torch

    return torch.uint8
