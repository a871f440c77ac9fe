"""Sleep, wake-up and leakage figures in the profiles, and race to idle against DVFS (`workbench.hardware.duty`)."""

from __future__ import annotations

import math

import pytest
import yaml

import workbench
from workbench.core.paths import data_dir
from workbench.hardware import device, devices, load_profile
from workbench.hardware.duty import (
    break_even_ms,
    gap_energy_mj,
    leakage_power_w,
    power_strategies,
    power_vs_rate,
)
from workbench.hardware.profile import parse_profile

RATES = [0.2, 0.5, 1, 2, 3, 5, 10, 20]


def _raw(name: str) -> dict:
    return yaml.safe_load((data_dir() / "devices" / f"{name}.yaml").read_text())


def test_every_profile_says_what_it_knows_about_sleep_and_sources_it():
    for name, p in devices().items():
        assert p.sleep_mode is not None, f"{name}: power.sleep missing (give 'none' where the board has none)"
        assert p.source("power.sleep"), name
        if p.sleep_mode == "none":
            assert "idle is the floor" in p.source("power.sleep") and not p.can_sleep
        for attr in ("sleep_w", "wake_ms", "wake_mj", "leakage_w"):
            v = getattr(p, attr)
            assert v is None or (v >= 0 and math.isfinite(v)), (name, attr)
        if p.sleep_w is not None:
            assert p.sleep_w <= p.idle_w and p.source("power.sleep.power_w")
    stm = device("stm32h7")
    assert stm.sleep_mode == "Standby" and stm.can_sleep and stm.sleep_w < stm.idle_w
    assert stm.leakage_w <= stm.active_w - stm.idle_w and "DS12110" in stm.source("power.leakage_w")
    assert "DS12110" in stm.source("power.sleep.wake_ms") and stm.source("power.sleep.wake_mj").startswith("derived")
    assert device("jetson-nano").sleep_mode.startswith("SC7") and not device("jetson-nano").can_sleep


def test_round_trip_keeps_the_new_fields():
    for name in ("stm32h7", "raspberry-pi-4", "jetson-orin-nano"):
        p = device(name)
        again = parse_profile(yaml.safe_load(yaml.safe_dump(p.to_dict())), where="x")
        assert (again.leakage_w, again.sleep_mode, again.sleep_w, again.wake_ms, again.wake_mj) == \
            (p.leakage_w, p.sleep_mode, p.sleep_w, p.wake_ms, p.wake_mj)


@pytest.mark.parametrize("edit, field", [
    (lambda d: d["power"]["sleep"].update(power_w=-1e-6), "power.sleep.power_w"),
    (lambda d: d["power"]["sleep"].update(power_w=0.02), "power.sleep.power_w"),        # above idle (0.01 W)
    (lambda d: d["power"]["sleep"].update(wake_ms="fast"), "power.sleep.wake_ms"),
    (lambda d: d["power"]["sleep"].update(nap_w=0.0), "power.sleep.nap_w"),
    (lambda d: d["power"]["sleep"].pop("mode"), "power.sleep"),
    (lambda d: d["power"].update(sleep="sometimes"), "power.sleep"),
    (lambda d: d["power"].update(leakage_w=-0.1), "power.leakage_w"),
    (lambda d: d["power"].update(leakage_w=0.6), "power.leakage_w"),                   # more than active - idle
    (lambda d: d["power"].update(standby_w=0.0), "power.standby_w"),
    (lambda d: [d["sources"].pop(k) for k in list(d["sources"]) if k.startswith("power.sleep")], "sources.power.sleep"),
    (lambda d: d["sources"].pop("power.leakage_w"), "sources.power.leakage_w"),
])
def test_bad_sleep_and_leakage_figures_are_refused(tmp_path, edit, field):
    data = _raw("stm32h7")
    data["name"] = "bad-mcu"
    edit(data)
    path = tmp_path / "bad-mcu.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(workbench.WorkbenchError, match=rf"bad-mcu\.yaml: field '{field}'") as info:
        load_profile(path)
    assert isinstance(info.value, ValueError)


