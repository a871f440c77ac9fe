"""Plain words: variant names from config columns, sizes, percentages, durations, metrics with intervals."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import workbench
from workbench.viz import words
from workbench.viz.style import RUNTIME_NAMES

STORE = Path(__file__).parents[1] / "sweeps" / "data" / "store_written_by_0.1.0.sqlite"


@pytest.fixture(scope="module")
def stored(tmp_path_factory) -> pd.DataFrame:
    """The committed digits sweep (the doctests' `df`)."""
    with workbench.ResultStore(shutil.copy(STORE, tmp_path_factory.mktemp("words") / "r.sqlite")) as st:
        return st.to_frame()


@pytest.mark.parametrize("config, text", [
    ({"prune": 0.0, "structure": None, "bits": 32, "recover": None}, "Original (32-bit float)"),
    ({"prune": 0.5, "structure": "channel", "bits": 8, "recover": 100}, "Half the channels, retrained, 8-bit"),
    ({"prune": 0.25, "structure": "unstructured", "bits": 8, "recover": None},
     "A quarter of the weights zeroed, 8-bit"),
    ({"prune": 0.5, "structure": "2:4", "bits": 16, "recover": None}, "2:4 sparse, 16-bit float"),
    ({"prune": 0.75, "structure": "channel", "bits": 4, "recover": 200},
     "A quarter of the channels, retrained, 4-bit"),
    ({"prune": 0.25, "structure": "channel", "bits": 32, "recover": None}, "Three quarters of the channels, 32-bit float"),
    ({"prune": 0.0, "structure": None, "bits": 8.0, "recover": np.nan}, "Not pruned, 8-bit"),
    ({"prune": 0.5, "structure": "layer", "bits": 4, "recover": None, "group_size": 32, "method": "hqq"},
     "Half the layers, 4-bit (groups of 32, HQQ)"),
    ({"prune": 0.6, "structure": "unstructured", "bits": 2, "recover": None}, "60 % of the weights zeroed, 2-bit"),
])
def test_variant_words_reads_the_config_columns(config, text):
    assert words.variant_words(config) == text
    assert words.variant_words(pd.Series(config, dtype=object)) == text


def test_variant_words_on_a_real_sweep_and_without_config_columns(stored):
    by = {r["variant"]: words.variant_words(r) for _, r in stored.iterrows()}
    assert by["baseline"] == "Original (32-bit float)"
    assert by["channel-0.50+q8"] == "Half the channels, 8-bit"
    assert by["unstructured-0.50"] == "Half the weights zeroed, 32-bit float"
    assert words.variant_words({"variant": "my-model.onnx"}) == "my-model.onnx"


@pytest.mark.parametrize("n, text", [(512, "512 B"), (999, "999 B"), (1000, "1.0 KB"), (93_784, "94 KB"),
                                     (412_300, "412 KB"), (999_999, "1.0 MB"), (1_290_000, "1.3 MB"),
                                     (14_600_000, "15 MB"), (2.1e9, "2.1 GB"), (None, "–"), (np.nan, "–")])
def test_size_words_is_decimal(n, text):
    assert words.size_words(n) == text


@pytest.mark.parametrize("h, text", [(0.5, "30 min"), (2.5, "2.5 h"), (31.2, "31 h"), (47, "47 h"),
                                     (60, "2.5 days"), (24 * 12.3, "12 days"), (24 * 365 * 3.2, "3.2 years"),
                                     (math.nan, "–"), (math.inf, "indefinitely")])
def test_hours_words_picks_the_unit(h, text):
    assert words.hours_words(h) == text


def test_percent_factor_energy_power_latency():
    assert words.percent_words(0.9123) == "91.2 %" and words.percent_words(None) == "–"
    assert words.factor_words(4.63) == "4.6×" and words.factor_words(12.4) == "12×"
    assert words.energy_words(1.234) == "1.2 mJ" and words.energy_words(0.0035) == "3.5 µJ"
    assert words.energy_words(2500) == "2.5 J"
    assert words.power_words(2.306) == "2.31 W" and words.power_words(0.18) == "180 mW"
    assert words.latency_words(0.12987) == "0.13 ms" and words.latency_words(1234) == "1.2 s"


def test_metric_words_shows_the_interval_when_the_row_has_one():
    row = pd.Series({"accuracy": 0.912, "accuracy_low": 0.9, "accuracy_high": 0.9234})
    assert words.metric_words(row, "accuracy") == "91.2 % (90.0–92.3)"
    ppl = {"perplexity": 32.41, "perplexity_low": 31.8, "perplexity_high": 33.1}
    assert words.metric_words(ppl, "perplexity") == "32.4 (31.8–33.1)"
    assert words.metric_words({"perplexity": 32.41}, "perplexity") == "32.4"
    assert words.metric_words({"accuracy": 0.912, "accuracy_low": np.nan, "accuracy_high": 0.93}, "accuracy") \
        == "91.2 %"
    assert words.metric_words({"f1": 0.5}, "f1") == "50.0 %" and words.metric_words({"cosine": 0.98713}, "cosine") \
        == "0.987"


def test_noise_words_uses_the_interval():
    inside = pd.Series({"accuracy": 0.915, "accuracy_low": 0.90, "accuracy_high": 0.93, "baseline_accuracy": 0.92})
    verdict, text = words.noise_words(inside, "accuracy")
    assert verdict is True and "within noise" in text
    outside = inside.copy()
    outside[["accuracy", "accuracy_low", "accuracy_high"]] = [0.85, 0.83, 0.87]
    verdict, text = words.noise_words(outside, "accuracy")
    assert verdict is False and "7.0 points below" in text
    assert words.noise_words({"accuracy": 0.9, "baseline_accuracy": 0.92}, "accuracy") == (
        None, "2.0 points below the original")  # no interval: the difference, and no claim about noise
    assert words.noise_words({"perplexity": 33.0, "baseline_perplexity": 32.0}, "perplexity")[1] \
        == "3.1 % higher perplexity than the original"


def test_device_and_runtime_names():
    assert words.device_words("raspberry-pi-4") == "Raspberry Pi 4"
    assert words.device_words(workbench.device("stm32h7")) == "STM32H7"
    assert words.device_words("host") == "this machine"
    assert words.device_words("no-such-board") == "no-such-board"
    for name, prof in workbench.devices().items():  # every bundled profile has a short name
        assert words.device_words(prof) == words.DEVICE_NAMES[name]
        assert len(words.device_words(name)) < len(prof.display_name) or name == "host"
    assert {k: words.runtime_words(k) for k in RUNTIME_NAMES} == RUNTIME_NAMES  # one table, two modules
