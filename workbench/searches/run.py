"""`search`: a multi-objective, constraint-aware search over a `Space`, on Optuna, measured through the sweep's
own spine and stored in the sweep's own results store.

Each trial is one variant on one runtime: Optuna suggests the choices, `Space.point` turns them into a
`VariantSpec`, and the unit is built and measured exactly as `sweep` does (`workbench.sweeps.units.run_unit`),
under the same store key, so a point a sweep (or an earlier search) measured is read back, never measured again.
The Optuna study lives in a journal file beside the store (``results.optuna.log`` for ``results.sqlite``), so a
search killed at any moment resumes: finished trials are kept, a trial that was running is asked again (its
measurement, if it reached the store, is read back), and `n_trials` is the study's total, so re-running a
finished search measures nothing and returns the same trials.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd

from workbench.core.errors import WorkbenchError
from workbench.searches.space import Space
from workbench.sweeps.spec import Grid

CONSTRAINTS = ("device", "runtime", "min_accuracy", "max_metric", "max_latency_ms", "max_energy_mj", "max_size_bytes",
               "max_memory_bytes", "must_fit", "realized_only")
"""The keys a `constraints` dict takes: `workbench.best`'s (with the same meaning)."""


def _nsga2(seed: int, n_trials: int) -> Any:
    import optuna

    # Optuna's default population (50) would make a 30-trial search one random generation; a third of the
    # budget (8 to 50) leaves three generations or more to select and recombine.
    return optuna.samplers.NSGAIISampler(population_size=max(8, min(50, n_trials // 3)), seed=seed)


def _tpe(seed: int, n_trials: int) -> Any:
    import optuna

    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(10, n_trials // 3), multivariate=True)


def _random(seed: int, n_trials: int) -> Any:
    import optuna

    return optuna.samplers.RandomSampler(seed=seed)


SAMPLERS: dict[str, Callable[[int, int], Any]] = {"nsga2": _nsga2, "tpe": _tpe, "random": _random}
"""Samplers by name; `search` also takes any `optuna.samplers.BaseSampler`. Constraints reach them through
``Trial.set_constraint`` (Optuna 5), so infeasible trials rank after feasible ones."""


def default_objectives(task: Any) -> dict[str, str]:
    """The task's metric (its direction), measured median latency and artefact size (both minimised)."""
    from workbench.sweeps.frame import LOWER_IS_BETTER

    return {task.metric: "min" if task.metric in LOWER_IS_BETTER else "max", "latency_ms_p50": "min",
            "size_bytes": "min"}


def _check(objectives: Mapping[str, str], constraints: Mapping[str, Any], n_trials: Any) -> None:
    if not isinstance(objectives, Mapping) or not objectives:
        raise WorkbenchError("search: objectives is a dict {column: 'min' | 'max'}, e.g. "
                             "{'accuracy': 'max', 'latency_ms_p50': 'min'}")
    bad = {c: d for c, d in objectives.items() if d not in ("min", "max")}
    if bad:
        raise WorkbenchError(f"search: each objective is 'min' or 'max', got {bad}")
    unknown = sorted(set(constraints) - set(CONSTRAINTS))
    if unknown:
        raise WorkbenchError(f"search: unknown constraint(s) {unknown}; known: {', '.join(CONSTRAINTS)}")
    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
        raise WorkbenchError(f"search: n_trials must be a positive integer (the study's total), got {n_trials!r}")


def study_path(store: Any) -> Path | None:
    """Where the Optuna study of a store lives: ``<store stem>.optuna.log`` beside it (None: in memory)."""
    path = getattr(store, "path", None)
    return None if path is None else path.with_suffix(".optuna.log")


def open_study(store: Any, name: str, directions: list[str], sampler: Any) -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    path = study_path(store)
    if path is None:
        storage: Any = optuna.storages.InMemoryStorage()
    else:
        from optuna.storages.journal import JournalFileBackend

        storage = optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    return optuna.create_study(study_name=name, storage=storage, directions=directions, sampler=sampler,
                               load_if_exists=True)


def counted(t: Any, skip: set[int]) -> bool:
    """A finished trial that counts toward `n_trials` (not one of `skip`, those a killed search left unfinished)."""
    from optuna.trial import TrialState

    return t.state in (TrialState.COMPLETE, TrialState.FAIL) and t.number not in skip


def interrupted(study: Any) -> set[int]:
    """The trial numbers a killed search left running (failed on resume; they do not count)."""
    return set(study.user_attrs.get("interrupted", []))


def _recover_interrupted(study: Any) -> None:
    """Trials a killed search left running: failed (not counted), and their choices asked again first."""
    from optuna.trial import TrialState

    stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    if not stale:
        return
    study.set_user_attr("interrupted", sorted(interrupted(study) | {t.number for t in stale}))
    for t in stale:
        study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)
        study.enqueue_trial(t.params, skip_if_exists=False)


def search(
    task: Any,
    space: Space | Grid | None = None,
    *,
    objectives: Mapping[str, str] | None = None,
    constraints: Mapping[str, Any] | None = None,
    n_trials: int = 30,
    sampler: Any = "nsga2",
    store: Any = "results.sqlite",
    executor: Any = "serial",
    workers: int | None = None,
    seed: int = 0,
    progress: bool = True,
    on_trial: Callable[[dict[str, Any]], None] | None = None,
    memory: bool = True,
) -> pd.DataFrame:
    """Search `space` for the variants that trade `objectives` best, under `constraints`, with `n_trials` trials.

    Args:
        task: a `Task` or zoo task name.
        space: a `workbench.Space`, or a grid (searched as `Space.from_grid`); default `Space()`.
        objectives: ``{column: "min" | "max"}``; default: the task's metric, ``latency_ms_p50`` and
            ``size_bytes`` (`default_objectives`).
        constraints: `workbench.best`'s keys: ``min_accuracy`` (or ``max_metric`` for perplexity),
            ``max_latency_ms``, ``max_energy_mj``, ``max_size_bytes``, ``max_memory_bytes``, ``must_fit``, plus
            ``device`` (its rows: latency budgets use its *estimate*, ``must_fit`` its memory; added to the
            space's devices if missing), ``runtime`` and ``realized_only`` (default False here: a simulated
            variant's file is the float model, so its size and latency rarely win anyway).
        n_trials: the study's total: a resumed search runs only the rest; a finished one measures nothing.
        sampler: ``"nsga2"`` (NSGA-II, default), ``"tpe"`` (multi-objective TPE), ``"random"`` or an
            ``optuna.samplers`` instance. Constraints steer NSGA-II and TPE (infeasible trials rank last).
        store: the results store (shared with `sweep`), a path, or None (in memory: no resume).
        executor: ``"serial"``, ``"processes"``, ``"dask"`` (a new `LocalCluster`), a scheduler address or a
            ``dask.distributed.Client``. Parallel workers time one at a time (`workbench.searches.parallel`).
        workers: parallel trials (default: the CPU count).
        seed: the sampler's seed: a serial search with noise-free objectives (metric, size) repeats exactly;
            with measured latency the first generation repeats and later ones follow the measurements.
        progress: a progress bar over trials.
        on_trial: called with each finished trial as a dict (``trial``, ``variant``, ``runtime``, ``values``,
            ``feasible``, ``cached``, ``error``), for live displays.
        memory: measure each variant's peak memory (as `sweep`).

    Returns:
        The rows of every variant the study tried, as `sweep` returns them, plus ``trial`` (the first trial
        that asked for it), ``feasible`` (meets every constraint) and ``pareto`` (non-dominated on `objectives`
        among the feasible rows of the objective device). ``df.attrs``: ``study``, ``objectives``,
        ``constraints``, ``trials`` (the study's count), ``evaluated`` (measured by this call), ``device``.

    Example:
        >>> s = workbench.Space(prune=[0, 0.5], structure="channel", bits=[32, 8, 4])
        >>> df = workbench.search("digits-cnn", s, objectives={"accuracy": "max", "size_bytes": "min"},
        ...                       n_trials=6, store="r.sqlite", progress=False, memory=False)
        >>> df.attrs["trials"], sorted(df.columns[df.columns.isin(["trial", "feasible", "pareto"])])
        (6, ['feasible', 'pareto', 'trial'])
        >>> workbench.search("digits-cnn", s, objectives={"accuracy": "max", "size_bytes": "min"}, n_trials=6,
        ...                  store="r.sqlite", progress=False, memory=False).attrs["evaluated"]
        0
    """
    from workbench import zoo
    from workbench.measurement.record import library_versions
    from workbench.searches.parallel import open_pool
    from workbench.sweeps.run import check_devices, workbench_version
    from workbench.sweeps.store import ResultStore, open_store

    task = zoo.load(task) if isinstance(task, str) else task
    space = Space() if space is None else Space.from_grid(space) if isinstance(space, Grid) else space
    if not isinstance(space, Space):
        raise WorkbenchError(f"search: space is a workbench.Space or a grid, got {type(space).__name__}")
    objectives = dict(objectives or default_objectives(task))
    constraints = dict(constraints or {})
    _check(objectives, constraints, n_trials)
    device = constraints.get("device")
    if device is not None and device not in space.devices:
        from dataclasses import replace

        space = replace(space, devices=(*space.devices, device))
    g = space.grid
    check_devices(g)
    if task.train_inputs is None and any(r for r in space.recover):
        raise WorkbenchError(f"search: {task.name} has no training split, so recover must be [None]")
    versions = {**library_versions(), "workbench": workbench_version()}
    name = "search-" + hashlib.sha256(json.dumps(
        [task.model.fingerprint, task.name, space.to_json(), objectives, constraints,
         sampler if isinstance(sampler, str) else type(sampler).__name__, seed], sort_keys=True, default=str
    ).encode()).hexdigest()[:16]
    if isinstance(sampler, str):
        if sampler not in SAMPLERS:
            raise WorkbenchError(f"search: unknown sampler {sampler!r}; use one of {', '.join(SAMPLERS)} or an "
                                 "optuna.samplers instance")
        sampler = SAMPLERS[sampler](seed, n_trials)
    st = open_store(store)
    study = open_study(st, name, [("maximize" if d == "max" else "minimize") for d in objectives.values()], sampler)
    run = _Run(task, space, g, versions, st, study, objectives, constraints, on_trial)
    try:
        _recover_interrupted(study)
        if not study.trials:
            run.enqueue_start()
        skip = interrupted(study)
        done = sum(counted(t, skip) for t in study.get_trials(deepcopy=False))
        bar = _progress(progress, total=n_trials, initial=min(done, n_trials), desc=f"search {task.name}")
        pool = open_pool(executor, task, g, workers, memory) if done < n_trials else None
        try:
            if pool is not None:
                run.loop(pool, n_trials - done, bar)
        finally:
            if pool is not None:
                pool.close()
            if bar is not None:
                bar.close()
        df = run.frame()
    finally:
        if not isinstance(store, ResultStore):
            st.close()
    return df


def _progress(enabled: bool, **kw: Any) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(unit="trial", dynamic_ncols=True, **kw)


class _Run:
    """One search call's state: asks trials, sends units to the pool, reads rows back, tells the study."""

    def __init__(self, task: Any, space: Space, g: Grid, versions: dict, st: Any, study: Any,
                 objectives: dict[str, str], constraints: dict[str, Any], on_trial: Any) -> None:
        from workbench.searches.feasibility import Feasibility

        self.task, self.space, self.g, self.versions, self.st, self.study = task, space, g, versions, st, study
        self.objectives, self.constraints, self.on_trial = objectives, constraints, on_trial
        self.feasibility = Feasibility(task, constraints)
        self.device = constraints.get("device") or (g.devices[0] if g.devices else None)
        self.evaluated = 0
        self.dims = {k: v for k, v in space.dimensions().items() if len(v) > 1}

    def enqueue_start(self) -> None:
        """The first trials of a new study: the original model (when the space holds it), the reference every later
        trial is read against, and in a per-layer space every *uniform* assignment (all free layers at 8 bits, all
        at 4, ...): the variants a grid would give, from which NSGA-II's recombination mixes per-layer ones."""
        dims = self.space.dimensions()
        if 0.0 in dims["prune"] and 32 in dims["bits"] and not self.space.layer_bits and not self.space.layer_prune:
            self.study.enqueue_trial({k: v for k, v in {"prune": 0.0, "bits": 32}.items() if k in self.dims})
        for kind in ("layer_bits", "layer_prune"):
            free = {k: c for k, c in self.dims.items() if k.startswith(kind + ":")}
            for v in dict.fromkeys(v for c in free.values() for v in c):
                self.study.enqueue_trial({k: v for k, c in free.items() if v in c})

    def unit(self, params: Mapping[str, Any]) -> Any:
        from workbench.sweeps.units import unit_of

        return unit_of(self.task, self.space.point(params), self.space.runtime_of(params), self.g, self.versions)

    def loop(self, pool: Any, todo: int, bar: Any) -> None:
        waiting: dict[str, list[Any]] = {}  # unit key -> trials waiting for it
        while todo > 0 or waiting:
            while todo > 0 and len(waiting) < pool.capacity:
                trial = self.study.ask()
                params = {k: trial.suggest_categorical(k, list(c)) for k, c in self.dims.items()}
                u = self.unit(params)
                trial.set_user_attr("unit", u.key)
                trial.set_user_attr("variant", u.spec.label)
                todo -= 1
                if len(self.st.present(k for _, k in u.row_keys)) == len(u.row_keys):
                    self.finish(trial, u, cached=True, bar=bar)
                elif u.key in waiting:
                    waiting[u.key].append(trial)
                else:
                    waiting[u.key] = [trial]
                    pool.submit(u)
            if waiting:
                u, rows = pool.next_done()
                self.store(u, rows)
                self.evaluated += 1
                for trial in waiting.pop(u.key):
                    self.finish(trial, u, cached=False, bar=bar)

    def store(self, u: Any, rows: list[dict[str, Any]]) -> None:
        from workbench.sweeps.run import rows_by_device

        keyed = [{**r, "key": k, "unit": u.key, "task": self.task.name}
                 for r, (_, k) in zip(rows_by_device(rows, u), u.row_keys)]
        self.st.add(keyed)

    def row(self, u: Any) -> dict[str, Any]:
        by = {r.get("device"): r for r in self.st.rows(k for _, k in u.row_keys)}
        return by.get(self.device) or next(iter(by.values()))

    def finish(self, trial: Any, u: Any, *, cached: bool, bar: Any) -> None:
        from optuna.trial import TrialState

        row = self.row(u)
        values = [pd.to_numeric(row.get(c), errors="coerce") for c in self.objectives]
        error = row.get("error") or None
        missing = [c for c, v in zip(self.objectives, values) if v is None or not np.isfinite(v)]
        if not error and missing:
            error = f"no value for objective(s) {missing}"
        cons = self.feasibility.values(row) if not error else [1.0] * max(1, self.feasibility.count)
        trial.set_user_attr("constraints", cons)
        if self.feasibility.count:
            for i, c in enumerate(cons):
                trial.set_constraint(f"c{i}", float(c))
        trial.set_user_attr("cached", cached)
        if error:
            trial.set_user_attr("error", str(error))
            self.study.tell(trial, state=TrialState.FAIL)
        else:
            self.study.tell(trial, [float(v) for v in values])
        if bar is not None:
            bar.set_postfix_str(f"{u.spec.label}{' (stored)' if cached else ''}", refresh=False)
            bar.update(1)
        if self.on_trial is not None:
            self.on_trial({"trial": trial.number, "variant": u.spec.label, "runtime": u.runtime,
                           "values": dict(zip(self.objectives, values)), "feasible": not error and all(
                               c <= 0 for c in cons), "cached": cached, "error": error, "row": row})

    def frame(self) -> pd.DataFrame:
        from workbench.sweeps.units import row_keys

        skip = interrupted(self.study)
        trials = [t for t in self.study.get_trials(deepcopy=False) if counted(t, skip) and "unit" in t.user_attrs]
        first: dict[str, int] = {}
        for t in sorted(trials, key=lambda t: t.number):
            first.setdefault(t.user_attrs["unit"], t.number)
        df = self.st.to_frame(k for u in first for _, k in row_keys(u, self.g))
        if len(df):
            df["trial"] = df["unit"].map(first).astype(int)
            df = df.sort_values(["trial", "device"] if "device" in df else ["trial"], kind="stable",
                                na_position="first").reset_index(drop=True)
        df = self.feasibility.mark(df)
        df["pareto"] = self._front(df)
        df.attrs.update(study=self.study.study_name, objectives=dict(self.objectives),
                        constraints=dict(self.constraints), trials=len(trials), evaluated=self.evaluated,
                        device=self.device)
        return df

    def _front(self, df: pd.DataFrame) -> pd.Series:
        from workbench.sweeps.analysis import pareto_mask
        from workbench.sweeps.frame import error_mask

        if not len(df):
            return pd.Series(False, index=df.index, dtype=bool)
        on = pd.Series(True, index=df.index)
        if "device" in df:
            on = df["device"] == self.device if self.device is not None else df["device"].isna()
        on &= df["feasible"] & ~error_mask(df)
        signs = np.array([1.0 if d == "max" else -1.0 for d in self.objectives.values()])
        cols = [c for c in self.objectives if c in df]
        if len(cols) < len(self.objectives):
            return pd.Series(False, index=df.index, dtype=bool)
        v = df[cols].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float) * signs
        v[~on.to_numpy()] = np.nan
        return pd.Series(pareto_mask(v), index=df.index)