def test_break_even_and_one_wake_up_per_period():
    p = device("stm32h7")
    be = break_even_ms(p)
    assert be == pytest.approx((p.wake_mj - p.sleep_w * p.wake_ms) / (p.idle_w - p.sleep_w))
    assert gap_energy_mj(p, be * 0.9)[1] == "idle" and gap_energy_mj(p, be * 1.1)[1] == "sleep"
    assert math.isnan(break_even_ms("raspberry-pi-4"))
    for rate in (0.5, 2.0):                                   # the wake-up is paid once per period, at any rate
        df = power_strategies(17.0, None, p, rate)
        race = df[df.strategy.str.contains("race")].iloc[0]
        gap = 1000 / rate - 17.0
        assert race.gap_state == "sleep" and race.wake_mj == p.wake_mj
        assert race.sleep_mj == pytest.approx(p.wake_mj + p.sleep_w * (gap - p.wake_ms))
        assert race.average_power_w == pytest.approx(race.energy_mj * rate / 1000)


def test_leakage_energy_stretches_with_latency_at_lower_clocks():
    p = device("stm32h7")
    df = power_strategies(17.0, None, p, 1.0)
    awake = df[df.gap_state == "idle"].set_index("freq_mhz")
    assert awake.latency_ms.to_dict() == pytest.approx({f: 17.0 * 480 / f for f in (200, 300, 400, 480)})
    for f, v in ((200, 1.0), (400, 1.205)):
        assert awake.at[f, "leakage_mj"] == pytest.approx(leakage_power_w(p, v, 1.33) * 17.0 * 480 / f)
        e_dyn = (p.active_w - p.idle_w - p.leakage_w) * 17.0
        assert awake.at[f, "dynamic_mj"] == pytest.approx(e_dyn * (v / 1.33) ** 2)
    # a bigger leakage makes the slow clock's leakage energy grow faster than the fast one's (t x P_leak)
    hot = power_strategies(17.0, None, p, 1.0, leakage_w=0.3)[lambda d: d.gap_state == "idle"].set_index("freq_mhz")
    assert hot.at[200, "leakage_mj"] / hot.at[480, "leakage_mj"] == pytest.approx(2.4 * leakage_power_w(p, 1.0, 1.33)
                                                                                  / p.leakage_w)
    off = power_strategies(17.0, None, p, 1.0, leakage=False)
    assert (off.leakage_mj == 0).all()


def test_race_to_idle_wins_slow_dvfs_wins_fast_and_leakage_moves_the_crossing():
    base = power_vs_rate(17.0, None, "stm32h7", RATES)
    assert base.attrs["winners"] == ["race-to-idle", "dvfs"] and len(base.attrs["crossings_hz"]) == 1
    cross = base.attrs["crossings_hz"][0]
    low = power_strategies(17.0, None, "stm32h7", 0.2)
    high = power_strategies(17.0, None, "stm32h7", 10.0)
    assert low.attrs["winner"] == "race-to-idle" and high.attrs["winner"] == "dvfs" and 0.2 < cross < 10
    # at the crossing the two strategies draw the same power
    at = power_strategies(17.0, None, "stm32h7", cross).attrs
    assert at["race_energy_mj"] == pytest.approx(at["dvfs_energy_mj"], rel=1e-6)
    leakier = [power_vs_rate(17.0, None, "stm32h7", RATES, leakage_w=w).attrs["crossings_hz"][0]
               for w in (0.0, 0.05, 0.2, 0.4)]
    assert leakier == sorted(leakier) and leakier[-1] > 1.5 * leakier[0]   # more leakage: race wins up to higher rates


def test_absent_figures_give_a_note_not_a_number():
    pi = power_strategies(1.0, None, "raspberry-pi-4", 10.0)
    assert set(pi.gap_state) == {"idle"} and pi.attrs["winner"] == "dvfs"
    assert any("no leakage figure" in n for n in pi.attrs["notes"])
    assert any("no deep sleep: idle is the floor" in n for n in pi.attrs["notes"])
    orin = power_strategies(1.0, None, "jetson-orin-nano", 10.0)
    assert any("SC7 suspend has no power_w, wake_ms, wake_mj" in n for n in orin.attrs["notes"])
    assert any("no DVFS points" in n for n in orin.attrs["notes"]) and len(orin) == 1
    assert orin.strategy.item() == "race-to-idle dvfs best"
    assert "estimate on jetson-orin-nano" in orin.estimate.item()
    with pytest.raises(workbench.WorkbenchError, match="deadline"):
        power_strategies(300.0, None, "stm32h7", 10.0)
