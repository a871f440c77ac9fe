"""Several models on one device: utilisation, EDF / rate-monotonic schedulability, power, and the DVFS point.

Each `Workload` is a periodic inference: a model (or a latency) at a rate, with a deadline (the period unless
given) and an optional fixed priority. On one processor, preemptive, with constrained deadlines (D <= T) and all
workloads released together at t = 0 (the worst case), `schedule` reports at every DVFS operating point:

* **utilisation** U = sum C_i / T_i and density sum C_i / D_i;
* **EDF**: exact processor-demand test (U <= 1 when every deadline is its period);
* **rate-monotonic** (shorter period = higher priority): the Liu & Layland bound U <= n (2^(1/n) - 1)
  (sufficient; "Scheduling algorithms for multiprogramming in a hard-real-time environment", JACM 1973) and the
  exact response-time analysis R_i = C_i + sum_{j in hp(i)} ceil(R_i / T_j) C_j (Joseph & Pandya 1986;
  Audsley et al. 1993); with priorities given, the same analysis for those ("fp");
* a **simulated timeline** over the hyperperiod (or a capped window): deadline misses and worst response per
  workload, for EDF and RM;
* **average power** = P_idle + sum rate_i E_i (minus what sleeping saves in the gaps) and energy per hour;
* **memory**: the models given as handles stay resident together, so their weights plus the largest peak
  activations must fit the device (weights in flash on MCUs); a set that does not fit is infeasible at every
  point.

**DVFS model** (`workbench.hardware.duty.POWER_FORMULA`). At an operating point (f, V) latency scales by
f_max / f (every cycle slows: conservative for memory-bound layers, whose time scales less). The energy one
inference adds above idle splits into dynamic energy, scaled by (V / V_max)^2 (C V^2 per cycle, cycle count
fixed), and leakage, P_leak(V) x latency: the profile's ``power.leakage_w`` at the top clock, falling with the
voltage (`workbench.hardware.duty.leakage_power_w`) but paid for the whole stretched run — so a lower clock can
cost more. With ``sleep=True`` the idle time is spent in the profile's sleep state when the mean gap between jobs,
(1 - U) / sum r_i, beats the break-even time (one wake-up per job: an approximation of the real gaps). A profile
without a leakage figure or a sleep state is estimated without them, and ``attrs["power_notes"]`` says so;
``leakage=False, sleep=False`` is the dynamic-only model (energy x (V / V_max)^2, constant idle power). The chosen
point is the lowest-energy one whose set passes the chosen policy's exact test (ties: the faster point).

Latency and energy per inference come from `workbench.hardware.roofline` when a workload gives a model, or from
the workload itself (energy defaults to (P_active - P_idle) x latency, the estimator's busy-power term).

Example:
    >>> wl = [Workload("vad", rate_hz=31, latency_ms=3.4), Workload("digits", rate_hz=10, latency_ms=17)]
    >>> df, fig = schedule(wl, "stm32h7")
    >>> df.loc[df.chosen, "freq_mhz"].item()
    200.0
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Sequence

import pandas as pd

from workbench.core.errors import WorkbenchError

POLICIES = ("edf", "rm", "fp")
_EPS = 1e-9


@dataclass(frozen=True)
class Workload:
    """One periodic inference on the device.

    Attributes:
        name: label in tables and charts.
        rate_hz: inferences per second (the period is 1 / rate).
        latency_ms: execution time per inference at the device's top clock; estimated from `model` if None.
        model: a `ModelHandle` or `Task` to estimate latency (and energy) on the device.
        deadline_ms: relative deadline (default: the period); at most the period.
        priority: fixed priority for the ``"fp"`` analysis (larger = more urgent); None everywhere means
            rate-monotonic order.
        energy_mj: energy per inference above idle at the top clock (default: the estimate, else
            (P_active - P_idle) x latency).
        dtype: execution dtype for the estimate (default: what the model's compression recorded).
    """

    name: str
    rate_hz: float
    latency_ms: float | None = None
    model: Any = field(default=None, compare=False, repr=False)
    deadline_ms: float | None = None
    priority: int | None = None
    energy_mj: float | None = None
    dtype: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise WorkbenchError(f"Workload name must be a non-empty string, got {self.name!r}.")
        if not _finite_positive(self.rate_hz):
            raise WorkbenchError(f"Workload {self.name!r}: rate_hz must be a positive number of inferences per "
                                 f"second, got {self.rate_hz!r}.")
        for attr in ("latency_ms", "deadline_ms"):
            v = getattr(self, attr)
            if v is not None and not _finite_positive(v):
                raise WorkbenchError(f"Workload {self.name!r}: {attr} must be a positive number of milliseconds "
                                     f"or None, got {v!r}.")
        if self.energy_mj is not None and not (_finite(self.energy_mj) and self.energy_mj >= 0):
            raise WorkbenchError(f"Workload {self.name!r}: energy_mj must be >= 0 or None, got {self.energy_mj!r}.")
        if self.latency_ms is None and self.model is None:
            raise WorkbenchError(f"Workload {self.name!r}: give latency_ms, or a model to estimate it on the device.")
        if self.priority is not None and (isinstance(self.priority, bool) or not isinstance(self.priority, int)):
            raise WorkbenchError(f"Workload {self.name!r}: priority must be an integer or None, got {self.priority!r}.")
        if self.deadline_ms is not None and self.deadline_ms > self.period_ms * (1 + 1e-12):
            raise WorkbenchError(f"Workload {self.name!r}: deadline {self.deadline_ms:g} ms exceeds the period "
                                 f"{self.period_ms:.4g} ms; deadlines must be at most the period (the next "
                                 "inference is due by then).")

    @property
    def period_ms(self) -> float:
        return 1000.0 / self.rate_hz


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _finite_positive(v: Any) -> bool:
    return _finite(v) and v > 0


@dataclass(frozen=True)
class _Task:
    """A workload resolved on the device at the top clock (ms, mJ)."""

    name: str
    period: float
    deadline: float
    latency: float
    energy: float
    rate: float
    priority: int | None
    fits: bool | None
    weight_bytes: float = math.nan
    activation_bytes: float = math.nan


def _resolve(workloads: Sequence[Workload], prof: Any) -> list[_Task]:
    from workbench.hardware import estimate

    if not workloads:
        raise WorkbenchError("schedule needs at least one Workload.")
    names = [w.name for w in workloads]
    if len(set(names)) != len(names):
        raise WorkbenchError(f"Workload names must be distinct, got {names}.")
    out = []
    for w in workloads:
        if not isinstance(w, Workload):
            raise WorkbenchError(f"Expected Workload objects, got {type(w).__name__}.")
        lat, energy, fits, wbytes, abytes = w.latency_ms, w.energy_mj, None, math.nan, math.nan
        if w.model is not None:
            handle = getattr(w.model, "model", w.model)
            est = estimate(handle, prof, dtype=w.dtype)
            if not est.deployable and (lat is None or energy is None):
                raise WorkbenchError(f"Workload {w.name!r} cannot run on {prof.name}: {est.reason}")
            fits, wbytes, abytes = est.fits, float(est.weight_bytes), float(est.peak_activation_bytes)
            lat = est.latency_ms_est if lat is None else lat
            energy = est.energy_mj_est if energy is None else energy
        if energy is None:
            energy = (prof.active_w - prof.idle_w) * lat  # W x ms = mJ
        deadline = w.deadline_ms if w.deadline_ms is not None else w.period_ms
        if lat > deadline * (1 + 1e-12):
            raise WorkbenchError(
                f"Workload {w.name!r}: its latency {lat:.4g} ms on {prof.name} at the top clock exceeds its deadline "
                f"{deadline:.4g} ms, so no operating point or scheduler can meet it. Use a faster variant or device, "
                "or relax the deadline.")
        out.append(_Task(w.name, w.period_ms, deadline, float(lat), float(energy), float(w.rate_hz), w.priority,
                         fits, wbytes, abytes))
    return out


def _memory(tasks: Sequence[_Task], prof: Any) -> tuple[bool, str]:
    """All models resident at once, one running at a time: sum of weights + the largest peak activations must
    fit (MCUs: weights in flash, activations in RAM). Workloads without a model are not counted."""
    known = [t for t in tasks if not math.isnan(t.weight_bytes)]
    if not known:
        return True, ""
    weights = sum(t.weight_bytes for t in known)
    act = max(t.activation_bytes for t in known)
    mb = lambda b: f"{b / 1e6:.3g} MB"
    if prof.weights_in_storage:
        if weights > prof.storage_bytes:
            return False, f"memory: the models' weights ({mb(weights)}) exceed the {mb(prof.storage_bytes)} flash"
        if act > prof.ram_bytes:
            return False, f"memory: peak activations ({mb(act)}) exceed the {mb(prof.ram_bytes)} RAM"
        return True, ""
    if weights + act > prof.ram_bytes:
        return False, (f"memory: the models' weights + peak activations ({mb(weights + act)}) exceed the "
                       f"{mb(prof.ram_bytes)} RAM")
    return True, ""


def _points(prof: Any, dvfs: Sequence[Any] | None) -> list[tuple[float | None, float | None]]:
    from workbench.hardware.profile import OperatingPoint

    raw = prof.dvfs if dvfs is None else dvfs
    if not raw:
        return [(None, None)]
    pts = []
    for p in raw:
        f, v = (p.freq_mhz, p.volt) if isinstance(p, OperatingPoint) else tuple(p)
        if not (_finite_positive(f) and _finite_positive(v)):
            raise WorkbenchError(f"DVFS points must be (freq_mhz > 0, volt > 0), got {p!r}.")
        pts.append((float(f), float(v)))
    pts.sort()
    if len({f for f, _ in pts}) != len(pts):
        raise WorkbenchError(f"DVFS points list a frequency twice: {pts}.")
    return pts


# ------------------------------------------------------------------------------------------ analysis


def _hyperperiod_ms(tasks: Sequence[_Task]) -> float:
    """Least common multiple of the periods (as fractions of a second)."""
    out = None
    for t in tasks:
        p = Fraction(1) / Fraction(t.rate).limit_denominator(1_000_000)
        out = p if out is None else Fraction(math.lcm(out.numerator, p.numerator), math.gcd(out.denominator,
                                                                                              p.denominator))
    return float(out) * 1000.0


def _rm_order(tasks: Sequence[_Task]) -> list[int]:
    """Indices from highest to lowest rate-monotonic priority (ties: shorter deadline, then larger priority)."""
    return sorted(range(len(tasks)), key=lambda i: (tasks[i].period, tasks[i].deadline, -(tasks[i].priority or 0)))


def _fp_order(tasks: Sequence[_Task]) -> list[int]:
    return sorted(range(len(tasks)), key=lambda i: (-(tasks[i].priority if tasks[i].priority is not None
                                                      else -math.inf), tasks[i].period))


def response_times(c: Sequence[float], tasks: Sequence[_Task], order: Sequence[int]) -> list[float]:
    """Exact worst-case response time per task under fixed priorities (`order`: highest first); inf if > D."""
    out = [math.inf] * len(tasks)
    for rank, i in enumerate(order):
        hp = order[:rank]
        r = c[i] + sum(c[j] for j in hp)
        while True:
            nxt = c[i] + sum(math.ceil(r / tasks[j].period - _EPS) * c[j] for j in hp)
            if nxt > tasks[i].deadline + _EPS:
                break
            if abs(nxt - r) <= _EPS:
                out[i] = nxt
                break
            r = nxt
    return out


def _edf_demand(c: Sequence[float], tasks: Sequence[_Task], horizon: float) -> tuple[bool, str]:
    """Processor-demand test: dbf(t) <= t at every absolute deadline t up to the horizon."""
    u = sum(ci / t.period for ci, t in zip(c, tasks))
    if u > 1 + _EPS:
        return False, f"utilisation {u:.3f} > 1"
    if all(abs(t.deadline - t.period) <= _EPS for t in tasks):
        return True, ""
    if u < 1 - _EPS:  # busy-period bound on where a violation can first occur
        horizon = min(horizon, max(max(t.deadline for t in tasks),
                                   sum((t.period - t.deadline) * ci / t.period for ci, t in zip(c, tasks)) / (1 - u)))
    checkpoints = sorted({t.deadline + k * t.period for t in tasks
                          for k in range(int(max(0.0, horizon - t.deadline) // t.period) + 1)})
    for d in checkpoints:
        demand = sum((math.floor((d - t.deadline) / t.period + _EPS) + 1) * ci
                     for ci, t in zip(c, tasks) if d + _EPS >= t.deadline)
        if demand > d + _EPS:
            return False, f"EDF demand {demand:.4g} ms exceeds the {d:.4g} ms available by t = {d:.4g} ms"
    return True, ""


def simulate(c: Sequence[float], tasks: Sequence[_Task], policy: str, window: float,
             keep_until: float = 0.0) -> tuple[list[int], list[float], list[tuple[int, float, float]]]:
    """Preemptive single-processor simulation from a synchronous release over [0, window) ms.

    Returns ``(misses per task, worst response per task, segments)`` with segments ``(task, start, end)`` that
    start before `keep_until` (for a Gantt chart). Late jobs run to completion (misses are counted, not dropped).
    """
    order = _rm_order(tasks) if policy == "rm" else _fp_order(tasks) if policy == "fp" else None
    rank = {i: r for r, i in enumerate(order)} if order is not None else {}
    n = len(tasks)
    misses, worst = [0] * n, [0.0] * n
    segments: list[tuple[int, float, float]] = []
    releases = [(0.0, i, 0) for i in range(n)]  # (time, task, job number)
    heapq.heapify(releases)
    ready: list[tuple[float, int, int, float]] = []  # (key, task, job, release); remaining kept separately
    remaining: dict[tuple[int, int], float] = {}
    t = 0.0

    def key(i: int, release: float) -> float:
        return release + tasks[i].deadline if order is None else rank[i]

    while releases or ready:
        if not ready:
            t = max(t, releases[0][0])
        while releases and releases[0][0] <= t + _EPS:
            rt, i, k = heapq.heappop(releases)
            if rt < window - _EPS:
                heapq.heappush(ready, (key(i, rt), i, k, rt))
                remaining[(i, k)] = c[i]
                nxt = (k + 1) * tasks[i].period
                if nxt < window - _EPS:
                    heapq.heappush(releases, (nxt, i, k + 1))
        if not ready:
            continue
        _, i, k, rt = ready[0]
        next_release = releases[0][0] if releases else math.inf
        run = min(remaining[(i, k)], next_release - t)
        if t < keep_until:
            segments.append((i, t, t + run))
        t += run
        remaining[(i, k)] -= run
        if remaining[(i, k)] <= _EPS:
            heapq.heappop(ready)
            del remaining[(i, k)]
            response = t - rt
            worst[i] = max(worst[i], response)
            if response > tasks[i].deadline + 1e-7:
                misses[i] += 1
    return misses, worst, segments


# ------------------------------------------------------------------------------------------ planner


def schedule(
    workloads: Sequence[Workload],
    device: Any,
    *,
    policy: str = "edf",
    dvfs: Sequence[Any] | None = None,
    window_s: float | None = None,
    max_jobs: int = 200_000,
    gantt_ms: float | None = None,
    leakage: bool = True,
    sleep: bool = True,
) -> tuple[pd.DataFrame, Any]:
    """Schedule several periodic inferences on one device at each DVFS point; pick the lowest-energy one.

    Args:
        workloads: the `Workload` set.
        device: a profile name or `DeviceProfile` (its `dvfs` points, if any, are the operating points).
        policy: which analysis decides feasibility and the chosen point: ``"edf"``, ``"rm"`` (rate-monotonic) or
            ``"fp"`` (the workloads' priorities).
        dvfs: operating points ``[(freq_mhz, volt), ...]`` overriding the profile's (the highest frequency is the
            clock the latencies refer to). Without any, the device is analysed at its one nominal clock.
        window_s: simulated time (default: the hyperperiod, capped so at most `max_jobs` jobs run).
        max_jobs: cap on simulated jobs per policy and point.
        gantt_ms: span of the timeline chart (default: 100 ms or three shortest periods, whichever is longer).
        leakage: charge the profile's leakage (``power.leakage_w``, scaled with the voltage) for the stretched busy
            time (False: dynamic energy only, the model before leakage was added).
        sleep: spend the gaps in the profile's sleep state when they beat its break-even time.

    Returns:
        ``(table, figure)``: one row per operating point with ``freq_mhz``, ``volt``, ``speed``,
        ``utilisation``, ``density``, ``edf_feasible``, ``ll_bound``, ``rm_bound_ok``, ``rm_feasible``,
        ``fp_feasible`` (with priorities), ``misses_edf``, ``misses_rm`` (simulated), ``avg_power_w``,
        ``energy_j_per_hour``, ``leakage_w`` (at that voltage), ``mean_gap_ms``, ``gap_state`` (idle or sleep),
        ``feasible`` (under `policy`), ``breaks`` (the failing constraint) and ``chosen``;
        ``attrs["power_notes"]`` lists the figures the profile lacks. ``table.attrs["workloads"]`` is the per-workload table at the chosen point (the top point
        when none is feasible); the figure shows utilisation and power per point and the chosen timeline.

    Raises:
        WorkbenchError: bad workloads (negative rates, a latency beyond its deadline even at the top clock,
            duplicate names), an unknown policy or malformed DVFS points.
    """
    from workbench.hardware import device as get_device
    from workbench.hardware.duty import active_energy_mj, gap_energy_mj, leakage_power_w, power_notes

    if policy not in POLICIES:
        raise WorkbenchError(f"policy must be one of {', '.join(POLICIES)}, got {policy!r}.")
    prof = get_device(device)
    tasks = _resolve(workloads, prof)
    has_fp = any(t.priority is not None for t in tasks)
    if policy == "fp" and not has_fp:
        raise WorkbenchError("policy='fp' needs a priority on at least one workload.")
    if window_s is not None and not _finite_positive(window_s):
        raise WorkbenchError(f"window_s must be a positive number of seconds or None, got {window_s!r}.")
    if isinstance(max_jobs, bool) or not isinstance(max_jobs, int) or max_jobs < 1:
        raise WorkbenchError(f"max_jobs must be a positive integer, got {max_jobs!r}.")
    points = _points(prof, dvfs)
    mem_ok, mem_why = _memory(tasks, prof)
    f_max, v_max = points[-1]
    hyper = _hyperperiod_ms(tasks)
    window = hyper if window_s is None else window_s * 1000.0
    jobs_per_ms = sum(t.rate for t in tasks) / 1000.0
    capped = window * jobs_per_ms > max_jobs
    if capped:
        window = max_jobs / jobs_per_ms
    window = max(window, max(t.period for t in tasks))
    gantt = gantt_ms if gantt_ms is not None else max(100.0, 3 * min(t.period for t in tasks))
    gantt = min(gantt, window)
    n = len(tasks)
    ll = n * (2 ** (1 / n) - 1)
    rows, details, timelines = [], [], []
    for f, v in points:
        speed = 1.0 if f is None else f / f_max
        c = [t.latency / speed for t in tasks]
        leak_w = leakage_power_w(prof, v, v_max) if leakage else 0.0
        e = [sum(active_energy_mj(prof, t.energy, t.latency, ci, v, v_max, leakage=leakage))
             for t, ci in zip(tasks, c)]
        u = sum(ci / t.period for ci, t in zip(c, tasks))
        density = sum(ci / t.deadline for ci, t in zip(c, tasks))
        edf_ok, edf_why = _edf_demand(c, tasks, min(hyper, window))
        rm_r = response_times(c, tasks, _rm_order(tasks))
        fp_r = response_times(c, tasks, _fp_order(tasks)) if has_fp else None
        m_edf, w_edf, seg_edf = simulate(c, tasks, "edf", window, gantt)
        m_rm, w_rm, seg_rm = simulate(c, tasks, "rm", window, gantt)
        power = prof.idle_w + sum(ei * t.rate for ei, t in zip(e, tasks)) / 1000.0
        jobs = sum(t.rate for t in tasks)
        gap = max(0.0, 1 - u) * 1000.0 / jobs
        e_gap, state = gap_energy_mj(prof, gap, sleep=sleep)
        power -= jobs * (prof.idle_w * gap - e_gap) / 1000.0
        ok = {"edf": edf_ok, "rm": all(math.isfinite(r) for r in rm_r),
              "fp": fp_r is not None and all(math.isfinite(r) for r in fp_r)}[policy] and mem_ok
        why = "" if mem_ok else mem_why
        if not ok and mem_ok:
            if policy == "edf":
                why = f"EDF: {edf_why}"
            else:
                resp = rm_r if policy == "rm" else fp_r
                bad = [i for i, r in enumerate(resp) if math.isinf(r)]
                i = bad[0] if bad else 0
                why = (f"{policy.upper()}: {tasks[i].name!r} cannot finish within its {tasks[i].deadline:.4g} ms "
                       f"deadline (response-time analysis" + (f"; utilisation {u:.3f} > 1)" if u > 1 else ")"))
        row = {"freq_mhz": math.nan if f is None else f, "volt": math.nan if v is None else v, "speed": speed,
               "utilisation": u, "density": density,
               "edf_feasible": edf_ok, "ll_bound": ll, "rm_bound_ok": u <= ll + _EPS,
               "rm_feasible": all(math.isfinite(r) for r in rm_r)}
        if has_fp:
            row["fp_feasible"] = all(math.isfinite(r) for r in fp_r)
        row.update({"misses_edf": sum(m_edf), "misses_rm": sum(m_rm), "avg_power_w": power,
                    "energy_j_per_hour": power * 3600.0, "leakage_w": leak_w, "mean_gap_ms": gap,
                    "gap_state": state, "feasible": ok, "breaks": why})
        rows.append(row)
        details.append(pd.DataFrame({
            "workload": [t.name for t in tasks], "rate_hz": [t.rate for t in tasks],
            "period_ms": [t.period for t in tasks], "deadline_ms": [t.deadline for t in tasks],
            "latency_ms": c, "energy_mj": e, "utilisation": [ci / t.period for ci, t in zip(c, tasks)],
            "rm_priority": [_rm_order(tasks).index(i) + 1 for i in range(n)], "rm_response_ms": rm_r,
            **({"fp_response_ms": fp_r} if has_fp else {}),
            "edf_worst_response_ms": w_edf, "rm_worst_response_ms": w_rm, "misses_edf": m_edf, "misses_rm": m_rm,
            "fits": [t.fits for t in tasks], "weight_bytes": [t.weight_bytes for t in tasks]}))
        timelines.append({"edf": seg_edf, "rm": seg_rm})
    df = pd.DataFrame(rows)
    feasible = df.index[df["feasible"]]
    chosen = None
    if len(feasible):
        chosen = min(feasible, key=lambda k: (round(df.at[k, "avg_power_w"], 12), -df.at[k, "speed"]))
    df["chosen"] = [k == chosen for k in df.index]
    pick = chosen if chosen is not None else len(df) - 1
    df.attrs["workloads"] = details[pick]
    df.attrs["policy"] = policy
    df.attrs["device"] = prof.name
    df.attrs["memory"] = mem_why or "all models fit together"
    df.attrs["power_notes"] = [n for n in power_notes(prof) if leakage or "leakage" not in n]
    df.attrs["window_ms"] = window
    df.attrs["hyperperiod_ms"] = hyper
    df.attrs["note"] = ("simulated window capped at max_jobs; misses are counted in the window only"
                        if capped else "simulated over one hyperperiod (exact for synchronous release)")
    if chosen is None:
        df.attrs["infeasible"] = df.at[len(df) - 1, "breaks"]
    seg_policy = "rm" if policy in ("rm", "fp") else "edf"
    if policy == "fp":
        seg_policy = "fp"
        _, _, timelines[pick]["fp"] = simulate([t.latency / df.at[pick, "speed"] for t in tasks], tasks, "fp",
                                               window, gantt)
    from workbench.viz.planning import schedule_figure

    return df, schedule_figure(df, [t.name for t in tasks], timelines[pick][seg_policy], pick=pick,
                               policy=seg_policy, device=prof.name, window_ms=gantt)


__all__ = ["POLICIES", "Workload", "response_times", "schedule", "simulate"]
