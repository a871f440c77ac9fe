"""TorchScript archives: checked (zip CRC, a child-process probe) before PyTorch's own loader opens them."""

from __future__ import annotations

import zipfile
from functools import lru_cache
from pathlib import Path

import numpy as np

from workbench.core.errors import WorkbenchError, first_line
from workbench.core.handle import ModelHandle, file_sha256
from workbench.formats.module import from_module

_TS_PROBE = "import sys, torch; torch.jit.load(sys.argv[1], map_location='cpu')"


def _check_zip_crc(path: Path) -> None:
    """Reject an archive whose entries fail their CRC: corrupt bytes inside can abort PyTorch's C++ reader."""
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
    except Exception as e:
        raise WorkbenchError(f"{path}: the archive is corrupt ({first_line(e)}). Re-save the model.") from e
    if bad is not None:
        raise WorkbenchError(f"{path}: the archive is corrupt (entry {bad!r} fails its checksum). Re-save the model.")


@lru_cache(maxsize=64)
def _probe_torchscript(path: str, fingerprint: str) -> str | None:
    """Open a TorchScript file in a child process first: torch.jit.load aborts (SIGABRT) on some corrupt
    archives, which would take the user's kernel down. Returns an error line, or None if it loads."""
    from workbench.core.isolated import run_child

    child = run_child(_TS_PROBE, path, timeout=300, env={"OMP_NUM_THREADS": "1"})
    if child.status == "timeout":
        return "loading did not finish in 300 s"
    if child.status == "crash":
        return f"PyTorch crashed ({child.detail}) reading it"
    return child.detail if child.status == "error" else None


def load_torchscript(path: Path, examples: list[np.ndarray] | None, name: str) -> ModelHandle:
    import torch

    _check_zip_crc(path)
    problem = _probe_torchscript(str(path), file_sha256([path]))
    if problem:
        raise WorkbenchError(
            f"{path}: not a loadable TorchScript archive ({problem}). The file is corrupt; re-save it with "
            "torch.jit.save()."
        )
    try:
        module = torch.jit.load(str(path), map_location="cpu")
    except Exception as e:  # torch raises RuntimeError/ValueError/… for corrupt archives
        raise WorkbenchError(
            f"{path}: not a loadable TorchScript archive ({first_line(e)}). Re-save it with torch.jit.save()."
        ) from e
    return from_module(module, "torchscript", path, examples, name)
