"""The decision card: realised variants only, ranked by the device's estimates when a device is chosen, every figure
marked measured or estimated, the quality with its interval and a noise verdict, battery life at a duty cycle."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

import workbench
from workbench.hardware.duty import duty_cycle
from workbench.sweeps.decision import Decision, decide, decide_or_none, decisions, default_bar

STORE = Path(__file__).parent / "data" / "store_written_by_0.1.0.sqlite"


@pytest.fixture(scope="module")
def stored(tmp_path_factory) -> pd.DataFrame:
    """The committed digits sweep (the doctests' `df`): six variants on ONNX Runtime, estimated for a Pi 4; the
    two unstructured ones are simulated."""
    with workbench.ResultStore(shutil.copy(STORE, tmp_path_factory.mktemp("decision") / "r.sqlite")) as st:
        return st.to_frame()


@pytest.fixture
def df(stored) -> pd.DataFrame:
    return stored.copy()


def _set(df: pd.DataFrame, variant: str, **values) -> None:
    for col, v in values.items():
        df.loc[df["variant"] == variant, col] = v


def test_without_a_device_the_card_is_measured_here(df):
    card = decide(df)
    assert card.ok and card.source == "measured" and card.device is None
    assert card.row["variant"] == "q8" and card.baseline["variant"] == "baseline"
    assert card.headline == "Recommended on this machine (measured): Not pruned, 8-bit (ONNX Runtime)"
    assert card.text.startswith("Not pruned, 8-bit: 2.9× smaller (204 KB), 1.1× faster on this machine: ")
    assert "(measured)" in card.text and "(estimated)" not in card.text and "mJ" not in card.text
    assert "latency measured on this machine with ONNX Runtime" in card.assumptions
    assert card.bar == "accuracy at least 98.0 % (2 points below the original's 100.0 %)"


def test_with_a_device_it_ranks_by_the_estimate_and_says_so(df):
    # Make the original the fastest *estimate* while q8 stays the fastest measured here.
    _set(df, "baseline", latency_ms_est=0.1)
    assert workbench.best(df, min_accuracy=0.98)["variant"] == "q8"
    assert workbench.best(df, device="raspberry-pi-4", min_accuracy=0.98)["variant"] == "baseline"
    card = decide(df, device="raspberry-pi-4")
    assert card.source == "estimated" and card.row["variant"] == "baseline"
    assert card.headline.startswith("Recommended on Raspberry Pi 4 (estimated): Original (32-bit float)")
    assert card.text.startswith("Original (32-bit float): keep the original; no compressed variant that meets the bar is "
                                "faster on Raspberry Pi 4 (estimated); 588 KB, 0.1 ms per inference (estimated); ")
    assert "1.3 mJ per inference (estimated)" in card.text and "(measured)" not in card.text
    assert "device profile raspberry-pi-4 (data/devices/raspberry-pi-4.yaml)" in card.assumptions
    assert "roofline" in card.assumptions


def test_simulated_variants_are_never_recommended_unless_asked(df):
    # The simulated unstructured variant becomes perfect and the fastest everywhere.
    _set(df, "unstructured-0.50", accuracy=1.0, latency_ms_p50=0.01, latency_ms_est=0.01)
    assert workbench.best(df, min_accuracy=0.98)["variant"] == "q8"
    assert workbench.best(df, device="raspberry-pi-4", min_accuracy=0.98)["variant"] == "q8"
    assert workbench.best(df, min_accuracy=0.98, realized_only=False)["variant"] == "unstructured-0.50"
    assert decide(df, device="raspberry-pi-4").row["variant"] == "q8"
    loose = decide(df, device="raspberry-pi-4", realized_only=False)
    assert loose.row["variant"] == "unstructured-0.50" and "simulated variants included" in loose.assumptions
    # When only simulated variants would pass, the message says so and how to include them.
    with pytest.raises(workbench.WorkbenchError, match=r"no realised variant meets max_latency_ms; only "
                                                       r"simulated variants do.*realized_only=False"):
        workbench.best(df, min_accuracy=0.3, max_latency_ms=0.05)
    with pytest.raises(workbench.WorkbenchError, match="every variant.*is simulated.*realized_only=False"):
        workbench.best(df[~df["realized"]])


def test_a_frame_without_a_realized_column_counts_every_row_and_missing_values_do_not(df):
    assert workbench.best(df.drop(columns="realized"), min_accuracy=0.3, objective="accuracy",
                          maximize_objective=True)["variant"] == "baseline"
    unknown = df.assign(realized=df["realized"].astype(object))
    unknown.loc[unknown["variant"] == "q8", "realized"] = None
    assert workbench.best(unknown, min_accuracy=0.98)["variant"] == "baseline"


def test_nothing_passes_gives_a_plain_reason(df):
    _set(df, "unstructured-0.50+q8", accuracy=1.0, latency_ms_p50=0.01)
    only_simulated = df[df["variant"] != "q8"].copy()
    _set(only_simulated, "baseline", accuracy=0.5)
    with pytest.raises(workbench.WorkbenchError) as err:
        decide(only_simulated, min_accuracy=0.9)
    first = str(err.value).splitlines()[0]
    assert first == ("no variant that runs for real meets accuracy at least 90.0 % on this machine (measured); only "
                     "simulated variants do (their compression has no kernel on the runtime); include them with "
                     "realized_only=False")
    card = decide_or_none(only_simulated, min_accuracy=0.9)
    assert not card.ok and card.row is None and card.headline == "No recommendation on this machine (measured)"
    assert card.text.startswith("No variant that runs for real meets accuracy at least 90.0 %")
    assert "max_latency" not in card.text  # best's technical detail stays in `reason`
    assert decide_or_none(only_simulated, min_accuracy=0.9, realized_only=False).row["variant"] == \
        "unstructured-0.50+q8"
    small = df.assign(fits=df["variant"].str.startswith("channel"))  # only the (inaccurate) channel variants fit
    assert decide_or_none(small, device="raspberry-pi-4").text == (
        "No variant both meets accuracy at least 98.0 % (2 points below the original's 100.0 %) and fits the "
        "memory of Raspberry Pi 4 (estimated).")
    assert decide_or_none(small.assign(fits=False), device="raspberry-pi-4", min_accuracy=0.1).text == (
        "No variant fits the memory of Raspberry Pi 4 (estimated).")
    assert decide_or_none(df.iloc[0:0]).text == "The results are empty; run a sweep first."
    none = decide_or_none(df, device="esp32-s3")
    assert not none.ok and none.source == "estimated"
    assert none.text == "The results hold no estimates for ESP32-S3; sweep with devices=['esp32-s3'] to get them."


def test_html_is_one_escaped_div(df):
    card = decide(df, device="raspberry-pi-4")
    page = card.html()
    assert page.startswith('<div class="wb-decision wb-decision-estimated"') and page.endswith("</div>")
    assert "on Raspberry Pi 4" in page and "(estimated)" in page and "Assumptions: device profile" in page
    bad = Decision.none("<script>alert(1)</script> & more")
    assert "<script>" not in bad.html() and "&lt;script&gt;" in bad.html() and "wb-decision-none" in bad.html()
    with pytest.raises(ValueError, match="source"):
        Decision(None, None, None, "guessed", "", "", "")


def test_the_quality_carries_its_interval_and_a_noise_verdict(df):
    df["accuracy_low"], df["accuracy_high"] = df["accuracy"] - 0.02, (df["accuracy"] + 0.01).clip(upper=1)
    _set(df, "q8", accuracy=0.991, accuracy_low=0.978, accuracy_high=1.0)
    card = decide(df, device="raspberry-pi-4")
    assert card.row["variant"] == "q8"
    assert "accuracy 99.1 % (97.8–100.0) vs 100.0 % — within noise of the original" in card.text
    _set(df, "q8", accuracy=0.985, accuracy_low=0.98, accuracy_high=0.99)
    card = decide(df, device="raspberry-pi-4")
    assert "accuracy 98.5 % (98.0–99.0) vs 100.0 % — 1.5 points below the original" in card.text
    assert "within noise" not in card.text


def test_a_speed_up_inside_the_timing_spread_is_not_claimed(df):
    _set(df, "q8", latency_ms_p10=0.05, latency_ms_p90=0.09)  # the original's median 0.0825 lies inside
    assert ("as fast as the original within the timing spread on this machine: 0.072 ms per inference (measured)"
            in decide(df).text)
    _set(df, "q8", latency_ms_p10=0.07, latency_ms_p90=0.075)
    assert "1.1× faster on this machine" in decide(df).text


def test_the_default_bar_is_two_points_below_the_original(df):
    assert default_bar(df, "accuracy")[0] == pytest.approx(0.98)
    _set(df, "q8", accuracy=0.979)  # 2.1 points below: out; the channel variants are far below too
    assert decide(df).row["variant"] == "baseline"
    _set(df, "q8", accuracy=0.981)
    assert decide(df).row["variant"] == "q8"
    assert decide(df, min_accuracy=0.15).row["variant"] == "channel-0.50+q8"  # an explicit bar replaces it
    assert decide(df, min_accuracy=0.15).bar == "accuracy at least 15.0 %"


def test_battery_life_at_a_duty_cycle(df):
    card = decide(df, device="raspberry-pi-4", rate_hz=5, battery_mah=2000)
    row = card.row
    expect = duty_cycle(row["energy_mj_est"], row["latency_ms_est"], "raspberry-pi-4", 5, 2000)
    assert card.duty == expect
    assert re.search(r"; 3\.2 h on a 2,000 mAh battery at 5 inferences/s, 2\.3 W on average \(estimated\)\.$",
                     card.text), card.text
    assert "idle power 2.3 W between inferences; 3.7 V battery" in card.assumptions
    too_fast = decide(df, device="raspberry-pi-4", rate_hz=10_000, battery_mah=2000)
    assert "cannot keep up with 10000 inferences/s" in too_fast.text and not too_fast.duty.feasible
    assert decide(df, rate_hz=5, battery_mah=2000).duty is None  # no device: no power model, nothing claimed
    with pytest.raises(workbench.WorkbenchError, match="rate_hz"):
        decide(df, device="raspberry-pi-4", rate_hz=0)
    with pytest.raises(workbench.WorkbenchError, match="battery_mah"):
        decide(df, device="raspberry-pi-4", rate_hz=1, battery_mah=-5)


def test_one_card_measured_then_one_per_device(df):
    cards = decisions(df, rate_hz=5, battery_mah=2000)
    assert [(c.device, c.source) for c in cards] == [(None, "measured"), ("raspberry-pi-4", "estimated")]
    assert "battery" in cards[1].text and "battery" not in cards[0].text


# ------------------------------------------------------------------------------------------ language model


@pytest.fixture(scope="module")
def lm_results(tiny_lm):
    from tiny_lm import tiny_lm_texts

    task = workbench.Task.from_text(tiny_lm, tiny_lm_texts(60), seq_len=32)
    g = workbench.grid(prune=[0], bits=[32, 4], group_size=[32], runtimes=["torch"], devices=["raspberry-pi-4"],
                       limit=2)
    return workbench.sweep(task, g, store=None, progress=False, memory=False)


def test_a_language_model_card_speaks_of_perplexity_and_decode_speed(lm_results):
    df = lm_results
    assert df["error"].isna().all(), df["error"].tolist()
    bar, text = default_bar(df, "perplexity")
    base = df.loc[df["variant"] == "baseline", "perplexity"].iloc[0]
    assert bar == pytest.approx(base * 1.05) and text.startswith("perplexity at most")
    loose = df["perplexity"].max() * 2
    for card in (decide(df, max_metric=loose), decide(df, device="raspberry-pi-4", max_metric=loose)):
        assert card.metric == "perplexity" and card.ok
        assert "tokens/s" in card.text and "perplexity " in card.text and "% per" not in card.text
        assert re.search(r"(faster|slower) decode|decodes as fast|keep the original", card.text), card.text
    est = decide(df, device="raspberry-pi-4", max_metric=loose, rate_hz=5, battery_mah=2000)
    assert "per token (estimated)" in est.text and "at 5 tokens/s" in est.text
    assert "lm_estimate" in est.assumptions
    with pytest.raises(workbench.WorkbenchError, match="max_metric"):
        decide(df, min_accuracy=0.5)


def test_a_device_that_runs_none_of_the_swept_runtimes_says_so(df):
    """A microcontroller estimated from an ONNX Runtime-only sweep: the card names the runtime gap and what to sweep,
    not a memory misfit."""
    mcu = df[df["device"] == "raspberry-pi-4"].copy()
    mcu["device"], mcu["deployable"], mcu["fits"] = "esp32-s3", False, False
    mcu["reason"] = "esp32-s3 does not run onnxruntime: its runtimes are tflite-micro, esp-dl."
    both = pd.concat([df, mcu], ignore_index=True)
    card = decide_or_none(both, device="esp32-s3")
    assert not card.ok
    assert "ESP32-S3 does not run ONNX Runtime" in card.text and "tflite-micro" in card.text
    assert "runtimes=['litert']" in card.text and "memory" not in card.text
    assert decide(both, device="raspberry-pi-4").ok  # the Pi, which runs it, still gets a recommendation
