"""`workbench sweep` / `workbench report`: the same engine and store, headless, and an offline HTML report."""

from __future__ import annotations

import re

import pandas as pd
import pytest

import workbench
from workbench.cli import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    spec = workbench.grid(prune=[0, 0.5], structure=["channel"], bits=[32, 8], devices=["raspberry-pi-4"],
                          limit=150).save(d / "spec.yaml", task="digits-cnn")
    return d, spec


def test_sweep_from_a_spec_prints_the_front_and_writes_report_and_csv(swept, capsys):
    d, spec = swept
    rc = main(["sweep", str(spec), "--store", str(d / "r.sqlite"), "--no-memory", "--report", str(d / "r.html"),
               "--csv", str(d / "r.csv"), "--rate-hz", "5", "--battery-mah", "2000"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "Pareto front of digits-cnn" in out and "channel-0.50+q8" in out
    # The decision card after the front: measured here, then estimated for the device, with the assumptions.
    card = out[out.index("Recommendation:"):]
    assert "  Recommended on this machine (measured): " in card
    assert "  Recommended on Raspberry Pi 4 (estimated): " in card
    assert re.search(r"on a 2,000 mAh battery at 5 inferences/s, [\d.]+ W on average \(estimated\)", card), card
    assert "  Assumptions: device profile raspberry-pi-4 (data/devices/raspberry-pi-4.yaml)" in card
    assert "4 variants x 1 runtime(s) x 1 device(s)" in err
    assert re.search(r"4/4", err)  # the progress bar reached the end
    csv = pd.read_csv(d / "r.csv")
    assert set(csv["variant"]) == {"baseline", "q8", "channel-0.50", "channel-0.50+q8"}
    page = (d / "r.html").read_text()
    assert "Pareto-optimal variants of digits-cnn" in page and "channel-0.50+q8" in page
    assert page.index('class="wb-decision') < page.index("Pareto-optimal variants") and "mAh battery" in page
    assert "estimates" in page.lower() and "raspberry-pi-4" in page
    # Self-contained: plotly.js is inlined, nothing is fetched from a network.
    assert "Plotly.newPlot" in page and not re.search(r"<script[^>]+src=[\"']https?://", page)


def test_flags_override_the_spec_and_report_reads_the_store(swept, capsys):
    d, spec = swept
    assert main(["sweep", str(spec), "--bits", "32", "--store", str(d / "r.sqlite"), "--no-memory",
                 "--no-progress"]) == 0
    assert "2 variants" in capsys.readouterr().err
    assert main(["report", str(d / "r.sqlite"), "-o", str(d / "again.html"), "--rate-hz", "2",
                 "--battery-mah", "1000"]) == 0
    assert "wrote" in capsys.readouterr().out and (d / "again.html").stat().st_size > 100_000
    assert "on a 1,000 mAh battery at 2 inferences/s" in (d / "again.html").read_text()


def test_cli_errors_are_one_clear_line(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing.sqlite")]) == 2
    assert "no such results store" in capsys.readouterr().err
    assert main(["sweep", "--prune", "0,1.5", "--store", str(tmp_path / "x.sqlite")]) == 2
    assert "prune" in capsys.readouterr().err
    assert main(["sweep", str(tmp_path / "nope.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["sweep", "--rate-hz", "0", "--store", str(tmp_path / "x.sqlite")])
    assert "--rate-hz: expected a positive number" in capsys.readouterr().err


@pytest.mark.slow
def test_demo_headless_sweeps_the_default_grid_and_writes_the_report(tmp_path, capsys):
    assert main(["demo", "--no-serve", "--out", str(tmp_path), "--limit", "100"]) == 0
    out = capsys.readouterr().out
    assert "Pareto front of kws" in out
    assert "Recommended on this machine (measured)" in out and "at 5 inferences/s" in out
    with workbench.ResultStore(tmp_path / "kws.sqlite") as st:
        df = st.to_frame()
    assert df["variant"].nunique() == 35 and set(df["device"]) == {"raspberry-pi-4", "jetson-orin-nano", "esp32-s3"}
    assert (tmp_path / "kws-report.html").stat().st_size > 100_000
    # A second run reads everything back from the store.
    assert main(["demo", "--no-serve", "--out", str(tmp_path), "--limit", "100"]) == 0
    assert "35/35" in capsys.readouterr().err
