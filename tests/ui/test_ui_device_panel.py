"""DevicePanel: one variant across devices, and the variants x devices fit grid under a budget."""

from __future__ import annotations

import numpy as np
import pytest

from workbench import ui
from workbench.core.errors import WorkbenchError


def test_compare_devices_for_one_variant(frame):
    panel = ui.DevicePanel(frame, variant="q8")
    assert panel.last_error is None
    bars = {t.name: t for t in panel.figure.data}
    assert set(bars) == {"latency (est., ms)", "energy per inference (est., mJ)", "power while busy (est., W)",
                         "average power at the rate (est., W)", "battery life (est., h)"}
    lat = bars["latency (est., ms)"]
    assert list(lat.x) == ["raspberry-pi-4", "esp32-s3"]
    assert list(lat.y) == pytest.approx([0.048 * 4, 0.048 * 300])
    assert "esp32-s3" in panel.table.value and "98.5 %" in panel.table.value

    fig = panel.figure
    panel.variant.value = "baseline"
    assert panel.figure is fig
    lat = next(t for t in fig.data if t.name == "latency (est., ms)")
    assert list(lat.y) == pytest.approx([0.06 * 4, 0.06 * 300])
    assert list(lat.marker.pattern.shape) == ["", "x"]  # baseline does not fit the esp32-s3
    assert "needs more RAM" in panel.table.value

    panel.devices.value = ("esp32-s3",)
    assert list(next(t for t in fig.data if t.name == "latency (est., ms)").x) == ["esp32-s3"]


def test_budget_changes_the_fit_grid(frame):
    panel = ui.DevicePanel(frame)
    grid = panel.fit_figure.data[0]
    assert list(grid.x) == ["raspberry-pi-4", "esp32-s3"]
    loose = np.array(grid.z, float).copy()
    panel.latency_budget.value = 0.2  # rpi4 estimates are 0.11-0.28 ms: some variants now miss it
    tight = np.array(panel.fit_figure.data[0].z, float)
    assert (tight <= loose).all() and (tight < loose).any()
    assert "latency ≤ 0.2 ms" in panel.fit_figure.layout.title.subtitle.text
    panel.min_accuracy.value = 0.0
    assert panel.last_error is None


def test_errors_in_the_panel(frame):
    panel = ui.DevicePanel(frame)
    panel.devices.value = ()
    assert "no estimates" in panel.errors.value and isinstance(panel.last_error, WorkbenchError)
    panel.devices.value = ("raspberry-pi-4",)
    assert panel.last_error is None and panel.errors.value == ""


def test_needs_device_rows(frame):
    with pytest.raises(WorkbenchError, match="devices=\\["):
        ui.DevicePanel(frame.assign(device=None))
    with pytest.raises(WorkbenchError, match="no variant 'nope'"):
        ui.DevicePanel(frame, variant="nope")


def test_rate_and_battery_give_average_power_and_battery_life(frame):
    from workbench.hardware import device
    from workbench.hardware.duty import duty_cycle

    panel = ui.DevicePanel(frame, variant="q8")
    assert (panel.rate_hz.value, panel.battery_mah.value) == (5, 2000)
    titles = [a.text for a in panel.figure.layout.annotations]
    assert "average power at 5 Hz (est., W)" in titles and "battery life, 2,000 mAh at 5 Hz (est., h)" in titles
    hours = list(next(t for t in panel.figure.data if t.name == "battery life (est., h)").y)  # (updated in place)
    pi = duty_cycle(0.048 * 4 * 3.0, 0.048 * 4, "raspberry-pi-4", rate_hz=5, battery_mah=2000)
    assert hours[0] == pytest.approx(pi.battery_h)
    # the Pi idles at several watts: a few hours; the ESP32-S3 far longer
    assert hours[0] < 10 < hours[1]
    assert "battery life, 2,000 mAh at 5 Hz (est.)" in panel.table.value
    panel.battery_mah.value = 4000
    hours2 = list(next(t for t in panel.figure.data if t.name == "battery life (est., h)").y)
    assert hours2 == pytest.approx([2 * h for h in hours])
    panel.rate_hz.value = 100  # the ESP32-S3 needs 14.4 ms per inference: it keeps up with 69 Hz, not 100
    hours3 = list(next(t for t in panel.figure.data if t.name == "battery life (est., h)").y)
    assert np.isnan(hours3[1]) and "cannot keep up with 100 inferences/s" in panel.table.value
    assert device("esp32-s3").idle_w > 0 and panel.last_error is None
