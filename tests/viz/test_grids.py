"""workbench.viz.grids: the prune x bits heatmap equals its pivot; sensitivity bars from `workbench.sensitivity`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench import viz
from workbench.core.errors import WorkbenchError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_heatmap_values_equal_the_pivot(hand):
    df = hand
    fig = viz.heatmap(df, "accuracy")
    assert [t.name for t in fig.data] == ["unstructured", "channel", "2:4"]
    for trace in fig.data:
        rows = df[(df.structure == trace.name) | (df.prune == 0)]
        pivot = rows.pivot_table(index="bits", columns="prune", values="accuracy", aggfunc="max")
        pivot = pivot.sort_index(ascending=False).sort_index(axis=1)
        np.testing.assert_array_equal(np.asarray(trace.z, float), pivot.to_numpy(float))
        assert list(trace.x) == [f"{p:.0%}" for p in pivot.columns]
        assert list(trace.y) == [viz.BITS_NAMES[b] for b in pivot.index]
    one = viz.heatmap(df, "latency_ms_p50", structure="channel")
    assert len(one.data) == 1 and one.layout.coloraxis.reversescale  # costs: bright is still better
    with pytest.raises(WorkbenchError, match="structure 'nm'"):
        viz.heatmap(df, structure="nm")


def test_heatmap_aggregates_shared_cells(hand):
    df = pd.concat([hand, hand.assign(key=lambda d: d.key + "r", accuracy=0.5)])
    fig = viz.heatmap(df, "accuracy", structure="channel", agg="min")
    assert np.nanmax(np.asarray(fig.data[0].z, float)) == 0.5
    assert "show the min" in fig.layout.title.subtitle.text
    assert viz.heatmap_table(df, "accuracy", agg="min").attrs["shared_cells"] > 0


def test_sensitivity_bars_from_sensitivity(digits):
    import workbench

    sens = workbench.sensitivity(digits, "quantize", [4, 2], limit=100, progress=False)
    fig = viz.sensitivity_bars(sens, top=3)
    assert [t.name for t in fig.data] == ["4-bit", "2-bit"]
    worst = sens.groupby("layer")["drop"].max().nlargest(3).index
    assert set(fig.data[0].x) == set(worst)
    two = sens[sens.level == 2].set_index("layer")["drop"]
    np.testing.assert_allclose(fig.data[1].y, [two[n] for n in fig.data[1].x])
    assert "quantised" in fig.layout.title.text and "accuracy" in fig.layout.yaxis.title.text


def test_prune_sensitivity_levels():
    sens = pd.DataFrame({"layer": ["a", "a"], "level": [0.25, 0.75], "drop": [0.0, 0.3], "kind": "prune",
                         "metric": "f1", "baseline": 0.9, "value": [0.9, 0.6], "type": "Conv2d", "params": 99})
    fig = viz.sensitivity_bars(sens)
    assert [t.name for t in fig.data] == ["25% of weights pruned", "75% of weights pruned"]
    assert "f1: 0.6000" in fig.data[1].hovertext[0] and "pruned" in fig.layout.title.text
