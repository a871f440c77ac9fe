"""Preparing a results frame for a figure: validate it, leave out error rows (and say so), pick a device and a
runtime, and the text a figure shows (hover, formatted numbers).

Example:
    >>> p = prepare(df, ["latency_ms_p50", "accuracy"], numeric=["latency_ms_p50"], what="example")
    >>> len(p.df), p.notes
    (6, [])
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import pandas as pd

from workbench.core.errors import WorkbenchError
from workbench.viz.style import axis_label, is_estimate


class Prepared:
    """A cleaned frame plus what was left out of it (for the subtitle)."""

    def __init__(self, df: pd.DataFrame, notes: list[str], device: str | None, runtime: str | None):
        self.df, self.notes, self.device, self.runtime = df, notes, device, runtime


def is_error(df: pd.DataFrame) -> pd.Series:
    """Rows that failed (the results-frame rule, `workbench.sweeps.frame.error_mask`)."""
    from workbench.sweeps.frame import error_mask

    return error_mask(df)


def prepare(
    df: Any,
    needed: Sequence[str],
    *,
    device: str | None = None,
    runtime: str | None = None,
    one_runtime: bool = False,
    numeric: Sequence[str] = (),
    what: str = "figure",
    every_device: bool = False,
) -> Prepared:
    """Validate, drop error rows, pick a device (for estimates) and runtime, de-duplicate device copies.

    With `every_device`, all device rows stay (figures with one panel or column per device)."""
    if not isinstance(df, pd.DataFrame):
        raise WorkbenchError(f"{what}: expected a results DataFrame (a sweep's or workbench.results_frame's), got "
                             f"{type(df).__name__}.")
    if df.empty:
        raise WorkbenchError(f"{what}: the results frame is empty. Run a sweep or workbench.results_frame(task, variants) "
                             "first.")
    missing = [c for c in needed if c not in df.columns]
    if missing:
        have = ", ".join(c for c in df.columns if pd.api.types.is_numeric_dtype(df[c]))
        raise WorkbenchError(f"{what}: the frame has no column {', '.join(map(repr, missing))}. Numeric columns it "
                             f"has: {have or 'none'}.")
    notes: list[str] = []
    bad = is_error(df)
    n_total = len(df)
    if bad.any():
        df = df[~bad]
        notes.append(f"{int(bad.sum())} of {n_total} rows with errors not shown")
        if df.empty:
            raise WorkbenchError(f"{what}: all {n_total} rows have an error (see the `error` column); nothing to plot.")
    df, runtime = pick(df, "runtime", runtime, one_runtime, notes, what)
    wants_device = any(is_estimate(c) or c in ("fits", "deployable") for c in needed) and not every_device
    df, device = pick(df, "device", device, wants_device, notes, what)
    if not wants_device and not every_device and device is None and "device" in df and df["device"].nunique(dropna=False) > 1:
        keys = [c for c in ("variant", "runtime", "task") if c in df]
        df = df.drop_duplicates(subset=keys or None)  # measured figures are repeated per device row
    if numeric:
        values = df[list(numeric)].apply(pd.to_numeric, errors="coerce")
        lost = ~np.isfinite(values.to_numpy(float)).all(axis=1)
        if lost.any():
            cols = ", ".join(numeric)
            notes.append(f"{int(lost.sum())} rows without {cols} not shown")
            df = df[~lost]
        if df.empty:
            raise WorkbenchError(f"{what}: no row has a value for {', '.join(numeric)}"
                                 + (f" on {device}" if device else "") + ".")
    return Prepared(df, notes, device, runtime)


def pick(df: pd.DataFrame, column: str, value: str | None, required: bool, notes: list[str],
          what: str) -> tuple[pd.DataFrame, str | None]:
    """Filter to `value` of `column`; when one is `required` and none given, take the first and say so."""
    if column not in df:
        if value is not None:
            raise WorkbenchError(f"{what}: {column}={value!r} given but the frame has no {column!r} column.")
        return df, None
    present = [v for v in pd.unique(df[column]) if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if value is not None:
        if value not in present:
            raise WorkbenchError(f"{what}: no rows with {column}={value!r}; the frame has {present}.")
        return df[df[column] == value], value
    if required and present:
        if len(present) > 1:
            chosen = "onnxruntime" if column == "runtime" and "onnxruntime" in present else present[0]
            notes.append(f"{column} {chosen} (of {len(present)}: pass {column}= for another)")
            return df[df[column] == chosen], chosen
        return df[df[column] == present[0]], present[0]
    if required and not present:
        raise WorkbenchError(f"{what}: needs {column} rows (estimates come per device): measure with devices=[...].")
    return df, None


def row_keys(df: pd.DataFrame) -> np.ndarray:
    return (df["key"] if "key" in df else pd.Series(df.index, index=df.index)).astype(str).to_numpy()


def display_text(values: pd.Series) -> pd.Series:
    """Strings for display, "–" for missing (pandas 3's ``astype(str)`` keeps missing values missing)."""
    return values.map(lambda v: "–" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v))


