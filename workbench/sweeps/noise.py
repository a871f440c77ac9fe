"""Is a variant's difference to the original real, or within the noise of the evaluation sample?

A metric measured on a sample carries its 95 % interval (``<metric>_low`` / ``<metric>_high``, from
`workbench.measurement.intervals`) and the results frame its original's value (``baseline_<metric>``, from
`workbench.sweeps.frame.with_baseline`). A variant is *within noise of the original* when the original's value lies
inside the variant's interval: the sample cannot tell the two apart, so "pruning improved accuracy by 3 of 450
digits" reads as what it is. Outside the interval the difference is said in plain words: points for a rate
("1.2 points below the original"), per cent for the rest ("3 % higher perplexity than the original"), the right
way round for a metric where lower is better (`workbench.sweeps.frame.LOWER_IS_BETTER`).

Example:
    >>> d = pd.DataFrame({"variant": ["baseline", "q8", "q4"], "accuracy": [0.92, 0.925, 0.88],
    ...                   "accuracy_low": [0.90, 0.905, 0.86], "accuracy_high": [0.94, 0.943, 0.90],
    ...                   "baseline_accuracy": 0.92})
    >>> noise_column(d, "accuracy").tolist()
    ['the original', 'within noise of the original', '4.0 points below the original']
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd

from workbench.sweeps.frame import LOWER_IS_BETTER, interval_columns

WITHIN = "within noise of the original"
ORIGINAL = "the original"


def _numbers(df: pd.DataFrame, column: str | None) -> np.ndarray:
    if column is None or column not in df:
        return np.full(len(df), np.nan)
    return pd.to_numeric(df[column], errors="coerce").to_numpy(float)


def within_noise_column(df: pd.DataFrame, metric: str) -> pd.Series:
    """Per row: True when the original's value (``baseline_<metric>``) lies in the row's interval of `metric`,
    False when it lies outside, missing (``pd.NA``) when the row has no interval or no baseline.

    Example:
        >>> d = pd.DataFrame({"accuracy": [0.9, 0.8], "accuracy_low": [0.85, 0.75], "accuracy_high": [0.94, 0.85],
        ...                   "baseline_accuracy": [0.91, 0.91]})
        >>> within_noise_column(d, "accuracy").tolist()
        [True, False]
    """
    pair = interval_columns(df, metric)
    base = _numbers(df, f"baseline_{metric}")
    low, high = (_numbers(df, c) for c in pair) if pair else (np.full(len(df), np.nan),) * 2
    known = np.isfinite(base) & np.isfinite(low) & np.isfinite(high)
    inside = (low <= base) & (base <= high)
    return pd.Series(pd.array(np.where(known, inside, False), dtype="boolean"), index=df.index).mask(~known)


def noise_column(df: pd.DataFrame, metric: str) -> pd.Series:
    """Per row, the difference of `metric` to the original in words (for tables, cards and reports).

    ``"the original"`` for the original itself, ``"within noise of the original"`` when `within_noise_column` is
    True; otherwise the difference: ``"1.2 points below the original"`` for a rate (a metric whose values lie in
    [0, 1] and higher is better), ``"3 % higher perplexity than the original"`` for the rest. Without an interval
    the difference is still said (nothing claims it is real or noise); without a baseline the text is empty.

    Example:
        >>> d = pd.DataFrame({"perplexity": [10.0, 10.3, 14.0], "perplexity_low": [9.8, 10.25, 13.5],
        ...                   "perplexity_high": [10.2, 10.4, 14.4], "baseline_perplexity": 10.0,
        ...                   "variant": ["baseline", "q8", "q4"]})
        >>> noise_column(d, "perplexity").tolist()
        ['the original', '3 % higher perplexity than the original', '40 % higher perplexity than the original']
    """
    value, base = _numbers(df, metric), _numbers(df, f"baseline_{metric}")
    within = within_noise_column(df, metric).fillna(False).to_numpy(bool)
    lower_better = metric in LOWER_IS_BETTER
    diff = value - base
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(base != 0, diff / np.abs(base), np.nan)
    rate = (not lower_better and bool(np.all((value[np.isfinite(value)] >= 0) & (value[np.isfinite(value)] <= 1)))
            and bool(np.all((base[np.isfinite(base)] >= 0) & (base[np.isfinite(base)] <= 1))))
    words = metric.replace("_", " ")
    out = []
    original = df["variant"].astype(str).eq("baseline").to_numpy() if "variant" in df else np.zeros(len(df), bool)
    for v, b, d, r, w, o in zip(value, base, diff, rel, within, original):
        if not (np.isfinite(v) and np.isfinite(b)):
            out.append("")
        elif o and d == 0:
            out.append(ORIGINAL)
        elif w:
            out.append(WITHIN)
        elif d == 0:
            out.append("the same as the original")
        elif rate:
            out.append(f"{abs(d) * 100:.1f} points {'below' if d < 0 else 'above'} the original")
        elif np.isfinite(r):
            out.append(f"{_percent(abs(r) * 100)} % {'lower' if d < 0 else 'higher'} {words} than the original")
        else:
            out.append(f"{words} {v:.4g} against {b:.4g} for the original")
    return pd.Series(out, index=df.index, dtype=object)


def _percent(p: float) -> str:
    """Per cent with one decimal below 10 and none above, trailing zeros dropped: 3, 2.5, 40."""
    text = f"{p:.1f}" if p < 10 else f"{p:.0f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _frame_of(row: pd.Series | Mapping[str, Any]) -> pd.DataFrame:
    return pd.DataFrame([dict(row.items())])


def within_noise(row: pd.Series | Mapping[str, Any], metric: str) -> bool | None:
    """True when the original's value of `metric` (the row's ``baseline_<metric>``) lies inside the row's 95 %
    interval ``[<metric>_low, <metric>_high]``, False when outside, None when the row has no interval or baseline.

    Example:
        >>> row = pd.Series({"accuracy": 0.995, "accuracy_low": 0.985, "accuracy_high": 0.999,
        ...                  "baseline_accuracy": 0.989})
        >>> within_noise(row, "accuracy"), within_noise(row.drop("accuracy_low"), "accuracy")
        (True, None)
    """
    v = within_noise_column(_frame_of(row), metric).iloc[0]
    return None if v is pd.NA else bool(v)


def noise_text(row: pd.Series | Mapping[str, Any], metric: str) -> str:
    """The row's difference of `metric` to the original in words (see `noise_column`).

    Example:
        >>> noise_text({"accuracy": 0.908, "accuracy_low": 0.89, "accuracy_high": 0.925,
        ...             "baseline_accuracy": 0.92}, "accuracy")
        'within noise of the original'
        >>> noise_text({"accuracy": 0.88, "accuracy_low": 0.865, "accuracy_high": 0.891,
        ...             "baseline_accuracy": 0.892}, "accuracy")
        '1.2 points below the original'
    """
    return str(noise_column(_frame_of(row), metric).iloc[0])


__all__ = ["ORIGINAL", "WITHIN", "noise_column", "noise_text", "within_noise", "within_noise_column"]
