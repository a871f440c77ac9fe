"""`plan.schedule` with leakage and sleep: the default charges the profile's figures, the old model stays a switch."""

from __future__ import annotations

import pytest

from workbench.hardware import device
from workbench.hardware.duty import gap_energy_mj, leakage_power_w
from workbench.plan import Workload, schedule

TWO = [Workload("vad", rate_hz=31, latency_ms=3.4), Workload("digits", rate_hz=10, latency_ms=17)]


def test_leakage_is_charged_for_the_stretched_busy_time():
    prof = device("stm32h7")
    on, _ = schedule(TWO, "stm32h7")
    off, _ = schedule(TWO, "stm32h7", leakage=False, sleep=False)
    assert list(on.freq_mhz) == list(off.freq_mhz) and on.chosen.equals(off.chosen)   # 200 MHz either way
    assert on.loc[0, "leakage_w"] == pytest.approx(leakage_power_w(prof, 1.0, 1.33)) and (off.leakage_w == 0).all()
    # at the top clock the split changes nothing; lower down leakage x stretched time is added to C V^2
    same_sleep, _ = schedule(TWO, "stm32h7", leakage=False)
    assert on.avg_power_w.iloc[-1] == pytest.approx(same_sleep.avg_power_w.iloc[-1])
    assert (on.avg_power_w.iloc[:-1] > same_sleep.avg_power_w.iloc[:-1]).all()
    wl = schedule(TWO, "stm32h7", dvfs=[(200, 1.0), (480, 1.33)])[0].attrs["workloads"].set_index("workload")
    e_dyn = (prof.active_w - prof.idle_w - prof.leakage_w) * 17
    expected = e_dyn * (1.0 / 1.33) ** 2 + leakage_power_w(prof, 1.0, 1.33) * 17 * 480 / 200
    assert wl.at["digits", "energy_mj"] == pytest.approx(expected)


def test_long_gaps_are_slept_through_and_the_top_clock_can_win():
    prof = device("stm32h7")
    slow = [Workload("digits", rate_hz=0.5, latency_ms=17)]
    df, _ = schedule(slow, "stm32h7", dvfs=[(480, 1.33)])
    gap = df.at[0, "mean_gap_ms"]
    assert df.at[0, "gap_state"] == "sleep" and gap == pytest.approx(2000 - 17)
    awake, _ = schedule(slow, "stm32h7", dvfs=[(480, 1.33)], sleep=False)
    saved = 0.5 * (prof.idle_w * gap - gap_energy_mj(prof, gap)[0]) / 1000
    assert awake.at[0, "gap_state"] == "idle" and df.at[0, "avg_power_w"] == pytest.approx(
        awake.at[0, "avg_power_w"] - saved)
    # at 20 Hz the 200 MHz run leaves 9 ms gaps, under the 10 ms break-even: awake, and still the cheapest point
    busy = [Workload("digits", rate_hz=20, latency_ms=17)]
    df, _ = schedule(busy, "stm32h7")
    assert df.loc[df.chosen, "freq_mhz"].item() == 200 and not df.attrs["power_notes"]
    assert "no leakage figure" in " ".join(schedule(busy, "raspberry-pi-4")[0].attrs["power_notes"])
