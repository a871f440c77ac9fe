"""workbench.viz.runtimes: one variant on every runtime — bars per runtime, what each ran, errors, noise."""

from __future__ import annotations

import pandas as pd
import pytest

from workbench.core.errors import WorkbenchError
from workbench.viz.runtimes import (
    precision_label,
    runtime_compare,
    runtime_fit,
    runtime_summary,
    runtime_table,
    within_noise,
)
from workbench.viz.style import RUNTIME_COLORS, RUNTIME_NAMES, runtime_name

# runtime, p50, iqr, size, realization, realized, error
RUNS = [
    ("onnxruntime", 0.083, 0.006, 587_537, "fp32", True, None),
    ("litert", 0.081, 0.011, 563_844, "fp32", True, None),
    ("openvino", 0.120, 0.004, 587_537, "bf16 (INFERENCE_PRECISION_HINT)", True, None),
    ("torch", 1.70, 4.4, 641_725, "fake-quantised float weights", False, None),
    ("executorch", None, None, None, "", None, "WorkbenchError: ExecuTorch cannot lower this model: boom"),
]


def frame(devices=("raspberry-pi-4", "esp32-s3")) -> pd.DataFrame:
    rows = []
    for rt, p50, iqr, size, real, realized, err in RUNS:
        for dev in devices:
            rows.append({"key": f"v-{rt}-{dev}", "task": "digits-cnn", "variant": "v", "runtime": rt, "device": dev,
                         "latency_ms_p50": p50, "latency_ms_iqr": iqr, "latency_ms_p90": None if p50 is None
                         else p50 * 1.5, "size_bytes": size, "realization": real, "realized": realized,
                         "accuracy": None if err else 0.99, "baseline_accuracy": 0.99, "error": err,
                         "latency_ms_est": None if err else (0.4 if dev == "raspberry-pi-4" else 38.0),
                         "fits": None if err else not (dev == "esp32-s3" and rt == "torch"),
                         "deployable": None if err else True,
                         "reason": "needs more RAM than the device has" if dev == "esp32-s3" and rt == "torch"
                         else ""})
    other = dict(rows[0], key="w", variant="w", latency_ms_p50=0.05)
    return pd.DataFrame([*rows, other])


def test_one_display_name_and_colour_per_runtime():
    assert RUNTIME_NAMES["openvino"] == "OpenVINO" and RUNTIME_NAMES["executorch"] == "ExecuTorch"
    assert runtime_name("onnxruntime") == "ONNX Runtime" and runtime_name("my-rt") == "my-rt"
    assert set(RUNTIME_NAMES) <= set(RUNTIME_COLORS)
    assert len(set(RUNTIME_COLORS.values())) == len(RUNTIME_COLORS)


def test_within_noise_is_each_median_inside_the_others_whisker():
    assert within_noise(0.083, 0.006, 0.081, 0.011)  # 0.002 apart, half the smaller IQR is 0.003
    assert not within_noise(0.083, 0.006, 0.090, 0.011)
    assert not within_noise(0.08, 0.006, 1.7, 4.4)  # a very noisy runtime is not "as fast"
    assert not within_noise(0.08, None, 0.08, 0.01)


def test_precision_label():
    assert precision_label("int8 QDQ (static, calibrated)", True) == "int8 QDQ"
    assert precision_label("fp32; unstructured sparsity simulated (dense kernels)", False) == "fp32 (simulated)"
    assert precision_label("", None) == "–"


def test_table_ranks_runtimes_and_keeps_the_failed_one():
    t = runtime_table(frame(), "v")
    assert t["runtime"].tolist() == ["torch", "onnxruntime", "litert", "openvino", "executorch"]  # palette order
    by = t.set_index("runtime")
    assert by.loc["litert", "fastest"] and by.loc["litert", "verdict"] == "fastest"
    assert by.loc["onnxruntime", "within_noise"] and not by.loc["openvino", "within_noise"]
    assert not by.loc["torch", "within_noise"]
    assert by.loc["openvino", "ratio"] == pytest.approx(0.120 / 0.081)
    assert by.loc["openvino", "precision"] == "bf16" and by.loc["torch", "precision"].endswith("(simulated)")
    assert by.loc["executorch", "status"] == "error" and "boom" in by.loc["executorch", "error"]
    assert by.loc["executorch", "verdict"] == "could not run it"
    assert by.loc["onnxruntime", "accuracy"] == pytest.approx(0.99)
    assert t.attrs["spread"] == "iqr"


def test_summary_in_plain_words():
    text = runtime_summary(runtime_table(frame(), "v"))
    assert text.startswith("Fastest here: LiteRT, 0.081 ms; ONNX Runtime within noise (0.083 ms).")
    assert "OpenVINO: 1.5× slower" in text and "ExecuTorch could not run it." in text


