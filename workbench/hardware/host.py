"""The ``host`` profile: this machine's facts from the OS, then the calibration `calibrate_host` saved.

Peak ops come from ``/proc/cpuinfo`` (clock, SIMD width, dot-product / fp16 instructions), RAM from
``os.sysconf``, storage from ``shutil.disk_usage``, the cache size from ``/sys``. A calibration file
(``<cache>/host_profile.yaml``) is used only when it was written on this machine (`host_key`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import platform
import re
import shutil
from pathlib import Path
from typing import Any

from workbench.hardware.profile import DTYPES, DeviceProfile, parse_profile, read_yaml


def cpu_facts() -> dict[str, Any]:
    """What the OS says about this CPU: model, cores, clock (Hz), SIMD flags, per-core L2 and shared L3 (bytes)."""
    text = ""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        pass
    model = re.search(r"^(?:model name|Hardware|Processor)\s*:\s*(.+)$", text, re.M)
    mhz = re.search(r"^cpu MHz\s*:\s*([\d.]+)", text, re.M)
    flags_m = re.search(r"^(?:flags|Features)\s*:\s*(.+)$", text, re.M)
    hz = None
    for p in ("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq",):
        try:
            hz = int(Path(p).read_text().strip()) * 1e3
        except (OSError, ValueError):
            pass
    if hz is None and mhz:
        hz = float(mhz.group(1)) * 1e6
    caches: dict[int, int | None] = {}
    try:
        for idx in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
            if (idx / "type").read_text().strip() in ("Data", "Unified"):
                caches[int((idx / "level").read_text())] = _parse_size((idx / "size").read_text().strip())
    except (OSError, ValueError):
        pass
    return {
        "model": (model.group(1).strip() if model else platform.processor() or platform.machine()),
        "cores": os.cpu_count() or 1,
        "hz": hz,
        "flags": set(flags_m.group(1).split()) if flags_m else set(),
        "l2_bytes": caches.get(2),
        "l3_bytes": caches.get(3),
        "machine": platform.machine(),
    }


def _parse_size(s: str) -> int | None:
    m = re.match(r"(\d+)\s*([KMG]?)", s)
    if not m:
        return None
    return int(m.group(1)) * {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[m.group(2)]


def host_key() -> str:
    """Identifies this machine for the calibration file: architecture, CPU model and core count."""
    f = cpu_facts()
    return hashlib.sha256(f"{f['machine']}|{f['model']}|{f['cores']}".encode()).hexdigest()[:16]


def simd_bits(flags: set[str]) -> int:
    """Widest SIMD register for float math: 512 (AVX-512), 256 (AVX/AVX2), else 128 (SSE, NEON)."""
    return 512 if "avx512f" in flags else 256 if flags & {"avx2", "avx"} else 128


def host_peak(facts: dict[str, Any] | None = None, threads: int = 1) -> tuple[dict[str, float], str]:
    """Peak ops/s per dtype for `threads` cores of this CPU, and the formula used.

    fp32 per core = clock x (SIMD width / 32 lanes) x 2 (FMA = multiply + add) x 2 FMA units. int8 = 4 x fp32
    with VNNI / dot-product instructions (4 int8 MACs per 32-bit lane), else 2 x. fp16 = 2 x fp32 only with
    native fp16 arithmetic (AVX512-FP16, Arm FP16). Turbo clocks and the real number of FMA units are left to
    calibration, which raises the peak when measured efficiency exceeds 1.
    """
    f = facts or cpu_facts()
    flags = f["flags"]
    hz = f["hz"] or 2.0e9
    width = simd_bits(flags)
    fp32 = hz * width / 32 * 2 * 2 * threads
    dot = bool(flags & {"avx512_vnni", "avx_vnni", "asimddp"})
    peak = {"fp32": fp32, "int8": fp32 * (4 if dot else 2)}
    if flags & {"avx512_fp16", "asimdhp", "fphp"}:
        peak["fp16"] = 2 * fp32
    formula = (f"derived from /proc/cpuinfo: {hz / 1e9:.2f} GHz x {width}-bit SIMD ({width // 32} fp32 lanes) x 2 "
               f"(FMA) x 2 FMA units x {threads} thread(s); int8 = {'4' if dot else '2'} x fp32 "
               f"({'VNNI / dot-product' if dot else 'no dot-product instructions'})")
    return peak, formula


def host_calibration_path() -> Path:
    """Where `calibrate_host` keeps the fitted host profile."""
    from workbench.core.paths import cache_dir

    return cache_dir() / "host_profile.yaml"


def with_host_facts(base: DeviceProfile) -> DeviceProfile:
    """The bundled host profile with this machine's facts, then the calibration (if it is for this machine)."""
    facts = cpu_facts()
    cal = _read_calibration()
    threads = int(cal.get("threads", 1)) if cal else 1
    peak, formula = host_peak(facts, threads)
    sources = dict(base.sources)
    sources.update({"peak_ops": formula, "dtypes": "derived from the CPU flags in /proc/cpuinfo"})
    changes: dict[str, Any] = {"peak_ops": peak, "dtypes": tuple(d for d in DTYPES if d in peak), "threads": threads,
                               "display_name": f"This machine ({facts['model']}, {threads} thread(s))"}
    try:
        changes["ram_bytes"] = int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
        sources["ram_bytes"] = "os.sysconf(SC_PHYS_PAGES x SC_PAGE_SIZE) on this machine"
    except (ValueError, OSError, AttributeError):
        pass
    try:
        changes["storage_bytes"] = int(shutil.disk_usage(Path.home()).total)
        sources["storage_bytes"] = "shutil.disk_usage(home) on this machine"
    except OSError:
        pass
    block = 8 if simd_bits(facts["flags"]) >= 256 else 4
    changes["channel_alignment"] = block
    sources["channel_alignment"] = (
        f"derived: {block} fp32 lanes ({'256-bit AVX' if block == 8 else '128-bit SSE / NEON'}) per channel block "
        "(ONNX Runtime's NCHWc convolutions, XNNPACK packing); measured on an AVX-512 host: 24- and 40-channel "
        "layers run at the aligned rate, 34- and 67-channel layers 2.5-4x slower")
    if facts["l2_bytes"]:
        changes["cache_bytes"] = int(facts["l2_bytes"]) * threads
        sources["cache_bytes"] = "per-core L2 size from /sys/devices/system/cpu/cpu0/cache x threads"
    if facts["l3_bytes"]:
        changes["llc_bytes"] = int(facts["l3_bytes"])
        sources["llc_bytes"] = "shared L3 size from /sys/devices/system/cpu/cpu0/cache"
    if cal:
        fitted = cal.get("profile", {})
        if "peak_scale" in cal:
            changes["peak_ops"] = {k: v * float(cal["peak_scale"]) for k, v in peak.items()}
            sources["peak_ops"] = formula + f"; x {float(cal['peak_scale']):.3g} fitted by calibrate_host (turbo clock)"
        for key in ("efficiency", "kind_efficiency", "layer_overhead_s", "inference_overhead_s", "kind_overhead_s",
                    "tile_rows", "serial_fraction", "memory_bandwidth_bytes_s", "cache_bandwidth_bytes_s",
                    "llc_bandwidth_bytes_s"):
            if key in fitted:
                changes[key] = fitted[key]
                sources[key] = str(cal.get("source", "fitted by workbench.calibrate_host"))
        if "efficiency" in fitted:
            sources.pop("efficiency.compute", None)
            sources.pop("efficiency.memory", None)
    changes["sources"] = sources
    prof = dataclasses.replace(base, **changes)
    # re-validate the merged profile, so a stale or hand-edited calibration file fails loudly, naming it
    where = f"host profile calibrated in {host_calibration_path()}" if cal else "host.yaml"
    return parse_profile(prof.to_dict(), where=where, path=base.path)


def _read_calibration() -> dict[str, Any] | None:
    """The calibration file if it exists and was written on this machine; otherwise `None`."""
    path = host_calibration_path()
    if not path.is_file():
        return None
    data = read_yaml(path)
    if not isinstance(data, dict) or data.get("machine") != host_key():
        return None
    return data
