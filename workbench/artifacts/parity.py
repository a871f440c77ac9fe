"""Parity: run an exported file in its own runtime on the task's evaluation split and compare with the source.

Figures: the task's metrics for source and artefact and their change, agreement with the *source variant's*
outputs (top-1 agreement for classifiers, mean cosine for embeddings, the task's own fidelity where it defines
one, e.g. the VAD's speech decisions), and the largest absolute output difference (also relative to the
largest source output). A `Tolerance` bounds them; `check` raises `WorkbenchError` with
every figure when one is exceeded, so an export that changes the model's answers never passes silently.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from workbench.core.errors import WorkbenchError


@dataclass(frozen=True)
class Tolerance:
    """How far an exported artefact may drift from its source variant.

    Args:
        metric_drop: largest allowed worsening of the task's primary metric, in its own units (0.01 = one
            accuracy point).
        agreement: smallest allowed agreement with the source's outputs (the task's fidelity measure), 0..1.
        max_rel_error: largest allowed ``max |artefact - source| / max |source|`` over all outputs, or `None`
            to leave raw output differences unchecked (integer targets: the metric and agreement decide).

    Defaults per precision are in `DEFAULT_TOLERANCES` (what honest exports of the zoo meet with margin).

    Example:
        >>> Tolerance(metric_drop=0.005, agreement=0.99).max_rel_error is None
        True
        >>> Tolerance(agreement=1.5)
        Traceback (most recent call last):
        ValueError: agreement must be in [0, 1], got 1.5
    """

    metric_drop: float = 0.02
    agreement: float = 0.95
    max_rel_error: float | None = None

    def __post_init__(self) -> None:
        for name in ("metric_drop", "agreement"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"{name} must be a finite number, got {v!r}")
        if self.metric_drop < 0:
            raise ValueError(f"metric_drop must be >= 0, got {self.metric_drop}")
        if not 0.0 <= self.agreement <= 1.0:
            raise ValueError(f"agreement must be in [0, 1], got {self.agreement}")
        r = self.max_rel_error
        if r is not None and (isinstance(r, bool) or not isinstance(r, (int, float)) or not math.isfinite(r) or r < 0):
            raise ValueError(f"max_rel_error must be None or a finite number >= 0, got {r!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


DEFAULT_TOLERANCES: dict[str, Tolerance] = {
    "fp32": Tolerance(metric_drop=0.002, agreement=0.995, max_rel_error=1e-3),
    "fp16": Tolerance(metric_drop=0.01, agreement=0.98, max_rel_error=0.02),
    "int8": Tolerance(metric_drop=0.03, agreement=0.95),
    "int4": Tolerance(metric_drop=0.04, agreement=0.90),
}


def measure_parity(task: Any, source_runner: Any, artifact_runner: Any, *, limit: int | None = None) -> dict[str, Any]:
    """Parity figures of `artifact_runner` against `source_runner` on `task`'s evaluation split."""
    src, rows = task.run(source_runner, limit=limit)
    art, _ = task.run(artifact_runner, limit=limit)
    src_metrics = task.score(src, rows)
    art_metrics = task.score(art, rows)
    agreement, kind = _agreement(task, src, art)
    finite = all(np.all(np.isfinite(np.asarray(o, dtype=np.float64))) for o in art)
    abs_err, rel_err = 0.0, 0.0
    for a, s in zip(art, src):
        a64, s64 = np.asarray(a, np.float64), np.asarray(s, np.float64)
        if a64.shape != s64.shape:
            raise WorkbenchError(f"parity: the artefact returns shape {a64.shape} where the source returns {s64.shape}.")
        if not a64.size:
            continue
        err = float(np.max(np.abs(a64 - s64))) if finite else math.inf
        scale = float(np.max(np.abs(s64)))
        abs_err = max(abs_err, err)
        rel_err = max(rel_err, err / scale if scale > 0 else (0.0 if err == 0 else math.inf))
    first = np.asarray(src[0])
    n = int(first.shape[0]) if first.ndim else 1
    return {
        "samples": n,
        "metric": task.metric,
        "higher_is_better": bool(getattr(task, "higher_is_better", True)),
        "source": {k: float(v) for k, v in src_metrics.items()},
        "artifact": {k: float(v) for k, v in art_metrics.items()},
        "delta": {k: float(art_metrics[k]) - float(src_metrics[k]) for k in src_metrics if k in art_metrics},
        "agreement": agreement,
        "agreement_kind": kind,
        "max_abs_error": abs_err,
        "max_rel_error": rel_err,
        "finite": bool(finite),
        "source_runtime": source_runner.runtime,
        "artifact_runtime": artifact_runner.runtime,
    }


