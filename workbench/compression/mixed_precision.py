"""Per-layer sensitivity, and mixed precision chosen from it.

`sensitivity` measures the task metric when *one* layer at a time is pruned or quantised, everything else
left as it is — the table engineers read to decide which layers to keep in float or at higher precision.
`auto_mixed_precision` turns it into a `Quantize(per_layer=..., exclude=...)` that meets an accuracy bar with
the fewest weight bits, and checks the combined config by measuring it (per-layer drops do not simply add up).

For speed, one working copy of the model is modified in place layer by layer and restored after each
measurement; the original handle is never touched.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from workbench.core.errors import WorkbenchError
from workbench.core.lm import is_language_model

KINDS = ("prune", "quantize")
DEFAULT_LEVELS = {"prune": (0.25, 0.5, 0.75), "quantize": (8, 4, 2)}


def _layers(module: Any) -> dict[str, Any]:
    from torch import nn

    return {n: m for n, m in module.named_modules()
            if n and isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)) and m.weight.numel() >= 16}


def _degrade(weight: Any, kind: str, level: float) -> Any:
    import torch

    from workbench.compression.quantize import fake_quantize

    if kind == "quantize":
        return fake_quantize(weight, int(level))
    k = int(round(level * weight.numel()))
    if k == 0:
        return weight.clone()
    threshold = weight.abs().flatten().kthvalue(k).values
    return torch.where(weight.abs() <= threshold, torch.zeros_like(weight), weight)


def _check(task: Any, kind: str, levels: Sequence[float]) -> None:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    for lv in levels:
        if kind == "quantize" and (isinstance(lv, bool) or int(lv) != lv or not 2 <= lv <= 8):
            raise ValueError(f"quantize levels are bit-widths from 2 to 8, got {lv!r}")
        if kind == "prune" and not 0.0 <= lv < 1.0:
            raise ValueError(f"prune levels are ratios in [0, 1), got {lv!r}")


Layers = dict[str, tuple[str, Any]]  # name -> (layer type, original weight as a torch tensor)


def _module_layers(task: Any, runtime: str, limit: int | None) -> tuple[Layers, Callable, Callable]:
    """The layers of the task model's `nn.Module` form, a setter that writes a weight into the live copy, and the
    score of that copy on `runtime`."""
    import torch

    from workbench.formats.loader import load
    from workbench.formats.onnx_module import module_of
    from workbench.runtimes import runtime as make_runtime

    if is_language_model(task.model):
        # a transformers decoder: a live copy in a language-model handle (greedy agreement, perplexity), on torch
        import dataclasses

        if runtime != "torch":
            raise WorkbenchError("sensitivity ranks a language model's layers on runtime='torch' (the weights are "
                                 "edited in place between evaluations); measure the chosen mix on other runtimes.")
        work = copy.deepcopy(task.model.module).eval()
        mods = _layers(work)
        source = handle = dataclasses.replace(task.model, module=work, name=f"{task.name}-sensitivity", _artifacts={})
    else:
        source = module_of(task.model)
        work = copy.deepcopy(source.module).eval()
        mods = _layers(work)
        handle = load(work, example_inputs=source.example_inputs, name=f"{task.name}-sensitivity")
        handle.inputs = list(source.inputs)  # a file fixed at batch 1 stays fed batch by batch

    def set_weight(name: str, weight: Any) -> None:
        with torch.no_grad():
            mods[name].weight.copy_(weight)

    def score() -> float:
        # The torch runner reads the live module; other runtimes need a fresh conversion each time.
        h = handle if runtime == "torch" else load(work, example_inputs=source.example_inputs)
        return float(task.evaluate(make_runtime(h, runtime), limit=limit)[task.metric])

    return {n: (type(m).__name__, m.weight.detach().clone()) for n, m in mods.items()}, set_weight, score


def _tflite_layers(task: Any, limit: int | None) -> tuple[Layers, Callable, Callable]:
    """The same for a TFLite file: each degraded weight is written into a copy of the flatbuffer
    (`formats.tflite_graph.with_weights`, float16 weights kept float16) and scored on LiteRT."""
    import dataclasses
    import tempfile

    import torch

    from workbench.core.handle import file_sha256
    from workbench.formats.tflite_graph import tflite_weights, with_weights
    from workbench.runtimes import runtime as make_runtime

    src = task.model.path
    weights = {w.layer: w for w in tflite_weights(src) if w.array is not None and w.array.size >= 16
               and w.dtype in ("float32", "float16")}
    current: dict[str, Any] = {}
    tmp = Path(tempfile.mkdtemp(prefix="sensitivity-"))

    def set_weight(name: str, weight: Any) -> None:
        current.clear()
        if not torch.equal(weight, torch.from_numpy(weights[name].array)):
            current[name] = weight.numpy().astype(np.float32)

    def score() -> float:
        path = with_weights(src, current, tmp / "m.tflite") if current else src
        # same signature as the original: a handle on the edited file without re-probing it (a child process)
        h = dataclasses.replace(task.model, path=path, fingerprint=file_sha256([path]), _artifacts={})
        return float(task.evaluate(make_runtime(h, "litert"), limit=limit)[task.metric])

    return {n: (w.op_type, torch.from_numpy(w.array.copy())) for n, w in weights.items()}, set_weight, score


def sensitivity(
    task: Any,
    kind: str = "quantize",
    levels: Sequence[float] | None = None,
    *,
    runtime: str = "torch",
    layers: Sequence[str] | None = None,
    limit: int | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """The task metric with one layer at a time pruned (magnitude) or quantised (per-channel symmetric).

    Args:
        task: the task. A model from a file (ONNX, TorchScript, ExportedProgram) is ranked on its `nn.Module`
            form (`workbench.formats.onnx_module.module_of`), scored against the file's own outputs; a TFLite
            file's weights are degraded in the flatbuffer itself and scored on LiteRT (`runtime` is ignored).
        kind: ``"prune"`` or ``"quantize"``.
        levels: prune ratios or bit-widths (default 0.25/0.5/0.75 or 8/4/2).
        runtime: runtime to evaluate on (``"torch"`` is fastest: no conversion per variant).
        layers: restrict to these layer names (default: every Conv/Linear layer with >= 16 weights).
        limit: evaluate on the first `limit` samples only.
        progress: show a progress bar.

    Returns:
        One row per layer and level: `layer`, `type`, `params`, `kind`, `level`, `metric`, `value`,
        `baseline`, `drop` (baseline − value; positive is worse).

    Example:
        >>> sens = sensitivity(workbench.zoo.load("digits-cnn"), "quantize", levels=[2], limit=100)
        >>> len(sens), sens["level"].unique().tolist()        # 12 weight layers, one level each
        (12, [2])
        >>> fragile = sens.sort_values("drop", ascending=False).iloc[0]["layer"]   # quantise this one last
    """
    from tqdm.auto import tqdm

    levels = tuple(levels if levels is not None else DEFAULT_LEVELS.get(kind, ()))
    _check(task, kind, levels)
    if task.model.framework == "tflite":  # no module route: degrade the flatbuffer's weights in place
        candidates, set_weight, score = _tflite_layers(task, limit)
    else:
        candidates, set_weight, score = _module_layers(task, runtime, limit)
    if layers is not None:
        unknown = [n for n in layers if n not in candidates]
        if unknown:
            raise WorkbenchError(f"{task.name}: unknown layer(s) {unknown}; choose from {list(candidates)[:8]}...")
        candidates = {n: candidates[n] for n in layers}

    baseline = score()
    rows = []
    bar = tqdm(total=len(candidates) * len(levels), desc=f"{kind} sensitivity", disable=not progress, leave=False)
    for name, (kind_of_layer, original) in candidates.items():
        for level in levels:
            set_weight(name, _degrade(original, kind, level))
            value = score()
            sign = 1.0 if getattr(task, "higher_is_better", True) else -1.0
            rows.append({"layer": name, "type": kind_of_layer, "params": int(original.numel()),
                         "kind": kind, "level": level, "metric": task.metric, "value": value,
                         "baseline": baseline, "drop": sign * (baseline - value)})
            bar.update()
        set_weight(name, original)
    bar.close()
    return pd.DataFrame(rows)


def auto_mixed_precision(
    task: Any,
    max_drop: float = 0.01,
    *,
    bits: Sequence[int] = (8, 6, 4, 3),
    runtime: str = "torch",
    limit: int | None = None,
    progress: bool = True,
    table: pd.DataFrame | None = None,
) -> Any:
    """A `Quantize(per_layer=..., exclude=...)` that keeps the metric within `max_drop` of the float model.

    Each layer starts at the lowest bit-width whose own drop (from `sensitivity`) is within half the budget;
    the combined config is then measured, and while it misses the bar the layer with the largest drop at its
    current width is raised one step (8 bits → kept in float). The result meets the bar on the data it was
    measured on (`limit` samples), with the fewest weight bits this greedy search finds.

    Args:
        task: the task (PyTorch model).
        max_drop: largest allowed drop of `task.metric` (0.01 = one point of accuracy).
        bits: candidate bit-widths.
        runtime: runtime to evaluate on.
        limit: evaluate on the first `limit` samples.
        progress: progress bars.
        table: a precomputed `sensitivity(task, "quantize", bits)` table to reuse.

    Returns:
        A `Quantize` config; `compress(task.model, cfg)` gives the variant.
    """
    from workbench.compression.base import compress
    from workbench.compression.quantize import Quantize
    from workbench.runtimes import NATIVE
    from workbench.runtimes import runtime as make_runtime

    if not max_drop >= 0:
        raise ValueError(f"max_drop must be >= 0, got {max_drop!r}")
    ladder = sorted({int(b) for b in bits})
    sens = table if table is not None else sensitivity(task, "quantize", ladder, runtime=runtime, limit=limit,
                                                       progress=progress)
    drop = {(r.layer, int(r.level)): r.drop for r in sens.itertuples()}
    layers = list(dict.fromkeys(sens["layer"]))
    choice: dict[str, int | None] = {}
    for name in layers:
        ok = [b for b in ladder if drop.get((name, b), np.inf) <= max_drop / 2]
        choice[name] = min(ok) if ok else None

    def config() -> Quantize:
        per_layer = {n: b for n, b in choice.items() if b is not None}
        exclude = [n for n, b in choice.items() if b is None]
        return Quantize(bits=max(per_layer.values(), default=8), per_layer=per_layer, exclude=exclude)

    baseline = float(sens["baseline"].iloc[0]) if len(sens) else float("nan")
    sign = 1.0 if getattr(task, "higher_is_better", True) else -1.0
    while True:
        cfg = config()
        if all(b is None for b in choice.values()):
            return cfg
        variant = compress(task.model, cfg, task=task)
        # a file's variant is a file (quantised in place): it runs in its own runtime, not torch
        rt = runtime if variant.framework == "torch" else NATIVE[variant.framework]
        value = float(task.evaluate(make_runtime(variant, rt), limit=limit)[task.metric])
        if sign * (baseline - value) <= max_drop:
            return cfg
        worst = max((n for n, b in choice.items() if b is not None), key=lambda n: drop.get((n, choice[n]), 0.0))
        b = choice[worst]
        higher = [x for x in ladder if x > b]
        choice[worst] = higher[0] if higher else None
