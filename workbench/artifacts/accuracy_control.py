"""Accuracy-aware int8: when an int8 export fails parity, keep its most fragile quantisers in float.

The design follows NNCF's `quantize_with_accuracy_control` (and OpenVINO POT's AccuracyAwareQuantization before
it): quantise everything, rank the quantisers by how much each one costs, revert the worst to float, re-check,
and stop at the smallest set that meets the accuracy bar. Here the bar is the export's own parity `Tolerance`
and every candidate file is checked exactly as the final one is (same runtime, same evaluation rows).

Units (what can be kept float) depend on the target:

- ``onnx-int8`` (static QDQ): each activation quantiser, i.e. a tensor with a QuantizeLinear/DequantizeLinear
  pair. Keeping one float removes that pair in the calibrated file (`keep_float_qdq`): no re-calibration, and
  its consumers run on the float tensor. Ranked in one pass (`rank_qdq`): every consumer of a quantised tensor is
  cloned onto the float tensor inside the quantised graph and the two outputs compared, so a quantiser is
  scored by the error it adds *where it sits* (a Softmax fed a quantised, mask-dominated score tensor, a
  LayerNorm fed a residual stream with outlier channels). A plain SQNR of the tensor itself misses exactly
  these: measured on MiniLM, the six attention-score tensors (mask values of -3.4e38, kept exactly, dominate
  their norm) rank 212-217 of 219 by SQNR, and first by this score; keeping them float recovers the most.
- ``onnx-int8-dynamic``: each weight layer of the recipe (ONNX Runtime quantises activations inside the op at
  run time, so the layer is the unit); excluded layers are re-quantised out (`quantize_dynamic` is fast).
- ``tflite-int8``: each activation tensor with its producer and consumer ops (``no_quantize`` in the
  ai_edge_quantizer recipe; calibration is reused). Reverting single ops is not enough there: measured on
  Silero VAD, keeping the final 1x1 convolution *or* its sigmoid float changes nothing, both together
  recover the model (the quantised tensor between them is the problem).

Search: with at most `AccuracyControl.greedy_units` units, NNCF's own scheme (revert each unit alone on a
ranking subset, keep the best, re-rank the rest with it kept, up to `greedy_rounds`); with more, the one-pass
ranking above and the smallest passing prefix of it (doubling 1, 2, 4, ..., then bisection). Both stop at
`max_tries` full parity checks and refuse a file that would keep more than `max_float_fraction` of its
quantisers float (that is no longer an int8 export).

The workbench's `sensitivity` table (one layer's weights at a time, in PyTorch) is not the ranking: it never
quantises activations, where static int8 breaks. Measured at 8 bits: on MiniLM all 37 layers drop 0.000
(200 samples, 587 s), so it cannot rank; on Silero VAD it puts conv4 first, but every drop is within the metric's
interval (at most 6 of 1362 frames), its order keeps 3 layers float where the revert-one ranking keeps 2
(conv4, conv3), and it took 166 s against 7 s for the whole greedy search.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from workbench.core.errors import WorkbenchError


@dataclass(frozen=True)
class AccuracyControl:
    """How `workbench.export` recovers an int8 target that fails parity (``accuracy_control=...``).

    Args:
        max_tries: most candidate files checked on the full parity data (the all-int8 file not counted).
        max_float_fraction: largest share of the file's quantisers that may stay float; beyond it the export
            is refused (a file that is mostly float is not an int8 export).
        ranking_limit: evaluation samples used to rank units one at a time (NNCF's ``ranking_subset_size``
            default, 300); `None` for the parity data itself. Never more than the parity check's `limit`.
        ranking_samples: calibration samples run through the one-pass QDQ ranking.
        greedy_units: up to this many units, rank by reverting each one alone (NNCF's ranking); above it, the
            one-pass ranking (static ONNX) or op-type groups (others) and a prefix search.
        greedy_rounds: most units the greedy search keeps float (one round each).
        measure_latency: time the all-int8 and the kept-float files (batch 1, one thread) for the manifest.

    Example:
        >>> AccuracyControl(max_tries=4).max_float_fraction
        0.5
        >>> AccuracyControl(max_float_fraction=0)
        Traceback (most recent call last):
        ValueError: max_float_fraction must be in (0, 1], got 0
    """

    max_tries: int = 12
    max_float_fraction: float = 0.5
    ranking_limit: int | None = 300
    ranking_samples: int = 16
    greedy_units: int = 64
    greedy_rounds: int = 3
    measure_latency: bool = True

    def __post_init__(self) -> None:
        for name in ("max_tries", "ranking_samples", "greedy_units", "greedy_rounds"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        r = self.ranking_limit
        if r is not None and (isinstance(r, bool) or not isinstance(r, int) or r < 1):
            raise ValueError(f"ranking_limit must be a positive int or None, got {r!r}")
        f = self.max_float_fraction
        if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 < f <= 1:
            raise ValueError(f"max_float_fraction must be in (0, 1], got {f!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Unit:
    """One thing accuracy control can keep float.

    Attributes:
        name: what the builder's ``keep_float`` takes: a tensor name (activation quantisers) or a layer name.
        kind: ``"activation"`` (a quantised tensor between ops) or ``"layer"`` (a weight layer).
        op_type: the producing op's type (``"input"`` for a model input) or the layer's op.
        consumers: the op types that read the tensor (activations).
        ops: the graph nodes / TFLite ops the unit touches (what stays float).
    """

    name: str
    kind: str
    op_type: str
    consumers: tuple[str, ...] = ()
    ops: tuple[str, ...] = field(default=(), repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "op_type": self.op_type, "consumers": list(self.consumers)}


Check = Callable[[Sequence[str], int | None], dict[str, Any]]
"""``check(keep_float, limit) -> parity figures`` (with ``passed`` and ``slack``) of the file keeping those float."""


# ------------------------------------------------------------------------------------------ ONNX QDQ files


def _graph_maps(model: Any) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    producer = {o: n for n in model.graph.node for o in n.output}
    consumers: dict[str, list[Any]] = {}
    for n in model.graph.node:
        for x in n.input:
            consumers.setdefault(x, []).append(n)
    return producer, consumers


def _activation_pairs(model: Any) -> dict[str, list[tuple[Any, list[Any]]]]:
    """``{tensor: [(DequantizeLinear node, [its consumers]), ...]}`` for every non-constant quantised tensor."""
    inits = {i.name for i in model.graph.initializer}
    _, consumers = _graph_maps(model)
    out: dict[str, list[tuple[Any, list[Any]]]] = {}
    for q in model.graph.node:
        if q.op_type != "QuantizeLinear" or q.input[0] in inits:
            continue
        for dq in consumers.get(q.output[0], []):
            if dq.op_type == "DequantizeLinear":
                out.setdefault(q.input[0], []).append((dq, consumers.get(dq.output[0], [])))
    return out


def qdq_units(path: str | Path) -> list[Unit]:
    """The activation quantisers of a QDQ ONNX file (`onnx-int8`), in graph order."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    producer, _ = _graph_maps(model)
    units = []
    for tensor, pairs in _activation_pairs(model).items():
        users = [c for _, cs in pairs for c in cs]
        src = producer.get(tensor)
        units.append(Unit(tensor, "activation", src.op_type if src is not None else "input",
                          tuple(sorted({c.op_type for c in users})),
                          tuple(sorted({c.name for c in users} | ({src.name} if src is not None else set())))))
    return units


def keep_float_qdq(src: str | Path, tensors: Sequence[str], out: str | Path) -> Path:
    """Write `src` (a QDQ file) with the Quantize/DequantizeLinear pairs of `tensors` removed: their consumers
    read the float tensor. Written by hand because ONNX Runtime's quantiser only excludes whole nodes and
    re-calibrates on every call (10 s per try on MiniLM); removing a pair from the calibrated file is the same
    float path without it."""
    import onnx

    model = onnx.load(str(src))
    pairs = _activation_pairs(model)
    unknown = [t for t in tensors if t not in pairs]
    if unknown:
        raise WorkbenchError(f"{Path(src).name}: no activation quantiser on tensor(s) {unknown[:5]}; "
                             f"quantised tensors: {list(pairs)[:6]}... ({len(pairs)} in all).")
    outputs = {o.name for o in model.graph.output}
    for tensor in tensors:
        for dq, users in pairs[tensor]:
            for node in users:
                for i, x in enumerate(node.input):
                    if x == dq.output[0]:
                        node.input[i] = tensor
            if dq.output[0] in outputs:  # a model output stays named: pass the float tensor through
                dq.op_type, dq.domain = "Identity", ""
                del dq.input[:]
                del dq.attribute[:]
                dq.input.append(tensor)
    _prune(model)
    onnx.save(model, str(out))
    return Path(out)


def _prune(model: Any) -> None:
    """Drop nodes whose outputs nothing reads (the orphaned Q/DQ pairs) and initializers no node reads."""
    graph = model.graph
    while True:
        used = {x for n in graph.node for x in n.input} | {o.name for o in graph.output}
        dead = [n for n in graph.node if not any(o in used for o in n.output)]
        if not dead:
            break
        for n in dead:
            graph.node.remove(n)
    used = {x for n in graph.node for x in n.input}
    for init in [i for i in graph.initializer if i.name not in used]:
        graph.initializer.remove(init)


def rank_qdq(path: str | Path, calibration: Sequence[np.ndarray], *, samples: int = 16) -> dict[str, float]:
    """``{tensor: relative error its quantiser adds at its consumers' outputs}`` of a QDQ file, worst first.

    Every consumer of a quantised tensor is cloned inside the quantised graph with the float tensor as input
    (its other inputs shared), and ``|out - out_float| / |out_float|`` (float64, over `samples` calibration
    samples fed one at a time) is the tensor's score (the worst over its consumers). One session, one pass.
    Hand-written because ONNX Runtime's `qdq_loss_debug` scores a tensor by its own SQNR, which misses errors
    a consumer amplifies (see the module docstring).
    """
    import copy
    import tempfile

    import onnx
    import onnxruntime as ort

    model = onnx.load(str(path))
    pairs = _activation_pairs(model)
    types = _elem_types(model)
    probes: list[tuple[str, str, str]] = []  # (tensor, quantised output, float-fed output)
    for k, (tensor, entries) in enumerate(pairs.items()):
        for j, (dq, users) in enumerate(entries):
            for c, node in enumerate(users):
                if node.op_type in ("QuantizeLinear", "DequantizeLinear") or any(
                        a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute):
                    continue
                clone = copy.deepcopy(node)
                clone.name = f"{node.name}__wb_probe_{k}_{j}_{c}"
                for i, x in enumerate(clone.input):
                    if x == dq.output[0]:
                        clone.input[i] = tensor
                for i, o in enumerate(node.output):
                    clone.output[i] = f"{o}__wb_probe_{k}_{j}_{c}" if o else ""
                model.graph.node.append(clone)
                for o, p in zip(node.output, clone.output):
                    if o and types.get(o) in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16):
                        probes.append((tensor, o, p))
    known = {o.name for o in model.graph.output}
    for name in sorted({n for _, o, p in probes for n in (o, p)} - known):
        model.graph.output.append(onnx.helper.make_tensor_value_info(name, types.get(name.split("__wb_probe_")[0],
                                                                                       onnx.TensorProto.FLOAT), None))
    with tempfile.TemporaryDirectory(prefix="wb-rank-") as tmp:
        probe_file = Path(tmp) / "probe.onnx"
        onnx.save(model, str(probe_file))
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # Q/DQ simulated as written
        opts.intra_op_num_threads = 1
        sess = ort.InferenceSession(str(probe_file), opts, providers=["CPUExecutionProvider"])
        inputs = [i.name for i in sess.get_inputs()]
        wanted = sorted({n for _, o, p in probes for n in (o, p)})
        err = {(o, p): [0.0, 0.0] for _, o, p in probes}
        n = min(samples, len(calibration[0]))
        for s in range(n):
            feed = {name: np.asarray(a[s:s + 1]) for name, a in zip(inputs, calibration)}
            values = dict(zip(wanted, sess.run(wanted, feed)))
            for key in err:
                q, f = np.asarray(values[key[0]], np.float64), np.asarray(values[key[1]], np.float64)
                diff = np.where(q == f, 0.0, q - f)  # equal infinities (masked scores) are no error
                err[key][0] += float(np.sum(diff * diff)) if np.all(np.isfinite(diff)) else math.inf
                err[key][1] += float(np.sum(np.where(np.isfinite(f), f, 0.0) ** 2))
    scores: dict[str, float] = {t: 0.0 for t in pairs}
    for tensor, o, p in probes:
        num, den = err[(o, p)]
        rel = math.sqrt(num / den) if den > 0 else (0.0 if num == 0 else math.inf)
        scores[tensor] = max(scores[tensor], rel)
    return dict(sorted(scores.items(), key=lambda kv: -kv[1]))