def format_values(values: pd.Series, spec: str = ".4g") -> pd.Series:
    """Numbers formatted with `spec`; a value that is not a number is shown as text ("–" when missing).

    One list comprehension over the float values (a hover of 500 points formats a dozen columns, and intervals
    add two more per metric; pandas' `map` costs several times more).
    """
    num = pd.to_numeric(values, errors="coerce")
    fmt = f"{{:{spec}}}".format
    floats = num.to_numpy(float, na_value=np.nan)
    out = pd.Series([fmt(v) if v == v else "–" for v in floats], index=values.index, dtype=object)
    ok = num.notna()
    return out if ok.all() else out.where(ok, display_text(values))


_HOVER = (("runtime", "runtime", None), ("device", "device", None), ("prune", "pruned", ".0%"),
          ("structure", "structure", None), ("bits", "weight bits", "d"), ("recover", "recovery steps", None),
          ("accuracy", "accuracy", ".4f"), ("fidelity", "agreement with original", ".4f"),
          ("latency_ms_p50", "latency median (measured, ms)", ".4g"),
          ("latency_ms_est", "latency (est., ms)", ".4g"), ("energy_mj_est", "energy (est., mJ)", ".4g"),
          ("size_bytes", "file size (bytes)", ",.0f"), ("size_deflated_bytes", "zipped (bytes)", ",.0f"),
          ("size_coded_bytes", "Huffman-coded (bytes)", ",.0f"),
          ("macs", "MACs", ",.0f"), ("realization", "runtime executes", None))


def hovertext(df: pd.DataFrame, extra: Sequence[str] = ()) -> np.ndarray:
    """One HTML hover string per row: the variant's configs and figures (vectorised by column).

    A figure with an interval in the frame shows it after the value: a metric's 95 % interval
    (``accuracy: 0.9120 (0.9000–0.9230)``), the median latency's 10th–90th percentile.

    Example:
        >>> d = pd.DataFrame({"variant": ["q8"], "accuracy": [0.912], "accuracy_low": [0.9], "accuracy_high": [0.923]})
        >>> hovertext(d)[0]
        '<b>q8</b><br>accuracy: 0.9120 (0.9000–0.9230)'
    """
    from workbench.sweeps.frame import interval_columns

    name = display_text(df["variant"]) if "variant" in df else pd.Series(df.index.astype(str), index=df.index)
    text = "<b>" + name + "</b>"
    shown = {c for c, _, _ in _HOVER}
    items = list(_HOVER) + [(c, axis_label(c), ".4g") for c in extra if c not in shown]
    for col, words, spec in items:
        if col not in df or df[col].isna().all():
            continue
        vals = df[col]
        pair = interval_columns(df, col) if spec and spec != "d" else None
        if spec == "d":
            vals = format_values(vals, ".0f")
        elif spec:
            vals = format_values(vals, spec)
        else:
            vals = display_text(vals).str.slice(0, 80)
        if pair is not None:
            low, high = (format_values(df[c], spec) for c in pair)
            vals = vals + (" (" + low + "–" + high + ")").where(df[pair[0]].notna() & df[pair[1]].notna(), "")
        text = text + f"<br>{words}: " + vals
    return text.to_numpy()


__all__ = ["Prepared", "display_text", "format_values", "hovertext", "is_error", "pick", "prepare", "row_keys"]
