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


# ------------------------------------------------------------------------------ race to idle against DVFS

LEAKAGE_K_PER_V = 1.83
"""Exponential voltage coefficient of subthreshold leakage: P_leak(V) = P_leak(V_max) x (V / V_max) x
exp(K (V - V_max)), K = 1.83 / V, the 70 nm fit of Martin et al. ("Combined dynamic voltage scaling and adaptive
body biasing for lower power microprocessors under dynamic workloads", ICCAD 2002), as used by Jejurikar, Pereira
and Gupta ("Leakage aware dynamic voltage scaling for real-time embedded systems", DAC 2004). A model, not a
figure of any one chip."""
POWER_FORMULA = ("per period T = 1/r: E = P_idle·t(f) + E_dyn·(V/V_max)² + P_leak(V)·t(f) + gap, t(f) = t_max·f_max/f, "
                 "E_dyn = E_above_idle − P_leak(V_max)·t_max, P_leak(V) = P_leak·(V/V_max)·exp(1.83/V·(V − V_max)); "
                 "gap = P_idle·(T − t) awake, or E_wake + P_sleep·(T − t − t_wake) asleep (when the gap beats the "
                 "break-even time); average power = E × r")
STRATEGIES = ("race-to-idle", "dvfs", "best")


def leakage_power_w(device: str | DeviceProfile, volt: float | None, v_max: float | None,
                    leakage_w: float | None = None) -> float:
    """The profile's leakage (`leakage_w`, or the override) at voltage `volt` (`LEAKAGE_K_PER_V` model); 0 when
    unknown.

    Example:
        >>> round(leakage_power_w("stm32h7", 1.0, 1.33) / leakage_power_w("stm32h7", 1.33, 1.33), 3)
        0.411
    """
    from workbench.hardware.catalog import device as get_device

    leak = get_device(device).leakage_w if leakage_w is None else float(leakage_w)
    if not leak:
        return 0.0
    if volt is None or v_max is None:
        return float(leak)
    return float(leak) * volt / v_max * math.exp(LEAKAGE_K_PER_V * (volt - v_max))


def active_energy_mj(device: str | DeviceProfile, e_above_mj: float, t_top_ms: float, t_ms: float,
                     volt: float | None, v_max: float | None, *, leakage: bool = True,
                     leakage_w: float | None = None) -> tuple[float, float]:
    """``(dynamic, leakage)`` energy (mJ) of one inference run in `t_ms` at voltage `volt`, from `e_above_mj`,
    what it adds above idle at the top clock in `t_top_ms` (`POWER_FORMULA`): the dynamic share (that energy less
    the top clock's leakage over `t_top_ms`) scales with (V/V_max)², leakage is paid over the stretched `t_ms`.

    Example:
        >>> [round(x, 3) for x in active_energy_mj("stm32h7", 8.0, 16.0, 16.0, None, None)]
        [7.2, 0.8]
    """
    leak_top = leakage_power_w(device, v_max, v_max, leakage_w) if leakage else 0.0
    dynamic = max(0.0, e_above_mj - leak_top * t_top_ms) * ((volt / v_max) ** 2 if volt else 1.0)
    return dynamic, (leakage_power_w(device, volt, v_max, leakage_w) if leakage else 0.0) * t_ms


def break_even_ms(device: str | DeviceProfile) -> float:
    """Shortest gap (ms) for which sleeping costs less than staying idle: max(t_wake, (E_wake − P_sleep·t_wake) /
    (P_idle − P_sleep)); NaN when the profile has no complete sleep state (`DeviceProfile.can_sleep`).

    Example:
        >>> round(break_even_ms("stm32h7"), 2)
        10.01
    """
    from workbench.hardware.catalog import device as get_device

    p = get_device(device)
    if not p.can_sleep or p.idle_w <= p.sleep_w:
        return math.nan
    return max(p.wake_ms, (p.wake_mj - p.sleep_w * p.wake_ms) / (p.idle_w - p.sleep_w))


