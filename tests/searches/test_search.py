"""`workbench.search` on a tiny model: determinism, the study's total, reuse of stored rows, constraints, resume
after a kill, and the parallel executors (a process pool and a Dask LocalCluster)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import workbench
from workbench.core.errors import WorkbenchError
from workbench.searches import Space

SPACE = Space(prune=[0, 0.25, 0.5], structure="channel", bits=[32, 8, 4], limit=60)
OBJ = {"accuracy": "max", "size_bytes": "min"}  # noise-free objectives: a seeded search repeats exactly
QUIET = dict(progress=False, memory=False)


def _params(store_path) -> list[dict]:
    import optuna

    from workbench.searches.run import study_path

    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(study_path(workbench.ResultStore(store_path)))))
    (summary,) = optuna.get_all_study_summaries(storage)
    study = optuna.load_study(study_name=summary.study_name, storage=storage)
    return [t.params for t in study.trials]


def test_same_seed_same_trials_and_a_finished_search_measures_nothing(tmp_path):
    a = workbench.search("digits-cnn", SPACE, objectives=OBJ, n_trials=8, store=tmp_path / "a.sqlite", **QUIET)
    b = workbench.search("digits-cnn", SPACE, objectives=OBJ, n_trials=8, store=tmp_path / "b.sqlite", **QUIET)
    assert _params(tmp_path / "a.sqlite") == _params(tmp_path / "b.sqlite")
    assert a["variant"].tolist() == b["variant"].tolist()
    assert a.attrs["trials"] == 8 and 1 <= a.attrs["evaluated"] <= 8
    assert a["variant"].iloc[0] == "baseline" and a["trial"].iloc[0] == 0  # the original is asked first
    again = workbench.search("digits-cnn", SPACE, objectives=OBJ, n_trials=8, store=tmp_path / "a.sqlite", **QUIET)
    assert again.attrs["evaluated"] == 0 and again.attrs["trials"] == 8
    assert again[["variant", "accuracy", "size_bytes", "trial"]].equals(a[["variant", "accuracy", "size_bytes",
                                                                           "trial"]])
    more = workbench.search("digits-cnn", SPACE, objectives=OBJ, n_trials=10, store=tmp_path / "a.sqlite", **QUIET)
    assert more.attrs["trials"] == 10  # n_trials is the study's total: two more trials, not ten


def test_points_a_sweep_measured_are_read_back_not_measured(tmp_path):
    store = tmp_path / "r.sqlite"
    g = workbench.grid(prune=[0, 0.5], structure="channel", bits=[32, 8], limit=60)
    swept = workbench.sweep("digits-cnn", g, store=store, **QUIET)
    df = workbench.search("digits-cnn", g, objectives=OBJ, n_trials=6, store=store, **QUIET)
    assert df.attrs["evaluated"] == 0  # every point of this space is one of the grid's four, all stored
    assert set(df["variant"]) <= set(swept["variant"])
    assert set(df["key"]) <= set(swept["key"])


def test_constraints_are_respected_and_the_front_is_feasible(tmp_path):
    cons = {"min_accuracy": 0.9, "max_size_bytes": 400_000}
    seen = []
    space = Space(prune=[0, 0.5], structure="unstructured", bits=[32, 8], limit=60)
    df = workbench.search("digits-cnn", space, objectives=OBJ, constraints=cons, n_trials=10,
                          store=tmp_path / "r.sqlite", on_trial=seen.append, **QUIET)
    ok = (df["accuracy"] >= 0.9) & (df["size_bytes"] <= 400_000) & df["error"].isna()
    assert df["feasible"].tolist() == ok.tolist()
    assert df["pareto"].any() and df.loc[df["pareto"], "feasible"].all()
    assert len(seen) == 10 and {"trial", "variant", "values", "feasible", "cached"} <= set(seen[0])
    assert seen[0]["variant"] == "baseline" and not seen[0]["feasible"]  # 587 kB: over the size budget
    best = workbench.best(df, min_accuracy=0.9, max_size_bytes=400_000, objective="size_bytes")
    assert best["feasible"] and best["size_bytes"] == df.loc[df["feasible"], "size_bytes"].min()


def test_constraint_keys_follow_best_and_the_metric_direction(tmp_path):
    with pytest.raises(WorkbenchError, match="unknown constraint"):
        workbench.search("digits-cnn", SPACE, constraints={"min_acc": 0.9}, store=None, **QUIET)
    with pytest.raises(WorkbenchError, match="higher accuracy is better"):
        workbench.search("digits-cnn", SPACE, constraints={"max_metric": 0.9}, store=None, **QUIET)
    with pytest.raises(WorkbenchError, match="'min' or 'max'"):
        workbench.search("digits-cnn", SPACE, objectives={"accuracy": "up"}, store=None, **QUIET)
    with pytest.raises(WorkbenchError, match="n_trials"):
        workbench.search("digits-cnn", SPACE, n_trials=0, store=None, **QUIET)


def test_a_device_constraint_uses_its_estimates(tmp_path):
    df = workbench.search("digits-cnn", Space(prune=[0], bits=[32, 8], limit=60), objectives=OBJ,
                          constraints={"device": "raspberry-pi-4", "max_latency_ms": 1e6}, n_trials=3,
                          store=tmp_path / "r.sqlite", **QUIET)
    assert set(df["device"]) == {"raspberry-pi-4"}  # the device was added to the space's
    assert df["feasible"].all() and df["latency_ms_est"].notna().all()


KILLED = textwrap.dedent("""
    import os, sys
    import workbench
    from workbench.searches import Space, parallel
    real = parallel.run_unit
    calls = []
    def dying(*a, **k):
        calls.append(1)
        rows = real(*a, **k)
        if len(calls) == 3:
            os._exit(9)  # killed while measuring the 3rd unit (before it is stored): a trial left running
        return rows
    parallel.run_unit = dying
    space = Space(prune=[0, 0.25, 0.5], structure="channel", bits=[32, 8, 4], limit=60)
    workbench.search("digits-cnn", space, objectives={"accuracy": "max", "size_bytes": "min"}, n_trials=8,
                     store=sys.argv[1], progress=False, memory=False)
