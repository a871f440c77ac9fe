"""Reading a sweep: the Pareto front and the best variant under constraints."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from workbench.core.errors import WorkbenchError


def _ok_rows(df: pd.DataFrame) -> pd.Series:
    if "error" not in df:
        return pd.Series(True, index=df.index)
    return df["error"].isna() | (df["error"].astype("string").fillna("") == "")


def pareto_mask(values: np.ndarray) -> np.ndarray:
    """Non-dominated rows of a matrix where every column is to be maximised.

    A row is dominated when another row is at least as good in every column and better in one; rows with a
    non-finite value are never on the front. Two columns take O(n log n); more are compared in blocks of
    1024 rows (vectorised, memory bounded), fine for the thousands of rows a sweep makes.
    """
    v = np.asarray(values, dtype=float)
    if v.ndim != 2:
        raise ValueError(f"pareto_mask takes a 2-D array (rows x objectives), got shape {v.shape}")
    finite = np.isfinite(v).all(axis=1)
    if v.shape[1] == 2:
        out = np.zeros(len(v), bool)
        out[finite] = _front_2d(v[finite])
        return out
    v = np.where(finite[:, None], v, -np.inf)
    dominated = np.zeros(len(v), bool)
    for start in range(0, len(v), 1024):
        block = v[start:start + 1024]
        ge = (v[:, None, :] >= block[None, :, :]).all(axis=2)
        gt = (v[:, None, :] > block[None, :, :]).any(axis=2)
        dominated[start:start + 1024] = (ge & gt & finite[:, None]).any(axis=0)
    return finite & ~dominated


def _front_2d(v: np.ndarray) -> np.ndarray:
    """Non-dominated rows of finite 2-column values (both maximised), in O(n log n): sort by the first column
    descending; a row survives if it is the best of its tie group on the second column and beats every row with
    a strictly larger first column."""
    if not len(v):
        return np.zeros(0, bool)
    order = np.lexsort((-v[:, 1], -v[:, 0]))
    s = v[order]
    starts = np.flatnonzero(np.r_[True, s[1:, 0] != s[:-1, 0]])
    best = np.maximum.reduceat(s[:, 1], starts)
    before = np.r_[-np.inf, np.maximum.accumulate(best)[:-1]]
    group = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(s)]))
    keep = (s[:, 1] == best[group]) & (s[:, 1] > before[group])
    out = np.zeros(len(v), bool)
    out[order] = keep
    return out


def pareto(
    df: pd.DataFrame,
    maximize: Sequence[str] = ("accuracy",),
    minimize: Sequence[str] = ("size_bytes", "latency_ms_p50"),
    *,
    by: str | Sequence[str] | None = None,
) -> pd.DataFrame:
    """Mark the non-dominated rows: a copy of `df` with a boolean column ``pareto``.

    Rows with an `error`, or a NaN in any objective, are never on the front.

    Args:
        df: sweep results.
        maximize: columns where higher is better.
        minimize: columns where lower is better.
        by: compute one front per group (e.g. ``"device"`` or ``["runtime", "device"]``).

    Example:
        >>> front = workbench.pareto(df, maximize=["accuracy"], minimize=["latency_ms_p50"])
        >>> front[front.pareto][["variant", "accuracy", "latency_ms_p50"]]
    """
    cols = list(maximize) + list(minimize)
    if not cols:
        raise WorkbenchError("pareto needs at least one column to maximise or minimise")
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise WorkbenchError(f"pareto: no column(s) {missing} in the results; columns: {', '.join(map(str, df.columns))}")
    out = df.copy()
    signs = np.array([1.0] * len(maximize) + [-1.0] * len(minimize))
    values = out[cols].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float) * signs
    values[~_ok_rows(out).to_numpy()] = np.nan
    mask = np.zeros(len(out), dtype=bool)
    if by is None:
        mask = pareto_mask(values)
    else:
        positions = np.arange(len(out))
        for _, grp in out.groupby(by, dropna=False, sort=False).indices.items():
            pos = positions[grp]
            mask[pos] = pareto_mask(values[pos])
    out["pareto"] = mask
    return out


CONSTRAINTS = {
    "min_accuracy": ("accuracy", ">="),
    "max_latency_ms": (None, "<="),  # measured p50, or the device estimate when a device is given
    "max_energy_mj": ("energy_mj_est", "<="),
    "max_size_bytes": ("size_bytes", "<="),
    "max_memory_bytes": ("peak_mem_bytes", "<="),
}


def best(
    df: pd.DataFrame,
    *,
    device: str | None = None,
    runtime: str | None = None,
    min_accuracy: float | None = None,
    max_latency_ms: float | None = None,
    max_energy_mj: float | None = None,
    max_size_bytes: float | None = None,
    max_memory_bytes: float | None = None,
    must_fit: bool = True,
    metric: str = "accuracy",
    objective: str = "latency_ms_p50",
    maximize_objective: bool = False,
) -> pd.Series:
    """The best variant that meets every constraint, or a `WorkbenchError` naming the one nothing meets.

    Args:
        df: sweep results.
        device: keep rows estimated for this device profile; then `max_latency_ms` and a latency `objective`
            use the device *estimate* (`latency_ms_est`), and `must_fit` requires ``fits``.
        runtime: keep rows measured on this runtime.
        min_accuracy: lowest acceptable value of `metric`.
        max_latency_ms / max_energy_mj / max_size_bytes / max_memory_bytes: budgets (energy is the device
            estimate per inference; size is the artefact file; memory the measured peak).
        must_fit: with a device, drop variants the estimator says do not fit its memory.
        metric: the quality column that `min_accuracy` applies to.
        objective: the column to optimise among the rows that pass (lowest wins unless `maximize_objective`).

    Returns:
        The chosen row (a `pandas.Series`); ``row.attrs`` is not used — the row's own columns say everything.

    Example:
        >>> workbench.best(df, device="raspberry-pi-4", min_accuracy=0.97, max_latency_ms=5)
    """
    rows = df[_ok_rows(df)]
    if rows.empty:
        raise WorkbenchError("best: the results hold no successful variant (every row has an error)")
    scope = []
    if runtime is not None:
        rows = rows[rows["runtime"] == runtime]
        scope.append(f"runtime {runtime}")
        if rows.empty:
            raise WorkbenchError(f"best: no results on runtime {runtime!r}; have: {sorted(df['runtime'].unique())}")
    latency_col = "latency_ms_p50"
    if device is not None:
        have = sorted(str(d) for d in df["device"].dropna().unique()) if "device" in df else []
        rows = rows[rows["device"] == device] if "device" in rows else rows.iloc[0:0]
        scope.append(f"device {device}")
        if rows.empty:
            raise WorkbenchError(f"best: no results for device {device!r}; the sweep estimated for: {have or 'none'}")
        latency_col = "latency_ms_est"
    limits = {"min_accuracy": min_accuracy, "max_latency_ms": max_latency_ms, "max_energy_mj": max_energy_mj,
              "max_size_bytes": max_size_bytes, "max_memory_bytes": max_memory_bytes}
    passing = pd.Series(True, index=rows.index)
    report = []
    for name, limit in limits.items():
        if limit is None:
            continue
        col, op = CONSTRAINTS[name]
        col = metric if name == "min_accuracy" else (latency_col if col is None else col)
        if col not in rows:
            raise WorkbenchError(f"best: {name} needs column {col!r}, which the results lack"
                                 + (" (pass device=... for estimates)" if col.endswith("_est") else ""))
        vals = pd.to_numeric(rows[col], errors="coerce")
        ok = vals >= limit if op == ">=" else vals <= limit
        best_val = vals.max() if op == ">=" else vals.min()
        report.append((name, col, op, limit, int(ok.sum()), best_val))
        passing &= ok
    if device is not None and must_fit and "fits" in rows:
        ok = rows["fits"].astype("boolean").fillna(False).astype(bool)
        report.append(("fits", "fits", "==", True, int(ok.sum()), None))
        passing &= ok
    chosen = rows[passing]
    if chosen.empty:
        where = f" ({', '.join(scope)})" if scope else ""
        lines = [f"  {name}: {col} {op} {limit}: met by {n} of {len(rows)}"
                 + (f" (best available {val:.4g})" if val is not None and not pd.isna(val) else "")
                 for name, col, op, limit, n, val in report]
        none = [r[0] for r in report if r[4] == 0]
        head = (f"no variant meets {', '.join(none)}" if none else "no variant meets all constraints together")
        raise WorkbenchError(f"best: {head}{where}:\n" + "\n".join(lines))
    obj = latency_col if objective in ("latency_ms_p50", "latency") and device is not None else objective
    if obj not in chosen:
        raise WorkbenchError(f"best: objective {obj!r} is not a column of the results")
    order = pd.to_numeric(chosen[obj], errors="coerce")
    pick = order.idxmax() if maximize_objective else order.idxmin()
    if pd.isna(pick):
        raise WorkbenchError(f"best: no passing variant has a value for the objective {obj!r}")
    return chosen.loc[pick]


def pareto_table(df: pd.DataFrame, maximize: Sequence[str] = ("accuracy",),
                 minimize: Sequence[str] = ("size_bytes", "latency_ms_p50"), *, runtime: str | None = None,
                 columns: Sequence[str] | None = None) -> pd.DataFrame:
    """The Pareto-optimal variants as a compact table (one row per variant and runtime, device-free columns)."""
    rows = df if runtime is None else df[df["runtime"] == runtime]
    if "device" in rows:
        rows = rows.drop_duplicates(["variant", "runtime"])
    marked = pareto(rows, maximize, minimize, by="runtime")
    front = marked[marked["pareto"]]
    cols = columns or [c for c in ["variant", "runtime", *maximize, *[f"baseline_{m}" for m in maximize],
                                   *minimize, "size_deflated_bytes", "realized", "macs"] if c in front]
    return front.sort_values(list(minimize[:1]) or cols[:1])[list(dict.fromkeys(cols))].reset_index(drop=True)
