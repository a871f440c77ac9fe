"""What several commands share: a `Task` for a bare model file."""

from __future__ import annotations

from workbench.core.errors import WorkbenchError


def task_for_file(path: str):
    """A `Task` for a model file with random inputs of its static shape (fidelity to itself, no labels)."""
    import numpy as np

    from workbench.formats.loader import load
    from workbench.task import Task

    handle = load(path)
    rng = np.random.default_rng(0)
    arrays = []
    for s in handle.inputs:
        if s.shape is None or s.dtype is None or any(d is None for d in s.shape[1:]):
            raise WorkbenchError(f"{path}: input {s.describe()} has no static shape; measure it from Python "
                                 "with workbench.Task.from_model(handle, inputs).")
        shape = (16, *s.shape[1:])
        arrays.append(rng.standard_normal(shape).astype(s.dtype) if np.dtype(s.dtype).kind == "f"
                      else np.zeros(shape, s.dtype))
    return Task.from_model(handle, arrays)


def write_rows(df, out: str) -> None:
    """Write a results frame to ``.parquet`` or (any other suffix) CSV, and say so."""
    (df.to_parquet(out, index=False) if out.endswith(".parquet") else df.to_csv(out, index=False))
    print(f"\nwrote {out}")
