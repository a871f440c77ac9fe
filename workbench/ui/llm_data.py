"""Data for the language-model dashboard: a results store, or a small built-in sweep of a language model, cached.

`llm_results()` is what ``dashboards/llm_explorer.ipynb`` shows: ``results`` or ``$WORKBENCH_RESULTS`` when they
hold language-model rows (a ``perplexity`` column), otherwise the built-in variants of `builtin_variants` measured
with `workbench.measure` on each runtime, with device estimates, one variant at a time (so at most the original
and one variant are in memory), each stored as soon as it is measured in ``<workbench cache>/demo/llm-*.sqlite``:
a later page load reads the rows, an interrupted one resumes. ``WORKBENCH_FAST=1`` keeps it small (four variants,
torch only, short evaluation: the zoo task's own fast split).

Variants are identified by their label (compression is deterministic), so `variant_configs` turns a row back
into the configs that rebuild its model (for the chat box).
"""

from __future__ import annotations

import hashlib
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import pandas as pd

from workbench.core.env import fast_mode
from workbench.core.errors import WorkbenchError

LLM_DEVICES = ("raspberry-pi-4", "raspberry-pi-5", "jetson-orin-nano", "snapdragon-8-gen-2", "esp32-s3")
FAST_LLM_DEVICES = ("raspberry-pi-5", "jetson-orin-nano", "esp32-s3")


def _quantize(*args: Any, **kwargs: Any) -> Any:
    from workbench.compression import Quantize

    return Quantize(*args, **kwargs)


def builtin_variants(fast: bool | None = None) -> list[tuple[Any, ...]]:
    """The built-in sweep's variants, each a tuple of compression configs (``()`` is the original).

    Fast: the original; 4-bit asymmetric in blocks of 32 (SmolLM2's own distribution grid, Q4_1); 4-bit
    symmetric in blocks of 128 (another grid); 3-bit asymmetric in blocks of 32.
    Full: adds 8-bit, 4-bit blocks of 64, HQQ, 2-bit, and depth / MLP-channel pruning with distillation recovery
    (those whose configs this installation offers).

    Example:
        >>> [" + ".join(c.label for c in v) or "original" for v in builtin_variants(fast=True)]
        ['original', 'q4-group32-asym', 'q4-group128', 'q3-group32-asym']
    """
    fast = fast_mode() if fast is None else fast
    out: list[tuple[Any, ...]] = [
        (),
        (_quantize(4, group_size=32, symmetric=False),),
        (_quantize(4, group_size=128),),
        (_quantize(3, group_size=32, symmetric=False),),
    ]
    if fast:
        return out
    out += [(_quantize(8, group_size=32),), (_quantize(4, group_size=64, symmetric=False),),
            (_quantize(2, group_size=32, symmetric=False),)]
    out += [v for v in (_optional(lambda: (_quantize(4, group_size=32, method="hqq"),)),
                        _optional(_pruned("layer", 0.25)), _optional(_pruned("channel", 0.3)))
            if v is not None]
    return out


def _pruned(structure: str, ratio: float) -> Callable[[], tuple[Any, ...]]:
    def make() -> tuple[Any, ...]:
        from workbench.compression import Prune, Recover

        return (Prune(ratio, structure=structure), Recover(method="distill"),
                _quantize(4, group_size=32, symmetric=False))

    return make


def _optional(make: Callable[[], tuple[Any, ...]]) -> tuple[Any, ...] | None:
    """A variant whose configs this installation may not offer yet (a newer technique): None when it does not."""
    try:
        return make()
    except (ValueError, TypeError):
        return None


@contextmanager
def quiet_progress() -> Iterator[None]:
    """Silence transformers' progress bars (loading, de-quantising, writing shards) for a while: in a kernel they
    are widgets, and a dashboard page would show them beside its panel."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover - transformers is a dependency of every language-model path
        yield
        return
    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


def variant_label(configs: Sequence[Any]) -> str:
    """The results' ``variant`` of a config tuple: what `workbench.measure` writes (``baseline`` when empty)."""
    return "+".join(c.label for c in configs) or "baseline"


