"""Dashboards are thin notebooks stored without outputs, and each runs top to bottom (nbclient, fast mode)."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

DASHBOARDS = sorted((Path(__file__).resolve().parents[2] / "dashboards").glob("*.ipynb"))
NAMES = ["device_fit", "export_report", "llm_explorer", "runtimes", "tradeoff_explorer"]
SLOW = {"llm_explorer"}  # measures SmolLM2 (its built-in sweep) before the notebook runs: minutes


def test_the_ui_dashboards_exist():
    assert set(NAMES) <= {p.stem for p in DASHBOARDS}


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_dashboard_is_thin_and_clean(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and nb.cells[0].cell_type == "markdown"
    for cell in code:
        assert not cell.outputs and cell.execution_count is None, f"{path.name}: stored with outputs"
        lines = cell.source.splitlines()
        assert not any(ln.lstrip().startswith(("def ", "class ")) for ln in lines), "logic belongs in workbench"
        assert len(lines) <= 4, f"{path.name}: keep dashboard cells short"
    assert "workbench" in "".join(c.source for c in code), "dashboards call the workbench package"


@pytest.mark.parametrize("path", [pytest.param(p, marks=pytest.mark.slow) if p.stem in SLOW else p for p in DASHBOARDS],
                         ids=lambda p: p.stem)
def test_dashboard_executes(path, tmp_path, monkeypatch, shipped_results, request):
    """Each notebook runs top to bottom and shows its panel at once: the shipped results (no sweep, no progress
    page); device_fit reads them as a results file named by WORKBENCH_RESULTS (the given-results path)."""
    if path.stem == "llm_explorer":
        request.getfixturevalue("llm_dashboard_store")  # its built-in sweep, measured once into the session cache
    from nbclient import NotebookClient

    monkeypatch.setenv("WORKBENCH_FAST", "1")
    monkeypatch.setenv("WORKBENCH_EXPORTS", str(tmp_path / "exports"))
    monkeypatch.delenv("WORKBENCH_NO_SHIPPED", raising=False)
    if path.stem == "device_fit":
        monkeypatch.setenv("WORKBENCH_RESULTS", str(shipped_results))
    else:
        monkeypatch.delenv("WORKBENCH_RESULTS", raising=False)
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    views = [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert len(views) == 1, "the last cell displays the panel"
    state = json.dumps(nb.metadata.get("widgets", {}))
    assert "wb-error" not in state, "the panel shows an error"
    assert "wb-loading" not in state, "the page swept instead of opening on the shipped results"
    assert "FigureModel" in state or path.stem == "export_report"
    if path.stem == "llm_explorer":
        assert "Best:" in state and "perplexity" in state
    if path.stem == "runtimes":  # the shipped sweep of every installed runtime
        assert "Fastest here:" in state and "ONNX Runtime" in state and "PyTorch" in state and "LiteRT" in state
