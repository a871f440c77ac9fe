"""SweepPanel: press Run on a tiny grid; the progress bar and the chart fill in as results arrive."""

from __future__ import annotations

import pytest

from workbench import ui
from workbench.core.errors import WorkbenchError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_run_fills_the_chart_live(monkeypatch, tmp_path):
    from workbench import viz

    panel = ui.SweepPanel("digits-cnn", limit=100, memory=False, store=tmp_path / "r.sqlite")
    panel.prune.value = (0.0,)
    panel.bits.value = (32, 8)
    panel.devices.value = ("raspberry-pi-4",)
    seen = []
    real = viz.update_pareto

    def spy(fig, df, **kw):
        seen.append((len(df), panel.running))
        return real(fig, df, **kw)

    monkeypatch.setattr(viz, "update_pareto", spy)
    panel.run_button.click()
    assert panel.last_error is None, panel.errors.value
    assert len(panel.results) == 2 and set(panel.results["variant"]) == {"baseline", "q8"}
    assert panel.progress.value == panel.progress.max == 2 and panel.progress.bar_style == "success"
    assert (1, True) in seen  # the chart was drawn while the sweep was still running, after the first result
    points = sum(len(t.x) for t in panel.figure.data if t.customdata is not None)
    assert points == 2
    assert "Done: 2 rows" in panel.status.value
    assert not panel.run_button.disabled
    panel.x.value = "latency_ms_est"
    assert panel.figure.layout.xaxis.title.text == "latency (est., ms) on raspberry-pi-4"
    # the store keeps the rows: a second run computes nothing and still shows them
    panel.run_button.click()
    assert len(panel.results) == 2 and panel.progress.value == 2 and panel.last_error is None


def test_errors_appear_in_the_panel():
    panel = ui.SweepPanel("digits-cnn", limit=100, memory=False)
    panel.bits.value = ()
    panel.run_button.click()  # must not raise
    assert "choose at least one bit-width" in panel.errors.value
    panel.bits.value = (32,)
    panel.model.value = "(a model file)"
    assert panel.path.layout.display == ""
    panel.path.value = "/no/such/model.onnx"
    panel.run_button.click()
    assert "does not exist" in panel.errors.value and isinstance(panel.last_error, WorkbenchError)
    assert not panel.running and not panel.run_button.disabled


def test_failed_rows_are_listed():
    panel = ui.SweepPanel("digits-cnn", limit=100, memory=False)
    panel.progress.max = 2
    panel._on_result({"variant": "2:4+q2", "runtime": "onnxruntime", "error": "compress: RuntimeError: boom"})
    assert "2:4+q2" in panel.failures.value and "boom" in panel.failures.value
    assert panel.last_error is None  # nothing plottable yet is not an error


def test_model_file_task(onnx_file):
    panel = ui.SweepPanel(limit=100, memory=False)
    panel.model.value = "(a model file)"
    panel.path.value = str(onnx_file)
    task = panel.task()
    assert task.metric == "fidelity" and task.eval_inputs[0].shape[1:] == (1, 8, 8)
    g = panel.grid()
    assert g.limit == 100 and [v.label for v in g][:1] == ["baseline"]


def test_grid_from_controls():
    panel = ui.SweepPanel("digits-cnn", limit=0, memory=False)
    panel.prune.value = (0.0, 0.5)
    panel.structure.value = ("channel", "2:4")
    panel.bits.value = (32, 8)
    panel.runtimes.value = ("onnxruntime",)
    g = panel.grid()
    assert g.limit is None
    assert [v.label for v in g] == ["baseline", "q8", "channel-0.50", "channel-0.50+q8", "2:4", "2:4+q8"]
    assert panel.task().name == "digits-cnn"