def _elem_types(model: Any) -> dict[str, int]:
    """Element type of every tensor ONNX shape inference can type (unknown ops' outputs are left out)."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    except Exception:  # noqa: BLE001 - a graph inference cannot walk: probes use what the graph declares
        inferred = model
    g = inferred.graph
    return {v.name: v.type.tensor_type.elem_type for v in (*g.value_info, *g.input, *g.output)
            if v.type.HasField("tensor_type")}


# ------------------------------------------------------------------------------------------------ search


@dataclass
class Outcome:
    """What the search found: the units kept float (smallest passing set), its figures, and every try."""

    kept: list[Unit]
    figures: dict[str, Any] | None
    method: str
    ranking: list[dict[str, Any]]
    tries: list[dict[str, Any]]
    passed: bool


def _try_row(keep: Sequence[str], figures: dict[str, Any], seconds: float, scope: str) -> dict[str, Any]:
    m = figures["metric"]
    return {"kept_float": len(keep), "scope": scope, "passed": bool(figures["passed"]),
            "slack": round(float(figures["slack"]), 6), m: round(float(figures["artifact"][m]), 6),
            "agreement": round(float(figures["agreement"]), 6), "seconds": round(seconds, 2)}


def search(units: Sequence[Unit], check: Check, cfg: AccuracyControl, *, ranking: dict[str, float] | None = None,
           ranking_method: str = "", full_limit: int | None = None) -> Outcome:
    """The smallest set of `units` to keep float for `check` to pass (see the module docstring)."""
    by_name = {u.name: u for u in units}
    cap = max(1, int(math.floor(cfg.max_float_fraction * len(units))))
    tries: list[dict[str, Any]] = []

    def full(keep: Sequence[str]) -> dict[str, Any]:
        t0 = time.perf_counter()
        figures = check(keep, full_limit)
        tries.append(_try_row(keep, figures, time.perf_counter() - t0, "parity"))
        return figures

    if ranking is None and len(units) <= cfg.greedy_units:
        return _greedy(units, check, cfg, cap, full, tries, full_limit)
    if ranking is None:  # too many units to revert one at a time: rank op types as groups, then units by group
        ranking, ranking_method = _group_ranking(units, check, cfg, tries, full_limit)
    order = [by_name[n] for n in ranking if n in by_name]
    rows = [{"name": n, "score": _round(s)} for n, s in ranking.items()]
    best: tuple[int, dict[str, Any]] | None = None
    lo, size = 0, 1
    while _checks(tries) < cfg.max_tries:  # doubling: 1, 2, 4, ... up to the cap
        size = min(size, cap)
        figures = full([u.name for u in order[:size]])
        if figures["passed"]:
            best = (size, figures)
            break
        lo = size
        if size == cap:
            break
        size *= 2
    if best is not None:  # bisection between the last failing and the first passing prefix
        hi = best[0]
        while hi - lo > 1 and _checks(tries) < cfg.max_tries:
            mid = (lo + hi) // 2
            figures = full([u.name for u in order[:mid]])
            if figures["passed"]:
                hi, best = mid, (mid, figures)
            else:
                lo = mid
    if best is None:
        return Outcome([], None, ranking_method, rows, tries, False)
    return Outcome(order[:best[0]], best[1], ranking_method, rows, tries, True)


def _greedy(units: Sequence[Unit], check: Check, cfg: AccuracyControl, cap: int, full: Callable,
            tries: list[dict[str, Any]], full_limit: int | None) -> Outcome:
    """NNCF's ranking: revert each remaining unit alone (on top of those already kept) on the ranking subset,
    keep the best, check it on the parity data; re-rank the rest with it kept, for `greedy_rounds` rounds."""
    rank_limit = _rank_limit(cfg, full_limit)
    keep: list[Unit] = []
    first: list[dict[str, Any]] = []
    last = -math.inf
    for _ in range(min(cfg.greedy_rounds, cap)):
        scored = []
        for u in units:
            if u in keep:
                continue
            t0 = time.perf_counter()
            figures = check([k.name for k in keep] + [u.name], rank_limit)
            tries.append(_try_row([*keep, u], figures, time.perf_counter() - t0, "ranking"))
            scored.append((float(figures["slack"]), u))
        if not scored:
            break
        scored.sort(key=lambda su: -su[0])
        if not first:
            first = [{"name": u.name, "score": _round(s)} for s, u in scored]
        if scored[0][0] <= last:  # no unit improves on those kept: more rounds only keep more float
            break
        last = scored[0][0]
        keep.append(scored[0][1])
        if _checks(tries) >= cfg.max_tries:
            break
        figures = full([k.name for k in keep])
        if figures["passed"]:
            return Outcome(keep, figures, "revert one unit at a time (NNCF), greedy", first, tries, True)
    return Outcome([], None, "revert one unit at a time (NNCF), greedy", first, tries, False)


def _group_ranking(units: Sequence[Unit], check: Check, cfg: AccuracyControl, tries: list[dict[str, Any]],
                   full_limit: int | None) -> tuple[dict[str, float], str]:
    """Units ranked by their op type's group: every unit of one op type reverted together, best group first."""
    groups: dict[str, list[str]] = {}
    for u in units:
        groups.setdefault(u.op_type, []).append(u.name)
    scores = {}
    for op, names in groups.items():
        t0 = time.perf_counter()
        figures = check(names, _rank_limit(cfg, full_limit))
        tries.append(_try_row(names, figures, time.perf_counter() - t0, "ranking"))
        scores[op] = float(figures["slack"])
    ordered = sorted(groups, key=lambda op: -scores[op])
    return ({n: scores[op] for op in ordered for n in groups[op]},
            "op-type groups reverted together on the ranking subset")


