"""Federated learning: accuracy against rounds and against the bytes the clients uploaded, one line per kind of
client update (`workbench.federated.simulate` frames; every figure measured).

Example:
    >>> import pandas as pd
    >>> df = pd.DataFrame({"round": [1, 2], "accuracy": [0.5, 0.7], "upload_bytes": [100, 100],
    ...                    "upload_bytes_cumulative": [100, 200], "update": ["fp32", "fp32"]})
    >>> df.attrs.update(initial_accuracy=0.1, metric="accuracy")
    >>> fig = federated_curves([df])
    >>> [t.name for t in fig.data], list(fig.data[1].x)
    (['fp32', 'fp32'], [0, 100, 200])
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from workbench.core.errors import WorkbenchError

if TYPE_CHECKING:  # pragma: no cover
    import plotly.graph_objects as go

COLUMNS = ("round", "accuracy", "upload_bytes_cumulative", "update")
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def federated_curves(frames: Any, *, fig: "go.Figure | None" = None) -> "go.Figure":
    """Two panels: the task's metric against the round, and against cumulative upload bytes (log axis).

    Args:
        frames: one `simulate` frame or a list of them (one per update kind); round 0 is the starting model
            (``attrs["initial_accuracy"]``, no bytes yet) when the frame carries it.
        fig: a figure to draw into (its traces are replaced).

    Raises:
        WorkbenchError: no frames, or a frame without ``round``, ``accuracy``, ``upload_bytes_cumulative``,
            ``update``.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    frames: Sequence[Any] = [frames] if hasattr(frames, "columns") else list(frames)
    if not frames or any(df.empty or not set(COLUMNS) <= set(df.columns) for df in frames):
        raise WorkbenchError(f"federated_curves takes workbench.federated.simulate frames (columns {COLUMNS}); "
                             "run simulate(task, clients=..., rounds=...) first.")
    out = fig if fig is not None else make_subplots(rows=1, cols=2, horizontal_spacing=0.1, subplot_titles=(
        "against rounds", "against bytes uploaded (all clients, measured)"))
    metric = frames[0].attrs.get("metric", "accuracy")
    traces = []
    for i, df in enumerate(frames):
        label = str(df["update"].iloc[0])
        rounds, acc, sent = list(df["round"]), list(df["accuracy"]), list(df["upload_bytes_cumulative"])
        if "initial_accuracy" in df.attrs:
            rounds, acc, sent = [0, *rounds], [df.attrs["initial_accuracy"], *acc], [0, *sent]
        color = PALETTE[i % len(PALETTE)]
        traces.append((go.Scatter(x=rounds, y=acc, name=label, legendgroup=label, mode="lines+markers",
                                  line={"color": color}), 1))
        traces.append((go.Scatter(x=sent, y=acc, name=label, legendgroup=label, showlegend=False,
                                  mode="lines+markers", line={"color": color},
                                  hovertemplate="%{x:,.0f} bytes<br>" + metric + " %{y:.3f}"), 2))
    with out.batch_update():
        out.data = ()
        for trace, col in traces:
            out.add_trace(trace, row=1, col=col)
        out.update_xaxes(title_text="round", row=1, col=1)
        out.update_xaxes(title_text="cumulative upload (bytes, measured)", type="log", row=1, col=2)
        out.update_yaxes(title_text=f"{metric} (held-out, measured)", row=1, col=1)
        out.update_layout(title="Federated averaging: compressed against float32 client updates",
                          legend_title_text="client update", height=420)
    return out
