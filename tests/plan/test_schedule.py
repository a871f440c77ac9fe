"""Multi-model schedule: utilisation, EDF / RM analysis against a simulation, DVFS choice, bad input, profiles."""

from __future__ import annotations

import math

import pytest
import yaml

from workbench.core.errors import WorkbenchError
from workbench.hardware import device
from workbench.hardware.profile import OperatingPoint, parse_profile
from workbench.plan import Workload, schedule
from workbench.plan.scheduling import _hyperperiod_ms, _resolve, response_times, simulate

# Latencies at the STM32H7's top clock (480 MHz): U = 3.4*31/1000 + 17*10/1000 + 85*5/1000 = 0.70.
TIGHT = [Workload("vad", rate_hz=31, latency_ms=3.4), Workload("digits", rate_hz=10, latency_ms=17),
         Workload("anomaly", rate_hz=5, latency_ms=85)]


def test_feasible_only_at_a_higher_dvfs_point():
    df, fig = schedule(TIGHT, "stm32h7")
    assert list(df["freq_mhz"]) == [200, 300, 400, 480]
    assert list(df["feasible"]) == [False, False, True, True]
    chosen = df[df["chosen"]]
    assert chosen["freq_mhz"].item() == 400                                  # not the top clock: less energy
    assert chosen["avg_power_w"].item() < df.loc[df.freq_mhz == 480, "avg_power_w"].item()
    assert df.loc[0, "breaks"].startswith("EDF: utilisation 1.68")          # the constraint that breaks
    assert df["utilisation"].to_numpy() == pytest.approx([0.7004 * 480 / f for f in (200, 300, 400, 480)])
    assert (df.loc[~df.feasible, "misses_edf"] > 0).all() and (df.loc[df.feasible, "misses_edf"] == 0).all()
    assert "stm32h7" in fig.layout.title.text and "400 MHz" in fig.layout.title.text


def test_energy_scales_with_voltage_squared_and_power_adds_idle():
    df, _ = schedule(TIGHT, "stm32h7", leakage=False, sleep=False)    # the dynamic-only model
    prof = device("stm32h7")
    wl = df.attrs["workloads"]
    e_top = (prof.active_w - prof.idle_w) * 17                              # default energy: busy power x latency
    assert wl.set_index("workload").loc["digits", "energy_mj"] == pytest.approx(e_top * (1.205 / 1.33) ** 2)
    row = df[df.chosen].iloc[0]
    assert row["avg_power_w"] == pytest.approx(prof.idle_w + (wl["energy_mj"] * wl["rate_hz"]).sum() / 1000)
    assert row["energy_j_per_hour"] == pytest.approx(row["avg_power_w"] * 3600)


def test_rm_needs_more_than_its_bound_and_rta_agrees_with_simulation():
    df, _ = schedule(TIGHT, "stm32h7", policy="rm")
    row = df[df.freq_mhz == 400].iloc[0]
    assert row["utilisation"] > row["ll_bound"] and not row["rm_bound_ok"]   # bound inconclusive ...
    assert row["rm_feasible"] and row["misses_rm"] == 0                     # ... exact analysis says yes
    wl = df.attrs["workloads"]
    assert wl["rm_response_ms"].to_numpy() == pytest.approx(wl["rm_worst_response_ms"].to_numpy())
    assert wl["rm_response_ms"].tolist() == pytest.approx([4.08, 24.48, 167.28])


def test_edf_beats_rm_on_a_classic_set():
    # U = 0.5 + 0.48 = 0.98 > 2(sqrt2 - 1): EDF schedules it; RM misses the long task's deadline.
    wl = [Workload("a", rate_hz=200, latency_ms=2.5), Workload("b", rate_hz=57.142857142857146, latency_ms=8.4)]
    df, _ = schedule(wl, "host")
    row = df.iloc[0]
    assert row["edf_feasible"] and row["misses_edf"] == 0
    assert not row["rm_feasible"] and row["misses_rm"] > 0


