"""Fleet plan: for each class of device in a fleet, the best variant of a sweep that meets its budgets.

A fleet is a list of `DeviceClass`: a device profile, how many units, how many inferences each runs per day,
and budgets (latency, RAM, energy per inference, minimum accuracy). `fleet_plan` reads the sweep results frame
(one row per variant x runtime x device; see `workbench.sweep`), keeps the rows for each class's device that ran
without error, run for real (``realized``: a variant whose compression is only simulated is never planned unless
``realized_only=False``), are deployable and fit the device (`deployable`, `fits` from the estimator), keep up
with the daily load, and meet every budget, and picks the best by an objective (lowest energy by default). A class that
nothing satisfies gets a row saying which constraint no variant meets (with the best value on offer), or that
the budgets cannot be met together.

Energy per day per class = count x (P_idle x 24 h + inferences/day x energy per inference), with the idle power
from the device profile and the energy per inference (above idle) from the sweep's ``energy_mj_est``. The same
duty cycle gives each unit's average power, P_idle + energy x rate with rate = inferences/day / 86,400 s, and,
for a class with a ``battery_mah``, its battery life (`workbench.hardware.duty.duty_cycle`).

Example:
    >>> fleet = [DeviceClass("doorbells", "raspberry-pi-4", count=500, inferences_per_day=20_000,
    ...                      max_latency_ms=5, min_accuracy=0.95)]
    >>> plan, fig = fleet_plan(df, fleet)  # df: sweep results with devices=["raspberry-pi-4"]
    >>> plan[["device_class", "variant", "status"]].values.tolist()
    [['doorbells', 'q8', 'ok']]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from workbench.core.errors import WorkbenchError

OBJECTIVES = {
    # objective: (column role, ascending)
    "energy": ("energy", True),
    "latency": ("latency", True),
    "accuracy": ("metric", False),
    "size": ("size", True),
}
SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True)
class DeviceClass:
    """A group of identical devices in the fleet and the budgets a variant must meet on them.

    Attributes:
        name: label of the class (``"doorbells"``).
        device: the device profile name, as in the sweep's ``device`` column.
        count: units in the fleet.
        inferences_per_day: inferences each unit runs per day.
        max_latency_ms: latency budget (on the sweep's latency column, the device estimate by default).
        max_ram_bytes: memory budget (peak memory measured, else the artefact size).
        max_energy_mj: energy budget per inference.
        min_accuracy: minimum of the metric (``accuracy`` by default).
        runtimes: only consider rows of these runtimes (None: any).
        battery_mah: battery capacity of each unit (None: mains powered), for ``battery_h`` at the class's rate.
    """

    name: str
    device: str
    count: int
    inferences_per_day: float
    max_latency_ms: float | None = None
    max_ram_bytes: float | None = None
    max_energy_mj: float | None = None
    min_accuracy: float | None = None
    runtimes: tuple[str, ...] | None = None
    battery_mah: float | None = None

    def __post_init__(self) -> None:
        for attr in ("name", "device"):
            v = getattr(self, attr)
            if not isinstance(v, str) or not v.strip():
                raise WorkbenchError(f"DeviceClass {attr} must be a non-empty string, got {v!r}.")
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 1:
            raise WorkbenchError(f"DeviceClass {self.name!r}: count must be a positive integer, got {self.count!r}.")
        if not _number(self.inferences_per_day) or self.inferences_per_day < 0:
            raise WorkbenchError(f"DeviceClass {self.name!r}: inferences_per_day must be a number >= 0, got "
                                 f"{self.inferences_per_day!r}.")
        for attr in ("max_latency_ms", "max_ram_bytes", "max_energy_mj", "battery_mah"):
            v = getattr(self, attr)
            if v is not None and not (_number(v) and v > 0):
                raise WorkbenchError(f"DeviceClass {self.name!r}: {attr} must be a positive number or None, got {v!r}.")
        if self.min_accuracy is not None and not _number(self.min_accuracy):
            raise WorkbenchError(f"DeviceClass {self.name!r}: min_accuracy must be a number or None, got "
                                 f"{self.min_accuracy!r}.")
        if self.runtimes is not None:
            if isinstance(self.runtimes, str) or not all(isinstance(r, str) for r in self.runtimes):
                raise WorkbenchError(f"DeviceClass {self.name!r}: runtimes must be a tuple of runtime names, got "
                                     f"{self.runtimes!r}.")
            object.__setattr__(self, "runtimes", tuple(self.runtimes))


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _num(frame: pd.DataFrame, col: str) -> pd.Series:
    if col not in frame:
        return pd.Series(np.nan, index=frame.index, dtype=float)
    return pd.to_numeric(frame[col], errors="coerce").astype(float)


def _truthy(frame: pd.DataFrame, col: str) -> pd.Series:
    """A boolean column with missing values read as False (absent column: all True)."""
    if col not in frame:
        return pd.Series(True, index=frame.index)
    return frame[col].map(lambda v: bool(v) if isinstance(v, (bool, np.bool_, int, float)) and v == v else False)


def _constraints(rows: pd.DataFrame, cls: DeviceClass, cols: dict[str, str],
                 realized_only: bool = True) -> list[tuple[str, pd.Series, str]]:
    """(description, pass mask, best value on offer) per constraint, in the order they are explained."""
    from workbench.sweeps.analysis import within_budget
    from workbench.sweeps.frame import error_mask

    ram = _num(rows, cols["ram"]).fillna(_num(rows, "size_bytes"))
    out = [("ran without error", ~error_mask(rows), "")]
    if realized_only and "realized" in rows:  # as `workbench.best`: a missing value is no proof of a real kernel
        out.append(("runs for real (compression not simulated; realized_only=False plans simulated variants too)",
                    rows["realized"].map(lambda v: isinstance(v, (bool, np.bool_, int, float)) and v == v
                                         and bool(v)).astype(bool), ""))
    out += [
        ("deployable on the device (dtype supported)", _truthy(rows, "deployable"), ""),
        ("fits the device's memory (estimate)", _truthy(rows, "fits"), ""),
    ]
    if cls.runtimes is not None:
        out.append((f"runtime in {list(cls.runtimes)}", rows["runtime"].isin(cls.runtimes) if "runtime" in rows
                    else pd.Series(False, index=rows.index), ""))
    if cls.inferences_per_day:
        need = SECONDS_PER_DAY * 1000.0 / cls.inferences_per_day
        _, (keep_up,) = within_budget(rows, max_latency_ms=need, latency_col=cols["latency"])
        out.append((f"keeps up with {cls.inferences_per_day:g} inferences/day (latency <= {need:.4g} ms)",
                    keep_up.ok, keep_up.best_text))
    # The memory budget reads the RAM column, falling back to the file size where it has no value.
    _, budgets = within_budget(rows.assign(ram_or_size_bytes=ram), max_latency_ms=cls.max_latency_ms,
                               max_memory_bytes=cls.max_ram_bytes, max_energy_mj=cls.max_energy_mj,
                               min_metric=cls.min_accuracy, metric=cols["metric"], latency_col=cols["latency"],
                               memory_col="ram_or_size_bytes")
    by_name = {b.name: b for b in budgets}
    for name in ("max_latency_ms", "max_memory_bytes", "max_energy_mj", "min_metric"):  # the order they explain
        if name in by_name:
            out.append((by_name[name].text, by_name[name].ok, by_name[name].best_text))
    return out


def _explain(rows: pd.DataFrame, checks: list[tuple[str, pd.Series, str]]) -> str:
    if rows.empty:
        return ""
    alone = [(d, best) for d, mask, best in checks if not mask.any()]
    if alone:
        return "nothing meets " + "; ".join(f"{d}" + (f" ({best})" if best and "nan" not in best else "")
                                            for d, best in alone)
    counts = ", ".join(f"{d}: {int(mask.sum())} of {len(rows)}" for d, mask, _ in checks)
    return f"each budget is met by some variant but none meets all at once ({counts})"


def fleet_plan(
    results: pd.DataFrame,
    fleet: Sequence[DeviceClass],
    *,
    objective: str = "energy",
    metric: str = "accuracy",
    latency: str = "latency_ms_est",
    ram: str = "peak_mem_bytes",
    realized_only: bool = True,
) -> tuple[pd.DataFrame, Any]:
    """Choose, per device class, the best variant of a sweep that meets the class's budgets.

    Args:
        results: sweep results (one row per variant x runtime x device) with at least ``device``, ``variant``,
            ``energy_mj_est``, the `latency` column and the `metric` column.
        fleet: the `DeviceClass` list.
        objective: ``"energy"`` (lowest energy per inference), ``"latency"``, ``"accuracy"`` (highest metric) or
            ``"size"`` (smallest artefact); ties go to the higher metric, then the lower energy.
        metric: the quality column `min_accuracy` applies to.
        latency: the latency column (default the device estimate; ``"latency_ms_p50"`` for latency measured here).
        ram: the memory column (falls back to ``size_bytes`` where it is missing).
        realized_only: plan only variants that run for real (``realized``); False admits simulated ones.

    Returns:
        ``(plan, figure)``: one row per class with the chosen ``variant``, ``runtime``, ``bits``, ``prune``,
        the metric, ``latency_ms``, ``energy_mj``, ``ram_bytes``, ``candidates`` / ``acceptable`` counts,
        ``inference_kwh_day``, ``idle_kwh_day``, ``total_kwh_day``, the duty cycle of one unit (``rate_hz``,
        ``average_power_w``, ``battery_h``: NaN without a ``battery_mah``; all estimates) and ``reason`` (why
        nothing fits, when ``status`` is ``"none"``). ``plan.attrs`` holds the fleet totals. The figure stacks energy per day per class.

    Raises:
        WorkbenchError: missing columns, an unknown objective, duplicate class names.
    """
    if objective not in OBJECTIVES:
        raise WorkbenchError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}.")
    if not isinstance(results, pd.DataFrame):
        raise WorkbenchError(f"results must be a pandas DataFrame of sweep results, got {type(results).__name__}.")
    needed = ["device", "variant", "energy_mj_est", latency, metric]
    missing = [c for c in needed if c not in results]
    if missing:
        raise WorkbenchError(f"The results frame lacks column(s) {missing}; a sweep with devices=[...] gives them "
                             f"(it has: {', '.join(map(str, results.columns))}).")
    fleet = list(fleet)
    if not fleet or not all(isinstance(c, DeviceClass) for c in fleet):
        raise WorkbenchError("fleet must be a non-empty list of DeviceClass.")
    names = [c.name for c in fleet]
    if len(set(names)) != len(names):
        raise WorkbenchError(f"Device class names must be distinct, got {names}.")
    cols = {"latency": latency, "metric": metric, "ram": ram, "energy": "energy_mj_est", "size": "size_bytes"}
    out = [_plan_class(results, cls, cols, objective, realized_only) for cls in fleet]
    plan = pd.DataFrame(out)
    plan.attrs["objective"] = objective
    plan.attrs["fleet_total_kwh_day"] = float(plan["total_kwh_day"].sum(min_count=1))
    plan.attrs["fleet_inference_kwh_day"] = float(plan["inference_kwh_day"].sum(min_count=1))
    plan.attrs["unserved"] = [r["device_class"] for r in out if r["status"] != "ok"]
    from workbench.viz.planning import fleet_figure

    return plan, fleet_figure(plan, metric)


def _idle_w(name: str) -> float:
    from workbench.hardware import device

    try:
        return float(device(name).idle_w)
    except WorkbenchError:
        return float("nan")


def _duty(cls: DeviceClass, energy_mj: float, latency_ms: float) -> dict[str, float]:
    """One unit's average power and battery life at the class's daily load (idle power alone with no load)."""
    from workbench.hardware.duty import DEFAULT_VOLTAGE, duty_cycle

    rate = cls.inferences_per_day / SECONDS_PER_DAY
    try:
        if rate > 0:
            d = duty_cycle(energy_mj, latency_ms, cls.device, rate, cls.battery_mah)
            power, hours = d.average_power_w, d.battery_h
        else:
            power = _idle_w(cls.device)
            hours = cls.battery_mah * DEFAULT_VOLTAGE / 1000 / power if cls.battery_mah and power > 0 else np.nan
    except WorkbenchError:  # a device the catalogue does not know: no idle power to count
        power, hours = np.nan, np.nan
    return {"rate_hz": rate, "average_power_w": power, "battery_h": hours}


def _plan_class(results: pd.DataFrame, cls: DeviceClass, cols: dict[str, str], objective: str,
                realized_only: bool = True) -> dict[str, Any]:
    rows = results[results["device"] == cls.device]
    base: dict[str, Any] = {"device_class": cls.name, "device": cls.device, "count": cls.count,
                            "inferences_per_day": cls.inferences_per_day, "candidates": len(rows),
                            "rate_hz": cls.inferences_per_day / SECONDS_PER_DAY, "average_power_w": np.nan,
                            "battery_h": np.nan}
    idle_kwh = cls.count * _idle_w(cls.device) * 24 / 1000.0
    empty = {"status": "none", "variant": None, "runtime": None, "bits": np.nan, "prune": np.nan,
             "structure": None, cols["metric"]: np.nan, "latency_ms": np.nan, "energy_mj": np.nan,
             "ram_bytes": np.nan, "size_bytes": np.nan, "acceptable": 0, "inference_kwh_day": np.nan,
             "idle_kwh_day": idle_kwh, "total_kwh_day": np.nan}
    if rows.empty:
        known = sorted({str(d) for d in results["device"].dropna().unique()})
        return {**base, **empty, "reason": f"the sweep has no rows for device {cls.device!r} (it has: "
                                           f"{', '.join(known) or 'none'}); sweep with devices=[{cls.device!r}]"}
    checks = _constraints(rows, cls, cols, realized_only)
    ok = pd.Series(True, index=rows.index)
    for _, mask, _ in checks:
        ok &= mask.fillna(False).astype(bool)
    good = rows[ok]
    if good.empty:
        return {**base, **empty, "reason": _explain(rows, checks)}
    role, ascending = OBJECTIVES[objective]
    ranked = good.assign(_obj=_num(good, cols[role]), _metric=_num(good, cols["metric"]),
                         _energy=_num(good, "energy_mj_est"))
    ranked = ranked.sort_values(["_obj", "_metric", "_energy"], ascending=[ascending, False, True],
                                na_position="last", kind="stable")
    best = ranked.iloc[0]
    energy = float(best["_energy"])
    ram_v = _num(ranked.iloc[:1], cols["ram"]).fillna(_num(ranked.iloc[:1], "size_bytes")).iloc[0]
    inference_kwh = cls.count * cls.inferences_per_day * energy / 1000.0 / 3.6e6
    return {**base, "status": "ok", "variant": best["variant"], "runtime": best.get("runtime"),
            "bits": best.get("bits", np.nan), "prune": best.get("prune", np.nan),
            "structure": best.get("structure"), cols["metric"]: float(best["_metric"]),
            "latency_ms": float(_num(ranked.iloc[:1], cols["latency"]).iloc[0]), "energy_mj": energy,
            "ram_bytes": float(ram_v), "size_bytes": float(_num(ranked.iloc[:1], "size_bytes").iloc[0]),
            "acceptable": len(good), "inference_kwh_day": inference_kwh, "idle_kwh_day": idle_kwh,
            "total_kwh_day": inference_kwh + idle_kwh,
            **_duty(cls, energy, float(_num(ranked.iloc[:1], cols["latency"]).iloc[0])), "reason": ""}


__all__ = ["DeviceClass", "OBJECTIVES", "fleet_plan"]
