"""Hypervolume: how much of the objective space a set of variants dominates, one number to compare fronts.

The dominated volume between the front and a reference point (worse than every variant in every objective),
with each objective scaled to [0, 1] over a box (`bounds`), so 1.0 would be one variant that is best at
everything. Comparing two searches, or a search with the full grid, needs the same box for both.

Written here rather than imported: Optuna computes hypervolumes only in private modules (``optuna._hypervolume``)
whose names change between releases, and pymoo / botorch would be a large dependency for a few lines. The exact
algorithm below (slicing along the last objective, the 2-D case by a sort) is ample for the hundreds of variants
and two to four objectives of a search.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from workbench.core.errors import WorkbenchError


def exact_hypervolume(points: np.ndarray, reference: Sequence[float]) -> float:
    """The volume dominated by `points` (rows, every column minimised) and bounded by `reference`.

    Points not strictly better than the reference in every column add nothing.

    Example:
        >>> exact_hypervolume(np.array([[1.0, 2.0], [2.0, 1.0]]), [3.0, 3.0])
        3.0
        >>> exact_hypervolume(np.array([[0.0, 0.0, 0.0]]), [1.0, 2.0, 3.0])
        6.0
    """
    ref = np.asarray(reference, dtype=float)
    p = np.asarray(points, dtype=float).reshape(-1, len(ref))
    p = p[np.isfinite(p).all(axis=1) & (p < ref).all(axis=1)]
    if not len(p):
        return 0.0
    return float(_slice(np.unique(p, axis=0), ref))


def _slice(p: np.ndarray, ref: np.ndarray) -> float:
    d = p.shape[1]
    if d == 1:
        return float(ref[0] - p[:, 0].min())
    if d == 2:
        s = p[np.lexsort((p[:, 1], p[:, 0]))]
        vol, best_y = 0.0, ref[1]
        for x, y in s:
            if y < best_y:
                vol += (ref[0] - x) * (best_y - y)
                best_y = y
        return vol
    order = np.argsort(p[:, -1], kind="stable")
    s = p[order]
    vol = 0.0
    for i in range(len(s)):
        top = s[i + 1, -1] if i + 1 < len(s) else ref[-1]
        if top > s[i, -1]:
            vol += _slice(s[: i + 1, :-1], ref[:-1]) * (top - s[i, -1])
    return vol


def _signed(df: pd.DataFrame, objectives: Mapping[str, str]) -> np.ndarray:
    missing = [c for c in objectives if c not in df]
    if missing:
        raise WorkbenchError(f"hypervolume: no column(s) {missing} in the results")
    bad = {c: d for c, d in objectives.items() if d not in ("min", "max")}
    if bad:
        raise WorkbenchError(f"hypervolume: each objective is 'min' or 'max', got {bad}")
    v = df[list(objectives)].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    return v * np.array([1.0 if d == "min" else -1.0 for d in objectives.values()])


def bounds(df: pd.DataFrame, objectives: Mapping[str, str], *, margin: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """``(ideal, reference)`` of a box around the rows' objectives (as minimised values): the best value of each
    objective, and the worst pushed out by `margin` of its range (so the worst variants still count)."""
    v = _signed(df, objectives)
    v = v[np.isfinite(v).all(axis=1)]
    if not len(v):
        raise WorkbenchError("hypervolume: no row has a value for every objective")
    lo, hi = v.min(axis=0), v.max(axis=0)
    span = np.where(hi > lo, hi - lo, np.maximum(np.abs(hi), 1.0))
    return lo, hi + margin * span


def hypervolume(df: pd.DataFrame, objectives: Mapping[str, str], *,
                box: tuple[np.ndarray, np.ndarray] | None = None) -> float:
    """The normalised hypervolume of `df`'s rows on `objectives` (``{column: "min" | "max"}``), in [0, 1].

    Args:
        df: rows to measure (only their objective columns are read; rows with a NaN add nothing).
        objectives: the columns and their directions.
        box: ``(ideal, reference)`` from `bounds`; default: the rows' own. Give the same box to compare sets.

    Example:
        >>> d = pd.DataFrame({"accuracy": [0.9, 0.8, 0.5], "size_bytes": [100, 50, 10]})
        >>> round(hypervolume(d, {"accuracy": "max", "size_bytes": "min"}), 3)
        0.518
    """
    ideal, ref = box if box is not None else bounds(df, objectives)
    scale = np.where(ref > ideal, ref - ideal, 1.0)
    v = (_signed(df, objectives) - ideal) / scale
    return exact_hypervolume(v, (ref - ideal) / scale) / float(np.prod((ref - ideal) / scale))


def hypervolume_history(df: pd.DataFrame, objectives: Mapping[str, str], *, order: str = "trial",
                        box: tuple[np.ndarray, np.ndarray] | None = None) -> pd.DataFrame:
    """The hypervolume reached after each trial: one row per distinct `order` value, ascending, with
    ``evaluations`` (rows seen so far) and ``hypervolume`` (normalised, on `box` or the whole frame's bounds).

    Rows with ``feasible`` False (where the column exists) never add volume.

    Example:
        >>> d = pd.DataFrame({"trial": [0, 1, 2], "accuracy": [0.5, 0.9, 0.8], "size_bytes": [10, 100, 50]})
        >>> hypervolume_history(d, {"accuracy": "max", "size_bytes": "min"})["hypervolume"].round(3).tolist()
        [0.091, 0.174, 0.518]
    """
    if order not in df:
        raise WorkbenchError(f"hypervolume_history: no {order!r} column to order the rows by")
    box = box if box is not None else bounds(df, objectives)
    rows = df.sort_values(order, kind="stable")
    if "feasible" in rows:
        ok = rows["feasible"].astype("boolean").fillna(False).astype(bool)
    else:
        ok = pd.Series(True, index=rows.index)
    out = []
    keys = rows[order].to_numpy()
    for t in pd.unique(keys):
        upto = rows[(keys <= t)]
        out.append({order: t, "evaluations": len(upto),
                    "hypervolume": hypervolume(upto[ok.loc[upto.index]], objectives, box=box)})
    return pd.DataFrame(out)