def test_constrained_deadlines_use_the_demand_test():
    wl = [Workload("a", rate_hz=10, latency_ms=30, deadline_ms=40), Workload("b", rate_hz=10, latency_ms=30,
                                                                            deadline_ms=50)]
    df, _ = schedule(wl, "host")
    assert df["utilisation"].iloc[0] == pytest.approx(0.6)
    assert bool(df["edf_feasible"].iloc[0]) is False and "demand" in df["breaks"].iloc[0]
    assert df["misses_edf"].iloc[0] > 0


def test_fixed_priorities():
    wl = [Workload("low", rate_hz=10, latency_ms=20, priority=1), Workload("high", rate_hz=5, latency_ms=90,
                                                                          priority=2)]
    df, _ = schedule(wl, "host", policy="fp")
    assert not df["fp_feasible"].iloc[0] and df["rm_feasible"].iloc[0]      # the given order is the wrong one
    assert "'low'" in df["breaks"].iloc[0]


def test_infeasible_everywhere_is_reported_not_raised():
    wl = [Workload("x", rate_hz=31, latency_ms=20), Workload("y", rate_hz=10, latency_ms=60)]
    df, fig = schedule(wl, "raspberry-pi-4")
    assert not df["chosen"].any() and "utilisation" in df.attrs["infeasible"]
    assert "infeasible" in fig.layout.title.text


def test_latency_from_models_and_three_workload_example(digits, vad):
    from workbench.hardware import estimate

    wl = [Workload("vad", rate_hz=31, model=vad), Workload("digits", rate_hz=10, model=digits),
          Workload("minilm", rate_hz=1, latency_ms=60.0, energy_mj=200.0)]
    df, _ = schedule(wl, "raspberry-pi-4")
    top = _resolve(wl, device("raspberry-pi-4"))
    assert top[0].latency == pytest.approx(estimate(vad.model, "raspberry-pi-4").latency_ms_est)
    assert top[1].energy == pytest.approx(estimate(digits.model, "raspberry-pi-4").energy_mj_est)
    assert df["feasible"].all() and df[df.chosen]["freq_mhz"].item() == 600   # light load: lowest clock
    assert df.attrs["hyperperiod_ms"] == pytest.approx(1000.0)


def test_simulation_matches_response_time_analysis():
    wl = [Workload("a", rate_hz=50, latency_ms=5), Workload("b", rate_hz=20, latency_ms=12),
          Workload("c", rate_hz=8, latency_ms=30)]
    tasks = _resolve(wl, device("host"))
    c = [t.latency for t in tasks]
    rta = response_times(c, tasks, [0, 1, 2])
    misses, worst, _ = simulate(c, tasks, "rm", _hyperperiod_ms(tasks))
    assert misses == [0, 0, 0] and worst == pytest.approx(rta)


def test_hyperperiod_of_rational_rates():
    tasks = _resolve([Workload("a", rate_hz=31, latency_ms=1), Workload("b", rate_hz=10, latency_ms=1),
                      Workload("c", rate_hz=0.4, latency_ms=1)], device("host"))
    assert _hyperperiod_ms(tasks) == pytest.approx(5000.0)


@pytest.mark.parametrize("make, match", [
    (lambda: Workload("x", rate_hz=-2, latency_ms=1), "rate_hz must be a positive"),
    (lambda: Workload("x", rate_hz=0, latency_ms=1), "rate_hz must be a positive"),
    (lambda: Workload("x", rate_hz=10, latency_ms=-1), "latency_ms must be a positive"),
    (lambda: Workload("x", rate_hz=10), "give latency_ms, or a model"),
    (lambda: Workload("x", rate_hz=10, latency_ms=1, deadline_ms=200), "exceeds the period"),
    (lambda: Workload("", rate_hz=10, latency_ms=1), "name"),
])
def test_bad_workloads(make, match):
    with pytest.raises(WorkbenchError, match=match):
        make()


