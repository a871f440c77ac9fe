"""The trade-off chart faceted: one Pareto panel per runtime (or device), on shared axes, each with its own front.

Example:
    >>> two = pd.concat([df, df.assign(runtime="torch", key=df.key + "-torch")])
    >>> fig = pareto_facets(two, x="latency_ms_p50", y="accuracy")
    >>> [a.text for a in fig.layout.annotations if a.name == "panel"]
    ['PyTorch (6)', 'ONNX Runtime (6)']
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np
import pandas as pd

from workbench.viz.frames import hovertext, prepare, row_keys
from workbench.viz.markers import legend_traces, marker_groups, marker_symbols
from workbench.viz.style import PALETTE, RUNTIME_NAMES, axis_label, axis_type, figure_title, runtime_name, short_label
from workbench.viz.tradeoffs import pareto_mask, senses_of
from workbench.viz.update import figure_from

if TYPE_CHECKING:  # pragma: no cover
    import plotly.graph_objects as go


def facet_values(df: pd.DataFrame, by: str = "runtime") -> list[str]:
    """The panels of `pareto_facets`: the values of `by` (runtimes in the order of `RUNTIME_NAMES`)."""
    values = [str(v) for v in pd.unique(df[by]) if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if by != "runtime":
        return values
    return [r for r in RUNTIME_NAMES if r in values] + [v for v in values if v not in RUNTIME_NAMES]


def pareto_facets(
    df: pd.DataFrame,
    x: str = "latency_ms_p50",
    y: str = "accuracy",
    *,
    by: str = "runtime",
    panels: Sequence[str] | None = None,
    color: str | None = "bits",
    maximize: Iterable[str] | None = None,
    minimize: Iterable[str] | None = None,
    device: str | None = None,
    highlight: Any = None,
    cols: int = 3,
    title: str | None = None,
    fig: Any = None,
) -> "go.Figure":
    """`pareto_scatter` once per runtime (``by="runtime"``), side by side on shared axes, each panel with its own
    Pareto front: how the trade-off differs between runtimes.

    Args:
        df: results frame.
        x, y, color, maximize, minimize, device: as in `pareto_scatter` (colour groups and markers are the same in
            every panel; the legend is shared).
        by: the column to facet by (``"runtime"`` or ``"device"``).
        panels: the panels to draw, in order (default: every value of `by`); a panel without rows stays, empty,
            so the figure keeps its layout (and updates in place) while filters change.
        highlight: a row `key`, or several (one per panel, e.g. each runtime's best), to ring.
        cols: panels per row.
        title: figure title (default: "<y> against <x>, per runtime").
        fig: a `go.FigureWidget` to update in place.

    Returns:
        The figure; panel *i* uses axes ``x{i}``/``y{i}`` (matched to the first), its title is an annotation with
        ``name="panel"``; the legend-only traces come last.
    """
    needed = [x, y, by] + ([color] if color else [])
    p = prepare(df, needed, device=device, numeric=[x, y], what="pareto_facets",
                every_device=by == "device")
    d = p.df
    names = list(panels) if panels is not None else facet_values(d, by)
    keys = [highlight] if highlight is not None and not isinstance(highlight, (list, tuple, set)) else \
        list(highlight or ())
    where = _panel_of_keys(df, keys, by)
    n = max(1, len(names))
    ncols = max(1, min(int(cols), n))
    nrows = math.ceil(n / ncols)
    xs_all = pd.to_numeric(d[x], errors="coerce").to_numpy(float)
    ys_all = pd.to_numeric(d[y], errors="coerce").to_numpy(float)
    gap_x, gap_y = 0.06, 0.16 / max(nrows, 1)
    width = (1 - gap_x * (ncols - 1)) / ncols
    height = (1 - gap_y * (nrows - 1)) / nrows
    senses = senses_of([x, y], maximize, minimize)
    xtype, ytype = axis_type(xs_all), axis_type(ys_all)
    numeric = bool(color) and color not in PALETTE and color in d and pd.api.types.is_numeric_dtype(d[color])
    cvalues = pd.to_numeric(d[color], errors="coerce").to_numpy(float) if numeric else None
    groups_all = None if numeric else marker_groups(d, color)  # stable colour groups: the same traces per panel
    symbols_all = marker_symbols(d)
    hover_all = hovertext(d, extra=[x, y])
    keys_all = row_keys(d)
    panel_of = d[by].astype(str).to_numpy()
    traces: list[dict[str, Any]] = []
    layout: dict[str, Any] = {}
    annotations = []
    for i, name in enumerate(names):
        r, c = divmod(i, ncols)
        ax = "" if i == 0 else str(i + 1)
        m = panel_of == name
        x0, y1 = c * (width + gap_x), 1 - r * (height + gap_y)
        layout[f"xaxis{ax}"] = {"domain": [max(0.0, x0), min(1.0, x0 + width)], "anchor": f"y{ax}", "type": xtype,
                                **({"dtick": 1} if xtype == "log" else {}),
                                **({"matches": "x"} if i else {}),
                                "title": {"text": axis_label(x, p.device) if i + ncols >= n else ""}}
        layout[f"yaxis{ax}"] = {"domain": [max(0.0, y1 - height), min(1.0, y1)], "anchor": f"x{ax}", "type": ytype,
                                **({"dtick": 1} if ytype == "log" else {}),
                                **({"matches": "y"} if i else {}), "showticklabels": c == 0,
                                "title": {"text": axis_label(y, p.device) if c == 0 else ""}}
        label = runtime_name(name) if by == "runtime" else name
        annotations.append({"text": f"{label} ({int(m.sum())})", "x": x0 + width / 2, "y": y1, "xref": "paper",
                            "yref": "paper", "xanchor": "center", "yanchor": "bottom", "showarrow": False,
                            "font": {"size": 13}, "name": "panel"})
        xs, ys = xs_all[m], ys_all[m]
        front = pareto_mask(np.column_stack([xs, ys]), senses) if len(xs) else np.zeros(0, bool)
        order = np.lexsort((ys[front] * (1 if senses[1] else -1), xs[front]))
        axes = {"xaxis": f"x{ax}", "yaxis": f"y{ax}", "showlegend": False}
        traces.append({"type": "scatter", "x": xs[front][order], "y": ys[front][order], "mode": "lines",
                       "name": "Pareto front", "hoverinfo": "skip", **axes,
                       "line": {"shape": "vh" if senses[0] else "hv", "color": "#555555", "width": 1.5,
                                "dash": "dot"}})
        common = {"mode": "markers", "hovertemplate": "%{hovertext}<extra></extra>", **axes}
        if numeric:
            traces.append({"type": "scatter", "x": xs, "y": ys, "name": "variants", "customdata": keys_all[m],
                           "hovertext": hover_all[m], **common,
                           "marker": {"color": cvalues[m], "colorscale": "Viridis", "symbol": symbols_all[m],
                                      "size": 10, "cmin": float(np.nanmin(cvalues)), "cmax": float(np.nanmax(cvalues)),
                                      "showscale": i == 0, "colorbar": {"title": {"text": axis_label(color)}}}})
        else:
            for _, gname, colour, gmask in groups_all:
                k = gmask & m
                traces.append({"type": "scatter", "x": xs_all[k], "y": ys_all[k], "name": gname,
                               "legendgroup": gname, "customdata": keys_all[k], "hovertext": hover_all[k], **common,
                               "marker": {"color": colour, "symbol": symbols_all[k], "size": 10,
                                          "line": {"width": 1.5, "color": colour}}})
        ring = np.isin(keys_all, [str(where[name])]) & m if name in where else np.zeros(len(d), bool)
        traces.append({"type": "scatter", "x": xs_all[ring], "y": ys_all[ring], "mode": "markers",
                       "name": "highlighted", "hoverinfo": "skip", **axes,
                       "marker": {"size": 22, "symbol": "circle-open", "color": "#111111", "line": {"width": 2.5}}})
    hollow = any(str(s).endswith("-open") for s in symbols_all)
    traces += legend_traces(groups_all or [], None if numeric else color, d, symbols_all)
    notes = [f"dotted line: each {by}'s Pareto front"]
    if hollow:
        notes.append("hollow: compression simulated, not executed by the runtime")
    layout.update({
        "title": figure_title(title or f"{short_label(y).capitalize()} against {short_label(x)}, per {by}",
                              notes + p.notes),
        "annotations": annotations, "height": max(420, 330 * nrows + 120),
        "margin": {"t": 110, "l": 70, "r": 30, "b": 60},
    })
    return figure_from(traces, layout, fig)


def _panel_of_keys(df: pd.DataFrame, keys: Sequence[Any], by: str) -> dict[str, Any]:
    """Which panel each highlighted key falls in (the first key per panel wins)."""
    out: dict[str, Any] = {}
    if not keys or by not in df:
        return out
    col = df["key"].astype(str) if "key" in df else pd.Series(df.index.astype(str), index=df.index)
    for k in keys:
        hit = df[(col == str(k)).to_numpy()]
        if not hit.empty:
            out.setdefault(str(hit[by].iloc[0]), k)
    return out


def facet_panels_of(fig: Any) -> list[str]:
    """The panel titles of a faceted figure (for tests and the explorer's summary)."""
    return [a.text for a in fig.layout.annotations if a.name == "panel"]


__all__ = ["facet_panels_of", "facet_values", "pareto_facets"]
