"""workbench.viz.frames: error rows are left out and counted; empty frames and missing columns say what to do."""

from __future__ import annotations

import numpy as np
import pytest

from workbench import viz
from workbench.core.errors import WorkbenchError


def test_error_rows_are_excluded_and_counted(hand, points):
    df = hand
    df.loc[[1, 5], "error"] = "RuntimeError: boom"
    df.loc[[1, 5], ["latency_ms_p50", "accuracy"]] = np.nan
    fig = viz.pareto_scatter(df)
    assert points(fig) == len(df) - 2
    assert "2 of 8 rows with errors not shown" in fig.layout.title.subtitle.text
    assert "ch50+q8" not in " ".join(h for t in fig.data if t.hovertext is not None for h in t.hovertext)
    size = viz.size_breakdown(df)
    assert len(size.data[0].x) == 6 and "2 of 8 rows with errors" in size.layout.title.subtitle.text


@pytest.mark.parametrize("fn", [
    viz.pareto_scatter, viz.heatmap, viz.size_breakdown, viz.latency_distribution, viz.device_fit_table,
    viz.energy_vs_accuracy, viz.sensitivity_bars, viz.estimate_vs_measured,
])
def test_empty_and_all_error_frames_raise(fn, hand, sens):
    frame = sens if fn is viz.sensitivity_bars else hand
    with pytest.raises(WorkbenchError, match="empty"):
        fn(frame.iloc[0:0])
    broken = frame.assign(error="ValueError: x")
    with pytest.raises(ValueError, match="error"):
        fn(broken)


def test_missing_column_is_named(hand):
    with pytest.raises(WorkbenchError, match="'f1'"):
        viz.pareto_scatter(hand, y="f1")
    with pytest.raises(WorkbenchError, match="results DataFrame"):
        viz.pareto_scatter([{"accuracy": 1}])
    with pytest.raises(WorkbenchError, match="no rows with runtime='litert'"):
        viz.heatmap(hand, runtime="litert")
