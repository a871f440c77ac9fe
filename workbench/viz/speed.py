"""Why a variant is (not) faster: per-operator-type time before and after, from `workbench.explain_speed`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.core.errors import WorkbenchError
from workbench.viz.style import OTHER_COLOR, figure_title, runtime_name
from workbench.viz.update import figure_from

if TYPE_CHECKING:  # pragma: no cover
    import plotly.graph_objects as go

CATEGORY_COLORS: dict[str, str] = {"compute": "#4C78A8", "quantize/dequantize": "#E45756", "layout": "#F58518",
                                   "other": "#72B7B2", "overhead": OTHER_COLOR}
"""Bar colour of each row category: quantize/dequantize and layout conversion stand out in warm colours."""
BEFORE_OPACITY = 0.35


def speed_breakdown(explanation: Any, *, top: int = 12, fig: Any = None) -> "go.Figure":
    """Horizontal bars per operator type: the original's time (pale) beside the variant's (solid), coloured by
    category, so quantize/dequantize (red) and layout conversion (orange) that the variant added stand out.

    Rows are the `top` largest of `explanation.frame` (the rest summed into one "other ops" row); the time outside
    kernels is the last row. Hover gives node counts, kernels and precisions.

    Args:
        explanation: a `workbench.measurement.explain.SpeedExplanation` (what `explain_speed` returns).
        top: how many operator types to show by name.
        fig: a `go.FigureWidget` to update in place.

    Example:
        >>> q8 = workbench.compress(task.model, Quantize(8), task=task)
        >>> from workbench.measurement.explain import explain_speed
        >>> why = explain_speed(q8, task=task, runs=20)
        >>> fig = speed_breakdown(why)
        >>> [t.name for t in fig.data][:2], fig.layout.xaxis.title.text
        (['digits-cnn (before)', 'digits-cnn|q8 (after)'], 'time per inference (measured, ms)')
    """
    import plotly.graph_objects as go

    frame = getattr(explanation, "frame", None)
    if frame is None or not {"op_type", "category", "before_ms", "after_ms"} <= set(frame.columns):
        raise WorkbenchError("speed_breakdown takes what workbench.explain_speed returns (a SpeedExplanation).")
    if not isinstance(top, int) or top < 1:
        raise WorkbenchError(f"speed_breakdown: top must be a positive integer, got {top!r}.")
    kernels = frame[frame["category"] != "overhead"]
    overhead = frame[frame["category"] == "overhead"]
    shown, rest = kernels.iloc[:top], kernels.iloc[top:]
    rows = [(r.op_type, r.category, r.before_ms, r.after_ms, _hover(r)) for r in shown.itertuples()]
    if len(rest):
        rows.append((f"{len(rest)} other op types", "other", float(rest["before_ms"].sum()),
                     float(rest["after_ms"].sum()), ", ".join(rest["op_type"].astype(str))))
    rows += [(r.op_type, r.category, r.before_ms, r.after_ms, "call time (unprofiled) less the kernels' time")
             for r in overhead.itertuples()]
    rows = rows[::-1]  # plotly draws the first category at the bottom: largest on top
    names = [r[0] for r in rows]
    colours = [CATEGORY_COLORS.get(r[1], OTHER_COLOR) for r in rows]
    hover = np.array([r[4] for r in rows], dtype=object)
    traces = [
        go.Bar(y=names, x=[r[2] for r in rows], orientation="h", name=f"{explanation.original} (before)",
               marker={"color": colours, "opacity": BEFORE_OPACITY, "line": {"color": colours, "width": 1}},
               hovertext=hover, hovertemplate="%{y}: %{x:.4f} ms before<br>%{hovertext}<extra></extra>"),
        go.Bar(y=names, x=[r[3] for r in rows], orientation="h", name=f"{explanation.variant} (after)",
               marker={"color": colours}, hovertext=hover,
               hovertemplate="%{y}: %{x:.4f} ms after<br>%{hovertext}<extra></extra>"),
    ]
    for cat, colour in CATEGORY_COLORS.items():  # a legend of the colours (no data)
        if cat in {r[1] for r in rows}:
            traces.append(go.Scatter(y=[None], x=[None], mode="markers", name=cat, meta="legend", hoverinfo="skip",
                                     marker={"color": colour, "symbol": "square", "size": 12}))
    notes = [f"{runtime_name(explanation.runtime)}, {explanation.threads} thread(s), batch 1",
             f"{explanation.before_ms:.3f} -> {explanation.after_ms:.3f} ms per call (unprofiled)",
             "pale: before, solid: after"]
    if explanation.stayed_float:
        notes.append(f"{len(explanation.stayed_float)} compute op(s) stayed float")
    layout = {"title": figure_title("Where the time goes, per operator type", notes), "barmode": "group",
              "xaxis": {"title": {"text": "time per inference (measured, ms)"}},
              "yaxis": {"title": {"text": "operator type"}, "type": "category", "automargin": True},
              "height": max(320, 60 + 34 * len(rows)), "legend": {"traceorder": "normal"}}
    return figure_from(traces, layout, fig)


def _hover(r: Any) -> str:
    before = f"{r.count_before} × {r.kernels_before} ({r.precision_before})" if r.count_before else "absent"
    after = f"{r.count_after} × {r.kernels_after} ({r.precision_after})" if r.count_after else "absent"
    stayed = f"<br>{r.float_after} stayed float" if r.float_after else ""
    return f"{r.category}<br>before: {before}<br>after: {after}{stayed}"


__all__ = ["CATEGORY_COLORS", "speed_breakdown"]