def _checks(tries: list[dict[str, Any]]) -> int:
    return sum(t["scope"] == "parity" for t in tries)


def _rank_limit(cfg: AccuracyControl, full_limit: int | None) -> int | None:
    limits = [x for x in (cfg.ranking_limit, full_limit) if x is not None]
    return min(limits) if limits else None


def _round(x: float) -> float | None:
    return round(float(x), 6) if math.isfinite(x) else None


def slack(figures: dict[str, Any], tolerance: Any) -> float:
    """How far the figures are inside the tolerance (>= 0 passes): the smaller of the metric's and the
    agreement's margins, each in its own units; -inf for non-finite outputs."""
    if not figures["finite"]:
        return -math.inf
    m = figures["metric"]
    src, art = figures["source"][m], figures["artifact"][m]
    drop = (src - art) if figures["higher_is_better"] else (art - src)
    margins = [tolerance.metric_drop - drop, figures["agreement"] - tolerance.agreement]
    if tolerance.max_rel_error is not None:
        margins.append(tolerance.max_rel_error - figures["max_rel_error"])
    return float(min(margins))


# ------------------------------------------------------------------------------------------------- export


Evaluate = Callable[[Path, "int | None"], tuple[dict[str, Any], Any]]
"""``evaluate(path, limit) -> (parity figures, artefact handle)``: the export's own parity measurement."""


