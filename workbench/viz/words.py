"""Plain words for figures, cards and tables: the functions of `workbench.sweeps.words`, under the name the
figures and dashboards import.

They live with the results frame they read, so that `workbench.sweeps.decision` (below `workbench.viz` in the
import order) writes its card with the same words.

Example:
    >>> variant_words({"prune": 0.5, "structure": "channel", "bits": 8, "recover": 200})
    'Half the channels, retrained, 8-bit'
    >>> size_words(412_300), hours_words(31.2), metric_words({"accuracy": 0.912}, "accuracy")
    ('412 KB', '31 h', '91.2 %')
"""

from __future__ import annotations

from workbench.sweeps.words import (
    DEVICE_NAMES,
    bits_words,
    device_words,
    energy_words,
    factor_words,
    fraction_words,
    hours_words,
    is_rate,
    latency_words,
    metric_name,
    metric_words,
    noise_words,
    percent_words,
    power_words,
    runtime_words,
    size_words,
    value_words,
    variant_words,
)

__all__ = ["DEVICE_NAMES", "bits_words", "device_words", "energy_words", "factor_words",
           "fraction_words", "hours_words", "is_rate", "latency_words", "metric_name", "metric_words",
           "noise_words", "percent_words", "power_words", "runtime_words", "size_words", "value_words", "variant_words"]
