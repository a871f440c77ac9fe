"""Wall-clock latency of a runner: warm-up, then repetitions until the median is stable."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np


@dataclass(frozen=True)
class LatencyStats:
    """Latency in milliseconds over `reps` timed calls (after `warmup` untimed ones)."""

    p50: float
    p90: float
    p99: float
    mean: float
    iqr: float
    reps: int
    warmup: int


def time_runner(
    runner: Callable[..., list[np.ndarray]],
    inputs: Sequence[np.ndarray],
    *,
    warmup: int = 10,
    min_reps: int = 30,
    max_reps: int = 2000,
    min_seconds: float = 0.5,
) -> LatencyStats:
    """Time `runner(*inputs)`.

    Runs `warmup` calls, then at least `min_reps` timed calls and keeps going until `min_seconds` have
    passed (capped at `max_reps`), so fast models get many samples and slow ones finish in reasonable time.

    Example:
        >>> stats = time_runner(run, [x[:1]])
        >>> stats.p50 > 0
        True
    """
    for _ in range(warmup):
        runner(*inputs)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < max_reps and (len(times) < min_reps or time.perf_counter() - start < min_seconds):
        t0 = time.perf_counter()
        runner(*inputs)
        times.append((time.perf_counter() - t0) * 1e3)
    arr = np.asarray(times)
    q25, q50, q75, q90, q99 = np.percentile(arr, [25, 50, 75, 90, 99])
    return LatencyStats(
        p50=float(q50), p90=float(q90), p99=float(q99), mean=float(arr.mean()), iqr=float(q75 - q25),
        reps=len(times), warmup=warmup,
    )