def supports(target: Any) -> bool:
    """Whether accuracy control applies to `target`: int8, and its builder takes ``keep_float``."""
    import inspect

    if target.precision != "int8" or target.exporter is None:
        return False
    return "keep_float" in inspect.signature(target.exporter.function("build")).parameters


def restore(handle: Any, target: Any, calibration: Any, built: Any, failed: dict[str, Any], failure: str,
            evaluate: Evaluate, tolerance: Any, limit: int | None,
            cfg: AccuracyControl) -> tuple[Any, dict[str, Any], Any, dict[str, Any]]:
    """Search the smallest keep-float set for `target` whose file passes parity (the all-int8 `built` failed
    with figures `failed` and message `failure`); return ``(built, parity, artefact handle, report)``.

    Before searching, the file with *every* activation quantiser float (weights still int8) is checked: when
    even that fails, no subset can pass and the export is refused at once.

    Raises:
        WorkbenchError: `failure`, with what accuracy control tried and why nothing passed.
    """
    from workbench.artifacts.parity import check as check_parity

    build = target.exporter.function("build")
    units, ranking, method = _units(handle, target, calibration, built, cfg)
    done: dict[tuple[tuple[str, ...], int | None], tuple[Any, dict[str, Any], Any]] = {}

    def check(keep: Sequence[str], lim: int | None) -> dict[str, Any]:
        key = (tuple(sorted(keep)), lim)
        if key not in done:
            b = build(handle, target, calibration, keep_float=list(keep))
            figures, art = evaluate(b.path, lim)
            margin = slack(figures, tolerance)
            done[key] = (b, {**figures, "slack": margin, "passed": margin >= -1e-12}, art)
        return done[key][1]

    def refuse(why: str) -> WorkbenchError:
        head = failure.rsplit(" Nothing was written.", 1)[0]
        return WorkbenchError(f"{head} Accuracy control could not recover it: {why}. Nothing was written.")

    m = failed["metric"]
    if not units:
        raise refuse("the file has no quantiser it can keep float")
    t0 = time.perf_counter()
    bound_row = []
    if units[0].kind == "activation":
        bound = check([u.name for u in units], limit)
        bound_row = [_try_row(units, bound, time.perf_counter() - t0, "all float")]
        if not bound["passed"]:
            raise refuse(f"even with all {len(units)} activation quantisers float (int8 weights) {m} is "
                         f"{bound['artifact'][m]:.4f} and agreement {bound['agreement']:.4f}, so no smaller set "
                         "passes; pick another target or pass a looser workbench.Tolerance")
    outcome = search(units, check, cfg, ranking=ranking, ranking_method=method, full_limit=limit)
    outcome.tries[:0] = bound_row
    seconds = time.perf_counter() - t0
    before = {m: failed["artifact"][m], "agreement": failed["agreement"], "source": failed["source"][m]}
    if not outcome.passed:
        best = max(outcome.tries, key=lambda t: t["slack"], default=None)
        raise refuse(
            f"{len(outcome.tries)} candidates checked ({outcome.method}; at most {cfg.max_tries} parity checks, "
            f"at most {cfg.max_float_fraction:.0%} of the {len(units)} quantisers float)"
            + (f", the best keeping {best['kept_float']} float ({m} {best[m]:.4f}, agreement "
               f"{best['agreement']:.4f})" if best else "")
            + "; raise AccuracyControl(max_tries=..., max_float_fraction=...) or pick another target")
    kept_names = [u.name for u in outcome.kept]
    final, figures, art = done[(tuple(sorted(kept_names)), limit)]
    figures = {k: v for k, v in figures.items() if k not in ("slack", "passed")}
    parity = check_parity(figures, tolerance, what=f"{handle.name} exported to {target.name}", hint=target.hint)
    report = {
        "config": cfg.to_dict(),
        "kept_float": [u.to_dict() for u in outcome.kept],
        "quantisers": len(units),
        "unit": units[0].kind,
        "ranking": {"method": outcome.method, "top": outcome.ranking[:20], "ranked": len(outcome.ranking)},
        "tries": outcome.tries,
        "seconds": round(seconds, 1),
        "before": before,
        "after": {m: parity["artifact"][m], "agreement": parity["agreement"], "source": parity["source"][m]},
        "cost": _cost(target, built.path, final.path, handle, art, cfg),
    }
    return final, parity, art, report


