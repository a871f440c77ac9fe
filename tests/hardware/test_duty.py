"""Duty cycle: average power = idle + energy x rate, battery = Wh / power, and the rate a device cannot keep up."""

from __future__ import annotations

import dataclasses
import math

import pytest

import workbench
from workbench.hardware import device
from workbench.hardware.duty import DutyCycle, duty_cycle


def test_average_power_and_battery_follow_the_formula():
    pi = device("raspberry-pi-4")
    d = duty_cycle(1.2, 0.25, "raspberry-pi-4", rate_hz=5, battery_mah=2000)
    assert d.average_power_w == pytest.approx(pi.idle_w + 1.2e-3 * 5)
    assert d.battery_wh == pytest.approx(2000 * 3.7 / 1000)
    assert d.battery_h == pytest.approx(2000 * 3.7 / 1000 / (pi.idle_w + 1.2e-3 * 5))
    assert d.busy_fraction == pytest.approx(0.25 * 5 / 1000) and d.feasible
    assert d.idle_w == pi.idle_w and d.device == "raspberry-pi-4" and "idle" in d.formula.lower()
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.rate_hz = 10  # type: ignore[misc]
    assert isinstance(d, DutyCycle)


def test_it_agrees_with_the_roofline_estimate_at_a_rate():
    """The device estimate's own power at a rate (`power_w_at_rate_est`) is the same formula."""
    task = workbench.zoo.load("digits-cnn")
    est = workbench.estimate(task.model, "stm32h7", rate_hz=2, battery_wh=2 * 3.7)
    d = duty_cycle(est.energy_mj_est, est.latency_ms_est, device("stm32h7"), rate_hz=2, battery_mah=2000)
    assert d.average_power_w == pytest.approx(est.power_w_at_rate_est)
    assert d.battery_h == pytest.approx(est.battery_h_est)


def test_a_rate_the_device_cannot_sustain_has_no_power_figure():
    d = duty_cycle(1.2, 300, "raspberry-pi-4", rate_hz=5, battery_mah=2000)
    assert not d.feasible and d.busy_fraction == pytest.approx(1.5)
    assert math.isnan(d.average_power_w) and math.isnan(d.battery_h)
    exact = duty_cycle(1.2, 200, "raspberry-pi-4", rate_hz=5)  # exactly back to back still fits
    assert exact.feasible and math.isnan(exact.battery_h) and exact.battery_mah is None


def test_a_higher_voltage_or_lower_rate_lasts_longer():
    base = duty_cycle(5.0, 10, "esp32-s3", rate_hz=10, battery_mah=1000)
    assert duty_cycle(5.0, 10, "esp32-s3", rate_hz=1, battery_mah=1000).battery_h > base.battery_h
    assert duty_cycle(5.0, 10, "esp32-s3", rate_hz=10, battery_mah=1000, voltage=7.4).battery_h == pytest.approx(
        2 * base.battery_h)


def test_missing_energy_gives_nan_not_a_number_made_up():
    d = duty_cycle(float("nan"), float("nan"), "raspberry-pi-4", rate_hz=1, battery_mah=1000)
    assert d.feasible and math.isnan(d.average_power_w) and math.isnan(d.battery_h)


@pytest.mark.parametrize("kwargs, match", [
    ({"rate_hz": 0, "battery_mah": 1000}, "rate_hz"),
    ({"rate_hz": -1, "battery_mah": 1000}, "rate_hz"),
    ({"rate_hz": 1, "battery_mah": 0}, "battery_mah"),
    ({"rate_hz": 1, "battery_mah": float("inf")}, "battery_mah"),
    ({"rate_hz": 1, "battery_mah": 100, "voltage": 0}, "voltage"),
    ({"rate_hz": True, "battery_mah": 100}, "rate_hz"),
])
def test_bad_arguments_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        duty_cycle(1.0, 1.0, "raspberry-pi-4", **kwargs)


def test_unknown_device():
    with pytest.raises(workbench.WorkbenchError, match="Unknown device"):
        duty_cycle(1.0, 1.0, "toaster", rate_hz=1)
