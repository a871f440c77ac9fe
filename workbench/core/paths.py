"""Where the workbench finds its bundled data (trained demo weights, evaluation sets, device profiles)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

from workbench.core.errors import WorkbenchError


def data_dir() -> Path:
    """The `data/` folder: ``$WORKBENCH_DATA`` if set, else the repository's `data/` beside the package."""
    env = os.environ.get("WORKBENCH_DATA")
    root = Path(env) if env else Path(__file__).resolve().parents[2] / "data"
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


def atomic_write(out: Path, write: Callable[[Path], None]) -> Path:
    """Call `write(tmp)` with a temporary path beside `out`, then rename it to `out`.

    Cached artefacts (conversions, variants, realised files) are reused whenever they exist, so an interrupted
    write must never leave a half-written file under the final name. The temporary file keeps `out`'s suffix
    (exporters pick the format from it).
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        tmp_file = Path(tmp) / f"model{out.suffix}"
        write(tmp_file)
        os.replace(tmp_file, out)
    return out


def cache_dir() -> Path:
    """Root of the on-disk conversion cache."""
    root = os.environ.get("WORKBENCH_CACHE") or Path.home() / ".cache" / "edge-workbench"
    return Path(root)


def read_yaml_mapping(path: str | Path, what: str, expect: str) -> dict:
    """A YAML file's top-level mapping, or a `WorkbenchError` naming `what` (``"sweep spec"``) and the problem:
    missing, not YAML, or not a mapping (`expect` says of what, e.g. ``"grid fields (prune, bits, ...)"``)."""
    import yaml

    p = Path(path)
    try:
        doc = yaml.safe_load(p.read_text())
    except FileNotFoundError:
        raise WorkbenchError(f"{what} {p} does not exist") from None
    except yaml.YAMLError as e:
        raise WorkbenchError(f"{what} {p} is not valid YAML: {e}") from None
    if not isinstance(doc, dict):
        raise WorkbenchError(f"{what} {p} must be a mapping of {expect}")
    return dict(doc)