""")


def test_a_killed_search_resumes_and_measures_nothing_twice(tmp_path):
    store = tmp_path / "r.sqlite"
    script = tmp_path / "killed.py"
    script.write_text(KILLED)
    proc = subprocess.run([sys.executable, str(script), str(store)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 9, proc.stderr[-2000:]
    with workbench.ResultStore(store) as st:
        stored = {r["unit"] for r in st.rows()}
    assert len(stored) == 2  # the first two units were stored; the kill lost only the one being measured
    df = workbench.search("digits-cnn", SPACE, objectives=OBJ, n_trials=8, store=store, **QUIET)
    assert df.attrs["trials"] == 8
    assert stored <= set(df["unit"])
    distinct = df["unit"].nunique()
    assert df.attrs["evaluated"] == distinct - 2  # the stored two were read back, not measured again


def test_per_layer_bits_are_searched_and_stored(tmp_path):
    task = workbench.zoo.load("kws")
    space = Space.per_layer(task, bits=[8, 4], pin=["stem.conv", "classifier"], limit=60)
    df = workbench.search(task, space, objectives={"accuracy": "max", "weight_bytes": "min"}, n_trials=4,
                          store=tmp_path / "r.sqlite", **QUIET)
    mixed = df[df["variant"].str.contains("mixed")]
    assert len(mixed) and mixed["layer_bits"].notna().all() and mixed["error"].isna().all()
    assert (mixed["weight_bytes"] < df.loc[df["variant"] == "q8", "weight_bytes"].min()).all() or \
        "q8" not in set(df["variant"])


def _counting_lock():
    import threading

    class Counting:
        def __init__(self):
            self.lock, self.acquired = threading.Lock(), 0

        def acquire(self):
            self.acquired += 1
            self.lock.acquire()

        def release(self):
            self.lock.release()

    return Counting()


def test_parallel_workers_time_under_the_shared_lock():
    from workbench.searches.parallel import locked_unit
    from workbench.sweeps.spec import VariantSpec
    from workbench.sweeps.units import TaskRef

    lock = _counting_lock()
    rows = locked_unit(lock, TaskRef(zoo="digits-cnn"), VariantSpec(), "onnxruntime", SPACE.grid, False)
    assert rows[0]["latency_ms_p50"] > 0 and lock.acquired == 1  # exactly the timed section, once


@pytest.mark.parametrize("executor", ["processes", "dask"])
def test_parallel_executors_give_the_serial_results(tmp_path, executor):
    serial = workbench.search("digits-cnn", SPACE, objectives=OBJ, n_trials=6, store=tmp_path / "s.sqlite",
                              **QUIET)
    par = workbench.search("digits-cnn", SPACE, objectives=OBJ, n_trials=6, store=tmp_path / "p.sqlite",
                           executor=executor, workers=2, **QUIET)
    assert par.attrs["trials"] == 6 and par.attrs["evaluated"] >= 1
    both = serial.merge(par, on="variant", suffixes=("_s", "_p"))
    assert len(both) and (both["accuracy_s"] == both["accuracy_p"]).all()  # same variants, same measurement
    assert (both["size_bytes_s"] == both["size_bytes_p"]).all()
