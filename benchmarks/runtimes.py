"""The same variant on every runtime: fp32 and int8 batch-1 latency per runtime, beside hand-written references,
and the int8 / fp32 ratio against model size.

    .venv/bin/python benchmarks/runtimes.py [--quick] [--task kws minilm silero-vad digits-cnn] [--threads 1]
                                            [--rounds 5] [--runtimes all] [--widths 1 2 4]

Per task, the fp32 model and its `Quantize(8)` variant are realised on every installed runtime (what that runtime
really executes: `workbench.realize`) and run with `workbench.runtime`. Beside them, the hand-written references
(benchmarks/references.py: the raw library calls a competent user writes): for a CNN, torch.onnx.export ->
quantize_static (QDQ) on ONNX Runtime and PT2E -> litert_torch on LiteRT; for MiniLM, torch.onnx.export ->
optimize_model -> quantize_dynamic. Everything is timed in the same interleaved rounds (median of round p50s),
same thread count, same batch-1 input. Printed: p50, ratio to ONNX Runtime fp32, metric on the first `--limit`
evaluation samples, what ran; each runtime's own int8 / fp32 speedup; then the kws DS-CNN scaled to `--widths`
x its channels (fresh weights: speed only), int8 / fp32 on each fast-to-build runtime, to show where per-call
overhead stops mattering.

Bars: int8 >= 1.7x on the default CNN (kws) on its best runtime; workbench >= reference on every reference row
(within 5 %: these VMs are noisy). ``--quick``: kws only, widths 1 and 4, ExecuTorch skipped in the scaling.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import header, verdict
from references import (
    interleaved,
    litert_int8_cnn,
    litert_session,
    ort_int8_cnn,
    ort_int8_transformer,
    ort_session,
    per_row,
    scaled_dscnn,
)

import workbench
from workbench import Quantize, compress
from workbench.realize import realize

CNN_INT8_BAR = 1.7
NOISE = 1.05  # "at least as fast": within 5 % of the reference, the spread of repeated runs on these VMs
CNN_TASKS = ("kws", "digits-cnn")
T0 = time.perf_counter()


def say(msg: str) -> None:
    print(f"[{time.perf_counter() - T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


def workbench_runners(task, handles: dict, runtimes, threads: int, limit: int | None) -> tuple[dict, dict]:
    runners, meta = {}, {}
    for prec, handle in handles.items():
        for rt in runtimes:
            try:
                real = realize(handle, rt, task)
                run = workbench.runtime(real.handle, rt, threads=threads)
                metric = task.score(*task.run(run, limit=limit))[task.metric] if limit else float("nan")
            except workbench.WorkbenchError as e:
                print(f"  {task.name} {prec} {rt}: cannot run ({str(e)[:120]})")
                continue
            runners[(prec, rt)] = run
            meta[(prec, rt)] = {"ran": real.note, "realized": real.realized, "metric": metric, "path": real.path}
    return runners, meta


def reference_runners(task, tmp: Path, threads: int, limit: int) -> tuple[dict, dict]:
    """The hand-written references for `task`, keyed like the workbench rows: ((precision, runtime) -> runner)."""
    runners = {}
    if task.name in CNN_TASKS:
        module, x, cal = task.model.module, task.example_inputs[0], task.calibration[0]
        for rt, build in (("onnxruntime", ort_int8_cnn), ("litert", litert_int8_cnn)):
            try:
                for prec, run in build(module, x, cal, tmp / rt, threads).items():
                    runners[(prec, rt)] = run
            except Exception as e:  # noqa: BLE001 - a reference that cannot be built is reported, not fatal
                print(f"  reference on {rt} could not be built: {str(e)[:160]}")
    elif task.name == "minilm":
        from workbench.formats.onnx_optimize import bert_config

        heads, hidden = bert_config(task.model.module)
        names = [s.name for s in task.model.inputs]
        for prec, run in ort_int8_transformer(task.model.module, task.example_inputs, names, tmp / "ort", threads,
                                              heads, hidden).items():
            runners[(prec, "onnxruntime")] = run
    meta = {}
    for k, run in runners.items():
        meta[k] = {"ran": "hand-written reference", "realized": True,
                   "metric": task.score(*task.run(per_row(run), limit=limit))[task.metric] if limit else float("nan")}
    return runners, meta


def table(task, rows: dict, meta: dict, med: dict, iqr: dict, runtimes) -> tuple[dict, list]:
    ref = med.get(("workbench", "fp32", "onnxruntime"))
    print(f"\n{task.name}: batch 1, median of interleaved rounds (x: ratio to the workbench's ONNX Runtime fp32, "
          f"> 1 faster); {task.metric} on the first evaluation samples")
    for key in rows:
        who, prec, rt = key
        m = meta[key]
        ratio = ref / med[key] if ref else np.nan
        print(f"  {who:9s} {prec:10s} {rt:12s} {med[key]:8.3f} ms ±{iqr[key]:.3f}  x{ratio:5.2f}"
              f"  {task.metric} {m['metric']:.4f}  {'' if m['realized'] else '[simulated] '}{m['ran'][:110]}")
    speedups, bars = {}, []
    print("  int8 / fp32 speedup on each runtime (its own fp32; for ONNX Runtime also vs the plain export):")
    for who in ("workbench", "reference"):
        for rt in runtimes:
            a, b = (who, "fp32", rt), (who, "int8", rt)
            if a in med and b in med:
                real = meta[b]["realized"] and "int8" in meta[b]["ran"] if who == "workbench" else True
                s = med[a] / med[b]
                extra = ""
                if (who, "fp32 fused", rt) in med:
                    extra = f" (vs its fused fp32: {med[(who, 'fp32 fused', rt)] / med[b]:.2f}x)"
                print(f"    {who:9s} {rt:12s} {s:5.2f}x{extra}{'' if real else '  (int8 not realised: not counted)'}")
                if who == "workbench":
                    speedups[rt] = s if real else float("nan")
    for prec in ("fp32", "int8"):
        for rt in runtimes:
            w, r = ("workbench", prec, rt), ("reference", prec, rt)
            if w in med and r in med:
                f = ("wb file", prec, rt)
                file_note = f"; the workbench's file in a plain session {med[f]:.3f} ms" if f in med else ""
                bars.append((f"{task.name} {prec} on {rt}: workbench >= hand-written reference",
                             med[w] <= med[r] * NOISE,
                             f"workbench {med[w]:.3f} ms, reference {med[r]:.3f} ms ({med[r] / med[w]:.2f}x){file_note}"))
    return speedups, bars


def run_task(name: str, runtimes, args, tmp: Path) -> list:
    task = workbench.zoo.load(name)
    say(f"{name}: realising fp32 and Quantize(8) on {', '.join(runtimes)}")
    handles = {"fp32": task.model, "int8": compress(task.model, Quantize(8), task=task)}
    wb, wb_meta = workbench_runners(task, handles, runtimes, args.threads, args.limit)
    say(f"{name}: building the hand-written references")
    ref, ref_meta = reference_runners(task, tmp / name, args.threads, args.limit)
    rows = {("workbench", *k): r for k, r in wb.items()} | {("reference", *k): r for k, r in ref.items()}
    meta = {("workbench", *k): m for k, m in wb_meta.items()} | {("reference", *k): m for k, m in ref_meta.items()}
    for (prec, rt), m in wb_meta.items():  # the workbench's own file in a plain session: runner overhead apart
        if rt in ("onnxruntime", "litert") and prec in ("fp32", "int8"):
            session = ort_session if rt == "onnxruntime" else litert_session
            rows[("wb file", prec, rt)] = session(m["path"], args.threads)
            meta[("wb file", prec, rt)] = {**m, "ran": "the workbench's file above in a plain session (no runner)"}
    if name == "minilm" and "onnxruntime" in runtimes:  # the plain (unfused) export, as workbench.runtime runs it
        plain = workbench.runtime(task.model, "onnxruntime", threads=args.threads)
        rows[("workbench", "fp32 plain", "onnxruntime")] = plain
        meta[("workbench", "fp32 plain", "onnxruntime")] = {
            "ran": "fp32, convert.to_onnx (dynamo export, no transformer fusions)", "realized": True,
            "metric": task.score(*task.run(plain, limit=args.limit))[task.metric] if args.limit else float("nan")}
    say(f"{name}: timing {len(rows)} runners, {args.rounds} interleaved rounds")
    slow = name not in CNN_TASKS
    med, iqr = interleaved(rows, [a[:1] for a in task.example_inputs], args.rounds,
                           min_seconds=0.5 if slow else 0.2, max_seconds=3.0 if slow else 2.0)
    speedups, bars = table(task, rows, meta, med, iqr, runtimes)
    if name == "minilm" and ("workbench", "int8", "onnxruntime") in med:
        i8 = med[("workbench", "int8", "onnxruntime")]
        fused = med.get(("workbench", "fp32", "onnxruntime"))
        plain = med.get(("workbench", "fp32 plain", "onnxruntime"))
        loss = 100 * (meta[("workbench", "fp32", "onnxruntime")]["metric"] - meta[("workbench", "int8", "onnxruntime")]
                      ["metric"])
        bars.insert(0, ("MiniLM int8 >= 3.5x on ONNX Runtime, judged against its fused fp32 (the best fp32 there)",
                        fused / i8 >= 3.5 and loss <= 1.0,
                        f"int8 {i8:.3f} ms: {fused / i8:.2f}x vs fused fp32 {fused:.3f} ms, {plain / i8:.2f}x vs the "
                        f"plain export {plain:.3f} ms; {task.metric} change {-loss:+.2f} pt on {args.limit} samples"))
    if name == "kws" and speedups:
        real = {rt: s for rt, s in speedups.items() if not np.isnan(s)}
        best = max(real, key=real.get) if real else None
        fastest = min(real, key=lambda rt: med[("workbench", "int8", rt)]) if real else None
        bars.insert(0, (f"int8 on the default CNN (kws) >= {CNN_INT8_BAR}x on its best runtime", bool(best) and
                        real[best] >= CNN_INT8_BAR, f"best {best} {real.get(best, np.nan):.2f}x; where int8 is fastest "
                        f"({fastest}, {med[('workbench', 'int8', fastest)]:.3f} ms) {real.get(fastest, np.nan):.2f}x; "
                        + ", ".join(f"{rt} {s:.2f}x" for rt, s in real.items())))
    return bars


def scaling(args, runtimes, tmp: Path) -> list:
    """int8 / fp32 of the kws DS-CNN at `args.widths` x its channels on the runtimes that build in seconds."""
    from workbench.core.layers import count_macs

    task = workbench.zoo.load("kws")
    rts = [rt for rt in runtimes if rt in ("onnxruntime", "litert", "openvino")]
    print(f"\nkws DS-CNN scaled in width (x1: the trained model; wider: fresh weights, speed only), batch 1, "
          f"{args.threads} thread(s): int8 / fp32 (Quantize(8) realised) per runtime")
    print(f"  {'width':>5s} {'MACs':>12s} " + " ".join(f"{rt + ' fp32 ms':>17s} {'int8 ms':>8s} {'ratio':>6s}"
                                                    for rt in rts))
    ratios: dict[str, list[tuple[int, float]]] = {rt: [] for rt in rts}
    for w in args.widths:
        module = task.model.module if w == 1 else scaled_dscnn(w)
        handle = task.model if w == 1 else workbench.load(module, example_inputs=task.example_inputs, name=f"kws-x{w}")
        say(f"scaling: width x{w}")
        handles = {"fp32": handle, "int8": compress(handle, Quantize(8), task=task)}
        runners, meta = workbench_runners(task, handles, rts, args.threads, None)
        med, _ = interleaved(runners, [task.example_inputs[0][:1]], args.rounds)
        cells = []
        for rt in rts:
            f, i = med.get(("fp32", rt)), med.get(("int8", rt))
            if f and i:
                ratios[rt].append((w, f / i))
                cells.append(f"{f:17.3f} {i:8.3f} {f / i:5.2f}x")
            else:
                cells.append(f"{'—':>17s} {'—':>8s} {'—':>6s}")
        print(f"  {'x' + str(w):>5s} {count_macs(handle):>12,} " + " ".join(cells))
    best = max(((rt, w, r) for rt, vals in ratios.items() for w, r in vals if w == 1), key=lambda t: t[2],
               default=None)
    wide = max(((rt, w, r) for rt, vals in ratios.items() for w, r in vals), key=lambda t: (t[1], t[2]), default=None)
    grows = all(v[-1][1] > v[0][1] for v in ratios.values() if len(v) > 1)
    detail = (f"x1 best {best[0]} {best[2]:.2f}x; widest x{wide[1]} best {wide[0]} {wide[2]:.2f}x; the ratio "
              f"{'grows' if grows else 'does not grow'} with width on every runtime") if best and wide else "no data"
    return [("int8 / fp32 grows with model size (per-call overhead bounds the small model)", grows and bool(wide),
             detail)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", nargs="+", default=None)
    p.add_argument("--runtimes", nargs="+", default=["all"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--limit", type=int, default=200, help="evaluation samples for the metric column")
    p.add_argument("--widths", nargs="+", type=int, default=None)
    p.add_argument("--quick", action="store_true", help="kws only, widths 1 and 4")
    args = p.parse_args()
    args.task = args.task or (["kws"] if args.quick else ["kws", "minilm", "silero-vad"])
    args.widths = args.widths or ([1, 4] if args.quick else [1, 2, 4])
    from workbench.runtimes import resolve_runtimes

    header("Runtimes: fp32 and int8 per runtime, workbench beside hand-written references", threads=args.threads)
    runtimes = resolve_runtimes(args.runtimes)
    bars = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.task:
            bars += run_task(name, runtimes, args, Path(tmp))
        if "kws" in args.task:
            bars += scaling(args, runtimes, Path(tmp))
    print()
    for label, ok, detail in bars:
        verdict(label, ok, detail)
    say("done")


if __name__ == "__main__":
    main()
