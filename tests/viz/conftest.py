"""Frames for the figure tests: a hand-made one with a known Pareto front, a sensitivity table, and a small
measured one (the digits CNN and a channel-pruned variant, with estimates for three devices)."""

from __future__ import annotations

import pandas as pd
import pytest


def hand_frame() -> pd.DataFrame:
    """Eight variants on one runtime and device, with a known Pareto front of latency vs accuracy."""
    rows = [
        # variant,        prune, structure,      bits, lat,  acc,   size,   deflated, realized
        ("baseline",        0.0,  None,            32, 1.00, 0.99, 600_000, 550_000, True),
        ("q8",              0.0,  None,             8, 0.80, 0.985, 160_000, 140_000, True),
        ("q4",              0.0,  None,             4, 1.00, 0.97,  90_000,  80_000, False),
        ("fp16",            0.0,  None,            16, 1.20, 0.99, 300_000, 280_000, True),
        ("ch50",            0.5,  "channel",       32, 0.40, 0.95, 300_000, 280_000, True),
        ("ch50+q8",         0.5,  "channel",        8, 0.30, 0.93,  80_000,  70_000, True),
        ("un50",            0.5,  "unstructured",  32, 1.00, 0.98, 600_000, 300_000, True),
        ("24+q2",           0.5,  "2:4",            2, 0.90, 0.60,  40_000,  30_000, False),
    ]
    df = pd.DataFrame(rows, columns=["variant", "prune", "structure", "bits", "latency_ms_p50", "accuracy",
                                     "size_bytes", "size_deflated_bytes", "realized"])
    df.insert(0, "key", [f"k{i}" for i in range(len(df))])
    df["runtime"] = "onnxruntime"
    df["device"] = "raspberry-pi-4"
    df["latency_ms_est"] = df["latency_ms_p50"] * 4
    df["energy_mj_est"] = df["latency_ms_p50"] * 2
    df["fits"] = True
    df["deployable"] = True
    df["weight_bytes"] = (136_000 * df["bits"] / 8).astype(int)
    df["error"] = None
    return df


def sens_frame() -> pd.DataFrame:
    """The shape `workbench.sensitivity` returns, for two layers at 4 and 2 bits."""
    return pd.DataFrame({"layer": ["a", "a", "b", "b"], "level": [4, 2, 4, 2], "drop": [0.01, 0.2, 0.0, 0.05],
                         "kind": "quantize", "metric": "accuracy", "baseline": 0.99})


@pytest.fixture
def hand() -> pd.DataFrame:
    """A fresh `hand_frame()` (tests may change it)."""
    return hand_frame()


@pytest.fixture
def sens() -> pd.DataFrame:
    return sens_frame()


@pytest.fixture(scope="package")
def real(digits):
    """A small realistic frame: the digits CNN and its 50 % channel-pruned variant, measured on ORT, with
    estimates for a Raspberry Pi 4, this machine and a Coral Edge TPU (which cannot run fp32)."""
    import torch

    import workbench
    from workbench import Prune
    from workbench.sweeps import results_frame

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        pruned = workbench.compress(digits.model, Prune(0.5, structure="channel", scope="layer"))
        return results_frame(digits, [digits.model, pruned], devices=["raspberry-pi-4", "host", "coral-edge-tpu"],
                             limit=200)
    finally:
        torch.set_num_threads(before)


def trace_named(fig, name):
    return next(t for t in fig.data if t.name == name)


def data_points(fig, skip=("Pareto front", "highlighted")) -> int:
    """Points in the data traces (not the front, the ring, or the legend-only traces)."""
    return sum(len(t.x) for t in fig.data if t.name not in skip and t.meta != "legend")


@pytest.fixture
def points():
    """`points(fig)`: the number of plotted variant points of a scatter figure."""
    return data_points


@pytest.fixture
def trace():
    """`trace(fig, name)`: the trace called `name`."""
    return trace_named
