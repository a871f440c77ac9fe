"""workbench.viz.facets: the trade-off chart with one panel per runtime."""

from __future__ import annotations

import pandas as pd
import pytest

from workbench.viz.facets import facet_panels_of, facet_values, pareto_facets


def three_runtimes(hand: pd.DataFrame) -> pd.DataFrame:
    litert = hand.assign(runtime="litert", key=hand.key + "-l", latency_ms_p50=hand.latency_ms_p50 * 2)
    ov = hand.iloc[:3].assign(runtime="openvino", key=hand.key.iloc[:3] + "-o")
    return pd.concat([hand, litert, ov], ignore_index=True)


def test_one_panel_per_runtime_with_its_own_front(hand):
    df = three_runtimes(hand)
    fig = pareto_facets(df, x="latency_ms_p50", y="accuracy")
    assert facet_panels_of(fig) == ["ONNX Runtime (8)", "LiteRT (8)", "OpenVINO (3)"]
    fronts = [t for t in fig.data if t.name == "Pareto front"]
    assert [t.xaxis for t in fronts] == ["x", "x2", "x3"]
    assert list(fronts[1].x) == pytest.approx([2 * v for v in fronts[0].x])  # LiteRT: the same front, 2× slower
    assert fig.layout.xaxis2.matches == "x" and fig.layout.yaxis3.matches == "y"  # shared axes: comparable
    points = {ax: sum(len(t.x) for t in fig.data if t.customdata is not None and t.xaxis == ax)
              for ax in ("x", "x2", "x3")}
    assert points == {"x": 8, "x2": 8, "x3": 3}
    assert fig.layout.title.text == "Accuracy against median latency, per runtime"


def test_highlight_rings_each_panels_key(hand):
    df = three_runtimes(hand)
    fig = pareto_facets(df, highlight=["k1", "k4-l"])
    rings = {t.xaxis: list(t.x) for t in fig.data if t.name == "highlighted"}
    assert rings == {"x": [pytest.approx(0.8)], "x2": [pytest.approx(0.8)], "x3": []}


def test_fixed_panels_keep_the_layout_when_a_runtime_is_filtered_out(hand):
    import plotly.graph_objects as go

    df = three_runtimes(hand)
    panels = facet_values(df)
    w = go.FigureWidget(pareto_facets(df, panels=panels))
    n = len(w.data)
    pareto_facets(df[df.runtime != "litert"], panels=panels, fig=w)
    assert len(w.data) == n and facet_panels_of(w)[1] == "LiteRT (0)"
    assert sum(len(t.x) for t in w.data if t.customdata is not None and t.xaxis == "x2") == 0


def test_many_runtimes_wrap_into_rows(hand):
    df = pd.concat([hand.assign(runtime=r, key=hand.key + r) for r in
                    ("torch", "onnxruntime", "litert", "openvino", "executorch")], ignore_index=True)
    fig = pareto_facets(df, cols=3)
    assert facet_panels_of(fig) == ["PyTorch (8)", "ONNX Runtime (8)", "LiteRT (8)", "OpenVINO (8)", "ExecuTorch (8)"]
    assert fig.layout.yaxis4.domain[1] < fig.layout.yaxis.domain[0]  # second row below the first
    assert fig.layout.height > 600
