"""workbench.viz.update: figures on screen change in place (the same FigureWidget, its traces updated)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from workbench import viz


def test_update_pareto_in_place(hand, points, trace):
    import plotly.graph_objects as go

    df = hand
    w = go.FigureWidget(viz.pareto_scatter(df))
    traces = list(w.data)
    out = viz.update_pareto(w, df[df.bits == 8], y="accuracy", highlight="k1")
    assert out is w and list(w.data) == traces  # same trace objects, new data
    assert points(w) == 2 and list(trace(w, "highlighted").x) == [0.80]
    viz.update_pareto(w, df, x="latency_ms_est")
    assert w.layout.xaxis.title.text == "latency (est., ms) on raspberry-pi-4"
    viz.update_pareto(w, df, color="structure")  # other groups: traces replaced
    assert [t.name for t in w.data][1:5] == ["not pruned", "unstructured", "channel", "2:4"]
    assert points(w) == len(df)


def test_a_500_row_update_changes_the_widget_in_place(hand, points):
    """What the explorer does on every control change (its speed is measured by benchmarks/ui_latency.py)."""
    import plotly.graph_objects as go

    rng = np.random.default_rng(0)
    df = pd.concat([hand] * 63, ignore_index=True).iloc[:500]
    df["key"] = [f"r{i}" for i in range(len(df))]
    df["latency_ms_p50"] = rng.uniform(0.02, 0.2, len(df))
    df["accuracy"] = rng.uniform(0.5, 1.0, len(df))
    w = go.FigureWidget(viz.pareto_scatter(df))
    traces, n = list(w.data), len(w.data)
    front = list(w.data[0].x)
    assert points(w) == 500
    moved = df.assign(latency_ms_p50=df["latency_ms_p50"] * 2)
    assert viz.update_pareto(w, moved) is w
    assert len(w.data) == n and list(w.data) == traces  # the same trace objects, updated
    assert list(w.data[0].x) == [2 * x for x in front] and points(w) == 500


def test_into_returns_a_new_figure_without_a_widget_and_replaces_other_traces():
    import plotly.graph_objects as go

    new = go.Figure(go.Bar(x=["a"], y=[1], name="n"))
    assert viz.into(None, new) is new
    w = go.FigureWidget(go.Figure(go.Scatter(x=[1], y=[1], name="old")))
    assert viz.into(w, new) is w
    assert [(t.type, t.name) for t in w.data] == [("bar", "n")] and list(w.data[0].y) == [1]
