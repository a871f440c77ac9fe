"""Reading a sweep: the Pareto front, the rows within budgets, and the best variant under constraints."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, Sequence

import numpy as np
import pandas as pd

from workbench.core.errors import WorkbenchError
from workbench.sweeps.frame import error_mask


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


from workbench.sweeps.frame import LOWER_IS_BETTER  # noqa: E402 - defined with the frame contract, used here


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
        maximize: columns where higher is better (a `LOWER_IS_BETTER` metric such as ``perplexity`` listed
            here is minimised: it is the quality objective, and lower is its better).
        minimize: columns where lower is better.
        by: compute one front per group (e.g. ``"device"`` or ``["runtime", "device"]``).

    Example:
        >>> front = workbench.pareto(df, maximize=["accuracy"], minimize=["latency_ms_p50"])
        >>> front.loc[front.pareto, "variant"].tolist()
        ['q8', 'channel-0.50+q8']
    """
    minimize = [*(c for c in maximize if c in LOWER_IS_BETTER), *minimize]
    maximize = [c for c in maximize if c not in LOWER_IS_BETTER]
    cols = list(maximize) + list(minimize)
    if not cols:
        raise WorkbenchError("pareto needs at least one column to maximise or minimise")
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise WorkbenchError(f"pareto: no column(s) {missing} in the results; columns: {', '.join(map(str, df.columns))}")
    out = df.copy()
    signs = np.array([1.0] * len(maximize) + [-1.0] * len(minimize))
    values = out[cols].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float) * signs
    values[error_mask(out).to_numpy()] = np.nan
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


# keyword: (column, comparison, what it asks, the best on offer, why a row misses it). {b}: the budget, {v}: a
# value, {bm} / {vm}: the same in MB, {metric}: the metric's name. None as column: the `latency_col` /
# `memory_col` / `metric` argument of `within_budget`.
BUDGETS: dict[str, tuple[str | None, str, str, str, str]] = {
    "max_latency_ms": (None, "<=", "latency <= {b:g} ms", "fastest {v:.4g} ms", "latency {v:.3g} ms > {b:g} ms"),
    "max_energy_mj": ("energy_mj_est", "<=", "energy <= {b:g} mJ/inference", "lowest {v:.4g} mJ",
                      "energy {v:.3g} mJ > {b:g} mJ"),
    "max_power_w": ("power_w_est", "<=", "power <= {b:g} W", "lowest {v:.4g} W", "power {v:.3g} W > {b:g} W"),
    "max_size_bytes": ("size_bytes", "<=", "size <= {bm:.4g} MB", "smallest {vm:.4g} MB",
                       "size {vm:.3g} MB > {bm:.4g} MB"),
    "max_memory_bytes": (None, "<=", "memory <= {bm:.4g} MB", "smallest {vm:.4g} MB",
                         "memory {vm:.3g} MB > {bm:.4g} MB"),
    "min_metric": (None, ">=", "{metric} >= {b:g}", "best {v:.4g}", "{metric} {v:.4g} < {b:g}"),
}


@dataclass(frozen=True, eq=False)
class Budget:
    """One budget checked on every row of a results frame (what `within_budget` returns, one per budget given).

    Attributes:
        name: the keyword of `within_budget` (``"max_latency_ms"``, ``"min_metric"``, ...; ``"fits"`` for
            `must_fit`).
        column: the column it reads.
        op: ``"<="``, ``">="`` (or ``"=="`` for ``fits``).
        limit: the budget (``True`` for ``fits``).
        text: what it asks, in words (``"latency <= 2 ms"``).
        ok: per row, True where the row meets it (a missing value never does).
        values: the column as numbers (NaN where missing; all NaN when the frame lacks the column).
        best: the best value on offer (lowest for ``<=``, highest for ``>=``; NaN for ``fits`` or no value).
        best_text: the best on offer, in words (``"fastest 2.553 ms"``; empty for ``fits``).
        present: whether the frame has the column.
        why_text: the template of `why` (``"latency {v:.3g} ms > {b:g} ms"``; empty for ``fits``).
    """

    name: str
    column: str
    op: str
    limit: Any
    text: str
    ok: pd.Series
    values: pd.Series
    best: float
    best_text: str
    present: bool
    why_text: str = ""

    def missed(self) -> pd.Series:
        """Per row: True where the row has a value and it misses the budget (a missing value is not a miss)."""
        return ~self.ok & self.values.notna()

    def why(self) -> pd.Series:
        """Per row: why it misses the budget (``"latency 3.1 ms > 2 ms"``), empty where it does not miss."""
        missed = self.missed()
        b = self.limit
        return pd.Series([self.why_text.format(v=v, vm=v / 1e6, b=b, bm=b / 1e6) if m and self.why_text else ""
                          for v, m in zip(self.values, missed)], index=self.values.index, dtype=object)


