"""Speed bars for compression, measured side by side in one run and printed as ratios.

    .venv/bin/python benchmarks/compression.py [--minilm] [--threads 1]

Bars we hold ourselves to (README):
  * int8 on the default CNN >= 1.7x faster than fp32 (per runtime);
  * 50 % channel pruning: measured speedup >= 0.8 x its MAC reduction;
  * ORT int8 vs fp32 on MiniLM >= 3.5x faster at <= 1 point accuracy loss (--minilm; takes minutes).
Runners are timed in interleaved rounds and the median of round medians is reported, so background load
hits every variant alike. Nothing here is a test: it prints what this machine measures.
"""

from __future__ import annotations

import argparse

import numpy as np

import workbench
from workbench import Prune, Quantize, compress, zoo
from workbench.measurement.latency import time_runner
from workbench.realize import realize


def timed(runners: dict[str, object], inputs: list[np.ndarray], rounds: int) -> dict[str, float]:
    p50: dict[str, list[float]] = {k: [] for k in runners}
    for _ in range(rounds):
        for k, run in runners.items():
            p50[k].append(time_runner(run, inputs, min_seconds=0.3).p50)
    return {k: float(np.median(v)) for k, v in p50.items()}


def bar(name: str, value: float, goal: float) -> str:
    return f"  {name:52s} {value:6.2f}x  (goal >= {goal:.2f}x: {'met' if value >= goal else 'NOT met'})"


def cnn(threads: int, rounds: int) -> None:
    task = zoo.load("digits-cnn")
    variants = {
        "fp32": task.model,
        "int8": compress(task.model, Quantize(8), task=task),
        "channel50-layer": compress(task.model, Prune(0.5, structure="channel", scope="layer"), task=task),
        "channel50-global": compress(task.model, Prune(0.5, structure="channel"), task=task),
    }
    from workbench.core.layers import count_macs

    macs = {k: count_macs(v) for k, v in variants.items()}
    x = [a[:1] for a in task.example_inputs]
    for rt in ("onnxruntime", "litert"):
        real = {k: realize(v, rt, task) for k, v in variants.items()}
        runners = {k: workbench.runtime(r.handle, rt, threads=threads) for k, r in real.items()}
        ms = timed(runners, x, rounds)
        print(f"\ndigits-cnn on {rt}, batch 1, {threads} thread(s):")
        for k in variants:
            print(f"  {k:18s} {ms[k]:.4f} ms  MACs {macs[k]:>9,}  ({real[k].note})")
        print(bar("int8 speedup", ms["fp32"] / ms["int8"], 1.7))
        for k in ("channel50-layer", "channel50-global"):
            speed, mac_red = ms["fp32"] / ms[k], macs["fp32"] / macs[k]
            print(bar(f"{k}: speedup / MAC reduction ({speed:.2f}x / {mac_red:.2f}x)", speed / mac_red, 0.8))


def minilm(threads: int, rounds: int) -> None:
    task = zoo.load("minilm")
    q8 = compress(task.model, Quantize(8, embeddings=True), task=task)
    real = {"fp32": realize(task.model, "onnxruntime", task), "int8": realize(q8, "onnxruntime", task)}
    runners = {k: workbench.runtime(r.handle, "onnxruntime", threads=threads) for k, r in real.items()}
    acc = {k: task.evaluate(r)["accuracy"] for k, r in runners.items()}
    ms = timed(runners, [a[:1] for a in task.example_inputs], rounds)
    print(f"\nminilm on onnxruntime, batch 1, {threads} thread(s):")
    for k in runners:
        print(f"  {k:6s} {ms[k]:.3f} ms  accuracy {acc[k]:.4f}  size {real[k].path.stat().st_size:,} B  ({real[k].note})")
    print(bar(f"int8 speedup (accuracy loss {100 * (acc['fp32'] - acc['int8']):.1f} points)", ms["fp32"] / ms["int8"], 3.5))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--minilm", action="store_true", help="also run the MiniLM int8 bar (minutes)")
    args = p.parse_args()
    cnn(args.threads, args.rounds)
    if args.minilm:
        minilm(args.threads, args.rounds)


if __name__ == "__main__":
    main()