def test_a_runtime_without_rows_is_listed_as_not_measured():
    t = runtime_table(frame(), "w", runtimes=["onnxruntime", "openvino"])
    assert t.set_index("runtime")["status"].to_dict() == {"onnxruntime": "ok", "openvino": "not measured"}
    assert "Not measured on OpenVINO" in runtime_summary(t)


def test_without_iqr_the_spread_is_p90_minus_median():
    t = runtime_table(frame().drop(columns="latency_ms_iqr"), "v")
    assert t.attrs["spread"] == "p90"
    assert t.set_index("runtime").loc["onnxruntime", "spread_ms"] == pytest.approx(0.083 * 0.5)


def test_figure_has_a_bar_per_runtime_labelled_with_what_ran():
    fig = runtime_compare(frame(), "v")
    lat, size, failed, failed_size = fig.data
    assert (lat.name, size.name, failed.name) == ("latency", "size", "could not run")
    assert list(lat.y) == ["PyTorch", "ONNX Runtime", "LiteRT", "OpenVINO"]
    assert list(lat.x) == pytest.approx([1.70, 0.083, 0.081, 0.120])
    assert list(lat.error_x.array) == pytest.approx([2.2, 0.003, 0.0055, 0.002])  # ± half the IQR
    assert list(lat.text) == ["fake-quantised float weights (simulated)", "fp32", "fp32", "bf16"]
    assert list(lat.marker.color) == [RUNTIME_COLORS[r] for r in ("torch", "onnxruntime", "litert", "openvino")]
    assert list(lat.marker.pattern.shape) == ["/", "", "", ""]  # hatched: simulated
    assert list(size.x) == [641_725, 587_537, 563_844, 587_537] and size.text[1] == "fp32 · 588 kB"
    assert list(failed.y) == ["ExecuTorch"] and list(failed.text) == ["✗ could not run"] and "boom" in failed.hovertext[0]
    assert list(failed_size.y) == ["ExecuTorch"]
    assert list(fig.layout.yaxis.categoryarray) == ["PyTorch", "ONNX Runtime", "LiteRT", "OpenVINO", "ExecuTorch"]
    verdicts = {a.y: a.text for a in fig.layout.annotations if a.xref == "x"}
    assert verdicts["LiteRT"].endswith("fastest") and verdicts["ONNX Runtime"].endswith("within noise")
    assert verdicts["OpenVINO"].endswith("1.5×")
    assert fig.layout.xaxis.type == "log"  # PyTorch is 21× slower: on a linear axis the others would vanish
    sub = fig.layout.title.subtitle.text
    assert "within noise" in sub and "hatched" in sub and "log scale" in sub
    assert fig.layout.title.text == "v on every runtime (measured on this machine)"


def test_figure_updates_a_widget_in_place():
    import plotly.graph_objects as go

    df = frame()
    w = go.FigureWidget(runtime_compare(df, "v"))
    traces = list(w.data)
    faster = df.assign(latency_ms_p50=df["latency_ms_p50"] / 2)
    assert runtime_compare(faster, "v", fig=w) is w and list(w.data) == traces
    assert list(w.data[0].x) == pytest.approx([0.85, 0.0415, 0.0405, 0.06])


def test_unknown_variant_and_bad_input():
    with pytest.raises(WorkbenchError, match="no rows for variant 'nope'"):
        runtime_compare(frame(), "nope")
    with pytest.raises(WorkbenchError, match="results frame"):
        runtime_table(pd.DataFrame({"a": [1]}), "v")
    two = pd.concat([frame(), frame().assign(task="kws")])
    with pytest.raises(WorkbenchError, match="several tasks"):
        runtime_table(two, "v")
    assert len(runtime_table(two, "v", task="kws")) == 5


def test_device_fit_per_runtime():
    fit = runtime_fit(frame(), "v")
    assert list(fit.index) == ["raspberry-pi-4", "esp32-s3"]
    assert list(fit.columns) == ["PyTorch", "ONNX Runtime", "LiteRT", "OpenVINO", "ExecuTorch"]
    assert fit.loc["raspberry-pi-4", "ONNX Runtime"] == "fits · 0.4 ms (est.)"
    assert fit.loc["esp32-s3", "PyTorch"] == "does not fit: needs more RAM than the device has"
    assert fit.loc["esp32-s3", "ExecuTorch"] == "could not run"
    assert runtime_fit(frame().assign(device=None), "v").empty


def test_on_a_measured_frame(real):
    """The digits CNN measured on ONNX Runtime (the package's `real` frame): one bar, labelled fp32."""
    fig = runtime_compare(real, "baseline")
    assert list(fig.data[0].y) == ["ONNX Runtime"] and list(fig.data[0].text) == ["fp32"]
    assert fig.data[0].x[0] > 0 and fig.data[0].error_x.array[0] > 0
    assert runtime_summary(runtime_table(real, "baseline")).startswith("Fastest here: ONNX Runtime")
