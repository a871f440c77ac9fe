"""The sweep engine on the real default model: rows, baselines, resume, errors, and every executor."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

import workbench
from workbench.sweeps.store import ResultStore

pytestmark = pytest.mark.usefixtures("one_torch_thread")

GRID = dict(prune=[0, 0.5], structure=["channel"], bits=[32, 8], devices=["raspberry-pi-4", "esp32-s3"], limit=300)
SAME = ["accuracy", "size_bytes", "params_nonzero", "macs", "realized", "latency_ms_est", "energy_mj_est", "fits"]


@pytest.fixture(scope="module")
def serial(tmp_path_factory, digits):
    store = tmp_path_factory.mktemp("serial") / "results.sqlite"
    seen = []
    df = workbench.sweep(digits, workbench.grid(**GRID), store=store, progress=False, on_result=seen.append,
                         memory=False)
    return store, df, seen


def _by_variant(df):
    return df.sort_values(["variant", "runtime", "device"]).set_index(["variant", "runtime", "device"])


def test_one_row_per_variant_runtime_and_device_with_configs_and_baseline(serial, digits):
    _, df, seen = serial
    assert len(df) == 4 * 2 and df["error"].isna().all()
    assert len(seen) == len(df)  # on_result saw every new row
    assert set(df["variant"]) == {"baseline", "q8", "channel-0.50", "channel-0.50+q8"}
    assert set(df["device"]) == {"raspberry-pi-4", "esp32-s3"}
    row = _by_variant(df).loc[("channel-0.50+q8", "onnxruntime", "raspberry-pi-4")]
    assert (row["prune"], row["structure"], row["bits"]) == (0.5, "channel", 8)
    assert row["realized"] and "int8" in row["realization"]
    base = df[df.variant == "baseline"]["accuracy"].iloc[0]
    assert (df["baseline_accuracy"] == base).all()
    assert base == pytest.approx(digits.evaluate(workbench.runtime(digits.model, "onnxruntime"), limit=300)["accuracy"])
    # Channel pruning is real (fewer MACs, smaller file); int8 is real (smaller file).
    small = _by_variant(df).xs("raspberry-pi-4", level="device")
    assert small.loc["channel-0.50", "macs"].iloc[0] < 0.5 * small.loc["baseline", "macs"].iloc[0]
    assert small.loc["q8", "size_bytes"].iloc[0] < 0.45 * small.loc["baseline", "size_bytes"].iloc[0]


def test_a_second_run_computes_nothing(serial, digits):
    store, df, _ = serial
    seen = []
    again = workbench.sweep(digits, workbench.grid(**GRID), store=store, progress=False, on_result=seen.append)
    assert seen == []  # nothing was computed (no wall-clock bound: the machine is shared)
    cols = ["key", "accuracy", "latency_ms_p50", "created"]
    assert _by_variant(again)[cols].equals(_by_variant(df)[cols])


def test_growing_the_grid_computes_only_the_new_variants(serial, digits, tmp_path):
    store, df, _ = serial
    copy = tmp_path / "grown.sqlite"
    with ResultStore(store) as src, ResultStore(copy) as dst:
        dst.add(src.rows())
    seen = []
    grown = workbench.sweep(digits, workbench.grid(**{**GRID, "bits": [32, 8, 16]}), store=copy, progress=False,
                            on_result=seen.append, memory=False)
    assert {r["variant"] for r in seen} == {"fp16", "channel-0.50+fp16"}
    assert len(grown) == 6 * 2


def test_a_failing_variant_is_stored_with_its_error_and_the_sweep_goes_on(digits, tmp_path):
    # Channel pruning rewrites layers, which a TFLite file has no route to; unstructured pruning works in place.
    tfl = workbench.runtime(digits.model, "litert").artifact
    task = workbench.Task.from_model(tfl, [digits.eval_inputs[0][:100]], digits.eval_labels[:100])
    g = workbench.grid(prune=[0, 0.5], structure=["channel", "unstructured"], bits=[32], runtimes=["litert"])
    df = workbench.sweep(task, g, store=tmp_path / "r.sqlite", progress=False, memory=False)
    by = df.set_index("variant")
    assert "channel" in by.loc["channel-0.50", "error"] and by.loc["channel-0.50", "error"].startswith("compress:")
    assert by["error"].isna().sum() == 2 and by.loc["unstructured-0.50", "params_nonzero"] < by.loc["baseline", "params"]
    seen = []
    workbench.sweep(task, g, store=tmp_path / "r.sqlite", progress=False, on_result=seen.append)
    assert seen == []  # the failure is a stored result, not retried


def test_dropped_combinations_are_reported(digits, vad, tmp_path):
    g = workbench.grid(prune=[0], bits=[32], recover=[None])
    df = workbench.sweep(digits, g, store=None, progress=False, memory=False)
    assert df.attrs["dropped"] and all(r for _, r in df.attrs["dropped"])
    # The VAD task has no training split: recovery variants are dropped with that reason, not run.
    g = workbench.grid(prune=[0.25], structure=["unstructured"], bits=[32], recover=[20], limit=2)
    df = workbench.sweep(vad, g, store=None, progress=False, memory=False)
    assert list(df["variant"]) == ["baseline"]
    assert ("unstructured-0.25+r20", "silero-vad has no training split to recover with") in df.attrs["dropped"]


def test_bad_arguments_say_what_to_do(digits):
    with pytest.raises(workbench.WorkbenchError, match="unknown executor"):
        workbench.sweep(digits, workbench.grid(prune=[0], bits=[32]), store=None, executor="threads", progress=False)
    with pytest.raises(workbench.WorkbenchError, match="raspberry"):
        workbench.sweep(digits, workbench.grid(prune=[0], bits=[32], devices=["pi-zero-9000"]), store=None)
    with pytest.raises(workbench.WorkbenchError, match="workbench.grid"):
        workbench.sweep(digits, {"prune": [0]}, store=None)
    local = workbench.compress(digits.model, workbench.Prune(0.3))
    task = workbench.Task.from_model(local, [digits.eval_inputs[0][:20]], digits.eval_labels[:20])
    with pytest.raises(workbench.WorkbenchError, match="executor='serial'"):
        workbench.sweep(task, workbench.grid(prune=[0], bits=[32]), store=None, executor="processes", progress=False)


def _assert_same_metrics(df, serial_df):
    a, b = _by_variant(df)[SAME], _by_variant(serial_df)[SAME]
    assert list(a.index) == list(b.index)
    for col in SAME:
        x, y = a[col].to_numpy(), b[col].to_numpy()
        if x.dtype.kind == "f":
            np.testing.assert_allclose(x.astype(float), y.astype(float), rtol=1e-6, err_msg=col)
        else:
            assert list(x) == list(y), col


def test_process_pool_gives_the_serial_metrics(serial, digits, tmp_path):
    df = workbench.sweep(digits, workbench.grid(**GRID), store=tmp_path / "p.sqlite", executor="processes",
                         workers=2, progress=False, memory=False)
    _assert_same_metrics(df, serial[1])


def test_dask_local_cluster_gives_the_serial_metrics(serial, digits, tmp_path):
    seen = []
    df = workbench.sweep(digits, workbench.grid(**GRID), store=tmp_path / "d.sqlite", executor="dask", workers=2,
                         progress=False, on_result=seen.append, memory=False)
    assert len(seen) == len(df)
    _assert_same_metrics(df, serial[1])


def test_sigkill_mid_sweep_then_resume_loses_and_duplicates_nothing(tmp_path):
    store = tmp_path / "killed.sqlite"
    args = ["--task", "digits-cnn", "--prune", "0,0.25,0.5", "--structure", "unstructured,channel",
            "--bits", "32,8", "--limit", "200", "--no-memory", "--no-progress", "--store", str(store)]
    total = 5 * 2  # (2 ratios x 2 structures + baseline) x 2 bit-widths
    proc = subprocess.Popen([sys.executable, "-m", "workbench", "sweep", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        before = _wait_for_rows(store, proc, at_least=2, below=total)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    with sqlite3.connect(store) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = dict(db.execute("SELECT key, created FROM results"))
    assert 2 <= len(stored) < total
    seen = []
    df = workbench.sweep("digits-cnn", workbench.grid(prune=[0, 0.25, 0.5], structure=["unstructured", "channel"],
                                                      bits=[32, 8], limit=200),
                         store=store, progress=False, on_result=seen.append, memory=False)
    assert len(df) == total and df["key"].is_unique and df["error"].isna().all()
    assert len(seen) == total - len(stored)  # only the missing variants were computed
    assert not {r["key"] for r in seen} & set(stored)
    with sqlite3.connect(store) as db:
        after = dict(db.execute("SELECT key, created FROM results"))
    assert len(after) == total
    assert all(after[k] == c for k, c in stored.items())  # nothing stored before the kill was rewritten
    assert before >= 2


def _wait_for_rows(store, proc, *, at_least, below, timeout=240):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"sweep ended before it could be killed: {proc.stderr.read().decode()[-2000:]}")
        if store.exists():
            try:
                with sqlite3.connect(store, timeout=1) as db:
                    n = db.execute("SELECT COUNT(*) FROM results").fetchone()[0]
            except sqlite3.OperationalError:
                n = 0
            if at_least <= n < below:
                return n
        time.sleep(0.02)
    raise AssertionError("the sweep stored nothing in time")


def test_an_existing_dask_cluster_by_client_or_address(serial, digits, tmp_path):
    from distributed import Client, LocalCluster

    tiny = workbench.grid(**{**GRID, "prune": [0]})
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        by_client = workbench.sweep(digits, tiny, store=tmp_path / "c.sqlite", executor=client, progress=False,
                                    memory=False)
        by_address = workbench.sweep(digits, tiny, store=tmp_path / "a.sqlite", executor=cluster.scheduler_address,
                                     progress=False, memory=False)
        assert client.status == "running"  # the sweep leaves a cluster it did not start alone
    expected = serial[1][serial[1]["prune"] == 0]
    _assert_same_metrics(by_client, expected)
    _assert_same_metrics(by_address, expected)
