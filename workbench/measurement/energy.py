"""Measured energy per inference from the host's RAPL counters (Linux powercap), where the host exposes them.

Intel (and AMD Zen, through the same ``intel-rapl`` powercap driver) CPUs count the energy each package draws in
``/sys/class/powercap/intel-rapl:N/energy_uj``. Reading the counter around a burst of inferences, minus the same
package's draw over an equal idle interval, gives the energy one inference adds: a measurement, beside the device
estimates (``energy_mj_est``) that a profile and a formula give. No library reads these counters portably (pyRAPL
is unmaintained and needs root for its own setup), and the reading is a few lines of sysfs, so it is done here.

Where the counters are absent (most VMs, these CI machines included) or unreadable (``energy_uj`` is root-only
since Linux 5.10, CVE-2020-8694), the figure stays empty and the reading says why: never a constant stand-in.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

POWERCAP = Path("/sys/class/powercap")
"""Where Linux exposes RAPL domains."""


@dataclass(frozen=True)
class EnergyReading:
    """Energy one inference adds on this host's CPU packages, or why it could not be measured.

    `mj_per_inference` is None when `why` says the counters are absent or unreadable; `domains` names the
    packages summed; `calls` and `seconds` are the timed burst; `idle_w` the packages' idle draw subtracted.
    """

    mj_per_inference: float | None
    why: str
    domains: tuple[str, ...] = ()
    calls: int = 0
    seconds: float = 0.0
    idle_w: float | None = None

    @property
    def note(self) -> str:
        """One line for a results row: the method when measured, else why not."""
        if self.mj_per_inference is None:
            return self.why
        return (f"RAPL package energy of {', '.join(self.domains)} over {self.calls} calls in {self.seconds:.2f} s, "
                f"idle draw {self.idle_w:.2f} W subtracted (the whole package: other load on it adds noise)")


def package_domains(root: Path = POWERCAP) -> list[Path]:
    """The top-level RAPL package domains (``intel-rapl:0``, ``intel-rapl:1``, ...), not their sub-zones."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.glob("intel-rapl:*") if p.name.count(":") == 1 and (p / "energy_uj").exists())


def counters_status(root: Path = POWERCAP) -> tuple[list[Path], str]:
    """(readable package domains, why none) — `why` is empty when at least one counter can be read."""
    if not root.is_dir():
        return [], f"no energy counters on this host ({root} is absent: no RAPL driver, as on most VMs)"
    domains = package_domains(root)
    if not domains:
        return [], f"no RAPL package domain under {root} (this CPU or kernel exposes none)"
    readable = []
    for d in domains:
        try:
            int((d / "energy_uj").read_text())
            readable.append(d)
        except (OSError, ValueError):
            continue
    if not readable:
        return [], (f"RAPL counters under {root} are not readable by this user (root-only since Linux 5.10); "
                    "run as root or `chmod a+r /sys/class/powercap/intel-rapl:*/energy_uj` to measure energy")
    return readable, ""


def _read(domains: Sequence[Path]) -> list[int]:
    return [int((d / "energy_uj").read_text()) for d in domains]


def _joules(before: Sequence[int], after: Sequence[int], domains: Sequence[Path]) -> float:
    """Energy between two readings, in joules, unwrapping counters that rolled over at ``max_energy_range_uj``."""
    total = 0
    for b, a, d in zip(before, after, domains):
        delta = a - b
        if delta < 0:
            try:
                delta += int((d / "max_energy_range_uj").read_text())
            except (OSError, ValueError):
                delta = 0
        total += delta
    return total / 1e6


def measure_energy(runner: Callable[..., object], inputs: Sequence[np.ndarray], *, seconds: float = 0.5,
                   root: Path = POWERCAP, sleep: Callable[[float], None] = time.sleep) -> EnergyReading:
    """Energy one call of `runner(*inputs)` adds, from RAPL counters read around a burst of calls.

    The packages' draw over an idle interval as long as the burst is subtracted, so the figure is what the
    inferences add, not the machine's floor. Returns a reading whose `mj_per_inference` is None (with `why`)
    when the host has no readable counters.

    Example:
        >>> reading = measure_energy(lambda x: x, [np.zeros(3)], root=Path("/no/such/powercap"))
        >>> reading.mj_per_inference is None, reading.why.startswith("no energy counters")
        (True, True)
    """
    domains, why = counters_status(root)
    if not domains:
        return EnergyReading(None, why)
    names = tuple(d.name for d in domains)
    before = _read(domains)
    start = time.perf_counter()
    sleep(seconds)
    idle_s = time.perf_counter() - start
    idle_j = _joules(before, _read(domains), domains)
    calls = 0
    before = _read(domains)
    start = time.perf_counter()
    while True:
        runner(*inputs)
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            break
    busy_j = _joules(before, _read(domains), domains)
    idle_w = idle_j / idle_s if idle_s > 0 else 0.0
    added = busy_j - idle_w * elapsed
    if added <= 0:
        return EnergyReading(None, f"RAPL counters of {', '.join(names)} moved less than the idle draw over "
                                   f"{calls} calls (the counter resolution or other load hides one inference)",
                             names, calls, elapsed, idle_w)
    return EnergyReading(1e3 * added / calls, "", names, calls, elapsed, idle_w)