def within_budget(
    df: pd.DataFrame,
    *,
    max_latency_ms: float | None = None,
    max_energy_mj: float | None = None,
    max_power_w: float | None = None,
    max_size_bytes: float | None = None,
    max_memory_bytes: float | None = None,
    min_metric: float | None = None,
    metric: str = "accuracy",
    latency_col: str = "latency_ms_p50",
    memory_col: str = "peak_mem_bytes",
    must_fit: bool = False,
) -> tuple[pd.Series, list[Budget]]:
    """Which rows meet every budget given, and how each budget fares on its own.

    Lower is better for latency, energy, power, size and memory (``value <= budget``); higher for the metric
    (``value >= min_metric``). A row without a value for a budget's column does not meet it. Error rows are
    not dropped here (see `workbench.sweeps.frame.ok_rows`).

    Args:
        df: results rows.
        max_latency_ms: budget on `latency_col`.
        max_energy_mj: budget on ``energy_mj_est`` (the device estimate per inference).
        max_power_w: budget on ``power_w_est``.
        max_size_bytes: budget on ``size_bytes`` (the artefact file).
        max_memory_bytes: budget on `memory_col`.
        min_metric: the lowest acceptable `metric` (the highest, for a `LOWER_IS_BETTER` metric).
        metric: the quality column of `min_metric`.
        latency_col: ``latency_ms_p50`` (measured) or ``latency_ms_est`` (a device estimate).
        memory_col: ``peak_mem_bytes`` (measured peak) or any other bytes column.
        must_fit: also require the ``fits`` column (the estimator's memory check) where the frame has one.

    Returns:
        ``(mask, budgets)``: `mask` is True for the rows that meet every budget; `budgets` holds one `Budget`
        per budget given, in the order of the arguments above (``fits`` last), each with its per-row `ok`, the
        best value on offer and texts to explain a miss.

    Example:
        >>> mask, budgets = within_budget(df, max_latency_ms=0.08, min_metric=0.97)
        >>> [(b.text, int(b.ok.sum()), b.best_text) for b in budgets]
        [('latency <= 0.08 ms', 3, 'fastest 0.05544 ms'), ('accuracy >= 0.97', 2, 'best 1')]
        >>> df.loc[mask, "variant"].tolist()
        ['q8']
        >>> budgets[0].why().tolist()[:3]
        ['latency 0.0825 ms > 0.08 ms', '', 'latency 0.0846 ms > 0.08 ms']
    """
    limits = {"max_latency_ms": max_latency_ms, "max_energy_mj": max_energy_mj, "max_power_w": max_power_w,
              "max_size_bytes": max_size_bytes, "max_memory_bytes": max_memory_bytes, "min_metric": min_metric}
    columns = {"max_latency_ms": latency_col, "max_memory_bytes": memory_col, "min_metric": metric}
    mask = pd.Series(True, index=df.index)
    out = []
    for name, limit in limits.items():
        if limit is None:
            continue
        default, op, text, best_text, why_text = BUDGETS[name]
        col = columns.get(name, default)
        if name == "min_metric" and metric in LOWER_IS_BETTER:  # perplexity: the threshold is the highest allowed
            op, text, best_text, why_text = "<=", "{metric} <= {b:g}", "best {v:.4g}", "{metric} {v:.4g} > {b:g}"
        present = col in df
        vals = (pd.to_numeric(df[col], errors="coerce").astype(float) if present
                else pd.Series(np.nan, index=df.index, dtype=float))
        ok = vals >= limit if op == ">=" else vals <= limit
        best = vals.max() if op == ">=" else vals.min()
        fmt = {"b": limit, "bm": limit / 1e6, "metric": metric}
        out.append(Budget(name, col, op, limit, text.format(**fmt), ok, vals, best,
                          best_text.format(v=best, vm=best / 1e6), present,
                          why_text.replace("{metric}", metric)))
        mask &= ok
    if must_fit and "fits" in df:
        ok = df["fits"].astype("boolean").fillna(False).astype(bool)
        out.append(Budget("fits", "fits", "==", True, "fits the device's memory (estimate)", ok,
                          ok.astype(float), float("nan"), "", True))
        mask &= ok
    return mask, out


