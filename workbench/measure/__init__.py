"""Measurement on real runtimes (latency now; accuracy, size, memory and MACs grow here)."""

from workbench.measure.latency import LatencyStats, time_runner

__all__ = ["LatencyStats", "time_runner"]