def gap_energy_mj(device: str | DeviceProfile, gap_ms: float, *, sleep: bool = True) -> tuple[float, str]:
    """Energy of one gap between inferences and the state it is spent in (``"idle"`` or ``"sleep"``): sleep when
    the profile can and it costs less (the gap is past the break-even time), else idle."""
    from workbench.hardware.catalog import device as get_device

    p = get_device(device)
    idle = p.idle_w * gap_ms
    if sleep and p.can_sleep and gap_ms >= p.wake_ms:
        asleep = p.wake_mj + p.sleep_w * (gap_ms - p.wake_ms)
        if asleep < idle:
            return asleep, "sleep"
    return idle, "idle"


def power_notes(device: str | DeviceProfile, *, leakage_w: float | None = None) -> list[str]:
    """What the profile leaves out, in words: the estimates use no invented number in its place."""
    from workbench.hardware.catalog import device as get_device

    p = get_device(device)
    notes = []
    if leakage_w is None and p.leakage_w is None:
        notes.append(f"{p.name} has no leakage figure (power.leakage_w): leakage is not counted, which favours "
                     "low clocks")
    elif leakage_w is not None:
        notes.append(f"leakage {leakage_w:g} W is a what-if, not the profile's figure")
    if p.sleep_mode == "none":
        notes.append(f"{p.name} has no deep sleep: idle is the floor ({p.source('power.sleep')})")
    elif p.sleep_mode is None:
        notes.append(f"{p.name}'s profile gives no sleep state (power.sleep): race-to-idle idles between inferences")
    elif not p.can_sleep:
        missing = [k for k, v in (("power_w", p.sleep_w), ("wake_ms", p.wake_ms), ("wake_mj", p.wake_mj)) if v is None]
        notes.append(f"{p.name}'s {p.sleep_mode} has no {', '.join(missing)} in the profile: not used, race-to-idle "
                     "idles between inferences")
    if not p.dvfs:
        notes.append(f"{p.name} has no DVFS points: one clock, so DVFS and race-to-idle run at the same clock")
    return notes