def missed_reasons(budgets: Sequence[Budget], index: pd.Index) -> pd.Series:
    """Per row of `index`: the budgets it misses, as ``"; "``-joined `Budget.why` texts (empty: misses none).

    Example:
        >>> _, budgets = within_budget(df, max_latency_ms=0.08, min_metric=0.97)
        >>> missed_reasons(budgets, df.index).tolist()[:3]
        ['latency 0.0825 ms > 0.08 ms', '', 'latency 0.0846 ms > 0.08 ms; accuracy 0.3125 < 0.97']
    """
    out = pd.Series("", index=index, dtype=object)
    for b in budgets:
        why = b.why().reindex(index).fillna("")
        out = out.where(why == "", out + np.where(out == "", "", "; ") + why)
    return out


_SIMULATED = "pass realized_only=False to consider simulated variants"
# best's names for the budgets, in the order its message lists them.
BEST_NAMES = {"min_metric": "min_accuracy", "max_latency_ms": "max_latency_ms", "max_energy_mj": "max_energy_mj",
              "max_size_bytes": "max_size_bytes", "max_memory_bytes": "max_memory_bytes", "fits": "fits"}


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
    max_metric: float | None = None,
    metric: str = "accuracy",
    objective: str = "latency_ms_p50",
    maximize_objective: bool = False,
    realized_only: bool = True,
) -> pd.Series:
    """The best variant that meets every constraint, or a `WorkbenchError` naming the one nothing meets.

    Only *realised* variants are considered by default: a row whose ``realized`` is False (its compression is
    simulated: the runtime has no kernel for it, so the file that runs is the float model) is no recommendation.
    A frame without a ``realized`` column counts every row as realised; where the column exists, a missing value
    (None / NaN) is not proof of a real kernel and counts as simulated.

    Args:
        df: sweep results.
        device: keep rows estimated for this device profile; then `max_latency_ms` and a latency `objective`
            use the device *estimate* (`latency_ms_est`), and `must_fit` requires ``fits``.
        runtime: keep rows measured on this runtime; `None` (default) compares every runtime in the results, so
            the chosen row is the best variant *and* runtime (its ``runtime`` column). Device estimates cost a
            runtime only where the profile runs it (`DeviceProfile.runs`); rows whose estimates tie (the same
            variant realised alike on two runtimes) are ordered by their measured latency.
        min_accuracy: lowest acceptable value of `metric` (for a metric where higher is better).
        max_metric: highest acceptable value of a `LOWER_IS_BETTER` metric (``metric="perplexity"``).
        max_latency_ms / max_energy_mj / max_size_bytes / max_memory_bytes: budgets (energy is the device
            estimate per inference; size is the artefact file; memory the measured peak).
        must_fit: with a device, drop variants the estimator says do not fit its memory.
        metric: the quality column that `min_accuracy` applies to.
        objective: the column to optimise among the rows that pass (lowest wins unless `maximize_objective`).
        realized_only: skip simulated variants (``realized`` not True); False considers them too.

    Returns:
        The chosen row (a `pandas.Series`); ``row.attrs`` is not used — the row's own columns say everything.

    Example:
        >>> workbench.best(df, device="raspberry-pi-4", min_accuracy=0.97, max_latency_ms=5)["variant"]
        'q8'
    """
    lower = metric in LOWER_IS_BETTER
    if lower and min_accuracy is not None:
        raise WorkbenchError(f"best: lower {metric} is better; give its highest acceptable value as max_metric=..., "
                             "not min_accuracy.")
    if not lower and max_metric is not None:
        raise WorkbenchError(f"best: higher {metric} is better; give its lowest acceptable value as min_accuracy=....")
    min_accuracy = max_metric if lower else min_accuracy
    names = {**BEST_NAMES, "min_metric": "max_metric"} if lower else BEST_NAMES
    rows = df[~error_mask(df)]
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
    simulated = rows.iloc[0:0]
    if realized_only and "realized" in rows:
        real = rows["realized"].map(lambda v: isinstance(v, (bool, np.bool_, int, float)) and v == v and bool(v))
        rows, simulated = rows[real.astype(bool)], rows[~real.astype(bool)]
        if rows.empty:
            where = f" ({', '.join(scope)})" if scope else ""
            raise WorkbenchError(f"best: every variant{where} is simulated (its compression has no kernel on the "
                                 f"runtime, so the file that ran is not compressed): {_SIMULATED}")
    check = partial(within_budget, min_metric=min_accuracy, max_latency_ms=max_latency_ms,
                    max_energy_mj=max_energy_mj, max_size_bytes=max_size_bytes, max_memory_bytes=max_memory_bytes,
                    metric=metric, latency_col=latency_col, must_fit=device is not None and must_fit)
    passing, budgets = check(rows)
    by_name = {b.name: b for b in budgets}
    budgets = [by_name[n] for n in names if n in by_name]
    for b in budgets:
        if not b.present:
            name = names[b.name]
            raise WorkbenchError(f"best: {name} needs column {b.column!r}, which the results lack"
                                 + (" (pass device=... for estimates)" if b.column.endswith("_est") else ""))
    chosen = rows[passing]
    if chosen.empty:
        where = f" ({', '.join(scope)})" if scope else ""
        of = f"{len(rows)} realised" if len(simulated) else f"{len(rows)}"
        lines = [f"  {names[b.name]}: {b.column} {b.op} {b.limit}: met by {int(b.ok.sum())} of {of}"
                 + (f" (best available {b.best:.4g})" if not pd.isna(b.best) else "") for b in budgets]
        none = [names[b.name] for b in budgets if not b.ok.any()]
        head = (f"no variant meets {', '.join(none)}" if none else "no variant meets all constraints together")
        if len(simulated) and check(simulated)[0].any():
            head = (head.replace("no variant", "no realised variant", 1) + "; only simulated variants do (their "
                    f"compression has no kernel on the runtime, so the file that ran is not compressed): {_SIMULATED}")
        raise WorkbenchError(f"best: {head}{where}:\n" + "\n".join(lines))
    obj = latency_col if objective in ("latency_ms_p50", "latency") and device is not None else objective
    if obj not in chosen:
        raise WorkbenchError(f"best: objective {obj!r} is not a column of the results")
    order = pd.to_numeric(chosen[obj], errors="coerce")
    if order.isna().all():
        raise WorkbenchError(f"best: no passing variant has a value for the objective {obj!r}")
    keys = pd.DataFrame({"objective": -order if maximize_objective else order}, index=chosen.index)
    if obj == "latency_ms_est" and "latency_ms_p50" in chosen:  # equal estimates: the faster measured runtime
        keys["measured"] = pd.to_numeric(chosen["latency_ms_p50"], errors="coerce")
    return chosen.loc[keys.sort_values(list(keys.columns), kind="stable", na_position="last").index[0]]


