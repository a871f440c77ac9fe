"""LLMPlanner driven like a user would: controls change the summary, the table and the chart (in place); an
error shows in the panel. (The dashboard that shows it is executed by tests/dashboards/test_dashboards.py.)"""

from __future__ import annotations

import pytest

from workbench import ui
from workbench.core.errors import WorkbenchError


@pytest.fixture
def app():
    return ui.LLMPlanner(model="Llama-2-7B", bits=4, context=2048)


def test_is_a_panel_with_described_controls(app):
    from workbench.ui.base import Panel

    assert isinstance(app, Panel) and app.last_error is None and app.errors.value == ""
    for w in (app.model, app.bits, app.context, app.batch):
        assert w.description
    assert [t.name for t in app.figure.data][:3] == ["weights", "KV cache", "activations"]
    assert app.figure.layout.title.text == "Llama-2-7B: memory at 2,048 tokens x batch 1"


def test_changing_controls_updates_summary_figure_and_table(app):
    fig = app.figure
    traces = list(fig.data)
    app.model.value = "Llama-2-70B"
    app.bits.value = 4
    assert "Llama-2-70B" in app.summary.value and "4-bit" in app.summary.value
    assert "1 x gpu-80gb" in app.summary.value and "2 x gpu-24gb" in app.summary.value
    assert app.figure.layout.title.text.startswith("Llama-2-70B")
    kv_before = app.frame["kv_cache_gb"].iloc[0]
    table_before = app.table.value
    app.context.value = 32768
    assert app.frame["kv_cache_gb"].iloc[0] == pytest.approx(16 * kv_before)
    assert app.figure is fig and list(fig.data) == traces  # the chart updated in place
    assert list(fig.data[0].y) == pytest.approx(list(app.frame["weight_gb"]))
    assert list(fig.data[1].y) == pytest.approx(list(app.frame["kv_cache_gb"]))
    assert "32,768 tokens" in fig.layout.title.text
    assert "<table" in app.table.value and app.table.value != table_before and app.last_error is None
    app.batch.value = 4
    assert app.frame["kv_cache_gb"].iloc[0] == pytest.approx(64 * kv_before)
    app.bits.value = 16
    assert "16-bit" in app.summary.value


def test_an_error_shows_in_the_panel(app, monkeypatch):
    import workbench.ui.llm_planner as module

    summary = app.summary.value

    def broken(**_kwargs):
        raise WorkbenchError("no memory model for this shape")

    monkeypatch.setattr(module, "llm_memory", broken)
    app.context.value = 8192
    assert isinstance(app.last_error, WorkbenchError) and "no memory model" in app.errors.value
    assert app.summary.value == summary  # the last good plan stays on screen
    monkeypatch.undo()
    app.context.value = 4096
    assert app.last_error is None and app.errors.value == "" and "4,096 tokens" in app.figure.layout.title.text


def test_an_unknown_device_is_an_error_in_the_panel_not_an_exception():
    app = ui.LLMPlanner(devices=["no-such-board"])
    assert isinstance(app.last_error, WorkbenchError) and "no-such-board" in app.errors.value


def test_a_model_that_does_not_fit_a_board_says_so_with_the_reason():
    app = ui.LLMPlanner(model="Llama-2-7B", bits=4, context=2048, devices=["esp32-s3", "raspberry-pi-5"])
    summary = app.summary.value
    assert "<b>esp32-s3</b> does not fit: needs 3.86 GB of flash for the weights (has 7.55 MB usable)" in summary
    assert "raspberry-pi-5" in summary.split("Held by one:")[1].split(".")[0]   # 8 GB holds 5.13 GB
    assert "esp32-s3" not in summary.split("Held by one:")[1].split(".")[0]
    assert "esp32-s3" in app.table.value and "does_not_fit" in app.table.value
    app.bits.value = 16                                                       # 14.7 GB: the Pi 5 no longer holds it
    assert "<b>raspberry-pi-5</b> does not fit: needs 14.7 GB of memory (has 7.73 GB usable)" in app.summary.value
