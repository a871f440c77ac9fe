"""Latency per runtime (or device): a box or violin per group, from a results frame or raw timings."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import pandas as pd

from workbench.core.errors import WorkbenchError
from workbench.viz.frames import hovertext, prepare
from workbench.viz.style import axis_label, axis_type, color_of, figure_title, short_label
from workbench.viz.update import figure_from

if TYPE_CHECKING:  # pragma: no cover
    import plotly.graph_objects as go


def latency_distribution(
    data: pd.DataFrame | Mapping[str, Sequence[float]],
    *,
    column: str = "latency_ms_p50",
    by: str = "runtime",
    kind: str = "box",
    fig: Any = None,
) -> "go.Figure":
    """Latency per runtime: a box (or violin) per runtime.

    Given a results frame, each box holds the variants' `column` (one point per variant, hover names it).
    Given ``{runtime: [ms, ms, ...]}`` — raw per-call timings — each box holds the calls of one runtime
    (`workbench.measurement.latency.time_runner` keeps only quantiles, so raw samples come from your own timing loop).

    Args:
        data: results frame, or a mapping from runtime name to latency samples in milliseconds.
        column: the latency column (frame only), e.g. ``"latency_ms_p90"`` or ``"latency_ms_est"``.
        by: the column to split by (frame only): ``"runtime"`` or ``"device"``.
        kind: ``"box"`` or ``"violin"``.
        fig: a `go.FigureWidget` to update in place.

    Example:
        >>> [t.name for t in latency_distribution(df).data]   # one box per runtime over the variants
        ['onnxruntime']
        >>> fig = latency_distribution({"onnxruntime": [0.06, 0.07, 0.06], "litert": [0.09, 0.1, 0.08]})
        >>> [len(t.y) for t in fig.data]
        [3, 3]
    """
    import plotly.graph_objects as go

    if kind not in ("box", "violin"):
        raise WorkbenchError(f"latency_distribution: kind must be 'box' or 'violin', got {kind!r}.")
    make = go.Box if kind == "box" else go.Violin
    points = {"boxpoints": "all", "jitter": 0.4, "pointpos": 0} if kind == "box" else {"points": "all",
                                                                                          "box": {"visible": True}}
    traces, notes = [], []
    if isinstance(data, Mapping):
        if not data:
            raise WorkbenchError("latency_distribution: no timings given (an empty mapping).")
        for name, samples in data.items():
            arr = np.asarray(samples, float)
            if arr.ndim != 1 or not len(arr) or not np.isfinite(arr).all():
                raise WorkbenchError(f"latency_distribution: timings of {name!r} must be a non-empty 1-D sequence "
                                     "of finite milliseconds.")
            traces.append(make(y=arr, name=str(name), marker={"color": color_of("runtime", name)},
                               line={"color": color_of("runtime", name)}, **points))
        title, ylabel, dev = "Latency of repeated calls, per runtime", "latency per call (measured, ms)", None
    else:
        p = prepare(data, [column, by], numeric=[column], what="latency_distribution")
        d, dev = p.df, p.device
        notes = p.notes
        values = pd.to_numeric(d[column], errors="coerce").to_numpy(float)
        hover = hovertext(d)
        for name in pd.unique(d[by]):
            mask = (d[by] == name).to_numpy()
            colour = color_of(by, name)
            traces.append(make(y=values[mask], name=str(name), hovertext=hover[mask], marker={"color": colour},
                               line={"color": colour}, hoveron="points",
                               hovertemplate="%{hovertext}<extra></extra>", **points))
        title = f"{short_label(column).capitalize()} of each variant, per {by}"
        ylabel = axis_label(column, dev)
    values = np.concatenate([np.asarray(t.y, float) for t in traces])
    layout = {"title": figure_title(title, notes), "showlegend": False,
              "xaxis": {"title": {"text": by}}, "yaxis": {"title": {"text": ylabel}, "type": axis_type(values)}}
    return figure_from(traces, layout, fig)


__all__ = ["latency_distribution"]
