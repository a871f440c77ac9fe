"""Measurement on real runtimes: accuracy, size, latency, memory and compute, plus device estimates."""

from workbench.core.intervals import bootstrap, wilson
from workbench.core.layers import count_macs, profile_layers
from workbench.measurement.latency import LatencyStats, time_runner
from workbench.measurement.record import Measurement, measure, to_frame

__all__ = ["LatencyStats", "Measurement", "bootstrap", "count_macs", "measure", "profile_layers", "time_runner", "to_frame",
           "wilson"]