def power_strategies(latency_ms: float, energy_mj: float | None, device: str | DeviceProfile, rate_hz: float, *,
                     deadline_ms: float | None = None, leakage: bool = True, leakage_w: float | None = None) -> Any:
    """Race to idle against DVFS for one periodic inference: every clock x gap state, and which strategy wins.

    *Race to idle* runs at the top clock and then sleeps (power-gates) when the gap beats the break-even time, else
    idles. *DVFS* runs at the lowest-energy clock that meets the deadline and stays awake (idle) between
    inferences. *Best* is the cheapest of every clock x {idle, sleep}. Energy per inference (`POWER_FORMULA`):
    dynamic energy scales with V², leakage energy with the stretched latency, idle or sleep fills the period, and a
    sleeping period pays one wake-up. Every figure is an estimate from the profile.

    Args:
        latency_ms: one inference at the top clock (the profile's peak clock).
        energy_mj: energy one inference adds above idle at the top clock (a row's ``energy_mj_est``); None:
            (P_active − P_idle) x latency.
        device: profile name or `DeviceProfile` (its `dvfs` points, `leakage_w` and `sleep` figures).
        rate_hz: inferences per second.
        deadline_ms: relative deadline (default: the period).
        leakage: count the profile's leakage (False: dynamic energy only, the old model).
        leakage_w: a what-if leakage at the top clock, W, in place of the profile's.

    Returns:
        DataFrame, one row per clock x gap state: ``freq_mhz``, ``volt``, ``latency_ms``, ``gap_state``,
        ``feasible``, ``dynamic_mj``, ``leakage_mj``, ``idle_mj``, ``sleep_mj`` (sleep + wake-up), ``wake_mj``,
        ``energy_mj`` (per period), ``average_power_w``, ``strategy`` (the named strategies this row is),
        ``estimate``. ``attrs``: ``winner`` (race-to-idle or dvfs), ``why``, ``break_even_ms``, ``notes``.

    Example:
        >>> df = power_strategies(17.0, None, "stm32h7", rate_hz=0.5)
        >>> df.attrs["winner"], df.loc[df.strategy.str.contains("race"), "gap_state"].item()
        ('race-to-idle', 'sleep')
    """
    import pandas as pd

    from workbench.hardware.catalog import device as get_device

    prof = get_device(device)
    rate = _positive("rate_hz", rate_hz)
    lat = _positive("latency_ms", latency_ms)
    e_above = (prof.active_w - prof.idle_w) * lat if energy_mj is None else _figure(energy_mj)
    period = 1000.0 / rate
    deadline = period if deadline_ms is None else min(_positive("deadline_ms", deadline_ms), period)
    points = [(p.freq_mhz, p.volt) for p in prof.dvfs] or [(None, None)]
    f_max, v_max = points[-1]
    rows = []
    for f, v in points:
        t = lat * (f_max / f if f else 1.0)
        dyn, leak = active_energy_mj(prof, e_above, lat, t, v, v_max, leakage=leakage, leakage_w=leakage_w)
        gap = max(0.0, period - t)
        for state in ("idle", "sleep") if prof.can_sleep else ("idle",):
            e_gap, got = gap_energy_mj(prof, gap, sleep=state == "sleep")
            if got != state:
                continue
            wake = prof.wake_mj if state == "sleep" else 0.0
            energy = prof.idle_w * t + dyn + leak + e_gap
            rows.append({"device": prof.name, "freq_mhz": math.nan if f is None else f,
                         "volt": math.nan if v is None else v, "latency_ms": t, "gap_state": state,
                         "feasible": t <= deadline * (1 + 1e-12), "dynamic_mj": dyn, "leakage_mj": leak,
                         "idle_mj": prof.idle_w * t + (e_gap if state == "idle" else 0.0),
                         "sleep_mj": e_gap if state == "sleep" else 0.0, "wake_mj": wake, "energy_mj": energy,
                         "average_power_w": energy * rate / 1000.0})
    df = pd.DataFrame(rows)
    df["strategy"] = ""
    ok = df[df.feasible]
    if ok.empty:
        raise WorkbenchError(f"power_strategies: one inference takes {lat:.4g} ms on {prof.name} at the top clock, "
                             f"past its {deadline:.4g} ms deadline at {rate:g} Hz: lower the rate or use a faster "
                             "variant.")
    top = ok[ok.latency_ms == ok.latency_ms.min()]
    race = top.energy_mj.idxmin()
    awake = ok[ok.gap_state == "idle"]
    dvfs = min(awake.index, key=lambda k: (round(awake.at[k, "energy_mj"], 12), awake.at[k, "latency_ms"]))
    best = min(ok.index, key=lambda k: (round(ok.at[k, "energy_mj"], 12), ok.at[k, "latency_ms"]))
    for name, k in zip(STRATEGIES, (race, dvfs, best)):
        df.at[k, "strategy"] = (df.at[k, "strategy"] + " " + name).strip()
    df["estimate"] = f"estimate on {prof.name}: {POWER_FORMULA}"
    r_e, d_e = df.at[race, "energy_mj"], df.at[dvfs, "energy_mj"]
    winner = "race-to-idle" if r_e < d_e - 1e-12 else "dvfs"
    clock = lambda k: "one clock" if math.isnan(df.at[k, "freq_mhz"]) else f"{df.at[k, 'freq_mhz']:g} MHz"
    df.attrs.update(
        device=prof.name, rate_hz=rate, winner=winner, break_even_ms=break_even_ms(prof),
        race_energy_mj=r_e, dvfs_energy_mj=d_e, notes=power_notes(prof, leakage_w=leakage_w if leakage else None),
        why=(f"at {rate:g} Hz the gap after a {df.at[race, 'latency_ms']:.3g} ms inference at {clock(race)} is "
             f"{period - df.at[race, 'latency_ms']:.4g} ms ({df.at[race, 'gap_state']}; break-even "
             f"{break_even_ms(prof):.3g} ms); race-to-idle {r_e:.4g} mJ per inference against DVFS at {clock(dvfs)} "
             f"{d_e:.4g} mJ (dynamic {df.at[dvfs, 'dynamic_mj']:.3g} + leakage {df.at[dvfs, 'leakage_mj']:.3g} mJ "
             f"over a {df.at[dvfs, 'latency_ms']:.3g} ms run, awake between runs)"))
    return df


