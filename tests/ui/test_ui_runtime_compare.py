"""RuntimeCompare: one variant on every runtime, driven like a user would (pick a variant, read the words)."""

from __future__ import annotations

import pytest

from workbench.core.errors import WorkbenchError
from workbench.ui.runtime_compare import RuntimeCompare


def test_initial_view(rt_frame):
    panel = RuntimeCompare(rt_frame)
    assert panel.last_error is None and panel.variant.value == "baseline"
    lat = panel.figure.data[0]
    assert list(lat.y) == ["PyTorch", "ONNX Runtime", "LiteRT"]
    assert list(lat.text) == ["fake-quantised float weights (simulated)", "float", "float"]
    assert list(panel.figure.data[2].y) == ["OpenVINO"]  # could not run: shown, not dropped
    words = panel.summary.value
    assert "Fastest here: ONNX Runtime, 0.06 ms; PyTorch within noise (0.061 ms)." in words
    assert "LiteRT: 1.5× slower (0.09 ms)." in words and "OpenVINO could not run it." in words
    assert "OpenVINO" in panel.table.value and "boom" in panel.table.value and "accuracy (measured)" in panel.table.value
    assert "Device fit per runtime" in panel.fit.value and "raspberry-pi-4" in panel.fit.value


def test_choosing_a_variant_updates_the_same_figure(rt_frame):
    panel = RuntimeCompare(rt_frame)
    fig, traces = panel.figure, list(panel.figure.data)
    panel.variant.value = "q8"
    assert panel.last_error is None and panel.figure is fig and list(fig.data) == traces
    assert fig.layout.title.text == "q8 on every runtime (measured on this machine)"
    assert list(fig.data[0].text) == ["fake-quantised float weights (simulated)", "int8 QDQ", "int8 static"]
    assert list(fig.data[0].x) == pytest.approx([0.048 * 1.01, 0.048, 0.072])
    assert list(fig.data[1].x) == [200_000] * 3
    assert "Fastest here: ONNX Runtime, 0.048 ms" in panel.summary.value
    assert panel.shown.set_index("runtime").loc["litert", "ratio"] == pytest.approx(1.5)
    assert panel.updates == 2


def test_one_runtime_only_says_how_to_compare(frame):
    panel = RuntimeCompare(frame, variant="q8")
    assert "Only one runtime" in panel.summary.value and list(panel.figure.data[0].y) == ["ONNX Runtime"]


def test_without_devices_the_fit_says_so(rt_frame):
    d = rt_frame[rt_frame.device == "raspberry-pi-4"].drop(columns=["device"])
    panel = RuntimeCompare(d)
    assert "No device estimates" in panel.fit.value and panel.last_error is None


def test_inputs(rt_frame):
    with pytest.raises(WorkbenchError, match="no variant 'nope'"):
        RuntimeCompare(rt_frame, variant="nope")
    with pytest.raises(WorkbenchError, match="'runtime' column"):
        RuntimeCompare(rt_frame.drop(columns="runtime"))
    panel = RuntimeCompare(rt_frame, runtimes=["onnxruntime", "executorch"])
    assert panel.shown["status"].tolist() == ["ok", "not measured"]


def test_runtime_results_reads_a_results_file(rt_frame, tmp_path, monkeypatch):
    from workbench.ui.runtime_data import runtime_grid, runtime_results

    path = tmp_path / "r.csv"
    rt_frame.to_csv(path, index=False)
    monkeypatch.setenv("WORKBENCH_RESULTS", str(path))
    assert len(runtime_results()) == len(rt_frame)
    g = runtime_grid(["onnxruntime", "torch"], fast=True)
    assert [v.label for v in g] == ["baseline", "q8"] and g.limit == 200
    assert len(runtime_grid(["onnxruntime"], fast=False)) > len(g)
