"""Fleet plan: per device class the best variant within budgets, or the constraint nothing meets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.core.errors import WorkbenchError
from workbench.hardware import device
from workbench.plan import DeviceClass, fleet_plan

DEVICES = ["raspberry-pi-4", "stm32h7", "coral-edge-tpu"]


def _frame() -> pd.DataFrame:
    """A small hand-made results frame in the sweep's shape (two devices, four variants)."""
    rows = []
    for variant, bits, acc, size in (("baseline", 32, 0.989, 560_000), ("q8", 8, 0.987, 200_000),
                                     ("channel-0.50+r100+q8", 8, 0.995, 130_000), ("q4", 4, 0.93, 128_000)):
        for dev, lat, energy in (("raspberry-pi-4", 0.4, 1.3), ("stm32h7", 17.0, 8.0)):
            scale = {32: 1.0, 8: 0.6, 4: 0.5}[bits] * (0.5 if "channel" in variant else 1.0)
            rows.append({"variant": variant, "bits": bits, "prune": 0.5 if "channel" in variant else 0.0,
                         "structure": "channel" if "channel" in variant else None, "runtime": "onnxruntime",
                         "device": dev, "accuracy": acc, "size_bytes": size, "peak_mem_bytes": np.nan,
                         "latency_ms_est": lat * scale, "energy_mj_est": energy * scale,
                         "fits": not (dev == "stm32h7" and bits == 32), "deployable": True, "error": None})
    return pd.DataFrame(rows)


def test_picks_lowest_energy_within_budgets():
    fleet = [DeviceClass("cameras", "raspberry-pi-4", count=100, inferences_per_day=86_400, min_accuracy=0.98)]
    plan, fig = fleet_plan(_frame(), fleet)
    row = plan.iloc[0]
    assert row["status"] == "ok" and row["variant"] == "channel-0.50+r100+q8"
    assert row["acceptable"] == 3 and row["candidates"] == 4                # q4 fails the accuracy floor
    assert row["energy_mj"] == pytest.approx(1.3 * 0.3)
    inference = 100 * 86_400 * 1.3 * 0.3 / 1000 / 3.6e6
    idle = 100 * device("raspberry-pi-4").idle_w * 24 / 1000
    assert row["inference_kwh_day"] == pytest.approx(inference)
    assert row["total_kwh_day"] == pytest.approx(inference + idle)
    assert plan.attrs["fleet_total_kwh_day"] == pytest.approx(inference + idle)
    assert "cameras" in list(fig.data[0].x)


def test_simulated_variants_are_not_planned_unless_asked():
    frame = _frame().assign(realized=pd.Series(True, index=range(8), dtype=object))
    frame.loc[frame["variant"] == "q4", "realized"] = False  # 4-bit: no kernel, the float file ran
    fleet = [DeviceClass("pis", "raspberry-pi-4", count=1, inferences_per_day=10)]
    assert fleet_plan(frame, fleet, objective="size")[0]["variant"].item() == "channel-0.50+r100+q8"
    assert fleet_plan(frame, fleet, objective="size", realized_only=False)[0]["variant"].item() == "q4"
    frame.loc[frame["variant"] == "q8", "realized"] = None  # unknown is no proof of a real kernel
    assert fleet_plan(frame, fleet, objective="energy")[0]["acceptable"].item() == 2
    frame["realized"] = False
    plan, _ = fleet_plan(frame, fleet)
    assert plan["status"].item() == "none" and "runs for real" in plan["reason"].item()
    assert "realized_only=False" in plan["reason"].item()


def test_average_power_and_battery_life_at_the_class_duty_cycle():
    from workbench.hardware.duty import duty_cycle

    fleet = [DeviceClass("cams", "raspberry-pi-4", count=100, inferences_per_day=86_400 * 5, battery_mah=20_000),
             DeviceClass("mains", "raspberry-pi-4", count=3, inferences_per_day=864),
             DeviceClass("idle", "raspberry-pi-4", count=1, inferences_per_day=0, battery_mah=1000)]
    plan, _ = fleet_plan(_frame(), fleet)
    by = plan.set_index("device_class")
    cams = by.loc["cams"]
    d = duty_cycle(cams["energy_mj"], cams["latency_ms"], "raspberry-pi-4", 5, 20_000)
    assert cams["rate_hz"] == pytest.approx(5) and cams["average_power_w"] == pytest.approx(d.average_power_w)
    assert cams["battery_h"] == pytest.approx(d.battery_h)
    # the same duty cycle as the energy per day: average power x 24 h = each unit's kWh per day
    assert cams["average_power_w"] * 24 / 1000 * 100 == pytest.approx(cams["total_kwh_day"])
    assert by.loc["mains", "rate_hz"] == pytest.approx(0.01) and np.isnan(by.loc["mains", "battery_h"])
    idle = device("raspberry-pi-4").idle_w
    assert by.loc["idle", "average_power_w"] == pytest.approx(idle)
    assert by.loc["idle", "battery_h"] == pytest.approx(1000 * 3.7 / 1000 / idle)
    with pytest.raises(WorkbenchError, match="battery_mah"):
        DeviceClass("x", "stm32h7", count=1, inferences_per_day=1, battery_mah=0)


def test_objective_accuracy_and_latency():
    fleet = [DeviceClass("pis", "raspberry-pi-4", count=1, inferences_per_day=10)]
    assert fleet_plan(_frame(), fleet, objective="accuracy")[0]["variant"].item() == "channel-0.50+r100+q8"
    assert fleet_plan(_frame(), fleet, objective="size")[0]["variant"].item() == "q4"
    with pytest.raises(WorkbenchError, match="objective"):
        fleet_plan(_frame(), fleet, objective="vibes")


