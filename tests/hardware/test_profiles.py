"""Device profiles: the nine bundled files, their sources, user profiles, validation errors, the host profile."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

import workbench
from workbench.core.paths import data_dir
from workbench.hardware import DTYPES, device, devices, load_profile
from workbench.hardware.host import host_peak
from workbench.hardware.profile import DeviceProfile

NAMES = ["raspberry-pi-4", "raspberry-pi-5", "jetson-nano", "jetson-orin-nano", "coral-edge-tpu",
         "snapdragon-8-gen-2", "stm32h7", "esp32-s3", "host"]
BUNDLED = data_dir() / "devices"


def _raw(name: str) -> dict:
    return yaml.safe_load((BUNDLED / f"{name}.yaml").read_text())


def _write(folder: Path, name: str, data: dict) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_all_nine_profiles_load_with_required_fields():
    profs = devices()
    assert set(NAMES) <= set(profs)
    for name in NAMES:
        p = profs[name]
        assert isinstance(p, DeviceProfile) and p.name == name
        assert p.dtypes and all(d in DTYPES and p.peak_ops[d] > 0 for d in p.dtypes)
        for v in (p.memory_bandwidth_bytes_s, p.ram_bytes, p.storage_bytes, p.active_w, p.process_nm):
            assert v > 0 and math.isfinite(v)
        assert 0 < p.efficiency["compute"] <= 1 and 0 < p.efficiency["memory"] <= 1
        assert p.idle_w <= p.active_w and p.layer_overhead_s >= 0 and p.runtimes
        assert all(p.energy_pj_per_op[d] > 0 for d in p.dtypes) and p.energy_pj_per_byte > 0


@pytest.mark.parametrize("name", NAMES)
def test_every_figure_in_a_file_has_a_source(name):
    raw, prof = _raw(name), device(name)
    keys = [k for k in ("process_nm", "memory_bandwidth_bytes_s", "ram_bytes", "storage_bytes", "layer_overhead_s",
                        "inference_overhead_s", "cache_bytes", "cache_bandwidth_bytes_s",
                        "storage_bandwidth_bytes_s", "dtypes") if k in raw]
    keys += [f"peak_ops.{k}" for k in raw["peak_ops"]] + [f"efficiency.{k}" for k in raw["efficiency"]]
    keys += [f"power.{k}" for k in raw["power"]] + ["energy.per_op_pj", "energy.per_byte_pj"]
    for key in keys:
        src = prof.source(key)
        assert src and len(src) > 10, f"{name}: {key} has no source"


def test_facts_the_issue_anchors():
    pi4, orin, coral, mcu = device("raspberry-pi-4"), device("jetson-orin-nano"), device("coral-edge-tpu"), \
        device("stm32h7")
    assert pi4.memory_bandwidth_bytes_s == pytest.approx(12.8e9)
    assert device("jetson-nano").peak_ops["fp16"] == pytest.approx(472e9)
    assert orin.peak_ops["int8"] == pytest.approx(20e12) and orin.memory_bandwidth_bytes_s == pytest.approx(68e9)
    assert coral.dtypes == ("int8",) and coral.peak_ops["int8"] == pytest.approx(4e12) and coral.active_w == 2.0
    assert coral.ram_bytes == 8 * 2**20
    assert mcu.ram_bytes == 2**20 and mcu.storage_bytes == 2 * 2**20 and mcu.weights_in_storage
    assert device("esp32-s3").ram_bytes == 512 * 1024
    # energy default: Horowitz 45 nm scaled by process: fp32 op on a 28 nm Pi 4 = 2.3 pJ x 28/45
    assert pi4.energy_pj_per_op["fp32"] == pytest.approx(2.3 * 28 / 45)
    assert pi4.energy_pj_per_op["int8"] < pi4.energy_pj_per_op["fp32"] / 10


def test_user_profile_dropped_in_a_folder_loads(tmp_path, monkeypatch):
    data = _raw("raspberry-pi-4")
    data.update(name="my-board", display_name="My board", ram_bytes=2**30)
    _write(tmp_path, "my-board", data)
    assert devices(extra_dirs=[tmp_path])["my-board"].ram_bytes == 2**30
    monkeypatch.setenv("WORKBENCH_DEVICES", str(tmp_path))
    assert device("my-board").display_name == "My board"
    assert "my-board" in workbench.devices()


def test_unknown_device_lists_the_known_ones():
    with pytest.raises(workbench.WorkbenchError, match="raspberry-pi-4.*WORKBENCH_DEVICES"):
        device("raspberry-pi-9")


@pytest.mark.parametrize("edit, field", [
    (lambda d: d.pop("memory_bandwidth_bytes_s"), "memory_bandwidth_bytes_s"),
    (lambda d: d.update(memory_bandwidth_bytes_s=-3), "memory_bandwidth_bytes_s"),
    (lambda d: d.update(dtypes=["fp32", "fp8"]), "dtypes"),
    (lambda d: d["peak_ops"].update(bf12=1e9), "peak_ops.bf12"),
    (lambda d: d["efficiency"].update(compute=1.5), "efficiency.compute"),
    (lambda d: d["power"].pop("idle_w"), "power.idle_w"),
    (lambda d: d["sources"].pop("power.active_w"), "sources.power.active_w"),
    (lambda d: d["sources"].update({"power.active_w": "estimate"}), "sources.power.active_w"),
    (lambda d: d.update(ram_gb=4), "ram_gb"),
    (lambda d: d.update(name="other"), "name"),
])
def test_invalid_profile_names_file_and_field(tmp_path, edit, field):
    data = _raw("raspberry-pi-4")
    data.update(name="bad-board")
    edit(data)
    path = _write(tmp_path, "bad-board", data)
    with pytest.raises(workbench.WorkbenchError, match=rf"bad-board\.yaml: field '{field}'") as info:
        load_profile(path)
    assert isinstance(info.value, ValueError)
    with pytest.raises(workbench.WorkbenchError, match="bad-board.yaml"):
        devices(extra_dirs=[tmp_path])


def test_negative_number_message_is_explicit(tmp_path):
    data = _raw("raspberry-pi-4")
    data.update(name="myboard", memory_bandwidth_bytes_s=-3)
    with pytest.raises(workbench.WorkbenchError) as info:
        load_profile(_write(tmp_path, "myboard", data))
    assert str(info.value) == "myboard.yaml: field 'memory_bandwidth_bytes_s' must be a positive number, got -3"


def test_host_profile_comes_from_this_cpu():
    host = device("host")
    peak, formula = host_peak(threads=1)
    assert host.peak_ops == pytest.approx(peak) or host.peak_ops["fp32"] >= peak["fp32"]  # calibration may raise it
    assert "GHz" in formula and host.source("peak_ops").startswith("derived from /proc/cpuinfo")
    assert host.threads >= 1 and host.ram_bytes > 2**28 and "fp32" in host.dtypes
    assert host_peak(threads=2)[0]["fp32"] == pytest.approx(2 * peak["fp32"])
