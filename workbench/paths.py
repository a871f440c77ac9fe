"""Where the workbench finds its bundled data (trained demo weights, evaluation sets, device profiles)."""

from __future__ import annotations

import os
from pathlib import Path

from workbench.errors import WorkbenchError


def data_dir() -> Path:
    """The `data/` folder: ``$WORKBENCH_DATA`` if set, else the repository's `data/` beside the package."""
    env = os.environ.get("WORKBENCH_DATA")
    root = Path(env) if env else Path(__file__).resolve().parent.parent / "data"
    return root


def data_file(name: str) -> Path:
    """Path of a bundled data file; a clear error when it is missing."""
    path = data_dir() / name
    if not path.is_file():
        raise WorkbenchError(
            f"Bundled data file {path} is missing. Run from a full checkout of the repository (data/ holds it) "
            "or point WORKBENCH_DATA at a copy of that folder; data/README.md says which script rebuilds it."
        )
    return path
