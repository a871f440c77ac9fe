"""Trade-offs between two metrics: the Pareto front of a results frame and the scatter that draws it.

Example:
    >>> fig = pareto_scatter(df, x="latency_ms_p50", y="accuracy")
    >>> fig.layout.xaxis.title.text
    'latency, median (measured, ms)'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np
import pandas as pd

from workbench.core.errors import WorkbenchError
from workbench.viz.frames import hovertext, prepare, row_keys
from workbench.viz.markers import legend_traces, marker_groups, marker_symbols
from workbench.viz.style import PALETTE, axis_label, axis_type, figure_title, maximized, short_label
from workbench.viz.update import figure_from

if TYPE_CHECKING:  # pragma: no cover
    import plotly.graph_objects as go


def pareto_mask(values: np.ndarray, maximize: Sequence[bool]) -> np.ndarray:
    """True for the rows no other row dominates (senses per column); the one implementation lives in
    `workbench.sweeps.analysis.pareto_mask`."""
    from workbench.sweeps.analysis import pareto_mask as maximal

    return maximal(np.where(np.asarray(maximize, bool), values, -np.asarray(values, float)))


def pareto_front(df: pd.DataFrame, x: str, y: str, *, maximize: Iterable[str] | None = None,
                 minimize: Iterable[str] | None = None) -> pd.Series:
    """Boolean Series: the rows on the Pareto front of `x` and `y` (senses inferred unless given).

    Example:
        >>> df[pareto_front(df, "latency_ms_p50", "accuracy")].variant.tolist()
        ['q8', 'channel-0.50+q8']
    """
    senses = senses_of([x, y], maximize, minimize)
    values = df[[x, y]].apply(pd.to_numeric, errors="coerce").to_numpy(float)
    return pd.Series(pareto_mask(values, senses), index=df.index, name="pareto")


def senses_of(cols: Sequence[str], maximize: Iterable[str] | None, minimize: Iterable[str] | None) -> list[bool]:
    """Per column, whether larger is better: as given in `maximize` / `minimize`, else `maximized`'s default."""
    up, down = set(maximize or ()), set(minimize or ())
    both = up & down
    if both:
        raise WorkbenchError(f"{sorted(both)} are in both maximize and minimize; pick one for each column.")
    return [True if c in up else False if c in down else maximized(c) for c in cols]


def pareto_scatter(
    df: pd.DataFrame,
    x: str = "latency_ms_p50",
    y: str = "accuracy",
    *,
    color: str | None = "bits",
    maximize: Iterable[str] | None = None,
    minimize: Iterable[str] | None = None,
    device: str | None = None,
    runtime: str | None = None,
    highlight: Any = None,
    title: str | None = None,
    fig: Any = None,
) -> "go.Figure":
    """Two metrics against each other, one point per variant (and runtime), with the Pareto front drawn.

    Colour is `color` (bit-width by default, from the shared palette), the marker symbol the pruning structure,
    and a hollow marker a variant whose compression the runtime only simulates. The Pareto front (the variants
    nothing beats on both axes) is a step line. Error bars show the noise: a metric's 95 % interval
    (``<metric>_low`` .. ``<metric>_high``, e.g. ``accuracy_low``) and the median latency's spread
    (``latency_ms_p10`` .. ``latency_ms_p90``) wherever the frame has those columns. Hovering a point shows its
    configs and figures (with their intervals); each point's `customdata` is its row `key` (for click handlers).

    Args:
        df: results frame.
        x, y: columns to plot (e.g. ``"size_bytes"``, ``"latency_ms_est"``, ``"energy_mj_est"``).
        color: column to colour by: ``"bits"``, ``"structure"``, ``"runtime"``, ``"device"``, a numeric column
            (continuous scale) or None.
        maximize, minimize: which of x / y is better larger / smaller (default: metrics larger, costs smaller).
        device: the device of estimate columns (default: the frame's first, named in the axis title).
        runtime: only this runtime's rows (default: all, each its own point).
        highlight: a row `key` (or index label when there is no `key` column) to ring, e.g. the chosen variant.
        title: figure title (default: "<y> against <x>").
        fig: a `go.FigureWidget` to update in place instead of returning a new figure.

    Returns:
        The figure (or `fig`, updated). Traces: ``"Pareto front"``, one per colour group, ``"highlighted"``, then
        legend-only traces (``meta="legend"``, no data).

    Example:
        >>> fig = pareto_scatter(df, x="size_bytes", y="accuracy", highlight=df.key.iloc[0])
        >>> [t.name for t in fig.data][:2]
        ['Pareto front', '32-bit float']
    """
    import plotly.graph_objects as go

    needed = [x, y] + ([color] if color else [])
    p = prepare(df, needed, device=device, runtime=runtime, numeric=[x, y], what="pareto_scatter")
    d = p.df
    xs = pd.to_numeric(d[x], errors="coerce").to_numpy(float)
    ys = pd.to_numeric(d[y], errors="coerce").to_numpy(float)
    ex, ey = error_bounds(d, x, xs), error_bounds(d, y, ys)
    senses = senses_of([x, y], maximize, minimize)
    front = pareto_mask(np.column_stack([xs, ys]), senses)
    order = np.lexsort((ys[front] * (1 if senses[1] else -1), xs[front]))
    fx, fy = xs[front][order], ys[front][order]
    keys = row_keys(d)
    hover = hovertext(d, extra=[x, y])
    symbols = marker_symbols(d)
    traces = [go.Scatter(x=fx, y=fy, mode="lines", name="Pareto front", hoverinfo="skip",
                         line={"shape": "vh" if senses[0] else "hv", "color": "#555555", "width": 1.5,
                               "dash": "dot"})]
    numeric_color = bool(color) and color not in PALETTE and pd.api.types.is_numeric_dtype(d[color])
    if numeric_color:
        groups = []
        traces.append(go.Scatter(
            x=xs, y=ys, mode="markers", name="variants", customdata=keys, hovertext=hover,
            hovertemplate="%{hovertext}<extra></extra>", showlegend=False,
            error_x=error_bars(ex, None, "#999999"), error_y=error_bars(ey, None, "#999999"),
            marker={"color": pd.to_numeric(d[color], errors="coerce").to_numpy(float), "colorscale": "Viridis",
                    "symbol": symbols, "size": 10, "colorbar": {"title": {"text": axis_label(color, p.device)}}}))
    else:
        groups = marker_groups(d, color)
        for _, name, colour, mask in groups:
            traces.append(go.Scatter(
                x=xs[mask], y=ys[mask], mode="markers", name=name, customdata=keys[mask], hovertext=hover[mask],
                hovertemplate="%{hovertext}<extra></extra>", showlegend=False, legendgroup=name,
                error_x=error_bars(ex, mask, colour), error_y=error_bars(ey, mask, colour),
                marker={"color": colour, "symbol": symbols[mask], "size": 10,
                        "line": {"width": 1.5, "color": colour}}))
    hx, hy = _highlight(df, d, highlight, xs, ys)
    traces.append(go.Scatter(x=hx, y=hy, mode="markers", name="highlighted", hoverinfo="skip",
                             marker={"size": 22, "symbol": "circle-open", "color": "#111111",
                                     "line": {"width": 2.5}}, showlegend=bool(len(hx))))
    traces += legend_traces(groups, None if numeric_color else color, d, symbols)
    notes = ["dotted line: Pareto front (nothing beats these on both axes)"]
    bars = {"latency 10th–90th percentile" if col == "latency_ms_p50" else "95 % interval"
            for col, bounds in ((x, ex), (y, ey)) if bounds is not None}
    if bars:
        notes.append("bars: " + " and ".join(sorted(bars)))
    if any(str(s).endswith("-open") for s in symbols):
        notes.append("hollow: compression simulated, not executed by the runtime")
    layout = {
        "title": figure_title(title or f"{short_label(y).capitalize()} against {short_label(x)}", notes + p.notes),
        "xaxis": {"title": {"text": axis_label(x, p.device)}, "type": axis_type(xs)},
        "yaxis": {"title": {"text": axis_label(y, p.device)}, "type": axis_type(ys)},
    }
    return figure_from(traces, layout, fig)