def variant_configs(row: Any, known: Sequence[Sequence[Any]] = ()) -> tuple[Any, ...]:
    """The configs that rebuild a results row's variant: one of `known` (or of the built-in variants, or of the
    weight-only grid 8/4/3/2 bits x blocks 32/64/128 x symmetric/asymmetric/HQQ) with the same label, else the
    grid point of the row (`workbench.sweeps.frame.spec_of_row`).

    Example:
        >>> [c.label for c in variant_configs({"variant": "q3-group32-asym"})]
        ['q3-group32-asym']
    """
    from workbench.sweeps.frame import spec_of_row

    name = str(row.get("variant") or "baseline")
    if name == "baseline":
        return ()
    for configs in [*known, *builtin_variants(fast=False), *_weight_only_grid()]:
        if variant_label(configs) == name:
            return tuple(configs)
    configs = tuple(spec_of_row(row).configs())
    if variant_label(configs) != name:
        raise WorkbenchError(f"cannot rebuild variant {name!r} from its label; pass variants=[(configs...), ...] "
                             "(the compression configs of the sweep) to the panel.")
    return configs


def _weight_only_grid() -> list[tuple[Any, ...]]:
    out = []
    for bits in (8, 4, 3, 2):
        for group in (32, 64, 128):
            out += [(_quantize(bits, group_size=group),), (_quantize(bits, group_size=group, symmetric=False),)]
            hqq = _optional(lambda b=bits, g=group: (_quantize(b, group_size=g, method="hqq"),))
            if hqq is not None:
                out.append(hqq)
    return out


def llm_store(task: Any, fast: bool | None = None) -> Path:
    """Where the built-in sweep of `task` is kept: ``<workbench cache>/demo/llm-<task>-<model>-<fast|full>.sqlite``."""
    from workbench.core.paths import cache_dir

    fast = fast_mode() if fast is None else fast
    return cache_dir() / "demo" / f"llm-{task.name}-{task.model.fingerprint[:12]}-{'fast' if fast else 'full'}.sqlite"


def is_lm_frame(df: pd.DataFrame) -> bool:
    """True when a results frame holds language-model rows (a ``perplexity`` column with a value)."""
    return "perplexity" in df and pd.to_numeric(df["perplexity"], errors="coerce").notna().any()


def stored_llm_results(source: Any) -> pd.DataFrame | None:
    """`source` (a frame, store or results file) as a frame when it holds language-model rows, else None."""
    from workbench.ui.base import load_results

    if isinstance(source, (str, Path)) and not Path(source).is_file():
        raise WorkbenchError(f"WORKBENCH_RESULTS / results points to {source}, which does not exist. Run a sweep of "
                             "a language model with --store FILE first, or unset WORKBENCH_RESULTS for the "
                             "built-in sweep.")
    df = load_results(source)
    return df if is_lm_frame(df) else None


def llm_results(task: Any = "smollm2", *, results: Any = None, fast: bool | None = None, store: Any = None,
                variants: Sequence[Sequence[Any]] | None = None, runtimes: Sequence[str] | None = None,
                devices: Sequence[str] | None = None, threads: int = 1, memory: bool | None = None,
                on_result: Callable[[dict[str, Any], int, int], None] | None = None,
                cached_only: bool = False) -> pd.DataFrame | None:
    """Language-model results for the dashboard: stored ones, or the built-in sweep (measured once, then cached).

    Args:
        task: a `LanguageTask` or a zoo task name (loaded only when the built-in sweep runs).
        results: a results frame / store / file to show instead (default: ``$WORKBENCH_RESULTS``); used when it
            holds language-model rows, else the built-in sweep runs and ``df.attrs["note"]`` says why.
        fast: the small sweep (default: ``WORKBENCH_FAST``).
        store: where to keep the rows (default: `llm_store`; ``":memory:"`` for none).
        variants: config tuples to measure (default: `builtin_variants`).
        runtimes: default ``("torch",)`` in fast mode, else torch and onnxruntime (ONNX Runtime GenAI).
        devices: device profiles to estimate for (default `FAST_LLM_DEVICES` / `LLM_DEVICES`).
        threads: intra-op threads while timing.
        memory: measure peak memory in a child process (default: not in fast mode).
        on_result: called as ``on_result(row, done, total)`` after each variant x runtime is measured (or read
            from the store), for a progress bar.
        cached_only: return None instead of measuring when a variant is not stored yet.

    Returns:
        One row per variant x runtime x device, with ``baseline_perplexity`` (etc.) of the original on the same
        runtime; ``df.attrs["note"]`` says where the rows came from. Failed variants are rows with an
        ``error`` (stored like the others: delete the store file to try them again).
    """
    source = results if results is not None else os.environ.get("WORKBENCH_RESULTS") or None
    note = ""
    if source is not None:
        df = stored_llm_results(source)
        if df is not None:
            df.attrs["note"] = "stored results" + (f" ({source})" if isinstance(source, (str, Path)) else "")
            return df
        note = ("The results given (WORKBENCH_RESULTS) hold no language-model rows (no perplexity), so this is "
                "the built-in sweep. ")
    with quiet_progress():
        return _builtin(task, note, fast, store, variants, runtimes, devices, threads, memory, on_result, cached_only)


