"""The results store: append-only, crash-safe sweep results in one SQLite file.

Each row is keyed by a hash of everything that determines it (model fingerprint, task, variant configs,
runtime, device, measurement settings and library versions), so a repeated sweep computes nothing it already
has. A variant × runtime is written in one transaction once it is fully measured, and SQLite's write-ahead log
makes that commit atomic: a sweep killed at any point (SIGKILL included) loses at most the variant it was
measuring, never a stored row, and the primary key means nothing is ever stored twice.

SQLite from the standard library is the right tool here (a single file, safe concurrent readers, atomic
commits); rows are stored as JSON so new measurement columns need no schema migration. A row stored before a
column existed (``size_coded_bytes`` / ``size_entropy_bytes``, issue 20) simply lacks it: `to_frame` reads it as
NaN beside newer rows, or leaves the column out when no row has it, and the readers (`workbench.viz.sizes`, the
UI's detail rows) skip an empty column. `SCHEMA_VERSION` was not bumped for those columns, so stored rows are
reused, not re-measured; clear the store (or use a new one) to fill them in.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from workbench.core.errors import WorkbenchError
from workbench.sweeps.frame import frame, with_baseline

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    key     TEXT PRIMARY KEY,
    unit    TEXT NOT NULL,
    task    TEXT NOT NULL,
    created REAL NOT NULL,
    row     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS results_unit ON results (unit);
"""


def _plain(v: Any) -> Any:
    """JSON-safe scalars: numpy numbers to Python, NaN to None."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, (Path,)):
        return str(v)
    return v


class ResultStore:
    """Sweep results in a SQLite file (created on first use).

    Args:
        path: the ``.sqlite`` file, or ``":memory:"`` for a store that lives only as long as this object.

    Example:
        >>> store = ResultStore("results.sqlite")
        >>> df = store.to_frame()              # every stored row
        >>> store.export("results.parquet")    # or .csv
        PosixPath('results.parquet')
    """

    def __init__(self, path: str | Path = "results.sqlite") -> None:
        self.path = Path(path) if str(path) != ":memory:" else None
        if self.path is not None:
            if self.path.exists() and self.path.is_dir():
                raise WorkbenchError(f"results store {self.path} is a directory; give a file such as results.sqlite")
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(str(self.path) if self.path else ":memory:", timeout=60,
                                       check_same_thread=False)
            # WAL: readers never block the writer, and a commit is atomic even if the process is killed.
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as e:
            raise WorkbenchError(
                f"{self.path} is not a results store ({e}); pick another file name or delete it"
            ) from None

    def __repr__(self) -> str:
        return f"ResultStore({str(self.path) if self.path else ':memory:'!r}, rows={len(self)})"

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM results").fetchone()[0]

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def present(self, keys: Iterable[str]) -> set[str]:
        """The subset of `keys` already stored."""
        keys = list(keys)
        found: set[str] = set()
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            q = f"SELECT key FROM results WHERE key IN ({','.join('?' * len(chunk))})"
            found.update(k for (k,) in self._db.execute(q, chunk))
        return found

    def add(self, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Store rows (each with `key`, `unit`, `task`) in one transaction; returns the rows that were new."""
        now = time.time()
        new = []
        with self._db:  # one transaction: all of a unit's rows or none
            for r in rows:
                clean = {k: _plain(v) for k, v in r.items()}
                cur = self._db.execute(
                    # Only a duplicate key is skipped; any other violation aborts the whole transaction.
                    "INSERT INTO results (key, unit, task, created, row) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT(key) DO NOTHING",
                    (clean["key"], clean.get("unit"), clean.get("task") or "", now, json.dumps(clean, default=str)),
                )
                if cur.rowcount:
                    new.append(clean)
        return new

    def rows(self, keys: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Stored rows (all, or those with the given keys), oldest first."""
        if keys is None:
            cur = self._db.execute("SELECT row, created FROM results ORDER BY rowid")
            return [{**json.loads(r), "created": c} for r, c in cur]
        keys = list(keys)
        out = []
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            q = f"SELECT row, created FROM results WHERE key IN ({','.join('?' * len(chunk))}) ORDER BY rowid"
            out.extend({**json.loads(r), "created": c} for r, c in self._db.execute(q, chunk))
        return out

    def to_frame(self, keys: Iterable[str] | None = None) -> pd.DataFrame:
        """Stored rows as a DataFrame (config columns first, `baseline_<metric>` columns added)."""
        return with_baseline(frame(self.rows(keys)))

    def export(self, path: str | Path) -> Path:
        """Write every stored row to ``.csv`` or ``.parquet`` (by the suffix)."""
        from workbench.core.paths import atomic_write

        out = Path(path)
        df = self.to_frame()
        if out.suffix == ".csv":
            return atomic_write(out, lambda tmp: df.to_csv(tmp, index=False))
        if out.suffix == ".parquet":
            return atomic_write(out, lambda tmp: df.to_parquet(tmp, index=False))
        raise WorkbenchError(f"export to .csv or .parquet, not {out.suffix or 'a file without a suffix'!r}")


def open_store(store: ResultStore | str | Path | None) -> ResultStore:
    """A `ResultStore` from a store, a path, or None (in memory)."""
    if isinstance(store, ResultStore):
        return store
    return ResultStore(":memory:" if store is None else store)