def error_bounds(d: pd.DataFrame, column: str, values: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Distances below and above each value to its interval (`workbench.sweeps.frame.interval_columns`: a
    metric's 95 % interval, the median latency's 10th..90th percentile), or None when the frame has none.
    Missing bounds are NaN (no bar for that point)."""
    from workbench.sweeps.frame import interval_columns

    pair = interval_columns(d, column)
    if pair is None:
        return None
    low, high = (pd.to_numeric(d[c], errors="coerce").to_numpy(float) for c in pair)
    if not (np.isfinite(low) | np.isfinite(high)).any():
        return None
    return np.clip(values - low, 0, None), np.clip(high - values, 0, None)


def error_bars(bounds: tuple[np.ndarray, np.ndarray] | None, mask: np.ndarray | None, colour: str) -> dict[str, Any]:
    """Plotly ``error_x`` / ``error_y`` of one trace: asymmetric bars without caps, or explicitly invisible (so an
    in-place update that drops the interval also drops the bars)."""
    if bounds is None:
        return {"visible": False}
    minus, plus = bounds if mask is None else (bounds[0][mask], bounds[1][mask])
    return {"type": "data", "symmetric": False, "array": plus, "arrayminus": minus, "visible": True,
            "color": colour, "thickness": 1.2, "width": 0}


def _highlight(original: pd.DataFrame, shown: pd.DataFrame, key: Any, xs: np.ndarray,
               ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if key is None:
        return np.array([]), np.array([])
    if "key" in original:
        rows = original[original["key"].astype(str) == str(key)]
    else:
        rows = original.loc[[key]] if key in original.index else original.iloc[0:0]
    if rows.empty:
        raise WorkbenchError(f"highlight={key!r} is not a row key of the frame (its `key` column).")
    match = np.ones(len(shown), bool)
    for col in ("variant", "runtime", "task"):
        if col in shown and col in rows:
            match &= (shown[col].astype(str) == str(rows[col].iloc[0])).to_numpy()
    return xs[match], ys[match]


def update_pareto(fig_widget: Any, df: pd.DataFrame, **kwargs: Any) -> Any:
    """Update a `go.FigureWidget` made by `pareto_scatter` in place (one `batch_update`, no redraw flicker).

    Takes the same keyword arguments as `pareto_scatter`. Traces are replaced only when the set of colour
    groups changes (e.g. colouring by another column); otherwise their data are updated.

    Example:
        >>> import plotly.graph_objects as go
        >>> w = go.FigureWidget(pareto_scatter(df))
        >>> update_pareto(w, df[df.bits == 8], y="fidelity") is w
        True
    """
    return pareto_scatter(df, fig=fig_widget, **kwargs)


__all__ = ["error_bars", "error_bounds", "pareto_front", "pareto_mask", "pareto_scatter", "senses_of",
           "update_pareto"]
