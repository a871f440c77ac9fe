"""Wall-clock latency of a runner: warm-up, then repetitions until the median is stable, within a budget.

`time_runner` takes its limits from the `LatencyBudget` in effect: `DEFAULT_BUDGET` unless a caller set another
with `latency_budget` (a sweep uses `SWEEP_BUDGET`, sized for models of tens of microseconds), and any limit passed
to `time_runner` itself wins over both.
"""

from __future__ import annotations

import contextlib
import math
import time
from contextvars import ContextVar
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Callable, Iterator, Sequence

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


@dataclass(frozen=True)
class LatencyBudget:
    """How long `time_runner` times one runner.

    Args:
        warmup: untimed calls first (>= 0).
        min_reps: timed calls before the median may be judged stable (>= 2).
        max_reps: timed calls at most (>= min_reps).
        min_seconds: timing at least this long before the median may be judged stable (>= 0).
        max_seconds: timing at most this long (> 0), whatever the median does.
        tolerance: the median is stable when the medians of the first and second half of the samples differ by at
            most this fraction (> 0).

    Example:
        >>> LatencyBudget(min_seconds=0.05, max_seconds=1.0).max_seconds
        1.0
    """

    warmup: int = 10
    min_reps: int = 30
    max_reps: int = 5000
    min_seconds: float = 0.5
    max_seconds: float = 5.0
    tolerance: float = 0.03

    def __post_init__(self) -> None:
        for name, low in (("warmup", 0), ("min_reps", 2), ("max_reps", 2)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, Integral) or v < low:
                raise ValueError(f"LatencyBudget: {name} must be an integer >= {low}, got {v!r}")
        if self.max_reps < self.min_reps:
            raise ValueError(f"LatencyBudget: max_reps ({self.max_reps}) must be >= min_reps ({self.min_reps})")
        for name in ("min_seconds", "max_seconds", "tolerance"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, Real) or not math.isfinite(v) or v < 0:
                raise ValueError(f"LatencyBudget: {name} must be a finite number >= 0, got {v!r}")
        if self.max_seconds <= 0 or self.tolerance <= 0:
            raise ValueError("LatencyBudget: max_seconds and tolerance must be > 0")


DEFAULT_BUDGET = LatencyBudget()
"""`time_runner`'s limits outside a sweep: at least 0.5 s of timing before the median may be judged stable."""

SWEEP_BUDGET = LatencyBudget(min_reps=50, max_reps=20000, min_seconds=0.05, max_seconds=1.0)
"""A sweep's limits per variant: models of tens of microseconds give a thousand samples in 0.05 s, and the
median of a thousand samples is stable to well under the 3 % `tolerance`, so a stable variant is timed in about
0.05 s instead of 0.5 s; a noisy or drifting one is still timed until its median settles, for up to 1 s. Slow
models are bounded by `min_reps` (50 calls), as before."""

_BUDGET: ContextVar[LatencyBudget] = ContextVar("latency_budget", default=DEFAULT_BUDGET)


@contextlib.contextmanager
def latency_budget(budget: LatencyBudget) -> Iterator[LatencyBudget]:
    """Within the block, `time_runner` calls use `budget`'s limits (unless given their own).

    Example:
        >>> with latency_budget(SWEEP_BUDGET):
        ...     current_budget().min_seconds
        0.05
        >>> current_budget() == DEFAULT_BUDGET
        True
    """
    if not isinstance(budget, LatencyBudget):
        raise TypeError(f"latency_budget takes a LatencyBudget, got {type(budget).__name__}")
    token = _BUDGET.set(budget)
    try:
        yield budget
    finally:
        _BUDGET.reset(token)


def current_budget() -> LatencyBudget:
    """The `LatencyBudget` `time_runner` uses here (`DEFAULT_BUDGET` outside any `latency_budget` block)."""
    return _BUDGET.get()


def time_runner(
    runner: Callable[..., list[np.ndarray]],
    inputs: Sequence[np.ndarray],
    *,
    warmup: int | None = None,
    min_reps: int | None = None,
    max_reps: int | None = None,
    min_seconds: float | None = None,
    max_seconds: float | None = None,
    tolerance: float | None = None,
) -> LatencyStats:
    """Time `runner(*inputs)` until the median is stable.

    Runs `warmup` untimed calls, then timed calls until at least `min_reps` calls and `min_seconds` have passed
    *and* the median of the first half of the samples is within `tolerance` of the median of the second half
    (a stable median), or until `max_reps` / `max_seconds` is reached. Fast models get many samples, slow ones
    finish in reasonable time, and noisy ones get more samples up to the budget. A limit not given comes from the
    `LatencyBudget` in effect (`current_budget`).

    Example:
        >>> run = workbench.runtime(task.model, "onnxruntime", threads=1)
        >>> x = task.example_inputs[0]
        >>> stats = time_runner(run, [x[:1]])
        >>> stats.p50 > 0 and stats.reps >= 30, stats.p10 <= stats.p50 <= stats.p90
        (True, True)
    """
    given = dict(warmup=warmup, min_reps=min_reps, max_reps=max_reps, min_seconds=min_seconds,
                 max_seconds=max_seconds, tolerance=tolerance)
    b = current_budget()
    b = LatencyBudget(**{k: getattr(b, k) if v is None else v for k, v in given.items()})
    for _ in range(b.warmup):
        runner(*inputs)
    times: list[float] = []
    start = time.perf_counter()
    next_check = b.min_reps
    while len(times) < b.max_reps:
        t0 = time.perf_counter()
        runner(*inputs)
        times.append((time.perf_counter() - t0) * 1e3)
        elapsed = time.perf_counter() - start
        if elapsed >= b.max_seconds:
            break
        if len(times) >= next_check and elapsed >= b.min_seconds:
            half = len(times) // 2
            first, second = float(np.median(times[:half])), float(np.median(times[half:]))
            if abs(first - second) <= b.tolerance * max(first, second):
                break
            next_check = int(len(times) * 1.5)
    arr = np.asarray(times)
    q10, q25, q50, q75, q90, q99 = np.percentile(arr, [10, 25, 50, 75, 90, 99])
    return LatencyStats(
        p50=float(q50), p90=float(q90), p99=float(q99), mean=float(arr.mean()), iqr=float(q75 - q25),
        reps=len(times), warmup=b.warmup, p10=float(q10),
    )


_TIMING_LOCK: ContextVar = ContextVar("workbench_timing_lock", default=None)


@contextlib.contextmanager
def exclusive_timing(lock: object) -> Iterator[None]:
    """Within this block, `timing_section` holds `lock` (anything with ``acquire`` / ``release``: a
    ``multiprocessing`` lock, a ``dask.distributed.Lock``) while it times, so parallel workers time one at a time.

    Example:
        >>> import threading
        >>> lock = threading.Lock()
        >>> with exclusive_timing(lock):
        ...     with timing_section():
        ...         lock.locked()
        True
    """
    token = _TIMING_LOCK.set(lock)
    try:
        yield
    finally:
        _TIMING_LOCK.reset(token)


@contextlib.contextmanager
def timing_section() -> Iterator[None]:
    """Wrap the timed calls of a measurement: holds the lock `exclusive_timing` set, if any (else does nothing)."""
    lock = _TIMING_LOCK.get()
    if lock is None:
        yield
        return
    lock.acquire()
    try:
        yield
    finally:
        lock.release()
