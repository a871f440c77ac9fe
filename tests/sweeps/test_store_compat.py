"""A results store written by workbench 0.1.0 *before* the package redesign (issue 12) reads back identically,
and today's code derives the very same store keys for it, so an old sweep resumes without recomputing.

Fixtures (tests/sweeps/data/), written by commit bab7e90 (the last commit before the redesign):
``store_written_by_0.1.0.sqlite``: ``workbench.sweep("digits-cnn", GRID, memory=False)``;
``frame_written_by_0.1.0.json``: that code's ``ResultStore.to_frame()`` of it, as
``df.to_json(orient="split", double_precision=15, default_handler=str)``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import workbench
from workbench.measurement.record import library_versions
from workbench.sweeps.units import units

DATA = Path(__file__).parent / "data"
GRID = dict(prune=[0, 0.5], structure=["unstructured", "channel"], bits=[32, 8], recover=[None],
            devices=["raspberry-pi-4"], limit=64)


@pytest.fixture
def old_store(tmp_path):
    return shutil.copy(DATA / "store_written_by_0.1.0.sqlite", tmp_path / "old.sqlite")


def test_the_old_store_reads_back_identically(old_store):
    with workbench.ResultStore(old_store) as store:
        df = store.to_frame()
    expected = (DATA / "frame_written_by_0.1.0.json").read_text()
    assert len(df) == 6
    assert df.to_json(orient="split", double_precision=15, default_handler=str) == expected


def test_todays_code_derives_the_stored_keys(old_store):
    with workbench.ResultStore(old_store) as store:
        rows = store.rows()
    stored = {r["key"] for r in rows}
    # The key hashes the library versions of the run that wrote it; take them from the rows, so this checks
    # everything else the key hashes (model fingerprint, task, variant configs, runtime, device, settings).
    versions = {**json.loads(rows[0]["versions"]), "workbench": "0.1.0"}
    task = workbench.zoo.load("digits-cnn")
    derived = {k for u in units(task, workbench.grid(**GRID), versions) for _, k in u.row_keys}
    assert derived == stored


def test_an_old_sweep_resumes_without_recomputing(old_store):
    with workbench.ResultStore(old_store) as store:
        stored_versions = json.loads(store.rows()[0]["versions"])
    if stored_versions != library_versions():
        pytest.skip(f"library versions changed since the fixture was written ({stored_versions} -> "
                    f"{library_versions()}): stored keys rightly differ")
    computed = []
    df = workbench.sweep("digits-cnn", workbench.grid(**GRID), store=old_store, progress=False, memory=False,
                         on_result=computed.append)
    assert computed == []
    assert sorted(df["variant"]) == sorted(["baseline", "q8", "unstructured-0.50", "unstructured-0.50+q8",
                                            "channel-0.50", "channel-0.50+q8"])


def test_todays_estimates_of_the_float_variants_match_the_stored_ones(old_store):
    """The roofline, its formula text and the model facts are recomputed, not read back: they must not drift."""
    from workbench.sweeps.frame import spec_of_row

    task = workbench.zoo.load("digits-cnn")
    with workbench.ResultStore(old_store) as store:
        rows = [r for r in store.rows() if r["bits"] == 32]
    assert {r["variant"] for r in rows} == {"baseline", "unstructured-0.50", "channel-0.50"}
    for row in rows:
        variant = workbench.compress(task.model, *spec_of_row(row).configs(), task=task)
        est = workbench.estimate(variant, row["device"]).to_row()
        for col in ("latency_ms_est", "energy_mj_est", "power_w_est"):
            assert est[col] == pytest.approx(row[col], rel=1e-9), (row["variant"], col)
        assert (est["formula"], est["fits"], est["dtype_est"]) == (row["formula"], row["fits"], row["dtype_est"])
        assert variant.num_params == row["params"], row["variant"]