def pareto_table(df: pd.DataFrame, maximize: Sequence[str] = ("accuracy",),
                 minimize: Sequence[str] = ("size_bytes", "latency_ms_p50"), *, runtime: str | None = None,
                 columns: Sequence[str] | None = None) -> pd.DataFrame:
    """The Pareto-optimal variants as a compact table (one row per variant and runtime, device-free columns).

    Each quality metric comes with its 95 % interval (``<metric>_low`` / ``<metric>_high``) and the original's
    value where the frame has them, and a ``vs original`` column says the difference in words, "within noise of
    the original" when the original lies inside the interval (`workbench.sweeps.noise.noise_column`; a second
    metric's column is ``<metric> vs original``).

    Example:
        >>> d = pd.DataFrame({"variant": ["baseline", "q8", "ch50+q8"], "runtime": "onnxruntime",
        ...                   "accuracy": [0.92, 0.925, 0.88], "accuracy_low": [0.90, 0.905, 0.86],
        ...                   "accuracy_high": [0.94, 0.943, 0.90], "baseline_accuracy": 0.92,
        ...                   "size_bytes": [600, 160, 80], "latency_ms_p50": [1.0, 0.8, 0.3]})
        >>> pareto_table(d)[["variant", "accuracy_low", "vs original"]].values.tolist()
        [['ch50+q8', 0.86, '4.0 points below the original'], ['q8', 0.905, 'within noise of the original']]
    """
    from workbench.sweeps.noise import noise_column

    rows = df if runtime is None else df[df["runtime"] == runtime]
    if "device" in rows:
        rows = rows.drop_duplicates(["variant", "runtime"])
    marked = pareto(rows, maximize, minimize, by="runtime")
    front = marked[marked["pareto"]].copy()
    words = {}
    for i, m in enumerate(maximize):
        if m in front and f"baseline_{m}" in front:
            words[m] = "vs original" if i == 0 else f"{m} vs original"
            front[words[m]] = noise_column(front, m)
    quality = [c for m in maximize for c in (m, f"{m}_low", f"{m}_high", f"baseline_{m}", words.get(m))]
    cols = columns or [c for c in ["variant", "runtime", *quality, *minimize, "size_deflated_bytes", "realized",
                                   "macs"] if c is not None and c in front]
    return front.sort_values(list(minimize[:1]) or cols[:1])[list(dict.fromkeys(cols))].reset_index(drop=True)
