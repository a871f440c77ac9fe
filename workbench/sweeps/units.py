"""Units of sweep work: one variant on one runtime, its store keys, and how a worker builds and measures it.

A worker never receives a live model: it gets a `TaskRef` and loads the task itself (once per process).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from dataclasses import dataclass
from typing import Any

from workbench.sweeps.frame import spec_columns
from workbench.sweeps.spec import Grid, VariantSpec

# Bump when a change to the measuring code should invalidate stored results.
SCHEMA_VERSION = 2


@dataclass(frozen=True)
class TaskRef:
    """How a worker process gets the task: a zoo name, or a model file plus evaluation arrays.

    Workers load the task themselves from this small picklable spec; a live model object never travels.
    """

    zoo: str | None = None
    model_path: str | None = None
    inputs: tuple[Any, ...] = ()
    labels: Any = None
    name: str | None = None

    def load(self) -> Any:
        from workbench import zoo
        from workbench.task import Task

        if self.zoo:
            return zoo.load(self.zoo)
        return Task.from_model(self.model_path, list(self.inputs), self.labels, name=self.name)


def task_ref(task: Any) -> TaskRef | None:
    """A spec workers can load the task from, or None when only this process can run it."""
    from workbench import zoo

    if task.name in zoo.names() and zoo.load(task.name) is task:
        return TaskRef(zoo=task.name)
    path = task.model.path
    if path is not None and not task.model.lineage and os.path.exists(path):
        return TaskRef(model_path=str(path), inputs=tuple(task.eval_inputs), labels=task.eval_labels, name=task.name)
    return None


@dataclass(frozen=True)
class Unit:
    """One variant on one runtime, with the store keys of its rows (one per device, or one)."""

    spec: VariantSpec
    runtime: str
    key: str
    row_keys: tuple[tuple[str | None, str], ...]


def unit_hash(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


def units(task: Any, g: Grid, versions: dict[str, str]) -> list[Unit]:
    """Every variant × runtime of the grid, keyed by everything that determines its result."""
    return [unit_of(task, spec, rt, g, versions) for spec in g.variants for rt in g.runtimes]


def unit_of(task: Any, spec: VariantSpec, runtime: str, g: Grid, versions: dict[str, str]) -> Unit:
    """One variant on one runtime with its store keys: the grid gives the measurement settings and devices, so a
    search point (`workbench.search`) and the same point of a sweep share their keys and stored rows."""
    settings = {"threads": g.threads, "limit": g.limit, "scope": g.scope, "schema": SCHEMA_VERSION}
    key = unit_hash(task.model.fingerprint, task.name, spec.to_dict(), runtime, settings, versions)
    return Unit(spec, runtime, key, row_keys(key, g))


def row_keys(unit_key: str, g: Grid) -> tuple[tuple[str | None, str], ...]:
    """``(device, store key)`` of each row of a unit: one per device of `g`, or the single device-less row."""
    return tuple((d, unit_hash(unit_key, d)) for d in (list(g.devices) or [None]))


def run_unit(task: Any, spec: VariantSpec, runtime: str, g: Grid, *, memory: bool = True) -> list[dict[str, Any]]:
    """Build and measure one variant on one runtime; returns its rows (errors become rows, never exceptions).

    The pruned (+ recovered) model and the ONNX trace are shared with the variant's siblings
    (`workbench.sweeps.shared`); latency is timed within `SWEEP_BUDGET`; peak memory comes from a forked
    pre-started process where the runtime allows it (`workbench.sweeps.memory`).
    """
    from workbench.core.errors import first_line
    from workbench.core.lm import is_language_model
    from workbench.measurement.latency import SWEEP_BUDGET, latency_budget
    from workbench.measurement.record import Measurement, measure
    from workbench.sweeps.memory import FORK_SAFE, PROBES
    from workbench.sweeps.shared import ONNX_RUNTIMES, build_variant, share_onnx

    t0 = time.perf_counter()
    try:
        variant = build_variant(task, spec.configs(scope=g.scope))
    except Exception as e:  # noqa: BLE001 - a variant that cannot be built is a stored row, the sweep goes on
        m = Measurement(variant=spec.label, runtime=runtime, threads=g.threads, batch=1, task=task.name,
                        error=f"compress: {type(e).__name__}: {first_line(e)}")
        rows = m.rows()
        if g.devices:
            rows = [{**rows[0], "device": d} for d in g.devices]
    else:
        if runtime in ONNX_RUNTIMES:
            share_onnx(variant)
        forked = memory and runtime in FORK_SAFE and not is_language_model(variant)
        with latency_budget(SWEEP_BUDGET):
            m = measure(variant, task, runtime=runtime, threads=g.threads, devices=g.devices, limit=g.limit,
                        memory=memory and not forked)
        if forked and m.artifact and not m.error:  # measure's sample: batch 1 of each example input
            m = dataclasses.replace(m, peak_mem_bytes=PROBES(runtime, m.artifact, [a[:1] for a in task.example_inputs],
                                                             g.threads))
        rows = m.rows()
    seconds = time.perf_counter() - t0
    return [{**r, **spec_columns(spec), "seconds": seconds} for r in rows]


_TASKS: dict[TaskRef, Any] = {}


def remote_unit(ref: TaskRef, spec: VariantSpec, runtime: str, g: Grid, memory: bool) -> list[dict[str, Any]]:
    """`run_unit` in a worker process: load the task from its spec (once per process) and run."""
    import torch

    torch.set_num_threads(g.threads)
    if ref not in _TASKS:
        _TASKS[ref] = ref.load()
    return run_unit(_TASKS[ref], spec, runtime, g, memory=memory)


def remote_family(ref: TaskRef, work: list[tuple[VariantSpec, str]], g: Grid, memory: bool) -> list[list[dict[str, Any]]]:
    """`remote_unit` for each (spec, runtime) of a family, in order, in one worker: the family's pruned
    (+ recovered) model is built once there and shared by its bit-widths."""
    return [remote_unit(ref, spec, runtime, g, memory) for spec, runtime in work]


def remote_prepare(ref: TaskRef, specs: list[VariantSpec], g: Grid) -> Any:
    """`workbench.sweeps.shared.prepare_family` in a helper process (the task loaded once per process)."""
    import torch

    from workbench.sweeps.shared import prepare_family

    torch.set_num_threads(g.threads)
    if ref not in _TASKS:
        _TASKS[ref] = ref.load()
    return prepare_family(_TASKS[ref], specs, g)
