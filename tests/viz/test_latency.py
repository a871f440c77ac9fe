"""workbench.viz.latency: a box (or violin) per runtime, from raw timings or a results frame."""

from __future__ import annotations

import pytest

from workbench import viz
from workbench.core.errors import WorkbenchError


def test_latency_distribution_from_samples_and_frame(real):
    fig = viz.latency_distribution({"onnxruntime": [0.06, 0.07, 0.065], "litert": [0.05, 0.09]}, kind="violin")
    assert [t.type for t in fig.data] == ["violin", "violin"] and list(fig.data[1].y) == [0.05, 0.09]
    assert fig.layout.yaxis.title.text == "latency per call (measured, ms)"
    frame = viz.latency_distribution(real)
    assert [t.name for t in frame.data] == ["onnxruntime"] and len(frame.data[0].y) == 2  # one per variant
    with pytest.raises(WorkbenchError, match="finite"):
        viz.latency_distribution({"onnxruntime": []})
    with pytest.raises(WorkbenchError, match="kind"):
        viz.latency_distribution(real, kind="bar")
