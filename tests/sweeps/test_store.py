"""The results store: append-only, no duplicates, survives reopening, exports, refuses non-stores."""

from __future__ import annotations

import sqlite3

import pandas as pd
import pytest

from workbench.core.errors import WorkbenchError
from workbench.sweeps.store import ResultStore


def _rows(n, unit="u1"):
    return [{"key": f"k{i}", "unit": unit, "task": "t", "variant": f"v{i}", "runtime": "onnxruntime",
             "accuracy": 0.5 + i / 100, "error": None} for i in range(n)]


def test_add_is_idempotent_and_reports_only_new_rows(tmp_path):
    with ResultStore(tmp_path / "r.sqlite") as st:
        assert len(st.add(_rows(3))) == 3
        new = st.add(_rows(5))
        assert [r["key"] for r in new] == ["k3", "k4"]
        assert len(st) == 5
        assert st.present(["k0", "k4", "nope"]) == {"k0", "k4"}


def test_rows_survive_reopening_and_keep_their_creation_time(tmp_path):
    path = tmp_path / "r.sqlite"
    with ResultStore(path) as st:
        st.add(_rows(2))
        created = [r["created"] for r in st.rows()]
    with ResultStore(path) as st:
        st.add(_rows(2))  # the same rows again: nothing changes
        assert [r["created"] for r in st.rows()] == created
        df = st.to_frame()
    assert list(df["variant"]) == ["v0", "v1"]
    assert list(df.columns[:2]) == ["task", "variant"]


def test_numpy_and_nan_values_are_stored_as_plain_json(tmp_path):
    import numpy as np

    with ResultStore(tmp_path / "r.sqlite") as st:
        st.add([{"key": "a", "unit": "u", "task": "t", "x": np.float32(1.5), "n": np.int64(3), "bad": float("nan"),
                 "ok": np.bool_(True)}])
        row = st.rows()[0]
    assert row["x"] == 1.5 and row["n"] == 3 and row["bad"] is None and row["ok"] is True


def test_export_csv_and_parquet(tmp_path):
    with ResultStore(tmp_path / "r.sqlite") as st:
        st.add(_rows(3))
        st.export(tmp_path / "r.csv")
        st.export(tmp_path / "r.parquet")
        with pytest.raises(WorkbenchError, match="csv or .parquet"):
            st.export(tmp_path / "r.xlsx")
    assert list(pd.read_csv(tmp_path / "r.csv")["accuracy"]) == [0.5, 0.51, 0.52]
    assert list(pd.read_parquet(tmp_path / "r.parquet")["key"]) == ["k0", "k1", "k2"]


def test_a_file_that_is_not_a_store_is_refused_and_left_alone(tmp_path):
    bogus = tmp_path / "notes.sqlite"
    bogus.write_bytes(b"this is not a database at all" * 100)
    before = bogus.read_bytes()
    with pytest.raises(WorkbenchError, match="not a results store"):
        ResultStore(bogus)
    assert bogus.read_bytes() == before
    with pytest.raises(WorkbenchError, match="directory"):
        ResultStore(tmp_path)


def test_a_transaction_is_all_or_nothing(tmp_path):
    """A unit's rows are written in one transaction: a failure half-way leaves none of them."""
    with ResultStore(tmp_path / "r.sqlite") as st:
        rows = _rows(3, unit="u2")
        rows[2] = {"key": "k2", "unit": None, "task": "t"}  # NOT NULL violation on the third row
        with pytest.raises(sqlite3.IntegrityError):
            st.add(rows)
        assert len(st) == 0
