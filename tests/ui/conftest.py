"""A hand-made results frame in the sweep's layout: quick to build, realistic enough for every panel."""

from __future__ import annotations

import pandas as pd
import pytest

VARIANTS = [
    # variant,              prune, structure,      bits, p50,  acc,   size,    zipped,  realized
    ("baseline",            0.0,   None,           32,  0.060, 0.990, 590_000, 540_000, True),
    ("q8",                  0.0,   None,            8,  0.048, 0.985, 200_000, 150_000, True),
    ("fp16",                0.0,   None,           16,  0.070, 0.990, 300_000, 280_000, True),
    ("channel-0.50",        0.5,   "channel",      32,  0.028, 0.950, 150_000, 140_000, True),
    ("channel-0.50+q8",     0.5,   "channel",       8,  0.034, 0.940,  90_000,  50_000, True),
    ("unstructured-0.50",   0.5,   "unstructured", 32,  0.062, 0.980, 590_000, 300_000, True),
    ("unstructured-0.50+q4", 0.5,  "unstructured",  4,  0.061, 0.900, 590_000, 200_000, False),
]
DEVICES = {"raspberry-pi-4": 4.0, "esp32-s3": 300.0}


def hand_frame() -> pd.DataFrame:
    """7 variants x 2 devices on onnxruntime, digits-cnn, plus one failed row."""
    rows = []
    for v, prune, structure, bits, p50, acc, size, zipped, realized in VARIANTS:
        for dev, scale in DEVICES.items():
            rows.append({
                "key": f"{v}@{dev}", "task": "digits-cnn", "variant": v, "prune": prune, "structure": structure,
                "bits": bits, "recover": None, "runtime": "onnxruntime", "device": dev, "accuracy": acc,
                "fidelity": acc, "size_bytes": size, "size_deflated_bytes": zipped, "params": 136_000,
                "params_nonzero": int(136_000 * (1 - prune)), "realized": realized,
                "realization": "int8 QDQ" if bits == 8 else "float", "latency_ms_p50": p50,
                "latency_ms_p90": p50 * 1.1, "macs": int(4e6 * (1 - prune if structure == "channel" else 1)),
                "weight_bytes": int(136_000 * bits / 8), "latency_ms_est": p50 * scale,
                "energy_mj_est": p50 * scale * (0.3 if dev == "esp32-s3" else 3.0),
                "power_w_est": 0.25 if dev == "esp32-s3" else 5.4, "battery_h_est": None,
                "fits": not (dev == "esp32-s3" and size > 500_000), "deployable": True,
                "reason": "needs more RAM than the device has" if dev == "esp32-s3" and size > 500_000 else "",
                "lineage": v, "error": None, "baseline_accuracy": 0.99,
            })
    failed = dict(rows[0], key="broken@raspberry-pi-4", variant="2:4+q2", prune=0.5, structure="2:4", bits=2,
                  accuracy=None, latency_ms_p50=None, error="compress: RuntimeError: boom")
    return pd.DataFrame([*rows, failed])


@pytest.fixture
def frame() -> pd.DataFrame:
    return hand_frame()


def click(fig, trace_index: int, point_index: int = 0) -> None:
    """What the browser sends when a point is clicked (plotly's FigureWidget points callback)."""
    t = fig.data[trace_index]
    fig._handler_js2py_pointsCallback({"new": {
        "event_type": "plotly_click",
        "points": {"xs": [t.x[point_index]], "ys": [t.y[point_index]], "point_indexes": [point_index],
                   "trace_indexes": [trace_index]},
    }})


@pytest.fixture
def click_point():
    """`click_point(fig, trace_index, point_index)`: deliver a plotly click to a FigureWidget, as the browser does."""
    return click


def runtimes_frame() -> pd.DataFrame:
    """`hand_frame` measured on three runtimes: LiteRT 1.5× ONNX Runtime's latency (int8 there: "int8 static"),
    PyTorch simulating the compression at 1.01× (within noise), and OpenVINO failing every variant."""
    base = hand_frame()
    base["latency_ms_iqr"] = base["latency_ms_p50"] * 0.1
    lite = base.assign(runtime="litert", key=base.key + "-litert", latency_ms_p50=base.latency_ms_p50 * 1.5,
                       realization=base.realization.replace("int8 QDQ", "int8 static (calibrated)"))
    torch = base.assign(runtime="torch", key=base.key + "-torch", latency_ms_p50=base.latency_ms_p50 * 1.01,
                        realized=False, realization="fake-quantised float weights",
                        accuracy=base.accuracy - 0.001)
    ov = base.assign(runtime="openvino", key=base.key + "-openvino", latency_ms_p50=None, accuracy=None,
                     error="WorkbenchError: OpenVINO could not compile the model: boom")
    return pd.concat([base, lite, torch, ov], ignore_index=True)


@pytest.fixture
def rt_frame() -> pd.DataFrame:
    return runtimes_frame()
