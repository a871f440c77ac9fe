"""The trade-off explorer's runtime facet: every runtime in one chart, a panel per runtime, or one alone; the best
variant *and runtime*."""

from __future__ import annotations

from workbench import ui
from workbench.viz.facets import facet_panels_of


def points(fig) -> int:
    return sum(len(t.x) for t in fig.data if t.customdata is not None)


def test_views_offered_and_one_runtime_alone(rt_frame):
    ex = ui.TradeoffExplorer(rt_frame)
    assert [v for _, v in ex.view.options] == ["all", "facet", "torch", "onnxruntime", "litert"]  # OpenVINO failed
    assert ex.view.value == "all" and points(ex.figure) == 21  # 7 variants x 3 runtimes, measured once each
    ex.view.value = "litert"
    assert points(ex.figure) == 7 and ex.best["runtime"] == "litert" and "on LiteRT" in ex.summary.value
    assert ex.last_error is None


def test_facet_draws_a_panel_per_runtime_and_follows_the_controls(rt_frame):
    ex = ui.TradeoffExplorer(rt_frame)
    ex.view.value = "facet"
    assert ex.last_error is None
    assert ex._boxes[0].layout.display == "none" and ex._boxes[1].layout.display is None  # the facets are shown
    assert facet_panels_of(ex.facets) == ["PyTorch (7)", "ONNX Runtime (7)", "LiteRT (7)"]
    traces = list(ex.facets.data)
    before = [list(t.x) for t in ex.facets.data if t.customdata is not None and t.xaxis == "x3"]
    ex.x.value = "size_bytes"
    assert list(ex.facets.data) == traces  # updated in place
    assert ex.facets.layout.xaxis.title.text == "file size (measured, bytes)"
    assert [list(t.x) for t in ex.facets.data if t.customdata is not None and t.xaxis == "x3"] != before
    ex.runtime.value = ("onnxruntime", "litert")
    assert facet_panels_of(ex.facets)[0] == "PyTorch (0)" and len(ex.facets.data) == len(traces)
    rings = {t.xaxis: len(t.x) for t in ex.facets.data if t.name == "highlighted"}
    assert rings == {"x": 0, "x2": 1, "x3": 1}  # each runtime's best, ringed in its panel
    ex.view.value = "all"
    assert ex._boxes[0].layout.display is None and points(ex.figure) == 14


def test_best_reports_the_variant_and_the_runtime(rt_frame):
    ex = ui.TradeoffExplorer(rt_frame)
    ex.min_accuracy.value = 0.97
    assert (ex.best["variant"], ex.best["runtime"]) == ("q8", "onnxruntime")
    assert "Best: Not pruned, 8-bit</b> (q8) on ONNX Runtime" in ex.summary.value
    # PyTorch only simulates the compression (realized False): no recommendation there unless asked for
    assert set(ex.best_per_runtime) == {"onnxruntime", "litert"}
    assert ex.best_per_runtime["litert"]["variant"] == "q8"
    assert "Best per runtime — PyTorch: only simulated variants pass; ONNX Runtime: q8 0.048 ms" in ex.summary.value
    ex.include_simulated.value = True
    assert set(ex.best_per_runtime) == {"torch", "onnxruntime", "litert"}
    assert "Best per runtime — PyTorch: q8" in ex.summary.value


def test_colour_by_runtime_uses_the_display_names(rt_frame):
    ex = ui.TradeoffExplorer(rt_frame)
    ex.color.value = "runtime"
    shown = {t.name: len(t.x) for t in ex.figure.data if t.customdata is not None and len(t.x)}
    assert shown == {"PyTorch": 7, "ONNX Runtime": 7, "LiteRT": 7}


def test_click_in_a_facet_panel_selects_that_runtimes_row(rt_frame, click_point):
    ex = ui.TradeoffExplorer(rt_frame)
    ex.view.value = "facet"
    i = next(i for i, t in enumerate(ex.facets.data) if t.xaxis == "x3" and t.customdata is not None and len(t.x))
    click_point(ex.facets, i, 0)
    assert ex.last_error is None and ex.selected["runtime"] == "litert"
