"""Rebuild the precomputed results the dashboards open with (``data/demo/``), so no page sweeps on first open.

    python data/build_demo_results.py                      # the default task (workbench.zoo.DEFAULT)
    python data/build_demo_results.py --task digits-cnn    # another zoo task
    python data/build_demo_results.py --no-runtimes        # only the trade-off explorer's sweep

Runs the dashboards' sweeps from scratch on this machine (a fresh store: nothing read from a cache) and writes

* ``data/demo/<task>.parquet``: `workbench.ui.data.demo_grid` (full): the trade-off explorer, device fit and export
  pages;
* ``data/demo/<task>-runtimes.parquet``: `workbench.ui.runtime_data.runtime_grid` (full, every installed
  runtime): the runtimes page;

each with a ``.json`` beside it naming the grid spec, the task, the results schema and the layout version
(`workbench.ui.data.shipped_identity`), the file's sha256 and where and when it was measured. A page uses a
file only while that identity matches the code (`workbench.ui.data.stale_reasons`); ``tests/ui/test_data_demo.py``
fails when it does not, and says to run this script.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def machine() -> str:
    """The CPU model and core count of this machine (what the shipped latencies were measured on)."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores"


def build(name: str, task: str, grid, store: Path, memory: bool = True) -> Path:
    import pandas as pd

    from workbench import zoo
    from workbench.measurement.record import library_versions
    from workbench.sweeps import sweep
    from workbench.ui.data import read_shipped, shipped_path, write_shipped

    t0 = time.perf_counter()
    print(f"{name}: {len(grid)} variants x {len(grid.runtimes)} runtime(s) x {len(grid.devices)} device(s), "
          f"store {store}", file=sys.stderr, flush=True)
    df = sweep(task, grid, store=store, memory=memory, progress=True)
    seconds = time.perf_counter() - t0
    bad = df["error"].notna() & (df["error"].astype(str).str.strip() != "") if "error" in df else None
    out = write_shipped(df, name, task, grid, model_fingerprint=zoo.load(task).model.fingerprint,
                        built=datetime.now(timezone.utc).isoformat(timespec="seconds"), seconds=round(seconds, 1),
                        machine=machine(), python=platform.python_version(), versions=library_versions())
    back = read_shipped(name, task, grid)
    assert back is not None, f"{out} was written but does not read back as fresh"
    want = df.assign(artifact=None) if "artifact" in df else df
    pd.testing.assert_frame_equal(back.reset_index(drop=True), want.reset_index(drop=True), check_dtype=False)
    print(f"wrote {shipped_path(name)} ({out.stat().st_size / 1024:.0f} KB; the sweep's SQLite store: "
          f"{store.stat().st_size / 1024:.0f} KB), {len(df)} rows, {int(bad.sum()) if bad is not None else 0} "
          f"with errors, in {seconds:.0f} s", flush=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", help="zoo task (default: workbench.zoo.DEFAULT)")
    ap.add_argument("--no-runtimes", action="store_true", help="skip the runtimes page's sweep")
    args = ap.parse_args()
    os.environ.pop("WORKBENCH_FAST", None)  # the shipped files are the full grids

    from workbench.ui.data import demo_grid, demo_task
    from workbench.ui.runtime_data import runtime_grid, runtime_name

    task = demo_task(args.task)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="workbench-demo-build-") as tmp:
        build(task, task, demo_grid(fast=False), Path(tmp) / "demo.sqlite")
        if not args.no_runtimes:
            build(runtime_name(task), task, runtime_grid(fast=False), Path(tmp) / "runtimes.sqlite")
    print(f"done in {time.perf_counter() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
