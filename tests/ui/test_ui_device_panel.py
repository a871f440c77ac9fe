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
    assert set(bars) == {"latency (est., ms)", "energy per inference (est., mJ)", "power (est., W)"}  # no battery
    lat = bars["latency (est., ms)"]
    assert list(lat.x) == ["raspberry-pi-4", "esp32-s3"]
    assert list(lat.y) == pytest.approx([0.048 * 4, 0.048 * 300])
    assert "esp32-s3" in panel.table.value and "0.985" in panel.table.value

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
