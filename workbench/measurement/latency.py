"""Wall-clock latency of a runner: warm-up, then repetitions until the median is stable."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np


@dataclass(frozen=True)
class LatencyStats:
    """Latency in milliseconds over `reps` timed calls (after `warmup` untimed ones); `p10`..`p90` is the spread
    a plot draws around the median."""

    p50: float
    p90: float
    p99: float
    mean: float
    iqr: float
    reps: int
    warmup: int
    p10: float = float("nan")


def time_runner(
    runner: Callable[..., list[np.ndarray]],
    inputs: Sequence[np.ndarray],
    *,
    warmup: int = 10,
    min_reps: int = 30,
    max_reps: int = 5000,
    min_seconds: float = 0.5,
    max_seconds: float = 5.0,
    tolerance: float = 0.03,
) -> LatencyStats:
    """Time `runner(*inputs)` until the median is stable.

    Runs `warmup` untimed calls, then timed calls until at least `min_reps` calls and `min_seconds` have passed
    *and* the median of the first half of the samples is within `tolerance` of the median of the second half
    (a stable median), or until `max_reps` / `max_seconds` is reached. Fast models get many samples, slow ones
    finish in reasonable time, and noisy ones get more samples up to the budget.

    Example:
        >>> run = workbench.runtime(task.model, "onnxruntime", threads=1)
        >>> x = task.example_inputs[0]
        >>> stats = time_runner(run, [x[:1]])
        >>> stats.p50 > 0 and stats.reps >= 30, stats.p10 <= stats.p50 <= stats.p90
        (True, True)
    """
    for _ in range(warmup):
        runner(*inputs)
    times: list[float] = []
    start = time.perf_counter()
    next_check = min_reps
    while len(times) < max_reps:
        t0 = time.perf_counter()
        runner(*inputs)
        times.append((time.perf_counter() - t0) * 1e3)
        elapsed = time.perf_counter() - start
        if elapsed >= max_seconds:
            break
        if len(times) >= next_check and elapsed >= min_seconds:
            half = len(times) // 2
            a, b = float(np.median(times[:half])), float(np.median(times[half:]))
            if abs(a - b) <= tolerance * max(a, b):
                break
            next_check = int(len(times) * 1.5)
    arr = np.asarray(times)
    q10, q25, q50, q75, q90, q99 = np.percentile(arr, [10, 25, 50, 75, 90, 99])
    return LatencyStats(
        p50=float(q50), p90=float(q90), p99=float(q99), mean=float(arr.mean()), iqr=float(q75 - q25),
        reps=len(times), warmup=warmup, p10=float(q10),
    )
