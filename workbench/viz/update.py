"""Updating a figure on screen in place: `into` copies a new figure into an existing `go.FigureWidget` in one
``batch_update`` (trace data updated when the traces match, replaced otherwise), so a chart never flickers.

Every figure function of `workbench.viz` ends with `finish` (or `figure_from`), so each takes ``fig=``.

Example:
    >>> import plotly.graph_objects as go
    >>> w = go.FigureWidget(go.Figure(go.Bar(x=["a"], y=[1], name="n")))
    >>> into(w, go.Figure(go.Bar(x=["a", "b"], y=[2, 3], name="n"))) is w, w.data[0].y
    (True, (2, 3))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from workbench.viz.style import GRID, LAYOUT

if TYPE_CHECKING:  # pragma: no cover
    import plotly.graph_objects as go


def into(fig: Any, new: "go.Figure") -> "go.Figure":
    """Return `new`, or copy it into the existing (widget) `fig` in one batch update and return `fig`."""
    if fig is None:
        return new
    layout = new.layout.to_plotly_json()
    layout.pop("template", None)
    for key in ("annotations", "shapes"):
        layout.setdefault(key, [])
    same = [(t.type, t.name) for t in fig.data] == [(t.type, t.name) for t in new.data]
    if same:
        with fig.batch_update():
            for old, trace in zip(fig.data, new.data):
                props = trace.to_plotly_json()
                props.pop("type", None)
                props.pop("uid", None)
                old.update(props, overwrite=True)
            fig.update_layout(layout, overwrite=True)
        return fig
    fig.data = ()
    with fig.batch_update():
        fig.add_traces(list(new.data))
        fig.update_layout(layout, overwrite=True)
    return fig


def finish(new: "go.Figure", fig: Any) -> "go.Figure":
    """Light grid on every axis, then return `new` or copy it into the widget `fig`."""
    new.update_xaxes(**GRID)
    new.update_yaxes(**GRID)
    return into(fig, new)


def figure_from(traces: list, layout: dict[str, Any], fig: Any) -> "go.Figure":
    import plotly.graph_objects as go

    return finish(go.Figure(data=traces, layout={**LAYOUT, **layout}), fig)


__all__ = ["figure_from", "finish", "into"]
