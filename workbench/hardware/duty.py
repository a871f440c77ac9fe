"""Duty cycle: average power and battery life of a device that runs one inference every 1/rate seconds.

    busy_fraction   = latency · rate                       (the share of each period spent computing)
    average_power_w = P_idle + energy · rate               (the roofline's power(r); energy is above idle)
    battery_h       = mAh · V / 1000 / average_power_w     (Wh / W)

`energy` is the energy one inference adds above idle (``energy_mj_est`` of a sweep row), `P_idle` the profile's
``power.idle_w``, drawn between inferences (and under them: the energy figure is what computing adds). A rate
the device cannot keep up with (busy_fraction > 1) is not feasible and has no average power or battery life.

Example:
    >>> d = duty_cycle(1.2, 0.25, "raspberry-pi-4", rate_hz=5, battery_mah=2000)
    >>> round(d.average_power_w, 3), round(d.battery_h, 2), d.busy_fraction, d.feasible
    (2.306, 3.21, 0.00125, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from workbench.core.errors import WorkbenchError
from workbench.hardware.profile import DeviceProfile

FORMULA = ("average power = P_idle + energy per inference × rate; battery life = mAh × V / 1000 / average power; "
           "busy share = latency × rate")
DEFAULT_VOLTAGE = 3.7
"""A single lithium cell's nominal voltage: mAh × 3.7 V / 1000 = Wh."""


@dataclass(frozen=True)
class DutyCycle:
    """Average power and battery life at one inference rate (every figure an estimate).

    Attributes:
        device: profile name.
        energy_mj: energy per inference above idle (mJ).
        latency_ms: time of one inference (ms).
        rate_hz: inferences per second.
        battery_mah: battery capacity (None: no battery asked for).
        voltage: battery voltage (V).
        idle_w: the profile's idle power, drawn between inferences.
        busy_fraction: latency × rate, the share of time spent computing.
        feasible: whether one inference fits its period (busy_fraction <= 1).
        average_power_w: P_idle + energy × rate (NaN when not feasible or without an energy figure).
        battery_wh: mAh × V / 1000 (NaN without a battery).
        battery_h: battery_wh / average_power_w (NaN without a battery or a power figure).
        formula: the model, in words (`FORMULA`).
    """

    device: str
    energy_mj: float
    latency_ms: float
    rate_hz: float
    battery_mah: float | None
    voltage: float
    idle_w: float
    busy_fraction: float
    feasible: bool
    average_power_w: float
    battery_wh: float
    battery_h: float
    formula: str = FORMULA

    def to_row(self) -> dict[str, Any]:
        """The figures as result columns (``average_power_w_est``, ``battery_h_est``, ``busy_fraction_est``)."""
        return {"rate_hz": self.rate_hz, "battery_mah": self.battery_mah, "average_power_w_est": self.average_power_w,
                "battery_h_est": self.battery_h, "busy_fraction_est": self.busy_fraction, "feasible": self.feasible}


def _positive(name: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
        raise WorkbenchError(f"duty_cycle: {name} must be a positive number, got {v!r}.")
    return float(v)


def _figure(v: Any) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return math.nan
    return f if math.isfinite(f) else math.nan


def duty_cycle(energy_mj: float, latency_ms: float, device: str | DeviceProfile, rate_hz: float,
               battery_mah: float | None = None, voltage: float = DEFAULT_VOLTAGE) -> DutyCycle:
    """Average power and battery life of `device` running one inference `rate_hz` times a second.

    Args:
        energy_mj: energy per inference above idle, mJ (a row's ``energy_mj_est``; NaN gives NaN power).
        latency_ms: one inference, ms (``latency_ms_est``; NaN: feasibility unknown, taken as feasible).
        device: a profile name or `DeviceProfile` (its ``idle_w`` is drawn between inferences).
        rate_hz: inferences per second.
        battery_mah: battery capacity in mAh (None: no battery life).
        voltage: battery voltage (3.7 V: one lithium cell).

    Raises:
        WorkbenchError (a ValueError): a rate, battery or voltage that is not a positive number; an unknown
            device.

    Example:
        >>> duty_cycle(1.2, 300, "raspberry-pi-4", rate_hz=5).feasible   # 5 x 300 ms > 1 s
        False
    """
    from workbench.hardware.catalog import device as get_device

    rate = _positive("rate_hz", rate_hz)
    mah = None if battery_mah is None else _positive("battery_mah", battery_mah)
    volt = _positive("voltage", voltage)
    prof = get_device(device)
    energy, latency = _figure(energy_mj), _figure(latency_ms)
    busy = latency * rate / 1000.0
    feasible = not busy > 1.0
    power = prof.idle_w + energy * rate / 1000.0 if feasible else math.nan
    wh = mah * volt / 1000.0 if mah is not None else math.nan
    hours = wh / power if power > 0 else math.nan
    return DutyCycle(prof.name, energy, latency, rate, mah, volt, float(prof.idle_w), busy, feasible, power, wh,
                     hours)


__all__ = ["DEFAULT_VOLTAGE", "FORMULA", "DutyCycle", "duty_cycle"]