def _builtin(task: Any, note: str, fast: bool | None, store: Any, variants: Any, runtimes: Any, devices: Any,
             threads: int, memory: bool | None, on_result: Any, cached_only: bool) -> pd.DataFrame | None:
    if isinstance(task, str):
        from workbench import zoo

        task = zoo.load(task)
    fast = fast_mode() if fast is None else fast
    variants = list(builtin_variants(fast) if variants is None else variants)
    runtimes = tuple(runtimes or (("torch",) if fast else ("torch", "onnxruntime")))
    devices = tuple(LLM_DEVICES if devices is None and not fast else FAST_LLM_DEVICES if devices is None else devices)
    memory = (not fast) if memory is None else memory
    df = _sweep(task, variants, runtimes, devices, threads, memory, store if store is not None else llm_store(task, fast),
                fast, on_result, cached_only)
    if df is None:
        return None
    df.attrs["note"] = note + (f"Built-in sweep of {task.name}: {len(variants)} variants on {', '.join(runtimes)}, "
                               f"estimated for {', '.join(devices)}.")
    return df


def _sweep(task: Any, variants: list[tuple[Any, ...]], runtimes: tuple[str, ...], devices: tuple[str, ...],
           threads: int, memory: bool, store: Any, fast: bool, on_result: Any,
           cached_only: bool = False) -> pd.DataFrame | None:
    from workbench.sweeps.frame import frame, with_baseline
    from workbench.sweeps.store import open_store

    db = open_store(store)
    keys: list[str] = []
    total, done, measured = len(variants) * len(runtimes), 0, False
    try:
        for configs in variants:
            label = variant_label(configs)
            for rt in runtimes:
                unit = hashlib.sha256(f"{task.name}|{task.model.fingerprint}|{label}|{rt}|{threads}|{memory}|"
                                      f"{fast}|{','.join(devices)}".encode()).hexdigest()[:16]
                unit_keys = [f"{unit}-{dev}" for dev in devices] or [unit]
                keys += unit_keys
                stored = db.rows(unit_keys)
                if len(stored) < len(unit_keys):
                    if cached_only:
                        return None
                    if not measured:
                        from workbench.ui.server import wait_for_visitor

                        wait_for_visitor()  # a spare (preheated) Voilà kernel measures only for a visitor
                        measured = True
                    stored = _measure_unit(task, configs, label, rt, devices, threads, memory)
                    for r, key in zip(stored, unit_keys):
                        r.update(key=key, unit=unit)
                    db.add(stored)  # failures too: the page shows them at once next time (delete the store to retry)
                done += 1
                if on_result is not None:
                    on_result(stored[0], done, total)
        return with_baseline(frame(db.rows(keys)))
    finally:
        if not hasattr(store, "to_frame"):  # a store we opened
            db.close()



def _measure_unit(task: Any, configs: tuple[Any, ...], label: str, runtime: str, devices: tuple[str, ...],
                  threads: int, memory: bool) -> list[dict[str, Any]]:
    """One variant on one runtime as rows (one per device); a failure to build it is an error row, not a raise."""
    from workbench.compression import compress
    from workbench.core.errors import first_line
    from workbench.measurement.record import Measurement, measure, to_frame
    from workbench.sweeps.frame import config_columns

    try:
        handle = compress(task.model, *configs, task=task) if configs else task.model
        m = measure(handle, task, runtime=runtime, threads=threads, devices=devices, memory=memory)
        columns = config_columns(handle)
    except Exception as e:  # noqa: BLE001 - one variant that cannot be built is a row, not a stopped dashboard
        m = Measurement(variant=label, runtime=runtime, threads=threads, batch=1, task=task.name,
                        error=f"compress: {type(e).__name__}: {first_line(e)}")
        columns = {}
    rows = to_frame([m]).to_dict("records")
    if devices and not all(isinstance(r.get("device"), str) for r in rows):  # no estimates: one row per device
        rows = [dict(rows[0], device=d) for d in devices]
    for r in rows:
        r.update(columns, variant=label)
    return rows


__all__ = ["FAST_LLM_DEVICES", "LLM_DEVICES", "builtin_variants", "is_lm_frame", "llm_results", "llm_store", "quiet_progress",
           "stored_llm_results", "variant_configs", "variant_label"]
