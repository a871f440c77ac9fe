"""PyTorch: the variant itself, saved as TorchScript; its quantisation stays fake (float weights on a grid)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.core.errors import WorkbenchError
from workbench.core.handle import ModelHandle
from workbench.core.paths import atomic_write
from workbench.realize.common import Needs, Realized, cache_file, join_notes


def realize_variant(handle: ModelHandle, runtime: str, task: Any, needs: Needs) -> Realized:
    path = torchscript_file(handle)
    note = join_notes("fake-quantised float weights" if needs.quantised else "float weights", needs.sparse_note)
    return Realized(runtime, handle, path, not needs.quantised and not needs.sparse_note, note)


def torchscript_file(handle: ModelHandle) -> Path:
    """The variant saved as TorchScript (what a PyTorch deployment loads), cached by fingerprint."""
    import numpy as np
    import torch

    out = cache_file(handle, "torchscript", ".pt")
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
