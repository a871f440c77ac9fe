"""95 % intervals for figures measured on a sample: Wilson for rates, a percentile bootstrap otherwise.

A task's score measures a metric on a finite evaluation split, so two variants whose accuracies differ by a few
samples may not differ at all. Each sampled metric therefore comes with ``<metric>_low`` / ``<metric>_high``:

* a *rate* (accuracy, agreement with the original, frame accuracy, instructions passed): the Wilson score
  interval (`wilson`), exact in closed form and sensible at 0 and 1, where the normal approximation is not;
* anything else (mean cosine, F1, perplexity = exp(mean NLL over chunks)): the percentile bootstrap
  (`bootstrap`), resampling the evaluated samples with replacement, vectorised and seeded, so a sweep of hundreds
  of variants scores in milliseconds each and the same outputs always give the same interval.

Both assume independent samples; where samples are correlated (audio frames, tokens of one text) the interval is
narrower than the truth, and the docstring of the metric says so. They live here, on the ground floor, because
`workbench.task` and the zoo's tasks score with them; `workbench.measurement.intervals` is their public home.

Example:
    >>> [round(v, 4) for v in wilson(45, 50)]
    [0.7864, 0.9565]
    >>> with_interval("accuracy", np.array([True, True, False, True]))
    {'accuracy': 0.75, 'accuracy_low': 0.300636, 'accuracy_high': 0.954414}
"""

from __future__ import annotations

import math
from typing import Any, Callable, Collection

import numpy as np

SUFFIXES = ("_low", "_high")
"""Interval columns are named ``<metric>_low`` and ``<metric>_high``."""
DIGITS = 6
"""Interval bounds are rounded to this many decimals (like `Task.fidelity`)."""


