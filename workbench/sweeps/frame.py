"""The results frame: the one owner of what a sweep's DataFrame holds and how it is read.

Every reader of results (the sweep itself, the store, `best` / `pareto`, the report, viz, the UI, the fleet
plan) goes through these functions: column order, the task-metric columns, the baseline join.
"""

from __future__ import annotations

from typing import Any, Sequence

import pandas as pd

FIRST = ["task", "variant", "prune", "structure", "bits", "recover", "runtime", "device"]


def frame(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Rows to a DataFrame with the config columns first and missing values as NaN/None."""
    df = pd.DataFrame(list(rows))
    if df.empty:
        return df
    first = [c for c in FIRST if c in df.columns]
    return df[first + [c for c in df.columns if c not in first]]


def with_baseline(df: pd.DataFrame) -> pd.DataFrame:
    """Add `baseline_<metric>` columns: the unpruned float model's metrics, same task and runtime."""
    if df.empty or "variant" not in df:
        return df
    df = df.drop(columns=[c for c in df.columns if c.startswith("baseline_")])
    ok = df["error"].isna() if "error" in df else pd.Series(True, index=df.index)
    base = df[(df["variant"] == "baseline") & ok].drop_duplicates(["task", "runtime"])
    base = base.set_index(["task", "runtime"])
    keys = pd.MultiIndex.from_frame(df[["task", "runtime"]])
    for m in metric_columns(df):
        df[f"baseline_{m}"] = base[m].reindex(keys).to_numpy() if m in base else float("nan")
    return df


def metric_columns(df: pd.DataFrame) -> list[str]:
    """The task-metric columns of a results frame (everything numeric that is not a known measurement)."""
    from workbench.measurement.record import COLUMNS, DEVICE_COLUMNS

    known = set(COLUMNS) | set(DEVICE_COLUMNS) | {
        "task", "lineage", "artifact", "versions", "key", "unit", "created", "prune", "structure", "bits",
        "recover", "seconds", "power_w_at_rate_est", "pareto"}
    return [c for c in df.columns if c not in known and not c.startswith("baseline_")
            and pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])]
