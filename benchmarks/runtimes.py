"""Batch-1 latency of each zoo model on every runtime, measured side by side in one run, as ratios.

    .venv/bin/python benchmarks/runtimes.py [--task digits-cnn silero-vad] [--threads 1]

Ratios (not absolute times) are what to compare across machines: these VMs are noisy. Each runtime is timed in
interleaved rounds so a burst of background load hits all of them alike.
"""

from __future__ import annotations

import argparse

import numpy as np

import workbench
from workbench.measurement.latency import time_runner


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", nargs="+", default=["digits-cnn", "silero-vad"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    for name in args.task:
        task = workbench.zoo.load(name)
        runners = {rt: workbench.runtime(task.model, rt, threads=args.threads) for rt in workbench.available_runtimes()}
        one = [a[:1] for a in task.example_inputs]
        p50 = {rt: [] for rt in runners}
        for _ in range(args.rounds):
            for rt, run in runners.items():
                p50[rt].append(time_runner(run, one, min_seconds=0.2).p50)
        med = {rt: float(np.median(v)) for rt, v in p50.items()}
        print(f"\n{name}: batch 1, {args.threads} thread(s), median of {args.rounds} interleaved rounds")
        for rt, ms in med.items():
            print(f"  {rt:14s} {ms:8.3f} ms   torch/{rt} = {med['torch'] / ms:5.1f}x")


if __name__ == "__main__":
    main()
