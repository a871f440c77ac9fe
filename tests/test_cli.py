"""The README's main job: `python -m workbench baseline` prints a measured table for every runtime."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd

from workbench.cli import main


def test_baseline_table(tmp_path, capsys):
    out_csv = tmp_path / "baseline.csv"
    assert main(["baseline", "--limit", "90", "--csv", str(out_csv)]) == 0
    text = capsys.readouterr().out
    for rt in ("torch", "onnxruntime", "litert", "openvino", "executorch"):
        assert rt in text
    df = pd.read_csv(out_csv)
    assert list(df["runtime"]) == ["torch", "onnxruntime", "litert", "openvino", "executorch"]
    assert (df["accuracy"] == df["accuracy"].iloc[0]).all() and df["accuracy"].iloc[0] >= 0.85  # the kws default
    assert (df["accuracy_low"] < df["accuracy"]).all() and (df["accuracy"] <= df["accuracy_high"]).all()
    assert (df["latency_ms_p50"] > 0).all() and (df["reps"] >= 30).all()
    assert df.loc[df.runtime == "onnxruntime", "size_bytes"].iloc[0] > 80_000  # 23k fp32 parameters


def test_baseline_on_a_model_file(tmp_path, capsys):
    from workbench import runtime, zoo

    onnx_file = runtime(zoo.load(), "onnxruntime").artifact
    assert main(["baseline", "--model", str(onnx_file), "--runtimes", "onnxruntime"]) == 0
    assert "fidelity" in capsys.readouterr().out


def test_errors_are_reported_not_raised(tmp_path, capsys):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"\x00garbage")
    assert main(["baseline", "--model", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "broken.onnx" in err and "Traceback" not in err


def test_module_entry_point_lists_tasks():
    proc = subprocess.run([sys.executable, "-m", "workbench", "tasks"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    assert proc.stdout.split()[0] == "kws" and "digits-cnn" in proc.stdout and "silero-vad" in proc.stdout
