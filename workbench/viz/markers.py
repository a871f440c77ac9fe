"""Marker groups shared by the scatter figures: one trace per colour group (bit-width, structure, runtime, ...),
the marker symbol of each row (its pruning structure, hollow when simulated), and the legend-only traces.

Example:
    >>> [name for _, name, _, mask in marker_groups(df, "bits") if mask.any()]
    ['32-bit float', '8-bit']
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from workbench.viz.style import (
    BITS_COLORS,
    PALETTE,
    STRUCTURE_NAMES,
    STRUCTURE_SYMBOLS,
    bits_value,
    color_of,
    group_name,
    structure_value,
)

if TYPE_CHECKING:  # pragma: no cover
    import plotly.graph_objects as go


def group_values(df: pd.DataFrame, column: str) -> pd.Series:
    if column == "structure":
        s = df["structure"].map(structure_value)
        if "prune" in df:
            s = s.where(pd.to_numeric(df["prune"], errors="coerce").fillna(0) > 0, "none")
        return s
    if column == "bits":
        return df["bits"].map(bits_value)
    return df[column]


def marker_groups(df: pd.DataFrame, column: str | None) -> list[tuple[Any, str, str, np.ndarray]]:
    """(value, legend name, colour, row mask) per group: every palette value (stable traces for updates),
    then the other values present."""
    if column is None:
        return [(None, "variants", BITS_COLORS[32], np.ones(len(df), bool))]
    values = group_values(df, column)
    known = list(PALETTE.get(column, {}))
    present = [v for v in pd.unique(values) if v not in known]
    out = []
    for v in known + sorted(present, key=str):
        out.append((v, group_name(column, v), color_of(column, v), (values == v).to_numpy()))
    return out


def marker_symbols(df: pd.DataFrame) -> np.ndarray:
    """Marker symbol per row: the structure's, hollow when the runtime does not execute the compression."""
    base = (group_values(df, "structure").map(STRUCTURE_SYMBOLS).fillna("circle") if "structure" in df
            else pd.Series("circle", index=df.index))
    if "realized" in df:
        simulated = df["realized"].map(lambda r: r is False or r == 0 and not pd.isna(r)).astype(bool)
        base = base.where(~simulated, base + "-open")
    return base.to_numpy()


def legend_traces(groups: list[tuple[Any, str, str, np.ndarray]], column: str | None, d: pd.DataFrame,
            symbols: np.ndarray) -> list["go.Scatter"]:
    """Legend-only traces (``meta="legend"``, one `None` point each): a filled circle per colour group, a grey
    marker per pruning structure present, and one for hollow (simulated) markers. Data traces stay out of the
    legend, because plotly draws a legend item with the symbol of the trace's first point. The set of traces is
    fixed for a colour column (absent entries are hidden), so `update_pareto` can update in place."""
    import plotly.graph_objects as go

    def item(name: str, colour: str, symbol: str, shown: bool, group: str) -> "go.Scatter":
        return go.Scatter(x=[None], y=[None], mode="markers", name=name, legendgroup=group, meta="legend",
                          showlegend=shown, hoverinfo="skip",
                          marker={"color": colour, "symbol": symbol, "size": 10, "line": {"color": colour,
                                                                                           "width": 1.5}})

    out = [item(name, colour, STRUCTURE_SYMBOLS.get(value, "circle") if column == "structure" else "circle",
                bool(mask.any()), name) for value, name, colour, mask in groups]
    if column != "structure" and "structure" in d:
        present = set(group_values(d, "structure"))
        out += [item(STRUCTURE_NAMES[k] + ("" if k == "none" else " pruning"), "#888888", sym, k in present,
                     f"symbol:{k}") for k, sym in STRUCTURE_SYMBOLS.items()]
    simulated = any(str(x).endswith("-open") for x in symbols)
    out.append(item("hollow: simulated (runs as float here)", "#888888", "circle-open", simulated, "symbol:simulated"))
    return out


__all__ = ["group_values", "legend_traces", "marker_groups", "marker_symbols"]