def _units(handle: Any, target: Any, calibration: Any, built: Any,
           cfg: AccuracyControl) -> tuple[list[Unit], dict[str, float] | None, str]:
    """The target's units, a one-pass ranking where there is one and too many units to revert singly."""
    if target.format == "tflite":
        from workbench.artifacts.tflite_export import keep_float_units

        return [Unit(**u) for u in keep_float_units(handle)], None, ""
    if built.recipe.get("mode") == "static":
        units = qdq_units(built.path)
        if len(units) <= cfg.greedy_units:
            return units, None, ""
        return (units, rank_qdq(built.path, calibration, samples=cfg.ranking_samples),
                "error each quantiser adds at its consumers (one pass, float-fed clones)")
    layers = built.recipe.get("quantized_layers") or {}
    return [Unit(name, "layer", op) for name, op in layers.items()], None, ""


def _cost(target: Any, int8_path: Path, path: Path, handle: Any, art: Any, cfg: AccuracyControl) -> dict[str, Any]:
    """Size (and, when asked, batch-1 latency) of the kept-float file against the all-int8 one."""
    size8, size = Path(int8_path).stat().st_size, Path(path).stat().st_size
    out: dict[str, Any] = {"size_bytes_all_int8": size8, "size_bytes": size, "size_ratio": round(size / size8, 4)}
    if not cfg.measure_latency:
        return out
    from workbench.formats.loader import load
    from workbench.runtimes import runtime

    try:
        int8 = runtime(load(int8_path, example_inputs=handle.example_inputs), target.runtime, threads=1)
        kept = runtime(art, target.runtime, threads=1)
        rounds = [(latency_ms(int8, handle.example_inputs), latency_ms(kept, handle.example_inputs))
                  for _ in range(2)]  # interleaved: a shared machine drifts between runs
    except Exception as e:  # noqa: BLE001 - a timing that cannot be taken is reported, not fatal
        from workbench.core.errors import first_line

        return {**out, "latency": f"not measured: {first_line(e)}"}
    a, b = min(r[0] for r in rounds), min(r[1] for r in rounds)
    return {**out, "latency_ms_p50_all_int8": round(a, 4), "latency_ms_p50": round(b, 4),
            "latency_ratio": round(b / a, 3), "latency": f"measured: {target.runtime}, 1 thread, batch 1, best of "
            "2 interleaved medians"}


def latency_ms(runner: Any, inputs: Sequence[np.ndarray]) -> float:
    """Median latency of one call (batch 1), short budget: a figure for the manifest, not a benchmark."""
    from workbench.measurement.latency import time_runner

    x = [np.asarray(a)[:1] for a in inputs]
    return float(time_runner(runner, x, warmup=3, min_reps=15, min_seconds=0.2, max_seconds=1.5).p50)


__all__ = ["AccuracyControl", "Outcome", "Unit", "keep_float_qdq", "qdq_units", "rank_qdq", "restore",
           "search", "slack", "supports"]
