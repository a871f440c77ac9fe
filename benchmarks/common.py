"""What every benchmark prints first and last: the machine (CPU model, SIMD flags that decide int8 kernels, cores,
threads, load) and one PASS/MISS line per bar.

    from common import header, verdict   # benchmarks/ is run as scripts: `python benchmarks/<name>.py`

Ratios measured side by side in one run are what to compare across machines; absolute times on a shared VM are
not. The header says so, and says what the run had to share the machine with.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

SIMD_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8", "neon",
              "asimddp", "i8mm")
"""The CPU flags that decide which int8 / fp32 kernels ONNX Runtime, XNNPACK and OpenVINO pick."""


def cpu_flags() -> list[str]:
    """The SIMD flags of `SIMD_FLAGS` this CPU reports (Linux /proc/cpuinfo; empty elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    line = next((ln for ln in text.splitlines() if ln.startswith(("flags", "Features"))), "")
    have = set(line.split(":", 1)[-1].split())
    return [f for f in SIMD_FLAGS if f in have]


def cpu_model() -> str:
    try:
        for ln in Path("/proc/cpuinfo").read_text().splitlines():
            if ln.startswith("model name"):
                return ln.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def header(title: str, *, threads: int | None = None) -> str:
    """The first lines of a benchmark's output: title, CPU, SIMD flags, cores, threads and load average."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    text = (f"{title}\n"
            f"machine: {cpu_model()} ({platform.machine()}), {os.cpu_count()} logical CPUs, SIMD "
            f"{' '.join(cpu_flags()) or 'unknown'}; {threads if threads is not None else 'default'} thread(s) per "
            f"session; load average {load:.1f} at start (a busy shared machine adds noise: read ratios, not times)")
    print(text, flush=True)
    return text


def verdict(label: str, ok: bool | None, detail: str) -> str:
    """One bar's line: PASS, MISS, or SKIP (`ok` None: not measured in this run, with why in `detail`)."""
    word = "SKIP" if ok is None else "PASS" if ok else "MISS"
    line = f"  {word}  {label}: {detail}"
    print(line, flush=True)
    return line
