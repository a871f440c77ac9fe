"""PyTorch targets: TorchScript (`realize.torch_realizer.torchscript_file`, traced) and torch.export archives
(.pt2, dynamic batch). Both store the variant's weights as they are (fake-quantised values stay float); parity
runs in torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from workbench.artifacts.targets import Built, Target, cache_file, carried
from workbench.core.errors import WorkbenchError, first_line
from workbench.core.handle import ModelHandle


def build_torchscript(handle: ModelHandle, target: Target, calibration: list[Any] | None) -> Built:
    """``torchscript``: the variant traced and saved (`realize`'s TorchScript file)."""
    from workbench.realize.torch_realizer import torchscript_file

    realized, notes = _check(handle, target)
    return Built(torchscript_file(handle), {"converter": "torch.jit.trace"}, tuple(notes), realized)


def build_pt2(handle: ModelHandle, target: Target, calibration: list[Any] | None) -> Built:
    """``pt2``: a torch.export archive with a dynamic batch dimension."""
    realized, notes = _check(handle, target)
    out = cache_file(handle, target, "pt2", None)
    if not out.is_file():
        _save_pt2(handle, out)
    return Built(out, {"converter": "torch.export.export", "dynamic_batch": True}, tuple(notes), realized)


def _check(handle: ModelHandle, target: Target) -> tuple[bool, list[str]]:
    """`carried` for a PyTorch model with example inputs (anything else raises)."""
    realized, notes = carried(handle, target)
    if handle.framework != "torch":
        raise WorkbenchError(
            f"{handle.name}: {target.name} writes PyTorch archives from PyTorch models; this is a {handle.framework} "
            f"file. Export it to a {handle.framework} target instead."
        )
    if not handle.example_inputs:
        raise WorkbenchError(f"{handle.name}: {target.name} traces the model on sample inputs; load it with "
                             "example_inputs=[...].")
    return realized, notes


def _save_pt2(handle: ModelHandle, out: Path) -> None:
    import torch

    from workbench.core.paths import atomic_write
    from workbench.formats.convert import batch_at_least_2 as batch_at_least_2
    from workbench.formats.convert import quiet_conversion as quiet_conversion

    module = handle.module
    if isinstance(module, torch.jit.ScriptModule):
        raise WorkbenchError(f"{handle.name}: torch.export cannot trace TorchScript; use the torchscript target.")
    args = tuple(torch.from_numpy(np.ascontiguousarray(batch_at_least_2(a))) for a in handle.example_inputs)
    batch = torch.export.Dim("batch", min=1, max=4096)
    try:
        with quiet_conversion(), torch.no_grad():
            program = torch.export.export(module, args, dynamic_shapes=tuple({0: batch} for _ in args))
    except Exception as e:
        raise WorkbenchError(f"{handle.name}: torch.export failed: {first_line(e)}. Use the torchscript target, "
                             "or an ONNX / TFLite target.") from e
    atomic_write(out, lambda tmp: torch.export.save(program, str(tmp)))


def storage(path: Path, handle: ModelHandle | None = None) -> dict[str, dict[str, int]]:
    """Tensor storage of the archive's weights by dtype (tensors, elements, bytes); `handle`: the loaded archive."""
    from workbench.formats.loader import load

    handle = handle if handle is not None else load(path)
    out: dict[str, dict[str, int]] = {}
    for t in handle.module.state_dict().values():
        row = out.setdefault(str(t.dtype).replace("torch.", "").upper(), {"tensors": 0, "elements": 0, "bytes": 0})
        row["tensors"] += 1
        row["elements"] += int(t.numel())
        row["bytes"] += int(t.numel() * t.element_size())
    return out
