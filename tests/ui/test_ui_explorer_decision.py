"""The explorer's decision: the card at the top says where its figures come from, the best follows
`workbench.best`'s rule (realised variants; a device's estimates), the duty cycle feeds the battery figure, the
advanced controls are folded, and the accuracy axis opens on the decision region."""

from __future__ import annotations

import ipywidgets as widgets
import pytest

import workbench
from workbench import ui


def data_points(fig) -> dict[str, float]:
    """Row key -> x of every plotted variant."""
    return {k: x for t in fig.data if t.customdata is not None for k, x in zip(t.customdata, t.x)}


def ring_x(fig) -> list[float]:
    return list(next(t for t in fig.data if t.name == "highlighted").x)


def descendants(w) -> list:
    out, todo = [], [w]
    while todo:
        x = todo.pop()
        out.append(x)
        todo.extend(getattr(x, "children", ()))
    return out


@pytest.fixture
def pi_frame(frame):
    """The hand frame with the Raspberry Pi 4 estimate of q8 made slow: measured, q8 is the fastest variant that
    passes the bar; on the Pi it is not."""
    f = frame.copy()
    f.loc[f.key == "q8@raspberry-pi-4", "latency_ms_est"] = 5.0
    return f


def test_card_says_measured_then_estimated(pi_frame):
    ex = ui.TradeoffExplorer(pi_frame)
    assert "wb-card" in ex.card._dom_classes
    assert ex.children[0] is ex.card  # the answer comes first
    assert "on this machine (measured)" in ex.card.value and "(estimated)" not in ex.card.value
    assert ex.objective() == "latency_ms_p50" and ex.best["variant"] == "q8"
    assert ex.decision.row["key"] == ex.best["key"]

    ex.device.value = "raspberry-pi-4"
    assert ex.last_error is None
    assert "Recommended on Raspberry Pi 4 (estimated)" in ex.card.value
    assert "on this machine (measured)" not in ex.card.value
    # ranked by the Pi's estimate, not this machine's measurement: q8 (5 ms on the Pi) loses to the original
    assert ex.objective() == "latency_ms_est"
    expected = workbench.best(pi_frame, device="raspberry-pi-4", min_accuracy=ex.min_accuracy.value)
    assert ex.best["key"] == expected["key"] == "baseline@raspberry-pi-4"
    assert ex.decision.row["key"] == ex.best["key"]
    assert ring_x(ex.figure) == [pytest.approx(0.060)]  # the ringed point is that row (x: measured latency)
    assert "per inference on Raspberry Pi 4 (estimated)" in ex.summary.value

    ex.device.value = None  # back to this machine: the first option stays selected
    assert ex.device.label == "(this machine, measured)" and "(measured)" in ex.card.value
    assert ex.best["variant"] == "q8"


def test_best_is_realised_unless_simulated_are_included(frame):
    f = frame.copy()
    fake = f.variant == "unstructured-0.50+q4"  # simulated: 4-bit weights run as float
    f.loc[fake, ["accuracy", "latency_ms_p50", "latency_ms_est"]] = [0.985, 0.001, 0.004]
    ex = ui.TradeoffExplorer(f)
    assert ex.best["variant"] == "q8" and bool(ex.best["realized"])
    assert "1 simulated variant left out" in ex.summary.value
    assert ex.include_simulated in descendants(ex.advanced)
    ex.include_simulated.value = True
    assert ex.best["variant"] == "unstructured-0.50+q4" and "simulated variants included" in ex.card.value
    assert ring_x(ex.figure) == [pytest.approx(0.001)]


def test_rate_and_battery_change_the_cards_battery_figure(frame):
    ex = ui.TradeoffExplorer(frame)
    assert ex.rate_hz.value == 5 and ex.battery_mah.value == 2000
    assert "mAh" not in ex.card.value  # no device: no battery claim about this machine
    ex.device.value = "raspberry-pi-4"
    first = ex.decision.duty
    assert "on a 2,000 mAh battery at 5 inferences/s" in ex.card.value
    ex.battery_mah.value = 4000
    assert "on a 4,000 mAh battery" in ex.card.value
    assert ex.decision.duty.battery_h == pytest.approx(2 * first.battery_h)
    ex.rate_hz.value = 50
    assert "at 50 inferences/s" in ex.card.value
    assert ex.decision.duty.average_power_w > first.average_power_w
    assert ex.last_error is None


def test_axis_changes_keep_the_decision(frame):
    """An axis or colour change redraws the chart only: the decision (the slow part) is not recomputed."""
    ex = ui.TradeoffExplorer(frame)
    decision, n = ex.decision, ex.updates
    ex.x.value = "size_bytes"
    ex.color.value = "structure"
    assert ex.decision is decision and ex.updates == n + 2
    ex.min_accuracy.value = 0.9
    assert ex.decision is not decision and ex.best["variant"] == "channel-0.50"


def test_advanced_accordion_holds_the_axes_and_filters(frame):
    ex = ui.TradeoffExplorer(frame)
    assert isinstance(ex.advanced, widgets.Accordion) and ex.advanced.selected_index is None  # closed
    assert ex.advanced.get_title(0) == "Advanced: axes and filters"
    inside = descendants(ex.advanced)
    for name in ("x", "y", "color", "view", "bits", "structure", "runtime", "prune", "include_simulated",
                 "show_broken"):
        assert getattr(ex, name) in inside, name
    first = descendants(ex.children[1])
    assert ex.device in first and ex.min_accuracy in first and ex.rate_hz in first and ex.x not in first
    ex.bits.value = (8,)  # still plain controls
    assert len(data_points(ex.figure)) == 2


def test_accuracy_axis_opens_on_the_decision_region(frame):
    f = frame.copy()
    broken = f.variant == "channel-0.50+q8"
    f.loc[broken, "accuracy"] = 0.10  # a broken variant far below the original
    ex = ui.TradeoffExplorer(f)
    lo, hi = ex.figure.layout.yaxis.range
    assert 0.85 < lo < 0.90 and 0.99 <= hi <= 1.01  # 0.90 .. 0.99 fill the axis
    assert "channel-0.50+q8@raspberry-pi-4" not in data_points(ex.figure) and len(data_points(ex.figure)) == 6
    assert "1 variant below 89 % accuracy not shown" in ex.broken.value and "(10 %)" in ex.broken.value
    ex.show_broken.value = True
    assert "channel-0.50+q8@raspberry-pi-4" in data_points(ex.figure)
    assert ex.figure.layout.yaxis.range is None  # autorange: the whole span
    ex.show_broken.value = False
    ex.min_accuracy.value = 0.5  # a lower bar widens the region, still above the broken variant
    assert ex.figure.layout.yaxis.range[0] < 0.5 and len(data_points(ex.figure)) == 6
    ex.y.value = "size_bytes"  # the metric is off the axes: nothing hidden
    assert len(data_points(ex.figure)) == 7 and ex.broken.value == ""


def test_shipped_results_name_the_machine_that_measured_them(frame):
    """Shipped demo results were measured elsewhere: the card says where, beside its "(measured)"."""
    shipped = frame.copy()
    shipped.attrs.update(source="shipped", note="Precomputed results measured on Example CPU, 2 cores (2026-12-02).")
    ex = ui.TradeoffExplorer(shipped)
    assert "(measured)" in ex.card.value and "measured on Example CPU, 2 cores" in ex.card.value
    assert "wb-provenance" not in ui.TradeoffExplorer(frame).card.value  # results measured here carry no such note
