"""A results frame without a sweep: measure a few variants and lay them out as a sweep does.

For notebooks and tests that want the figures, `best` or the report without running (and storing) a sweep. The
columns follow the results-frame contract of `workbench.sweeps.frame`.
"""

from __future__ import annotations

import hashlib
from typing import Any, Sequence

import pandas as pd

from workbench.core.errors import WorkbenchError
from workbench.sweeps.frame import config_columns

KEY_FIRST = ["key", "task", "variant", "prune", "structure", "bits", "recover", "runtime", "device"]


def is_original(handle: Any, task: Any) -> bool:
    """True when `handle` is the task's original model (no compression applied)."""
    model = task.model
    return handle is model or (not getattr(handle, "lineage", ())
                                and getattr(handle, "fingerprint", None) == model.fingerprint)


def results_frame(
    task: Any,
    variants: Sequence[Any],
    *,
    runtimes: Sequence[str] = ("onnxruntime",),
    devices: Sequence[str] = (),
    threads: int | None = 1,
    limit: int | None = None,
    memory: bool = False,
    progress: bool = False,
) -> pd.DataFrame:
    """Measure a few variants and return them in the sweep's results-frame layout (no store, no caching).

    Every variant is measured with `workbench.measure` on every runtime, with estimates for `devices`, and the
    config columns (`prune`, `structure`, `bits`, `recover`), `key` and ``baseline_<metric>`` are added. As in
    a sweep, ``baseline_<metric>`` is the task's original model measured on the *same runtime* (taken from
    `variants` when the original is one of them, else measured once per runtime).

    Args:
        task: the task (its model is the baseline).
        variants: handles, e.g. ``[task.model, workbench.compress(task.model, Prune(0.5))]``.
        runtimes: runtimes to measure on.
        devices: device profiles to estimate for (one row per device).
        threads: intra-op threads.
        limit: evaluate on the first `limit` samples only.
        memory: also measure peak memory (a child process per variant, ~1 s each).
        progress: a progress bar.

    Returns:
        One row per variant x runtime x device: ``key``, ``task``, the config columns, ``runtime``, ``device``,
        then every `Measurement` column and ``baseline_<metric>``.

    Example:
        >>> df = results_frame(task, [task.model], devices=["raspberry-pi-4"], limit=100)
        >>> df[["variant", "runtime", "device"]].values.tolist()
        [['baseline', 'onnxruntime', 'raspberry-pi-4']]
        >>> bool(df["baseline_accuracy"].iloc[0] == df["accuracy"].iloc[0])
        True
    """
    from tqdm.auto import tqdm

    from workbench.core.intervals import interval_of
    from workbench.measurement.record import measure, to_frame

    if not variants:
        raise WorkbenchError("results_frame: no variants given; pass e.g. [task.model].")
    frames = []
    base: dict[str, dict[str, float]] = {}
    names: dict[str, None] = {}
    bar = tqdm(total=len(variants) * len(runtimes), desc="measure", disable=not progress, leave=False)
    for handle in variants:
        configs = config_columns(handle)
        for rt in runtimes:
            m = measure(handle, task, runtime=rt, threads=threads, devices=devices, memory=memory, limit=limit)
            names.update(dict.fromkeys(m.metrics))
            if rt not in base and not m.error and is_original(handle, task):
                base[rt] = dict(m.metrics)
            frame = to_frame([m])
            for col, value in configs.items():
                frame[col] = [value] * len(frame)
            fp = getattr(handle, "fingerprint", "")
            frame["key"] = [hashlib.sha256(f"{task.name}|{fp}|{rt}|{dev}".encode()).hexdigest()[:16]
                            for dev in frame["device"]]
            frames.append(frame)
            bar.update()
    bar.close()
    for rt in runtimes:
        if rt not in base:  # the original model was not among the variants: measure it on this runtime
            m = measure(task.model, task, runtime=rt, threads=threads, memory=False, limit=limit)
            base[rt] = {} if m.error else dict(m.metrics)
            names.update(dict.fromkeys(base[rt]))
    df = pd.concat(frames, ignore_index=True)
    for name in (n for n in names if not interval_of(n, names)):  # intervals bound a metric, they get no baseline
        df[f"baseline_{name}"] = [base.get(rt, {}).get(name, float("nan")) for rt in df["runtime"]]
    return df[KEY_FIRST + [c for c in df.columns if c not in KEY_FIRST]]


__all__ = ["KEY_FIRST", "is_original", "results_frame"]