def test_class_with_no_acceptable_variant_says_which_constraint():
    fleet = [DeviceClass("cameras", "raspberry-pi-4", count=10, inferences_per_day=1000, min_accuracy=0.98),
             DeviceClass("sensors", "stm32h7", count=2000, inferences_per_day=1000, max_latency_ms=2.0),
             DeviceClass("tight", "stm32h7", count=5, inferences_per_day=10, max_latency_ms=6,
                         min_accuracy=0.99, max_energy_mj=3.0)]
    plan, fig = fleet_plan(_frame(), fleet)
    by = plan.set_index("device_class")
    assert by.loc["cameras", "status"] == "ok"
    assert by.loc["sensors", "status"] == "none" and np.isnan(by.loc["sensors", "total_kwh_day"])
    assert by.loc["sensors", "reason"] == "nothing meets latency <= 2 ms (fastest 5.1 ms)"
    assert by.loc["tight", "status"] == "ok" and by.loc["tight", "variant"] == "channel-0.50+r100+q8"
    assert plan.attrs["unserved"] == ["sensors"]
    assert "sensors" in fig.layout.title.text


def test_budgets_met_separately_but_not_together():
    fleet = [DeviceClass("x", "stm32h7", count=1, inferences_per_day=10, max_energy_mj=4.5, min_accuracy=0.99,
                         max_ram_bytes=129_000)]
    plan, _ = fleet_plan(_frame(), fleet)
    assert plan["status"].item() == "none"
    assert "none meets all at once" in plan["reason"].item()


def test_throughput_and_fit_are_constraints():
    fleet = [DeviceClass("busy", "stm32h7", count=1, inferences_per_day=50_000_000)]
    plan, _ = fleet_plan(_frame(), fleet)
    assert plan["status"].item() == "none" and "keeps up with" in plan["reason"].item()
    frame = _frame()
    frame.loc[frame.device == "stm32h7", "fits"] = False
    plan, _ = fleet_plan(frame, [DeviceClass("s", "stm32h7", count=1, inferences_per_day=1)])
    assert "fits the device's memory" in plan["reason"].item()


def test_device_missing_from_sweep():
    plan, _ = fleet_plan(_frame(), [DeviceClass("phones", "snapdragon-8-gen-2", count=5, inferences_per_day=1)])
    assert plan["status"].item() == "none" and "no rows for device 'snapdragon-8-gen-2'" in plan["reason"].item()


@pytest.mark.parametrize("make, match", [
    (lambda: DeviceClass("a", "stm32h7", count=0, inferences_per_day=1), "count"),
    (lambda: DeviceClass("a", "stm32h7", count=1, inferences_per_day=-1), "inferences_per_day"),
    (lambda: DeviceClass("a", "stm32h7", count=1, inferences_per_day=1, max_latency_ms=-3), "max_latency_ms"),
    (lambda: DeviceClass("a", "", count=1, inferences_per_day=1), "device"),
    (lambda: DeviceClass("a", "stm32h7", count=1, inferences_per_day=1, runtimes="onnxruntime"), "runtimes"),
])
def test_bad_device_classes(make, match):
    with pytest.raises(WorkbenchError, match=match):
        make()


def test_bad_frames_and_fleets():
    with pytest.raises(WorkbenchError, match="lacks column"):
        fleet_plan(_frame().drop(columns=["energy_mj_est"]), [DeviceClass("a", "stm32h7", 1, 1)])
    with pytest.raises(WorkbenchError, match="distinct"):
        fleet_plan(_frame(), [DeviceClass("a", "stm32h7", 1, 1), DeviceClass("a", "raspberry-pi-4", 1, 1)])
    with pytest.raises(WorkbenchError, match="non-empty"):
        fleet_plan(_frame(), [])


@pytest.fixture(scope="module")
def swept():
    """A real (small) sweep of digits-cnn: the float model and an 8-bit variant on three device profiles, measured
    on ONNX Runtime and LiteRT (the Coral runs only LiteRT's flatbuffers)."""
    import workbench

    grid = workbench.grid(prune=[0], bits=[32, 8], devices=DEVICES, runtimes=["onnxruntime", "litert"])
    return workbench.sweep("digits-cnn", grid, store=None, progress=False, memory=False)


def test_on_a_real_sweep(swept):
    fleet = [DeviceClass("doorbells", "raspberry-pi-4", count=500, inferences_per_day=20_000, max_latency_ms=5,
                         min_accuracy=0.95),
             DeviceClass("usb sticks", "coral-edge-tpu", count=50, inferences_per_day=100_000),
             DeviceClass("perfectionists", "coral-edge-tpu", count=5, inferences_per_day=10, min_accuracy=0.999)]
    plan, _ = fleet_plan(swept, fleet)
    by = plan.set_index("device_class")
    assert by.loc["doorbells", "status"] == "ok"
    assert by.loc["usb sticks", "status"] == "ok" and by.loc["usb sticks", "bits"] == 8   # fp32 not deployable
    ort_only, _ = fleet_plan(swept[swept["runtime"] == "onnxruntime"], fleet[1:2])  # the Coral has no ONNX Runtime
    assert ort_only.iloc[0]["status"] == "none"
    assert by.loc["perfectionists", "status"] == "none"
    assert by.loc["perfectionists", "reason"].startswith("nothing meets accuracy >= 0.999 (best 0.9")
