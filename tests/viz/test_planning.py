"""workbench.viz.planning: the planners' figures (`workbench.plan` returns them beside its tables)."""

from __future__ import annotations

import pandas as pd

from workbench import plan, viz


def test_llm_memory_figure_stacks_memory_and_maps_devices():
    df, fig = plan.llm_memory(**plan.PRESETS["Llama-2-13B"], bits=(16, 4), devices=["raspberry-pi-4"])
    assert [t.name for t in fig.data][:3] == ["weights", "KV cache", "activations"]
    assert list(fig.data[0].x) == ["16-bit", "4-bit"] and list(fig.data[0].y) == list(df["weight_gb"])
    heat = fig.data[3]
    assert list(heat.y) == [*plan.GPUS, "raspberry-pi-4"] and list(heat.text[0]) == ["2", "1"]  # gpu-24gb: 2 at 16 bit
    assert {a.text for a in fig.layout.annotations} >= {f"{g} usable" for g in plan.GPUS}
    again = viz.llm_memory_figure(df, [("gpu-24gb", 24e9)], usable=0.9, gpus=["gpu-24gb"])
    assert list(again.data[3].y) == ["gpu-24gb"] and again.layout.shapes[0].y0 == 24 * 0.9


def test_schedule_figure_shows_points_and_timeline():
    wl = [plan.Workload("vad", rate_hz=31, latency_ms=3.4), plan.Workload("digits", rate_hz=10, latency_ms=17)]
    df, fig = plan.schedule(wl, "stm32h7")
    assert fig.layout.title.text == "2 workloads on stm32h7: chosen 200 MHz"
    assert [t.name for t in fig.data][-2:] == ["vad", "digits"]
    assert list(fig.data[0].y) == list(df["utilisation"])
    infeasible = df.assign(chosen=False, feasible=False)
    infeasible.attrs["infeasible"] = "over 100 %"
    fig = viz.schedule_figure(infeasible, ["vad", "digits"], [(0, 0.0, 1.0), (1, 1.0, 2.0)], pick=0, policy="edf",
                              device="stm32h7", window_ms=10)
    assert fig.layout.title.text == "2 workloads on stm32h7: infeasible at every point: over 100 %"
    assert set(fig.data[0].marker.color) == {"#d62728"} and list(fig.data[-1].base) == [1.0]


def test_fleet_and_update_figures():
    fleet = pd.DataFrame({"device_class": ["cams", "bells"], "status": ["ok", "none"], "variant": ["q8", None],
                          "accuracy": [0.97, float("nan")], "reason": ["", "nothing meets latency"],
                          "idle_kwh_day": [1.0, 2.0], "inference_kwh_day": [0.5, float("nan")]})
    fleet.attrs.update(fleet_total_kwh_day=1.5, unserved=["bells"])
    fig = viz.fleet_figure(fleet, "accuracy")
    assert fig.layout.title.text == "Fleet energy per day: 1.5 kWh (no acceptable variant for: bells)"
    assert list(fig.data[0].y) == [1.0, 0.0] and list(fig.data[1].text) == ["q8<br>accuracy 0.97",
                                                                          "no acceptable variant"]
    df, fig = plan.update_size(b"old weights " * 100, {"v2": b"new weights " * 100})
    assert [t.name for t in fig.data] == ["full file", "deflated", "bsdiff delta", "delta + deflate"]
    assert list(fig.data[0].y) == [df["full_bytes"].iloc[0] / 1e3] and fig.layout.yaxis.title.text == "kB"
