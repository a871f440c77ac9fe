"""95 % intervals for figures measured on a sample: Wilson for rates, a percentile bootstrap otherwise.

The functions live on the ground floor (`workbench.core.intervals`), since every task's `score` uses them and
`workbench.task` sits below `workbench.measurement`; this is where the measuring side of the workbench, and a
user, finds them. See `workbench.core.intervals` for what each interval assumes.

Example:
    >>> [round(v, 4) for v in wilson(45, 50)]
    [0.7864, 0.9565]
"""

from workbench.core.intervals import (
    DIGITS,
    OF_MEANS,
    SUFFIXES,
    bootstrap,
    exp_mean,
    f1_of_counts,
    interval_names,
    interval_of,
    rounded,
    wilson,
    with_interval,
)

__all__ = ["DIGITS", "OF_MEANS", "SUFFIXES", "bootstrap", "exp_mean", "f1_of_counts", "interval_names", "interval_of",
           "rounded", "wilson", "with_interval"]
