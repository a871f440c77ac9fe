"""The HTML report opens with the decision card (measured here, then one per device, each saying so) and shows
each quality metric with its 95 % interval and its difference to the original."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

import workbench
from workbench.report import write_report

STORE = Path(__file__).parent / "sweeps" / "data" / "store_written_by_0.1.0.sqlite"


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> str:
    d = tmp_path_factory.mktemp("report")
    with workbench.ResultStore(shutil.copy(STORE, d / "r.sqlite")) as st:
        df = st.to_frame()
    n = 64  # the committed sweep evaluated 64 digits; give it the Wilson intervals a sweep now records
    from workbench.measurement.intervals import wilson

    df["accuracy_low"], df["accuracy_high"] = zip(*[wilson(round(a * n), n) for a in df["accuracy"]])
    return write_report(df, d / "r.html", rate_hz=5, battery_mah=2000).read_text()


def test_the_decision_cards_come_first(page):
    body = page[page.index("<body>"):]
    cards = re.findall(r'<div class="wb-decision wb-decision-(\w+)"', body)
    assert cards == ["measured", "estimated"]
    assert body.index("wb-decision") < body.index("Pareto-optimal variants") < body.index("Plotly.newPlot")
    assert "Recommended on this machine (measured): Not pruned, 8-bit (ONNX Runtime)" in body
    assert "Recommended on Raspberry Pi 4 (estimated)" in body
    assert "on a 2,000 mAh battery at 5 inferences/s" in body
    assert "device profile raspberry-pi-4 (data/devices/raspberry-pi-4.yaml)" in body


def test_the_pareto_table_shows_intervals_in_words(page):
    table = page[page.index("Pareto-optimal variants"):]
    table = table[:table.index("</table>")]
    head = re.findall(r"<th>(.*?)</th>", table)
    assert head[:3] == ["variant", "what it is", "runtime"] and "accuracy (95 % interval)" in head
    assert "accuracy_low" not in head and "vs original" in head
    assert "Half the channels, 8-bit" in table
    assert re.search(r"<td>15\.6 % \(\d+\.\d–\d+\.\d\)</td>", table), table
    assert "points below the original" in table


def test_a_frame_without_intervals_still_reports(tmp_path):
    with workbench.ResultStore(shutil.copy(STORE, tmp_path / "r.sqlite")) as st:
        df: pd.DataFrame = st.to_frame()
    text = write_report(df[df["variant"] != "q8"], tmp_path / "r.html").read_text()
    assert "accuracy (95 % interval)" not in text and "wb-decision-measured" in text


# ------------------------------------------------------------------------------------------------- search


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """A small search (5 trials, in memory) and its report."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        space = workbench.Space(prune=[0, 0.5], structure="channel", bits=[32, 8, 4], limit=100)
        df = workbench.search("digits-cnn", space, objectives={"accuracy": "max", "size_bytes": "min"},
                              constraints={"min_accuracy": 0.5}, n_trials=5, store=None, progress=False,
                              memory=False)
    finally:
        torch.set_num_threads(before)
    out = tmp_path_factory.mktemp("search-report") / "r.html"
    return df, write_report(df, out).read_text()


def test_a_search_report_has_a_search_section_with_the_hypervolume_chart(searched):
    df, page = searched
    body = page[page.index("<body>"):]
    section = body[body.index("<h2>Search</h2>"):]
    section = section[:section.index("<h2>", 5)]
    assert f"{df.attrs['trials']} trials found {df['variant'].nunique()} different variants" in section
    measured = df.attrs["evaluated"]
    assert f"{measured} of them were measured by this search; the other {5 - measured} trials" in section
    assert "Objectives: higher accuracy, lower file size." in section
    assert "Constraints: accuracy at least 50.0 %." in section
    assert "the share of the objective space the variants found so far dominate" in section
    assert "Hypervolume over trials" in section and "Plotly.newPlot" in section  # the chart is in the section
    # the chart is the search's own history, one point per trial
    import json

    from workbench.viz.search import search_history

    spec = json.loads(re.search(r'Plotly\.newPlot\(\s*"[^"]+",\s*(\[.*?\]),\s*\{', section, re.S).group(1))
    hv = search_history(df)
    assert len(spec[0]["x"]) == df.attrs["trials"] and spec[0]["y"][-1] == pytest.approx(hv["hypervolume"].iloc[-1])
    # the page's first chart: plotly.js is inlined there, once
    assert "Plotly.newPlot" not in body[:body.index("<h2>Search</h2>")] and page.count("window.PlotlyConfig") == 1
    assert section.count("window.PlotlyConfig") == 1


def test_a_sweep_report_has_no_search_section(page):
    assert "<h2>Search</h2>" not in page and "Hypervolume" not in page


def test_the_search_section_needs_the_search_attrs(searched, tmp_path):
    df, _ = searched
    plain = df.copy()
    plain.attrs = {}  # e.g. a search frame saved to CSV and read back: no objectives, so no section
    assert "<h2>Search</h2>" not in write_report(plain, tmp_path / "r.html").read_text()


def test_constraints_in_words():
    from workbench.report import constraint_words, objective_words

    assert constraint_words({}, "accuracy") == "none"
    assert constraint_words({"max_metric": 30.0, "max_latency_ms": 5, "max_size_bytes": 200_000,
                             "runtime": "onnxruntime", "realized_only": True}, "perplexity") == (
        "perplexity at most 30; median latency at most 5 ms; file size at most 200 KB; runs on ONNX Runtime; "
        "compression executed by the runtime, not simulated")
    assert constraint_words({"device": "esp32-s3", "must_fit": False, "max_latency_ms": 50}, "accuracy") == (
        "estimated latency at most 50 ms; judged on ESP32-S3, with its estimates")
    assert objective_words({"perplexity": "min", "latency_ms_est": "min"}) == "lower perplexity, lower estimated latency"
