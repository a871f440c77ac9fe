"""Wrap an in-memory `torch.nn.Module` (or a loaded TorchScript module) as a `ModelHandle`."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.core.errors import WorkbenchError, first_line
from workbench.core.handle import (
    ModelHandle,
    SourceFormat,
    TensorSpec,
    describe_signature,
    file_sha256,
    flatten_outputs,
    module_fingerprint,
)

if TYPE_CHECKING:  # pragma: no cover
    import torch


def from_module(
    module: torch.nn.Module,
    source_format: SourceFormat,
    path: Path | None,
    examples: list[np.ndarray] | None,
    name: str | None,
) -> ModelHandle:
    import torch

    module = module.eval()
    input_names = _forward_arg_names(module)
    inputs: list[TensorSpec] = []
    outputs: list[TensorSpec] = []
    if examples is not None:
        if input_names and len(examples) != len(input_names):
            raise WorkbenchError(
                f"{name or type(module).__name__}: forward() takes {len(input_names)} inputs "
                f"({', '.join(input_names)}) but {len(examples)} example inputs were given."
            )
        names = input_names or [f"input_{i}" for i in range(len(examples))]
        inputs = [TensorSpec(n, (None, *a.shape[1:]), a.dtype.name) for n, a in zip(names, examples)]
        try:
            with torch.no_grad():
                result = module(*[torch.from_numpy(np.ascontiguousarray(a)) for a in examples])
        except Exception as e:
            raise WorkbenchError(
                f"{name or type(module).__name__}: running the model on the example inputs "
                f"{describe_signature(inputs)} failed: {first_line(e)}. Check the example shapes and dtypes."
            ) from e
        flat = flatten_outputs(result)
        names = list(getattr(module, "output_names", None) or [n for n, _ in flat])
        if len(names) != len(flat):
            names = [n for n, _ in flat]
        outputs = [TensorSpec(n, (None, *t.shape[1:]), np_dtype_name(t)) for n, (_, t) in zip(names, flat)]
    elif input_names:
        inputs = [TensorSpec(n, None, None) for n in input_names]
    if path is not None:
        fp = file_sha256([path])
    else:
        fp = module_fingerprint(module)
    return ModelHandle(
        framework="torch",
        inputs=inputs,
        outputs=outputs,
        num_params=sum(p.numel() for p in module.parameters()),
        fingerprint=fp,
        source_format=source_format,
        name=name or type(module).__name__,
        module=module,
        path=path,
        example_inputs=examples,
    )


def examples_from_specs(specs: list[TensorSpec]) -> list[np.ndarray] | None:
    """Zeros of a fully static signature (dynamic batch → 2), so a .pt2 converts without user data."""
    out = []
    for s in specs:
        if s.shape is None or s.dtype is None or any(d is None for d in s.shape[1:]):
            return None
        shape = (2 if s.shape[0] is None else s.shape[0], *s.shape[1:]) if s.shape else ()
        out.append(np.zeros(shape, dtype=s.dtype))
    return out


def _forward_arg_names(module: Any) -> list[str]:
    import torch

    if isinstance(module, torch.jit.ScriptModule):
        try:
            return [a.name for a in module.forward.schema.arguments[1:]]
        except (AttributeError, RuntimeError):
            return []
    try:
        params = inspect.signature(module.forward).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def np_dtype_name(t: Any) -> str:
    return str(t.dtype).replace("torch.", "")
