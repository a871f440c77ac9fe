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
