"""`explain_speed`: "it got smaller, why not faster?", answered by the runtime's own profiler.

A variant and its original are realised for one runtime (`workbench.realize`: what that runtime really executes),
both are profiled by that runtime (`workbench.measurement.op_profile`), and the kernel times are lined up per
operator type: where time went, which compute ops stayed float, what the added quantize/dequantize and layout
conversions (Transpose, Reorder, NCHW <-> NHWC) cost, and how much of each call is spent outside any kernel —
per-call overhead that no compression removes, and that bounds the speed-up of a small model.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from workbench.core.errors import WorkbenchError
from workbench.core.handle import ModelHandle, fixed_batch_of
from workbench.measurement.op_profile import (
    PRECISION_RANK,
    PROFILERS,
    QUANTISABLE,
    UNSUPPORTED,
    OpProfile,
)

COLUMNS = ("op_type", "category", "before_ms", "after_ms", "delta_ms", "count_before", "count_after",
           "kernels_before", "kernels_after", "precision_before", "precision_after", "float_after")
"""The columns of `SpeedExplanation.frame`, one row per operator type (its family: ``Conv`` covers ``QLinearConv``)
plus a ``(outside kernels)`` row of category ``overhead``: the call time (without the profiler) less the kernel
time (with it). Times are per inference, in ms, measured."""
OVERHEAD_ROW = "(outside kernels)"


@dataclass(frozen=True, eq=False)
class SpeedExplanation:
    """Where a variant's time goes against its original's, on one runtime (all times measured by its profiler).

    Attributes:
        runtime: the runtime profiled.
        variant: the variant's name; `original`: its original's.
        frame: one row per operator type (`COLUMNS`); the rows sum to `before_ms` / `after_ms` (the overhead row
            closes the gap between kernel time and call time) unless the profiled kernels alone take longer than
            the unprofiled call (a profiler's own cost on a tiny model), when the overhead row is 0.
        before_ms: median wall time of one call of the original, timed without the profiler.
        after_ms: the same for the variant.
        profiled_before_ms: median call time of the original under the profiler; `profiled_after_ms`: the
            variant's.
        kernel_before_ms: time inside kernels per call (original); `kernel_after_ms`: the variant's.
        stayed_float: compute nodes of the variant left in float although it was quantised (``"node (kernel)"``).
        notes: what each model ran as (`workbench.realize` notes), ``(original, variant)``.
        threads: intra-op threads; `calls`: recorded calls of each model.
        summary: the answer in plain words.
        before: the original's per-node profile; `after`: the variant's.
    """

    runtime: str
    variant: str
    original: str
    frame: pd.DataFrame = field(repr=False)
    before_ms: float
    after_ms: float
    profiled_before_ms: float
    profiled_after_ms: float
    kernel_before_ms: float
    kernel_after_ms: float
    stayed_float: tuple[str, ...]
    notes: tuple[str, str]
    threads: int
    calls: int
    summary: str = field(repr=False)
    before: OpProfile = field(repr=False)
    after: OpProfile = field(repr=False)

    @property
    def speedup(self) -> float:
        """Original call time / variant call time (> 1: the variant is faster)."""
        return self.before_ms / self.after_ms if self.after_ms > 0 else float("nan")

    def nodes(self) -> pd.DataFrame:
        """Every profiled node of both models: ``model`` (``"original"``/``"variant"``), ``node``, ``kernel``,
        ``family``, ``precision``, ``category``, ``ms``."""
        rows = [{"model": who, **vars(k)} for who, p in (("original", self.before), ("variant", self.after))
                for k in p.kernels]
        return pd.DataFrame(rows, columns=["model", "node", "kernel", "family", "precision", "category", "ms"])


def explain_speed(
    variant: ModelHandle,
    *,
    runtime: str = "onnxruntime",
    task: Any = None,
    original: ModelHandle | None = None,
    threads: int = 1,
    runs: int = 100,
    warmup: int = 10,
    rounds: int = 4,
) -> SpeedExplanation:
    """Profile `variant` and its original on `runtime` and say, per operator type, where the time went.

    Both are realised as the runtime executes them (`workbench.realize.realize`: static int8 QDQ on ONNX Runtime,
    NNCF int8 on OpenVINO, ...), profiled at batch 1 by the runtime's own profiler (`op_profile.PROFILERS`) in
    alternating rounds, and lined up per operator type. Quantised kernels count under the operator they compute
    (``QLinearConv`` under ``Conv``), so a row reads "Conv: 0.20 ms fp32 -> 0.08 ms int8".

    Args:
        variant: a compressed model (from `workbench.compress`), whose `origin` is the original.
        runtime: ``"onnxruntime"``, ``"openvino"`` or ``"executorch"``; LiteRT, tflite_runtime and torch have no
            per-operator profiler reachable here (`op_profile.UNSUPPORTED`) and raise with what to use instead.
        task: the task, for calibration data (static int8) and example inputs.
        original: the model to compare with (default: ``variant.origin``).
        threads: intra-op threads of both runs.
        runs: recorded calls of each model; `warmup`: untimed calls first; `rounds`: alternations of the two.

    Returns:
        A `SpeedExplanation`: `frame` (one row per operator type), totals, `stayed_float`, `summary`.

    Raises:
        WorkbenchError: a runtime without a profiler here (naming one that has), a variant without an original,
            a runtime that is not installed, or no example inputs.

    Example:
        >>> q8 = workbench.compress(task.model, Quantize(8), task=task)
        >>> why = explain_speed(q8, runtime="onnxruntime", task=task, runs=30)
        >>> why.notes
        ('fp32', 'int8 QDQ (static, calibrated)')
        >>> row = why.frame.set_index("op_type").loc["Conv"]
        >>> row["kernels_before"], row["kernels_after"], row["precision_after"]
        ('Conv', 'QLinearConv', 'int8')
        >>> int(why.frame.query("category == 'quantize/dequantize'")["count_before"].sum())
        0
        >>> bool(why.frame.query("category == 'quantize/dequantize'")["count_after"].sum() > 0)
        True
    """
    if runtime in UNSUPPORTED:
        raise WorkbenchError(f"explain_speed cannot profile {runtime!r}: {UNSUPPORTED[runtime]}. Explain the variant "
                             f"on one of: {', '.join(PROFILERS)} (e.g. runtime='onnxruntime').")
    if runtime not in PROFILERS:
        raise WorkbenchError(f"explain_speed: unknown runtime {runtime!r}; choose one of: {', '.join(PROFILERS)}.")
    for name, value, low in (("threads", threads, 1), ("runs", runs, 1), ("warmup", warmup, 0), ("rounds", rounds, 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise WorkbenchError(f"explain_speed: {name} must be an integer >= {low}, got {value!r}.")
    if not isinstance(variant, ModelHandle):
        raise WorkbenchError(f"explain_speed takes a model (a ModelHandle from workbench.compress or workbench.load), "
                             f"got {type(variant).__name__}.")
    original = original if original is not None else variant.origin
    if not isinstance(original, ModelHandle):
        raise WorkbenchError(f"{variant.name} has no original to compare with (it was not made by workbench.compress); "
                             "pass original=the model it came from.")
    from workbench.core.lm import is_language_model

    if is_language_model(variant):
        raise WorkbenchError(f"{variant.name} is a language model; explain_speed profiles one forward call of a model "
                             "with fixed inputs. Profile a language model's decode step with the runtime's own tools.")
    _require_installed(runtime)
    from workbench.realize import realize

    before_real, after_real = realize(original, runtime, task), realize(variant, runtime, task)
    inputs = _inputs(variant, original, task, after_real.handle)
    sessions = [PROFILERS[runtime](r, inputs, threads) for r in (before_real, after_real)]
    for s in sessions:
        s.run(warmup, False)
    per_round = [runs // rounds + (1 if i < runs % rounds else 0) for i in range(rounds)]
    for n in (n for n in per_round if n):
        for s in sessions:
            s.run(n, True)
        for s in sessions:
            s.time(n)
    before, after = (s.profile() for s in sessions)
    frame = _frame(before, after)
    float_nodes = _stayed_float(after)
    parts = dict(runtime=runtime, variant=variant.name, original=original.name, frame=frame,
                 before_ms=before.latency_ms, after_ms=after.latency_ms, profiled_before_ms=before.call_ms,
                 profiled_after_ms=after.call_ms,
                 kernel_before_ms=before.kernel_ms, kernel_after_ms=after.kernel_ms,
                 stayed_float=tuple(f"{k.node} ({k.kernel})" for k in float_nodes),
                 notes=(before_real.note, after_real.note), threads=threads, calls=runs, before=before, after=after)
    return SpeedExplanation(**parts, summary=_summary(parts, float_nodes))


def _require_installed(runtime: str) -> None:
    from workbench.runtimes.registry import RUNNERS

    entry = RUNNERS[runtime]
    if not importlib.util.find_spec(entry.requires):
        raise WorkbenchError(entry.optional or f"{runtime} is not installed.")


def _inputs(variant: ModelHandle, original: ModelHandle, task: Any, realised: ModelHandle) -> list[np.ndarray]:
    """Batch-1 example inputs (or the batch the realised file is fixed at), C-contiguous."""
    example = getattr(task, "example_inputs", None) or variant.example_inputs or original.example_inputs
    if not example:
        raise WorkbenchError(f"{variant.name}: explain_speed needs example inputs; pass task= (a workbench Task).")
    batch = fixed_batch_of(realised.inputs) or 1
    out = []
    for a in example:
        a = np.asarray(a)
        if a.ndim and a.shape[0] < batch:
            raise WorkbenchError(f"{realised.name} is fixed at batch {batch}; the example inputs hold {a.shape[0]}.")
        out.append(np.ascontiguousarray(a[:batch] if a.ndim else a))
    return out


def _frame(before: OpProfile, after: OpProfile) -> pd.DataFrame:
    """One row per operator family: time, node count, kernels and precisions before and after."""
    target = _target_precision(after)
    rows: dict[str, dict[str, Any]] = {}
    for side, prof in (("before", before), ("after", after)):
        for k in prof.kernels:
            row = rows.setdefault(k.family, {"op_type": k.family, "category": k.category, "before_ms": 0.0,
                                             "after_ms": 0.0, "count_before": 0, "count_after": 0,
                                             "kernels_before": set(), "kernels_after": set(),
                                             "precision_before": set(), "precision_after": set(), "float_after": 0})
            row[f"{side}_ms"] += k.ms
            row[f"count_{side}"] += 1
            row[f"kernels_{side}"].add(k.kernel)
            if k.precision:
                row[f"precision_{side}"].add(k.precision)
            if side == "after" and _is_stayed_float(k, target):
                row["float_after"] += 1
    for row in rows.values():
        for key in ("kernels_before", "kernels_after", "precision_before", "precision_after"):
            row[key] = "+".join(sorted(row[key], key=lambda p: (PRECISION_RANK.get(p, 9), p)))
    rows[OVERHEAD_ROW] = {"op_type": OVERHEAD_ROW, "category": "overhead",
                          "before_ms": max(before.latency_ms - before.kernel_ms, 0.0),
                          "after_ms": max(after.latency_ms - after.kernel_ms, 0.0), "count_before": 0, "count_after": 0,
                          "kernels_before": "", "kernels_after": "", "precision_before": "", "precision_after": "",
                          "float_after": 0}
    df = pd.DataFrame(list(rows.values()), columns=[c for c in COLUMNS if c != "delta_ms"])
    df.insert(4, "delta_ms", df["after_ms"] - df["before_ms"])
    kernel_rows = df[df["category"] != "overhead"]
    order = kernel_rows.assign(_k=np.maximum(kernel_rows["before_ms"], kernel_rows["after_ms"])).sort_values(
        "_k", ascending=False, kind="stable").drop(columns="_k")
    return pd.concat([order, df[df["category"] == "overhead"]], ignore_index=True)


def _target_precision(prof: OpProfile) -> str:
    """The narrowest precision any compute kernel of the profile runs at ("fp32" when none is narrower)."""
    found = [k.precision for k in prof.kernels if k.category == "compute" and k.precision in PRECISION_RANK]
    return min(found, key=PRECISION_RANK.__getitem__) if found else "fp32"


def _is_stayed_float(k: Any, target: str) -> bool:
    return (k.family in QUANTISABLE and k.precision in PRECISION_RANK
            and PRECISION_RANK[k.precision] > PRECISION_RANK[target])


def _stayed_float(after: OpProfile) -> list[Any]:
    target = _target_precision(after)
    return sorted((k for k in after.kernels if _is_stayed_float(k, target)), key=lambda k: -k.ms)


def _ms(x: float) -> str:
    return f"{x * 1e3:.1f} µs" if x < 0.1 else f"{x:.3f} ms" if x < 10 else f"{x:.1f} ms"


def _summary(p: dict[str, Any], float_nodes: list[Any]) -> str:
    """The explanation in sentences, every number from the profiles."""
    df: pd.DataFrame = p["frame"]
    before, after = p["before_ms"], p["after_ms"]
    ratio = before / after if after > 0 else float("nan")
    pace = f"{ratio:.2f}× faster" if ratio >= 1 else f"{1 / ratio:.2f}× slower"
    lines = [f"On {p['runtime']} ({p['threads']} thread{'s' if p['threads'] > 1 else ''}, batch 1, {p['calls']} profiled calls "
             f"each), {p['variant']} takes {_ms(after)} per call against {_ms(before)} for {p['original']}: {pace}."]
    by_cat = df.groupby("category")[["before_ms", "after_ms"]].sum()

    def cat(name: str) -> tuple[float, float]:
        return (float(by_cat.loc[name, "before_ms"]), float(by_cat.loc[name, "after_ms"])) if name in by_cat.index \
            else (0.0, 0.0)

    cb, ca = cat("compute")
    if cb or ca:
        lines.append(f"Compute kernels (convolutions, matrix products): {_ms(cb)} -> {_ms(ca)}"
                     + (f" ({cb / ca:.2f}× faster)." if ca > 0 and cb >= ca else "."))
    for name, what in (("quantize/dequantize", "Quantize/dequantize"), ("layout", "Layout conversion")):
        b, a = cat(name)
        ops = df[(df["category"] == name) & (df["count_after"] > 0)]
        listed = ", ".join(f"{r.op_type} ×{r.count_after}" for r in ops.itertuples())
        if a > 0 or b > 0:
            share = f", {100 * a / after:.0f} % of the variant's call" if after > 0 else ""
            lines.append(f"{what}: {_ms(b)} -> {_ms(a)}{share}" + (f" ({listed})." if listed else "."))
        elif listed:
            lines.append(f"{what}: {listed}, each below the profiler's resolution.")
    ob, oa = cat("overhead")
    inflated = [w for w, k, c in (("original", p["kernel_before_ms"], before), ("variant", p["kernel_after_ms"], after))
                if k > 1.02 * c]
    if inflated:
        lines.append(f"The profiler's own cost shows: the profiled kernel times of the {' and '.join(inflated)} add up "
                     f"to more than the unprofiled call (calls under the profiler: {_ms(p['profiled_before_ms'])} and "
                     f"{_ms(p['profiled_after_ms'])}), so read the rows as shares and the headline from the unprofiled "
                     "calls; the per-call overhead cannot be told apart.")
    elif oa > 0 and after > 0:
        bound = (f": even with free kernels the variant could be at most {before / oa:.1f}× faster than the original"
                 if oa >= 0.1 * before else "")
        lines.append(f"Outside kernels (the runtime's per-call work): {_ms(ob)} -> {_ms(oa)}, {100 * oa / after:.0f} % "
                     f"of the variant's call, which compression does not shrink{bound}.")
    precisions = set("+".join(df["precision_after"][df["category"] == "compute"]).split("+")) - {""}
    if precisions and precisions <= {"fp32"}:
        lines.append(f"No compute kernel of the variant runs below fp32: the runtime executed it in float "
                     f"({p['notes'][1]}).")
    elif float_nodes:
        compute_after = int(df.loc[df["category"] == "compute", "count_after"].sum())
        named = ", ".join(f"{k.node} ({k.kernel}, {_ms(k.ms)})" for k in float_nodes[:4])
        more = f" and {len(float_nodes) - 4} more" if len(float_nodes) > 4 else ""
        lines.append(f"{len(float_nodes)} of {compute_after} compute ops stayed float: {named}{more}.")
    elif precisions:
        lines.append(f"Every compute op runs at {'/'.join(sorted(precisions))}.")
    slower = df[(df["delta_ms"] >= 1e-4) & (df["category"] != "overhead")].sort_values("delta_ms", ascending=False)
    if len(slower):
        lines.append("Slower than before: " + ", ".join(f"{r.op_type} +{_ms(r.delta_ms)}"
                                                       for r in slower.head(3).itertuples()) + ".")
    if p["after"].note:
        lines.append(p["after"].note[0].upper() + p["after"].note[1:] + ".")
    lines.append(f"What ran: {p['original']} as {p['notes'][0] or 'its file'}; {p['variant']} as "
                 f"{p['notes'][1] or 'its file'}.")
    return " ".join(lines)


__all__ = ["COLUMNS", "OVERHEAD_ROW", "SpeedExplanation", "explain_speed"]
