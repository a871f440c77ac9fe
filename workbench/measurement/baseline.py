"""The main job for now: load a task and measure its unmodified model on every runtime, side by side.

Every figure comes from `workbench.measurement.record.measure` (one `Measurement` per runtime); this module
only lays them out as a table.
"""

from __future__ import annotations

import platform
from typing import Callable, Sequence

import pandas as pd

from workbench.core.errors import WorkbenchError
from workbench.measurement.record import measure
from workbench.runtimes import available_runtimes, runtime
from workbench.task import Task


def baseline(
    task: Task,
    *,
    runtimes: Sequence[str] | None = None,
    threads: int | None = 1,
    limit: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Evaluate and time the task's original model on each runtime.

    Every figure is measured here: the task metric(s) on the evaluation split, the size of the file the
    runtime loads, and batch-1 latency (median / p90 over repeated calls after warm-up).

    Args:
        task: a `Task` (e.g. `workbench.zoo.load()`).
        runtimes: runtimes to use (default: every available one).
        threads: intra-op threads for every runtime (1 by default: comparable, and typical of small devices).
        limit: evaluate only the first `limit` samples (a quick look); `None` for the whole split.
        progress: called with a short message before each step.

    Returns:
        One row per runtime: `runtime`, `version`, the metrics (each with its 95 % interval,
        ``<metric>_low`` / ``<metric>_high``), `latency_ms_p50`, `latency_ms_p90`, `reps`,
        `threads`, `size_bytes`, `artifact`.

    Raises:
        WorkbenchError: a runtime could not run the model (the `Measurement`'s error).

    Example:
        >>> table = baseline(task, runtimes=["onnxruntime"], limit=50)
        >>> list(table.columns[:6]), len(table)
        (['runtime', 'version', 'accuracy', 'accuracy_low', 'accuracy_high', 'latency_ms_p50'], 1)
    """
    rows = []
    for name in runtimes or available_runtimes():
        if progress:
            progress(f"{task.name}: preparing {name} (converts and caches on first use)")
        # The runner says which library version runs the model and which file it loads (none for a torch
        # model in memory); `measure` evaluates and times it.
        run = runtime(task.model, name, threads=threads)
        if progress:
            progress(f"{task.name}: evaluating on {name}")
        m = measure(task.model, task, runtime=name, threads=threads, batch=1, memory=False, limit=limit)
        if m.error:
            raise WorkbenchError(f"baseline: {task.name} on {name}: {m.error}")
        rows.append({
            "runtime": name,
            "version": run.version,
            **m.metrics,
            "latency_ms_p50": m.latency_ms_p50,
            "latency_ms_p90": m.latency_ms_p90,
            "reps": m.reps,
            "threads": m.threads,
            "batch": m.batch,
            "size_bytes": run.artifact.stat().st_size if run.artifact else None,
            "artifact": str(run.artifact) if run.artifact else "(in memory)",
        })
    df = pd.DataFrame(rows)
    df.attrs.update(task=task.name, metric=task.metric, machine=platform.processor() or platform.machine())
    return df


def format_table(df: pd.DataFrame) -> str:
    """A compact text table for the terminal."""
    show = df.drop(columns=["artifact"]).copy()
    for col in show.columns:
        if col.startswith("latency"):
            show[col] = show[col].map(lambda v: f"{v:.3f}")
        elif show[col].dtype.kind == "f" and col not in ("size_bytes",):
            show[col] = show[col].map(lambda v: f"{v:.4f}")
    if "size_bytes" in show:
        show["size_bytes"] = df["size_bytes"].map(lambda v: "-" if pd.isna(v) else f"{int(v):,}")
    return show.to_string(index=False)