def _agreement(task: Any, src: list[np.ndarray], art: list[np.ndarray]) -> tuple[float, str]:
    """Agreement of the artefact's outputs with the source's: the task's own fidelity where it defines one (the
    VAD's speech decisions), top-1 agreement where the task scores outputs by their argmax (classifiers), mean
    cosine otherwise (embeddings: MiniLM's 384 dimensions are not classes)."""
    from workbench.task import Task, is_classifier_output, mean_cosine

    if type(task).fidelity is not Task.fidelity:
        judge = copy.copy(task)  # its fidelity, measured against the source variant rather than the original
        judge._reference = [np.asarray(o) for o in src]
        return float(judge.fidelity(art, slice(None))), f"{type(task).__name__} fidelity"
    a, s = np.asarray(art[0]), np.asarray(src[0])
    if is_classifier_output(s) and type(task).score is Task.score:
        return float(np.mean(np.argmax(a, axis=1) == np.argmax(s, axis=1))), "top-1 agreement"
    return round(mean_cosine(a, s), 6), "mean cosine"


def check(figures: dict[str, Any], tolerance: Tolerance, *, what: str, hint: str = "") -> dict[str, Any]:
    """Add ``passed``/``tolerance`` to the figures; raise `WorkbenchError` naming every exceeded bound."""
    m = figures["metric"]
    src, art = figures["source"].get(m), figures["artifact"].get(m)
    drop = (src - art) if figures["higher_is_better"] else (art - src)
    failures = []
    if not figures["finite"]:
        failures.append("the artefact produced NaN or infinite outputs")
    if drop > tolerance.metric_drop + 1e-12:
        failures.append(f"{m} fell {drop:.4f} ({src:.4f} -> {art:.4f}; allowed {tolerance.metric_drop:.4f})")
    if figures["agreement"] < tolerance.agreement - 1e-12:
        failures.append(f"{figures['agreement_kind']} with the source {figures['agreement']:.4f} "
                        f"(required >= {tolerance.agreement:.4f})")
    if tolerance.max_rel_error is not None and figures["max_rel_error"] > tolerance.max_rel_error:
        failures.append(f"max |output difference| {figures['max_abs_error']:.4g} = {figures['max_rel_error']:.4g} "
                        f"of the largest output (allowed {tolerance.max_rel_error:.4g})")
    out = {**figures, "tolerance": tolerance.to_dict(), "passed": not failures}
    if failures:
        metrics = ", ".join(f"{k} {figures['source'][k]:.4f} -> {figures['artifact'].get(k, float('nan')):.4f}"
                            for k in figures["source"])
        raise WorkbenchError(
            f"{what} failed parity on {figures['samples']} evaluation samples in {figures['artifact_runtime']}: "
            f"{'; '.join(failures)}. Figures: {metrics}; {figures['agreement_kind']} {figures['agreement']:.4f}; "
            f"max abs error {figures['max_abs_error']:.4g}. The exported file does not behave like the source: "
            f"{hint + '; ' if hint else ''}pick another target, recover accuracy first (Recover), or pass a looser "
            "workbench.Tolerance if this drift is acceptable. Nothing was written."
        )
    return out
