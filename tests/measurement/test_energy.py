"""Measured energy from RAPL counters: read from a powercap tree when present, empty with a reason when not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from workbench.measurement.energy import counters_status, measure_energy


def powercap(root: Path, *, energy: int = 1_000_000, max_range: int = 2**32, readable: bool = True) -> Path:
    zone = root / "intel-rapl:0"
    (zone / "intel-rapl:0:0").mkdir(parents=True)  # a sub-zone (core), not summed
    (zone / "intel-rapl:0:0" / "energy_uj").write_text("5\n")
    (zone / "energy_uj").write_text(f"{energy}\n")
    (zone / "max_energy_range_uj").write_text(f"{max_range}\n")
    if not readable:
        (zone / "energy_uj").chmod(0)
    return root


class FakePackage:
    """A package counter drawing `idle_w` by the real clock plus `joules_per_call` per call, written to sysfs."""

    def __init__(self, root: Path, idle_w: float, joules_per_call: float, start: int = 0, wrap: int = 2**40):
        import time

        self.file = root / "intel-rapl:0" / "energy_uj"
        self.idle_w, self.per_call, self.start, self.wrap = idle_w, joules_per_call, start, wrap
        self.calls, self.t0 = 0, time.perf_counter()
        self.refresh()

    def refresh(self) -> None:
        import time

        joules = self.idle_w * (time.perf_counter() - self.t0) + self.per_call * self.calls
        self.file.write_text(str((self.start + int(round(joules * 1e6))) % self.wrap))

    def sleep(self, seconds: float) -> None:
        import time

        time.sleep(seconds)
        self.refresh()

    def call(self, *_inputs: np.ndarray) -> None:
        self.calls += 1
        self.refresh()


def test_no_powercap_leaves_the_figure_empty_and_says_why(tmp_path):
    reading = measure_energy(lambda: None, [], root=tmp_path / "absent")
    assert reading.mj_per_inference is None
    assert "no energy counters" in reading.why and "absent" in reading.note


@pytest.mark.skipif(__import__("os").geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_counters_say_how_to_fix_it(tmp_path):
    root = powercap(tmp_path, readable=False)
    domains, why = counters_status(root)
    assert domains == [] and "root-only" in why and "chmod" in why


def test_the_energy_an_inference_adds_is_measured_with_idle_subtracted(tmp_path):
    root = powercap(tmp_path)
    pkg = FakePackage(root, idle_w=0.5, joules_per_call=0.003)
    reading = measure_energy(pkg.call, [], seconds=0.1, root=root, sleep=pkg.sleep)
    assert reading.domains == ("intel-rapl:0",) and reading.calls >= 5
    assert reading.mj_per_inference == pytest.approx(3.0, rel=0.2)  # timer jitter against the idle draw
    assert reading.idle_w == pytest.approx(0.5, rel=0.2)
    assert "RAPL" in reading.note and "idle draw" in reading.note


def test_a_counter_that_wraps_is_unwrapped(tmp_path):
    wrap = 10_000_000
    root = powercap(tmp_path, max_range=wrap)
    pkg = FakePackage(root, idle_w=0.0, joules_per_call=0.004, start=wrap - 1_000, wrap=wrap)
    reading = measure_energy(pkg.call, [], seconds=0.03, root=root, sleep=pkg.sleep)
    assert reading.mj_per_inference == pytest.approx(4.0, rel=0.01)


def test_measure_reports_measured_energy_beside_the_estimates(digits):
    from workbench.measurement import measure, to_frame
    from workbench.measurement.energy import counters_status as status

    row = to_frame([measure(digits.model, digits, runtime="onnxruntime", threads=1, devices=["raspberry-pi-4"],
                            memory=False, limit=32)]).iloc[0]
    domains, why = status()
    if domains:
        assert row["energy_mj"] > 0 and "RAPL" in row["energy_note"]
    else:  # these VMs: empty, never a stand-in, and the reason is on the row
        assert row["energy_mj"] is None or np.isnan(row["energy_mj"])
        assert row["energy_note"] == why
    assert row["energy_mj_est"] > 0