def test_deadline_shorter_than_latency_is_an_error():
    with pytest.raises(WorkbenchError, match="exceeds its deadline"):
        schedule([Workload("slow", rate_hz=10, latency_ms=30, deadline_ms=20)], "stm32h7")


@pytest.mark.parametrize("kwargs, match", [
    ({"policy": "lottery"}, "policy"), ({"policy": "fp"}, "priority"), ({"dvfs": [(100, -1)]}, "DVFS"),
    ({"dvfs": [(100, 1), (100, 1.1)]}, "twice"), ({"window_s": 0}, "window_s")])
def test_bad_options(kwargs, match):
    with pytest.raises(WorkbenchError, match=match):
        schedule(TIGHT, "stm32h7", **kwargs)


def test_duplicate_names_and_empty_set():
    with pytest.raises(WorkbenchError, match="distinct"):
        schedule([Workload("a", 1, latency_ms=1), Workload("a", 2, latency_ms=1)], "host")
    with pytest.raises(WorkbenchError, match="at least one"):
        schedule([], "host")


def test_explicit_dvfs_overrides_profile():
    df, _ = schedule(TIGHT, "stm32h7", dvfs=[(240, 1.0), (480, 1.3)])
    assert list(df["freq_mhz"]) == [240, 480] and df[df.chosen]["freq_mhz"].item() == 480


# ------------------------------------------------------------------------------------ DVFS in profiles


def test_profiles_with_dvfs_parse_and_round_trip():
    for name in ("stm32h7", "raspberry-pi-4"):
        prof = device(name)
        assert prof.dvfs and all(isinstance(p, OperatingPoint) for p in prof.dvfs)
        assert prof.source("dvfs")
        assert parse_profile(prof.to_dict(), where="copy").dvfs == prof.dvfs
    assert device("stm32h7").dvfs[-1] == OperatingPoint(480.0, 1.33)
    assert "ILLUSTRATIVE" in device("raspberry-pi-4").source("dvfs")
    assert device("jetson-nano").dvfs == ()


@pytest.mark.parametrize("dvfs, match", [
    ([], "non-empty list"), ([{"freq_mhz": 100}], "exactly freq_mhz and volt"),
    ([{"freq_mhz": 100, "volt": 0}], "dvfs\\[0\\].volt"),
    ([{"freq_mhz": 100, "volt": 1.0}, {"freq_mhz": 200, "volt": 0.9}], "lower voltage"),
    ([{"freq_mhz": 100, "volt": 1.0}, {"freq_mhz": 100, "volt": 1.0}], "twice")])
def test_profile_dvfs_validation(dvfs, match):
    data = device("stm32h7").to_dict()
    data["dvfs"] = dvfs
    with pytest.raises(WorkbenchError, match=match):
        parse_profile(data, where="bad.yaml")


def test_profile_dvfs_needs_a_source():
    data = yaml.safe_load(yaml.safe_dump(device("stm32h7").to_dict()))
    del data["sources"]["dvfs"]
    with pytest.raises(WorkbenchError, match="sources.dvfs"):
        parse_profile(data, where="bad.yaml")


def test_nominal_point_without_dvfs():
    df, _ = schedule(TIGHT, "jetson-nano")
    assert len(df) == 1 and math.isnan(float(df["freq_mhz"].iloc[0])) and df["chosen"].iloc[0]


def test_models_must_fit_together(digits):
    wl = [Workload(f"digits{i}", rate_hz=1, model=digits) for i in range(4)]   # 4 x 0.54 MB of fp32 weights
    df, _ = schedule(wl, "stm32h7")
    assert not df["feasible"].any() and df["utilisation"].max() < 1
    assert df["breaks"].iloc[0].startswith("memory: the models' weights") and "2.1 MB flash" in df["breaks"].iloc[0]
    ok, _ = schedule(wl[:2], "stm32h7")
    assert ok["feasible"].all() and ok.attrs["memory"] == "all models fit together"
