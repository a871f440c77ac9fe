"""The precomputed demo results shipped in data/demo/: fresh against this code (grid spec, task, schema), read by
the dashboards without a sweep; stale ones are refused; without them the sweep runs and its progress shows."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from workbench import zoo
from workbench.ui import data
from workbench.ui.data import (
    BUILD_COMMAND,
    demo_grid,
    demo_page,
    demo_results,
    read_shipped,
    shipped_meta,
    shipped_path,
    stale_reasons,
)
from workbench.ui.runtime_data import runtime_grid, runtime_name, runtime_results

REBUILD = f"run `{BUILD_COMMAND}` and commit data/demo/"


def datasets() -> list[tuple[str, object]]:
    """(shipped name, its grid) of every page that opens on shipped results, for the default task."""
    return [(zoo.DEFAULT, demo_grid(fast=False)), (runtime_name(zoo.DEFAULT), runtime_grid(fast=False))]


@pytest.fixture(scope="module")
def measured_columns() -> set[str]:
    """The columns this code writes for a sweep row: a real one-variant sweep of the default task (baseline,
    50 samples, one device), so a column added to (or dropped from) the measurement shows up here."""
    from workbench.sweeps import grid, sweep

    df = sweep(zoo.DEFAULT, grid(prune=[0], bits=[32], devices=["raspberry-pi-4"], limit=50), store=None,
               memory=False, progress=False)
    assert df["error"].isna().all(), df["error"].tolist()
    return set(df.columns)


@pytest.mark.parametrize("name, grid", datasets(), ids=lambda v: v if isinstance(v, str) else "")
def test_the_shipped_results_are_fresh(name, grid):
    reasons = stale_reasons(name, zoo.DEFAULT, grid)
    assert not reasons, (f"the shipped results data/demo/{name}.parquet are stale against this code: "
                         f"{'; '.join(reasons)}. The dashboards would sweep on first open: {REBUILD}.")


@pytest.mark.parametrize("name, grid", datasets(), ids=lambda v: v if isinstance(v, str) else "")
def test_the_shipped_results_have_the_columns_and_model_of_this_code(name, grid, measured_columns):
    meta = shipped_meta(name)
    assert meta is not None, f"data/demo/{name}.json is missing: {REBUILD}."
    shipped = set(meta["columns"])
    missing = sorted(measured_columns - shipped)
    assert not missing, (f"data/demo/{name}.parquet lacks the column(s) {missing} that a sweep writes now (the "
                         f"results schema changed): {REBUILD}.")
    df = pd.read_parquet(shipped_path(name))
    assert set(df.columns) == shipped and len(df) == meta["rows"]
    assert meta["model_fingerprint"] == zoo.load(zoo.DEFAULT).model.fingerprint, (
        f"data/demo/{name}.parquet was measured on another {zoo.DEFAULT} model (retrained since?): {REBUILD}.")
    assert set(df["variant"]) == {v.label for v in grid} and set(df["runtime"]) == set(grid.runtimes)
    assert set(df["device"]) == set(grid.devices) and set(df["task"]) == {zoo.DEFAULT}
    assert df["error"].isna().mean() > 0.5, "most shipped variants failed"


def test_the_dashboards_read_the_shipped_results_without_sweeping(monkeypatch):
    def no_sweep(*_args, **_kwargs):
        raise AssertionError("a dashboard swept although fresh shipped results exist")

    monkeypatch.setattr(data, "run_demo_sweep", no_sweep)
    monkeypatch.delenv("WORKBENCH_RESULTS", raising=False)
    for fast in ("1", "0"):  # fast mode (tests) reads them too: only a sweep would be smaller
        monkeypatch.setenv("WORKBENCH_FAST", fast)
        df = demo_results()
        assert df.attrs["source"] == "shipped" and "measured on" in df.attrs["note"]
        assert len(df) == shipped_meta(zoo.DEFAULT)["rows"] and set(df["device"]) == set(demo_grid(False).devices)
    rt = runtime_results()
    assert rt.attrs["source"] == "shipped" and set(rt["runtime"]) == set(runtime_grid(fast=False).runtimes)
    from workbench.ui import TradeoffExplorer

    page = demo_page(TradeoffExplorer)  # at once: the panel itself, no progress page
    assert isinstance(page, TradeoffExplorer) and page.last_error is None



@pytest.fixture
def shipped_copy(tmp_path, monkeypatch):
    """The shipped files copied to a temporary folder the code reads instead (WORKBENCH_SHIPPED_DIR)."""
    for path in (shipped_path(zoo.DEFAULT), shipped_path(zoo.DEFAULT).with_suffix(".json")):
        shutil.copy(path, tmp_path / path.name)
    monkeypatch.setenv("WORKBENCH_SHIPPED_DIR", str(tmp_path))
    monkeypatch.delenv("WORKBENCH_RESULTS", raising=False)
    return tmp_path


def test_stale_shipped_results_are_refused_and_say_why(shipped_copy, monkeypatch):
    task, grid = zoo.DEFAULT, demo_grid(fast=False)
    assert stale_reasons(task, task, grid) == [] and read_shipped(task, task, grid) is not None
    # another grid spec (the dashboards' sweep changed)
    assert any(r.startswith("grid differs") for r in stale_reasons(task, task, demo_grid(fast=True)))
    # another results schema: a measurement column added (as a new latency percentile would be)
    from workbench.measurement import record

    monkeypatch.setattr(record, "COLUMNS", [*record.COLUMNS, "latency_ms_p05"])
    assert any(r.startswith("record_columns differs") for r in stale_reasons(task, task, grid))
    assert demo_results(cached_only=True) is None  # refused: a dashboard would sweep instead
    monkeypatch.undo()
    monkeypatch.setenv("WORKBENCH_SHIPPED_DIR", str(shipped_copy))
    # another task name, and a results file edited after its description was written
    assert any(r.startswith("task differs") for r in stale_reasons(task, "another-task", grid))
    parquet = shipped_copy / f"{task}.parquet"
    parquet.write_bytes(parquet.read_bytes() + b"\0")
    assert any("sha256" in r for r in stale_reasons(task, task, grid))
    # no description at all
    (shipped_copy / f"{task}.json").unlink()
    assert stale_reasons(task, task, grid) == [f"no shipped results (data/demo/{task}.parquet)"]
    assert demo_results(cached_only=True) is None


def test_no_shipped_switch_and_a_named_task_without_shipped_results(shipped_copy, monkeypatch):
    assert demo_results(cached_only=True) is not None
    monkeypatch.setenv("WORKBENCH_NO_SHIPPED", "1")
    assert demo_results(cached_only=True) is None
    assert demo_results(cached_only=True, shipped=True) is not None
    monkeypatch.delenv("WORKBENCH_NO_SHIPPED")
    assert demo_results("vad", cached_only=True) is None  # no data/demo/vad.parquet


def test_the_sweeping_fallback_shows_its_progress_then_the_panel(tmp_path, monkeypatch):
    """No shipped results: the page appears at once with a progress bar, says "Measuring variant k of 6…" as the
    fast demo sweep measures each variant, then shows the explorer; a second page reads the stored sweep."""
    from workbench.ui import TradeoffExplorer
    from workbench.ui.sweep_panel import SweepProgress

    monkeypatch.setenv("WORKBENCH_FAST", "1")
    monkeypatch.setenv("WORKBENCH_NO_SHIPPED", "1")
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("WORKBENCH_RESULTS", raising=False)
    page = demo_page(TradeoffExplorer, task="digits-cnn")
    assert isinstance(page, SweepProgress) and "wb-loading" in page._dom_classes
    panel = page.join(timeout=900)
    assert page.error is None, page.error
    assert isinstance(panel, TradeoffExplorer) and page.children == (panel,) and panel.last_error is None
    total = len(demo_grid(fast=True))
    heads = [t.split(" (")[0] for t in page.texts]
    assert heads[:total + 1] == [f"Measuring variant {k} of {total}…" for k in range(1, total + 1)] + \
        [f"Measured {total} variants."]
    assert "about" in page.texts[1] and "s left" in page.texts[1] and heads[-1] == "Building the page…"
    assert page.progress.value == page.progress.max == total
    assert data.demo_store("digits-cnn", fast=True).is_file()
    again = demo_results("digits-cnn")  # the stored sweep: no measuring
    assert again.attrs["source"] == "sweep" and len(again) == len(panel.data)
    assert json.dumps(sorted(again["variant"].unique())) == json.dumps(sorted(v.label for v in demo_grid(True)))


def test_a_failed_sweep_shows_on_the_progress_page():
    from workbench.ui.sweep_panel import SweepProgress

    def broken(on_progress):
        on_progress(0, 3, "digits-cnn on this machine")
        raise RuntimeError("disk full")

    page = SweepProgress(len, broken)
    page.start(background=False)
    assert page.panel is None and isinstance(page.error, RuntimeError)
    assert "disk full" in page.status.value and "wb-error" in page.status._dom_classes
    assert page.progress.bar_style == "danger"


def test_a_dashboard_is_served_with_a_spare_kernel(tmp_path):
    """Served alone (as `make demo` serves the explorer), a spare kernel has already run the dashboard's notebook
    when a visitor comes (the next one starts only after the page is drawn); the language-model explorer, which
    loads a model as it opens, never has one; a folder of dashboards has none by default."""
    from workbench.ui.server import NOT_PREHEATED, PREHEAT_REFILL_S, dashboards_dir, preheated, voila_command

    cmd = voila_command(tmp_path / "x.ipynb", 8866, preheat=True)
    assert "--preheat_kernel=True" in cmd and "--pool_size=1" in cmd
    assert f"--VoilaKernelManager.fill_delay={PREHEAT_REFILL_S}" in cmd and PREHEAT_REFILL_S >= 10
    assert "--VoilaKernelManager.preheat_denylist=['llm_explorer']" in cmd and NOT_PREHEATED == ("llm_explorer",)
    assert not any("preheat" in a for a in voila_command(tmp_path, 8866))
    spare = preheated(dashboards_dir())
    assert "tradeoff_explorer.ipynb" in spare and "runtimes.ipynb" in spare and "llm_explorer.ipynb" not in spare
    assert preheated(dashboards_dir() / "device_fit.ipynb") == ["device_fit.ipynb"]
