"""Over-the-air update size: the bytes to ship when a deployed artefact is replaced by a new one.

Four ways to ship the new file, each a column:

* ``full_bytes``: the file as it is;
* ``deflated_bytes``: zlib (deflate) at level 9 — what low bit-widths and sparsity (runs of zeros, few distinct
  values) buy on the wire;
* ``delta_bytes``: a binary delta from the old file (``bsdiff4``); the device applies it to the file it holds;
* ``delta_deflated_bytes``: that delta deflated again.

Delta library: ``bsdiff4`` (PyPI, maintained; a C implementation of Colin Percival's bsdiff, the algorithm
behind FreeBSD's binary updates and early Chrome / Android OTA deltas). bsdiff matches *approximately* equal
regions and stores their byte-wise differences, so a weight file whose values moved a little, or whose layout
shifted, still gives a small patch; xdelta3 / VCDIFF bindings on PyPI are unmaintained. Its BSDIFF40 patches are
already bzip2-compressed block by block, so deflating them again gains little — the column is there to compare
like with like. bsdiff needs memory of the order of 17x the old file (suffix array), so files above
`MAX_DELTA_BYTES` get no delta unless asked. Every delta is checked: patching the old file must give the new one.

Why low-bit and sparse variants update cheaply: fewer bits per weight means fewer bytes, fewer distinct values
deflate better, and after a fine-tune most 4-bit codes stay on the same grid point, so the delta is small,
whereas most int8 codes move.

Example:
    >>> v1 = bytes(range(256)) * 64                      # paths, bytes or handles with a ``path`` all work
    >>> v2 = v1[:8000] + b"retrained" + v1[8009:]
    >>> df, fig = update_size(v1, {"v2": v2})
    >>> int(df.loc[0, "full_bytes"]), bool(df.loc[0, "delta_bytes"] < df.loc[0, "full_bytes"])
    (16384, True)
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from workbench.core.errors import WorkbenchError

MAX_DELTA_BYTES = 256_000_000
METHODS = ("full", "deflated", "delta", "delta_deflated")


def _read(artefact: Any, role: str) -> tuple[bytes, str]:
    """(bytes, label) of a path, bytes, a `ModelHandle` / `Realized` with a ``path``."""
    if isinstance(artefact, (bytes, bytearray, memoryview)):
        return bytes(artefact), f"{len(artefact)} bytes"
    path = artefact
    if not isinstance(artefact, (str, os.PathLike)):
        path = getattr(artefact, "path", None)
        if path is None:
            raise WorkbenchError(
                f"The {role} artefact ({type(artefact).__name__}) has no file: pass a path, bytes, or a handle with "
                "a path — e.g. workbench.realize.realize(handle, 'litert', task).path for a compressed variant.")
    path = Path(path)
    if not path.is_file():
        raise WorkbenchError(f"The {role} artefact {path} is not a file.")
    return path.read_bytes(), path.name


def _delta(old: bytes, new: bytes) -> bytes:
    import bsdiff4

    patch = bsdiff4.diff(old, new)
    if bsdiff4.patch(old, patch) != new:  # a delta that does not reproduce the file is worthless: never report it
        raise WorkbenchError("bsdiff4 produced a patch that does not reproduce the new file.")
    return patch


def _row(label: str, old: Any, new: Any, level: int, max_delta_bytes: float) -> dict[str, Any]:
    old_b, old_name = _read(old, "old")
    new_b, new_name = _read(new, "new")
    row: dict[str, Any] = {"update": label, "old": old_name, "new": new_name, "old_bytes": len(old_b),
                           "full_bytes": len(new_b), "deflated_bytes": len(zlib.compress(new_b, level))}
    if max(len(old_b), len(new_b)) <= max_delta_bytes:
        patch = _delta(old_b, new_b)
        row["delta_bytes"] = len(patch)
        row["delta_deflated_bytes"] = len(zlib.compress(patch, level))
    else:
        row["delta_bytes"] = row["delta_deflated_bytes"] = float("nan")
    sizes = {m: row[f"{m}_bytes"] for m in METHODS if row[f"{m}_bytes"] == row[f"{m}_bytes"]}
    row["best_method"] = min(sizes, key=sizes.get)
    row["best_bytes"] = sizes[row["best_method"]]
    row["saving"] = 1 - row["best_bytes"] / row["full_bytes"] if row["full_bytes"] else 0.0
    return row


def update_size(
    old: Any,
    new: Any,
    *,
    label: str = "update",
    level: int = 9,
    max_delta_bytes: float = MAX_DELTA_BYTES,
) -> tuple[pd.DataFrame, Any]:
    """Bytes to ship to replace `old` with `new`: full, deflated, binary delta, deflated delta.

    Args:
        old: the deployed artefact: a path, bytes, or a handle / `Realized` with a ``path``; or a mapping
            ``{label: artefact}`` paired with a mapping `new` of the same labels.
        new: the replacement, or a mapping ``{label: artefact}`` of candidates (each compared with `old`).
        label: the row label when `new` is a single artefact.
        level: zlib level for the deflated columns.
        max_delta_bytes: skip the delta (NaN) for files larger than this (bsdiff's memory grows ~17x the file).

    Returns:
        ``(table, figure)``: one row per update with ``old_bytes``, ``full_bytes``, ``deflated_bytes``,
        ``delta_bytes``, ``delta_deflated_bytes``, ``best_method``, ``best_bytes`` and ``saving`` (1 - best /
        full); the figure compares the four per update.

    Raises:
        WorkbenchError: a missing file, a handle without a file, mismatched mappings.
    """
    if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= 9:
        raise WorkbenchError(f"level must be a zlib level 0-9, got {level!r}.")
    if isinstance(new, Mapping):
        if not new:
            raise WorkbenchError("new is an empty mapping; give at least one artefact.")
        if isinstance(old, Mapping):
            if set(old) != set(new):
                raise WorkbenchError(f"old and new mappings must have the same labels, got {sorted(old)} and "
                                     f"{sorted(new)}.")
            pairs = [(k, old[k], new[k]) for k in new]
        else:
            pairs = [(k, old, v) for k, v in new.items()]
    elif isinstance(old, Mapping):
        raise WorkbenchError("old is a mapping but new is a single artefact; give new as a mapping with the same "
                             "labels, or one old artefact.")
    else:
        pairs = [(label, old, new)]
    df = pd.DataFrame([_row(str(k), o, n, level, max_delta_bytes) for k, o, n in pairs])
    from workbench.viz.planning import update_size_figure

    return df, update_size_figure(df, METHODS)


__all__ = ["MAX_DELTA_BYTES", "METHODS", "update_size"]
