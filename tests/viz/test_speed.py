"""workbench.viz.speed: per-operator-type bars of a SpeedExplanation."""

from __future__ import annotations

import pandas as pd
import pytest

from workbench.core.errors import WorkbenchError
from workbench.measurement.explain import COLUMNS, SpeedExplanation
from workbench.measurement.op_profile import OpProfile
from workbench.viz.speed import BEFORE_OPACITY, CATEGORY_COLORS, speed_breakdown


def hand_explanation(extra: int = 0) -> SpeedExplanation:
    """A made-up explanation: convs got faster, quantize/dequantize and a transpose were added."""
    rows = [("Conv", "compute", 0.20, 0.08, 11, 11, "Conv", "QLinearConv", "fp32", "int8", 0),
            ("QuantizeLinear", "quantize/dequantize", 0.0, 0.03, 0, 2, "", "QuantizeLinear", "", "int8", 0),
            ("Transpose", "layout", 0.0, 0.02, 0, 2, "", "Transpose", "", "int8", 0),
            ("MatMul", "compute", 0.01, 0.01, 1, 1, "MatMul", "MatMul", "fp32", "fp32", 1)]
    rows += [(f"Op{i}", "other", 0.001, 0.001, 1, 1, f"Op{i}", f"Op{i}", "fp32", "fp32", 0) for i in range(extra)]
    rows.append(("(outside kernels)", "overhead", 0.05, 0.05, 0, 0, "", "", "", "", 0))
    cols = [c for c in COLUMNS if c != "delta_ms"]
    frame = pd.DataFrame(rows, columns=cols)
    frame.insert(4, "delta_ms", frame.after_ms - frame.before_ms)
    prof = OpProfile("onnxruntime", "1.0", (), 0.3, 0.3, 10)
    return SpeedExplanation("onnxruntime", "m|q8", "m", frame, float(frame.before_ms.sum()), float(frame.after_ms.sum()),
                            0.3, 0.3, 0.21, 0.14, ("fc (MatMul)",), ("fp32", "int8"), 1, 10, "", prof, prof)


def test_bars_before_and_after_with_qdq_and_layout_highlighted():
    fig = speed_breakdown(hand_explanation())
    before, after = fig.data[0], fig.data[1]
    assert (before.name, after.name) == ("m (before)", "m|q8 (after)")
    assert list(after.y) == ["(outside kernels)", "MatMul", "Transpose", "QuantizeLinear", "Conv"]  # largest on top
    assert list(after.x) == [0.05, 0.01, 0.02, 0.03, 0.08] and list(before.x)[-1] == 0.20
    colours = dict(zip(after.y, after.marker.color))
    assert colours["QuantizeLinear"] == CATEGORY_COLORS["quantize/dequantize"]
    assert colours["Transpose"] == CATEGORY_COLORS["layout"] != colours["Conv"]
    assert before.marker.opacity == BEFORE_OPACITY and after.marker.opacity is None
    assert {t.name for t in fig.data if t.meta == "legend"} == {"compute", "quantize/dequantize", "layout", "overhead"}
    assert "1 compute op(s) stayed float" in fig.layout.title.subtitle.text
    assert fig.layout.xaxis.title.text == "time per inference (measured, ms)"
    assert "QLinearConv" in after.hovertext[-1] and "11 ×" in after.hovertext[-1]


def test_top_folds_the_rest_into_one_row():
    fig = speed_breakdown(hand_explanation(extra=6), top=3)
    names = list(fig.data[1].y)
    assert names[0] == "(outside kernels)" and names[1] == "7 other op types" and len(names) == 5
    assert fig.data[1].x[1] == pytest.approx(0.01 + 6 * 0.001)


def test_errors():
    with pytest.raises(WorkbenchError, match="SpeedExplanation"):
        speed_breakdown(pd.DataFrame({"a": [1]}))
    with pytest.raises(WorkbenchError, match="top"):
        speed_breakdown(hand_explanation(), top=0)


def test_a_measured_explanation_draws(digits):
    import workbench
    from workbench.measurement.explain import explain_speed

    q8 = workbench.compress(digits.model, workbench.Quantize(8), task=digits)
    why = explain_speed(q8, task=digits, runs=10, rounds=1)
    fig = speed_breakdown(why)
    assert "Conv" in fig.data[1].y and len(fig.data[1].y) == len(why.frame)
