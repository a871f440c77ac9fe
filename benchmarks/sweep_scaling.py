"""Sweep scaling, measured side by side in one run and printed as ratios.

    .venv/bin/python benchmarks/sweep_scaling.py [--executor processes|dask] [--task digits-cnn]

Bars we hold ourselves to (README):
  * the same sweep with 2 workers >= 1.6x faster than with 1 worker;
  * a re-run of a finished sweep (everything read back from the store) < 1 s.
Each timed run starts from an empty conversion cache and an empty store, so neither run reuses the other's
work; worker start-up (spawning processes, importing torch, loading the task) is inside the timing, as it is
for a user. On a 2-core machine two workers also share the cores with the timing loops they run, so the
latency figures of a parallel sweep are noisier (the scaling figure is wall time, not latency).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from common import header, verdict

import workbench


def timed_sweep(task: str, grid: workbench.Grid, store: Path, executor: str, workers: int) -> tuple[float, int]:
    os.environ["WORKBENCH_CACHE"] = tempfile.mkdtemp(prefix="sweep-bench-cache-")  # cold caches, also in workers
    t0 = time.perf_counter()
    df = workbench.sweep(task, grid, store=store, executor=executor, workers=workers, progress=False, memory=False)
    return time.perf_counter() - t0, len(df)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="digits-cnn")
    ap.add_argument("--executor", default="processes", choices=["processes", "dask"])
    ap.add_argument("--bits", default="32,8,4")
    args = ap.parse_args()
    grid = workbench.grid(prune=[0, 0.25, 0.5, 0.75], structure=["unstructured", "channel"],
                          bits=[int(b) for b in args.bits.split(",")], devices=["raspberry-pi-4"])
    header(f"Sweep scaling: {args.task}, {len(grid)} variants on onnxruntime, executor {args.executor}", threads=1)
    with tempfile.TemporaryDirectory() as tmp:
        one, n1 = timed_sweep(args.task, grid, Path(tmp) / "w1.sqlite", args.executor, 1)
        print(f"  1 worker : {one:7.1f} s  ({n1} rows)")
        two, n2 = timed_sweep(args.task, grid, Path(tmp) / "w2.sqlite", args.executor, 2)
        print(f"  2 workers: {two:7.1f} s  ({n2} rows)")
        t0 = time.perf_counter()
        workbench.sweep(args.task, grid, store=Path(tmp) / "w2.sqlite", progress=False)
        cached = time.perf_counter() - t0
    ratio = one / two
    print()
    verdict("2 workers >= 1.6x one worker (wall time)", ratio >= 1.6, f"{ratio:.2f}x ({one:.1f} s vs {two:.1f} s)")
    verdict("cached re-run of the finished sweep < 1 s", cached < 1, f"{cached:.2f} s")


if __name__ == "__main__":
    main()
