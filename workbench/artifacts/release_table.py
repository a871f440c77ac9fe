"""The releases in a folder: every artefact with a manifest beside it, its version and what it replaces.

This reads manifests; it does not verify them (that is `workbench.verify`, with the public key). It is what a
build machine lists when choosing the previous release of an update (the export panel's "update of").

Example:
    >>> art = workbench.export(task.model, "onnx", "out/", task=task, limit=64)
    >>> releases("out/")[["file", "version", "replaces_version"]].values.tolist()
    [['digits-cnn-onnx.onnx', 1, None]]
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from workbench.artifacts.manifest import MANIFEST_SUFFIX

COLUMNS = ["file", "path", "target", "version", "sha256", "size_bytes", "encrypted", "signed", "replaces_file",
           "replaces_version", "replaces_sha256", "created"]


def releases(folder: str | os.PathLike) -> Any:
    """One row per artefact with a readable manifest in `folder` (not its subfolders), by version then name.

    Columns: ``file``, ``path``, ``target``, ``version`` (1 for manifests without one), ``sha256``,
    ``size_bytes``, ``encrypted``, ``signed``, ``replaces_file`` / ``replaces_version`` / ``replaces_sha256``
    (None for a first release) and ``created``. Unreadable manifests are skipped. A missing folder gives no rows.
    """
    import pandas as pd

    root = Path(folder)
    rows = []
    for mpath in sorted(root.glob("*" + MANIFEST_SUFFIX)) if root.is_dir() else []:
        try:
            m = json.loads(mpath.read_text("ascii"))
            entry = m["artifact"]
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
            continue
        rep = m.get("replaces") if isinstance(m.get("replaces"), dict) else {}
        path = mpath.with_name(mpath.name[: -len(MANIFEST_SUFFIX)])
        rows.append({"file": path.name, "path": path, "target": m.get("target"), "version": m.get("version", 1),
                     "sha256": entry.get("sha256"), "size_bytes": entry.get("size_bytes"),
                     "encrypted": m.get("encryption") is not None, "signed": "signature" in m,
                     "replaces_file": rep.get("file"), "replaces_version": rep.get("version"),
                     "replaces_sha256": rep.get("sha256"), "created": m.get("created")})
    df = pd.DataFrame(rows, columns=COLUMNS)
    df = df.astype({"replaces_version": object}).where(df.notna(), None)
    return df.sort_values(["version", "file"], kind="stable").reset_index(drop=True)


__all__ = ["COLUMNS", "releases"]