def wilson(successes: float, n: float, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a proportion: `successes` of `n` trials, `z` the normal quantile.

    ``(p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)`` with ``p = successes / n``; NaNs for ``n == 0``.

    Example:
        >>> [round(v, 4) for v in wilson(45, 50)]          # 90 % of 50: 78.6 % to 95.7 %
        [0.7864, 0.9565]
        >>> wilson(0, 10)[0], wilson(10, 10)[1]  # never outside [0, 1]
        (0.0, 1.0)
    """
    if n <= 0:
        return float("nan"), float("nan")
    if not 0 <= successes <= n:
        raise ValueError(f"wilson: successes must lie between 0 and n={n}, got {successes}")
    p = successes / n
    z2 = z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def bootstrap(values: Any, statistic: Callable[..., Any] = np.mean, n_boot: int = 1000, seed: int = 0, *,
              confidence: float = 0.95) -> tuple[float, float]:
    """The percentile-bootstrap interval of `statistic` over the samples (rows) of `values`.

    Draws `n_boot` resamples of the rows with replacement (seeded: the same values give the same interval) and
    returns the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of the statistic over them.
    `statistic` is called as numpy reductions are, ``statistic(resamples, axis=1)`` on an array of shape
    ``(n_boot, n, ...)``, and must return one value per resample (``np.mean``, ``np.median``, `exp_mean`,
    `f1_of_counts`); one that takes no ``axis`` is called once per resample instead (slower). Fewer than two
    samples have no interval (NaNs). The statistics of `OF_MEANS` are computed from each resample's column
    means without materialising it (a few milliseconds for thousands of samples).

    Example:
        >>> x = np.random.default_rng(1).normal(10.0, 2.0, size=400)
        >>> low, high = bootstrap(x)
        >>> bool(low < 10.0 < high), bootstrap(x) == (low, high), round(high - low, 1)
        (True, True, 0.4)
    """
    v = np.asarray(values, dtype=np.float64)
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 1:
        raise ValueError(f"bootstrap: n_boot must be a positive integer, got {n_boot!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"bootstrap: confidence must lie between 0 and 1, got {confidence!r}")
    n = v.shape[0] if v.ndim else 0
    if n < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    if statistic in OF_MEANS:
        s = _of_means(v.reshape(n, -1), statistic, n_boot, rng)
    else:
        s = _resampled(v, statistic, n_boot, rng)
    s = s[np.isfinite(s)]
    if not len(s):
        return float("nan"), float("nan")
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(s, [tail, 100 - tail])
    return float(low), float(high)


def _resampled(v: np.ndarray, statistic: Callable[..., Any], n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """The statistic of `n_boot` resamples of the rows of `v`, drawn in blocks of at most ~32 MB."""
    n = v.shape[0]
    row = int(np.prod(v.shape[1:], dtype=np.int64)) if v.ndim > 1 else 1
    block = max(1, min(n_boot, 4_000_000 // (n * row)))
    stats = []
    for start in range(0, n_boot, block):
        sample = v[rng.integers(0, n, size=(min(block, n_boot - start), n))]
        try:
            out = np.asarray(statistic(sample, axis=1), dtype=np.float64).reshape(len(sample), -1)[:, 0]
        except TypeError:  # a statistic without an axis argument: one call per resample
            out = np.asarray([float(statistic(x)) for x in sample])
        stats.append(out)
    return np.concatenate(stats)


def _of_means(v: np.ndarray, statistic: Callable[..., Any], n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """A statistic of the column means (`OF_MEANS`) over `n_boot` resamples, from the resamples' column means only.

    Rows that take few distinct values (booleans, F1's indicator columns) are resampled as counts of each
    distinct row (multinomial: the same distribution as drawing rows, in O(n_boot) instead of O(n_boot · n));
    otherwise each column is gathered and averaged on its own (contiguous, fast).
    """
    n = v.shape[0]
    distinct, inverse = np.unique(v, axis=0, return_inverse=True)
    if len(distinct) <= 64:
        counts = np.bincount(inverse.reshape(-1), minlength=len(distinct))
        means = rng.multinomial(n, counts / n, size=n_boot) @ distinct / n
    else:
        idx = rng.integers(0, n, size=(n_boot, n))
        means = np.stack([col[idx].mean(axis=1) for col in v.T], axis=1)
    return np.asarray(statistic(means[:, None, :], axis=1), dtype=np.float64).reshape(n_boot, -1)[:, 0]


def exp_mean(x: np.ndarray, axis: int | None = None) -> Any:
    """``exp(mean(x))``: perplexity from per-chunk mean negative log-likelihoods (equal-length chunks)."""
    return np.exp(np.mean(x, axis=axis))


def f1_of_counts(x: np.ndarray, axis: int | None = None) -> Any:
    """F1 from per-sample indicator columns ``(tp, fp, fn)`` summed along `axis`: ``2tp / (2tp + fp + fn)``
    (1.0 when there is nothing to find and nothing found)."""
    s = np.sum(x, axis=axis)
    tp, fp, fn = s[..., 0], s[..., 1], s[..., 2]
    denom = 2 * tp + fp + fn
    return np.where(denom > 0, 2 * tp / np.where(denom > 0, denom, 1), 1.0)


OF_MEANS: tuple[Callable[..., Any], ...] = (np.mean, exp_mean, f1_of_counts)
"""Statistics that depend on a sample only through its column means (so `bootstrap` resamples means, fast)."""


def rounded(bounds: tuple[float, float]) -> tuple[float, float]:
    """Bounds rounded outwards to `DIGITS` decimals (the low one down, the high one up); NaN stays NaN.

    Example:
        >>> rounded((0.12345678, 0.87654321))
        (0.123456, 0.876544)
    """
    scale = 10.0 ** DIGITS
    low, high = bounds
    return (math.floor(low * scale) / scale if math.isfinite(low) else float("nan"),
            math.ceil(high * scale) / scale if math.isfinite(high) else float("nan"))


def interval_names(metric: str) -> tuple[str, str]:
    """The interval columns of a metric.

    Example:
        >>> interval_names("accuracy")
        ('accuracy_low', 'accuracy_high')
    """
    return f"{metric}{SUFFIXES[0]}", f"{metric}{SUFFIXES[1]}"


def interval_of(column: str, columns: Collection[str]) -> str | None:
    """The metric an interval column bounds (``"accuracy_low"`` → ``"accuracy"``) when that metric is among
    `columns`, else None: ``flow_low`` is an interval column only beside a ``flow`` column.

    Example:
        >>> interval_of("accuracy_high", ["accuracy", "accuracy_high"]), interval_of("flow_low", ["flow_low"])
        ('accuracy', None)
    """
    for suffix in SUFFIXES:
        if isinstance(column, str) and column.endswith(suffix) and column[: -len(suffix)] in columns:
            return column[: -len(suffix)]
    return None


def with_interval(metric: str, values: Any, *, value: float | None = None, rate: bool | None = None,
                  statistic: Callable[..., Any] = np.mean) -> dict[str, float]:
    """``{metric, metric_low, metric_high}`` for per-sample `values`.

    One boolean per sample (or ``rate=True``: 0/1 values) is a rate: the Wilson interval of their mean; anything else a
    bootstrap of `statistic` over the rows. `value` is the figure itself when the caller already has it (so it stays exactly
    as the task computes it), else ``statistic(values)``. A bootstrap interval is widened to hold `value` where
    the percentiles miss it (a skewed statistic on a small sample), so ``low <= value <= high`` always holds;
    the Wilson interval always holds the observed rate.

    Example:
        >>> with_interval("cosine", np.full(20, 0.5))
        {'cosine': 0.5, 'cosine_low': 0.5, 'cosine_high': 0.5}
    """
    v = np.asarray(values)
    if rate is None:
        rate = v.dtype == bool and v.ndim == 1
    if value is None:
        value = float(statistic(v.astype(np.float64))) if v.size else float("nan")
    if rate:
        bounds = wilson(float(np.sum(v)), float(v.size))
    else:
        low, high = bootstrap(v, statistic)
        bounds = (min(low, value), max(high, value)) if math.isfinite(value) and math.isfinite(low) else (low, high)
    low, high = rounded(bounds)
    return {metric: value, f"{metric}_low": low, f"{metric}_high": high}


__all__ = ["DIGITS", "OF_MEANS", "SUFFIXES", "bootstrap", "exp_mean", "f1_of_counts", "interval_names", "interval_of",
           "rounded", "wilson", "with_interval"]