def power_vs_rate(latency_ms: float, energy_mj: float | None, device: str | DeviceProfile, rates: Any, *,
                  leakage: bool = True, leakage_w: float | None = None) -> Any:
    """Average power of race-to-idle, DVFS and the best option at each rate, and the rates where the winner
    changes (``attrs["crossings_hz"]``, found by bisection between the grid rates).

    Returns:
        DataFrame with ``rate_hz``, ``strategy``, ``freq_mhz``, ``gap_state``, ``energy_mj``, ``average_power_w``,
        ``winner`` (at that rate) and ``estimate``; rates the device cannot keep up with are left out
        (``attrs["infeasible_hz"]``).

    Example:
        >>> df = power_vs_rate(17.0, None, "stm32h7", [0.5, 1, 2, 5, 10, 20])
        >>> [round(r, 2) for r in df.attrs["crossings_hz"]], df.attrs["winners"]
        ([2.83], ['race-to-idle', 'dvfs'])
    """
    import pandas as pd

    def one(r: float) -> Any:
        return power_strategies(latency_ms, energy_mj, device, r, leakage=leakage, leakage_w=leakage_w)

    def lead(r: float) -> float:
        a = one(r).attrs
        return a["race_energy_mj"] - a["dvfs_energy_mj"]

    rows, infeasible, seen = [], [], []
    for r in sorted(float(x) for x in rates):
        try:
            df = one(r)
        except WorkbenchError:
            infeasible.append(r)
            continue
        seen.append((r, df.attrs["race_energy_mj"] - df.attrs["dvfs_energy_mj"]))
        for name in STRATEGIES:
            row = df[df.strategy.str.split().apply(lambda s, n=name: n in s)].iloc[0]
            rows.append({"rate_hz": r, "strategy": name, "freq_mhz": row.freq_mhz, "volt": row.volt,
                         "gap_state": row.gap_state, "energy_mj": row.energy_mj,
                         "average_power_w": row.average_power_w, "winner": df.attrs["winner"],
                         "estimate": row.estimate})
    if not rows:
        raise WorkbenchError("power_vs_rate: the device keeps up with none of the rates; give lower ones.")
    crossings = []
    for (a, da), (b, db) in zip(seen, seen[1:]):
        if (da < -1e-12) != (db < -1e-12):
            lo, hi = a, b
            for _ in range(40):
                mid = math.sqrt(lo * hi)
                if (lead(mid) < -1e-12) == (da < -1e-12):
                    lo = mid
                else:
                    hi = mid
            crossings.append(math.sqrt(lo * hi))
    out = pd.DataFrame(rows)
    per_rate = list(out.drop_duplicates("rate_hz").winner)
    winners = [w for i, w in enumerate(per_rate) if i == 0 or w != per_rate[i - 1]]
    out.attrs.update(crossings_hz=crossings, winners=winners, infeasible_hz=infeasible,
                     device=out.estimate.iloc[0].split(":")[0].removeprefix("estimate on "),
                     notes=power_notes(device, leakage_w=leakage_w if leakage else None))
    return out


__all__ = ["DEFAULT_VOLTAGE", "FORMULA", "LEAKAGE_K_PER_V", "POWER_FORMULA", "STRATEGIES", "DutyCycle",
           "break_even_ms", "duty_cycle", "gap_energy_mj", "leakage_power_w", "power_notes", "power_strategies",
           "power_vs_rate"]

