"""The LLM planner dashboard: executes headless, stays thin, and its widgets drive the planner."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

DASHBOARD = Path(__file__).resolve().parents[2] / "dashboards" / "llm_planner.ipynb"


def test_dashboard_is_thin_and_stored_without_outputs():
    nb = nbformat.read(DASHBOARD, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and len(cell.source.splitlines()) <= 8
            assert not any(ln.lstrip().startswith(("def ", "class ")) for ln in cell.source.splitlines())


def test_dashboard_executes_headless(tmp_path):
    from nbclient import NotebookClient

    nb = nbformat.read(DASHBOARD, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)


@pytest.fixture(scope="module")
def app():
    from workbench.ui.llm_planner import llm_planner

    return llm_planner(model="Llama-2-7B", bits=4, context=2048)


def test_widgets_have_descriptions(app):
    for w in (app.model, app.bits, app.context, app.batch):
        assert w.description


def test_changing_controls_updates_summary_figure_and_table(app):
    app.model.value = "Llama-2-70B"
    app.bits.value = 4
    assert "Llama-2-70B" in app.summary.value and "4-bit" in app.summary.value
    assert "1 x gpu-80gb" in app.summary.value and "2 x gpu-24gb" in app.summary.value
    assert app.figure.layout.title.text.startswith("Llama-2-70B")
    kv_before = app.frame["kv_cache_gb"].iloc[0]
    app.context.value = 32768
    assert app.frame["kv_cache_gb"].iloc[0] == pytest.approx(16 * kv_before)
    weights = list(app.figure.data[0].y)
    assert weights == pytest.approx(list(app.frame["weight_gb"]))          # the chart updated in place
    assert "<table" in app.table.value and not app.error.value
    app.bits.value = 16
    assert "16-bit" in app.summary.value
