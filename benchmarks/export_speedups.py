"""Exported artefacts side by side: size, latency and metric of every target against fp32 in its own runtime, and
the same exports written by hand with the raw libraries.

    .venv/bin/python benchmarks/export_speedups.py [--quick] [--cnn kws|digits-cnn] [--threads 1] [--rounds 5]

For the default CNN (kws; ``--cnn digits-cnn`` for the digits model) and MiniLM (``--quick`` skips it, minutes of
conversion and parity, and the torch / ExecuTorch targets) every export target is exported with `workbench.export`
(parity checked on the whole evaluation split), then timed at batch 1 in its own runtime through
`workbench.runtime`, in interleaved rounds (median of round medians, so background load hits every file alike).
Beside them, in the same rounds, the hand-written references of benchmarks/references.py (plain sessions):

  * CNN: torch.onnx.export -> quantize_static (QDQ per-channel) on ONNX Runtime; litert_torch fp32 and PT2E int8
    on LiteRT;
  * MiniLM: torch.onnx.export -> optimize_model -> quantize_dynamic, and the workbench's plain (unfused) export.

Each row: file size, p50, speedup over the fp32 file of the same runtime family, the metric's change in points.
A 50 % channel-pruned variant (Prune + Recover) is exported to ONNX and TFLite and its speedup compared with its
MAC reduction (not with ``--quick``: recovery trains).

Bars, judged on what this run measured: MiniLM int8 >= 3.5x over the best fp32 on ONNX Runtime (its fused
export) at <= 1 point accuracy loss; the CNN's best int8 target >= 1.7x; 50 % channel pruning speedup >= 0.8 x
its MAC reduction; every workbench row >= its hand-written reference (within 5 %). Nothing here is a test.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import header, verdict
from references import interleaved, litert_int8_cnn, ort_int8_cnn, ort_int8_transformer, per_row

import workbench
from workbench import zoo
from workbench.artifacts import TARGETS
from workbench.core.errors import WorkbenchError

FP32_OF = {"onnx": ("onnx",), "tflite": ("tflite",), "torchscript": ("torchscript", "pt2"),
           "pt2": ("torchscript", "pt2"), "openvino": ("openvino",),
           "pte": ("executorch",)}  # the reference file of each runtime family, first one exported
INT8 = ("onnx-int8", "onnx-int8-dynamic", "tflite-int8", "tflite-dynamic", "openvino-int8", "executorch-int8")
NOISE = 1.05  # "at least as fast": within 5 % of the reference, the spread of repeated runs on these VMs
# workbench export target -> the hand-written reference row it is judged against
REFERENCE_OF = {"onnx": "ref onnx fp32", "onnx-int8": "ref onnx int8", "tflite": "ref tflite fp32",
                "tflite-int8": "ref tflite int8"}
QUICK_SKIPS = ("torch", "executorch")  # runtimes whose targets --quick leaves out (ExecuTorch lowering: ~1 min)
T0 = time.perf_counter()


def say(msg: str) -> None:
    print(f"[{time.perf_counter() - T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


def export_all(task, handle, targets, out: Path) -> tuple[dict, dict]:
    arts, failed = {}, {}
    for t in targets:
        t0 = time.perf_counter()
        try:
            arts[t] = workbench.export(handle, t, out / t, task=task)
            say(f"  exported {t:18s} {arts[t].size_bytes:>12,} B  ({time.perf_counter() - t0:.1f} s)")
        except WorkbenchError as e:
            failed[t] = str(e)
            say(f"  {t:18s} not exported: {str(e)[:160]}")
    return arts, failed


def runners_for(arts: dict, task, threads: int) -> dict:
    return {k: workbench.runtime(workbench.load(a.path, example_inputs=task.example_inputs), TARGETS[a.target].runtime,
                                 threads=threads) for k, a in arts.items()}


def reference_metric(task, run) -> float:
    return task.score(*task.run(per_row(run)))[task.metric]


def table(task, arts, failed, ms, refs: dict) -> dict[str, dict]:
    m = task.metric
    rows = {}
    print(f"\n{task.name}: batch 1, latency p50 in its own runtime; speedup and metric change vs the fp32 file of "
          f"the same runtime family; {m} on the full evaluation split")
    print(f"  {'target':18s} {'runtime':11s} {'size B':>12s} {'size x':>7s} {'p50 ms':>9s} {'speedup':>8s} "
          f"{m:>9s} {'change':>8s}  parity agreement")
    for t in TARGETS:
        if t in failed:
            print(f"  {t:18s} {TARGETS[t].runtime:11s} {'—':>12s}  not exported: {_short(failed[t])}")
            continue
        if t not in arts:
            continue
        ref = next((r for r in FP32_OF.get(TARGETS[t].format, ()) if r in arts), None)
        if ref is None:
            print(f"  {t:18s} {TARGETS[t].runtime:11s} {arts[t].size_bytes:>12,}  (no fp32 file of its runtime)")
            continue
        a, r = arts[t], arts[ref]
        speed = ms[ref] / ms[t]
        metric = a.parity["artifact"][m]
        change = 100 * (metric - r.parity["artifact"][m])
        rows[t] = {"speedup": speed, "change": change, "size": a.size_bytes, "p50": ms[t], "metric": metric}
        print(f"  {t:18s} {TARGETS[t].runtime:11s} {a.size_bytes:>12,} {r.size_bytes / a.size_bytes:>6.2f}x "
              f"{ms[t]:>9.4f} {speed:>7.2f}x {metric:>9.4f} {change:>+7.2f}pt  "
              f"{a.parity['agreement_kind']} {a.parity['agreement']:.4f}")
    fp32 = arts["onnx"].parity["artifact"][m] if "onnx" in arts else float("nan")
    for label, (size, metric) in refs.items():
        base = "ref onnx fp32" if "onnx" in label else "ref tflite fp32"
        print(f"  {label:18s} {'hand-written':11s} {size:>12,} {'':>7s} {ms[label]:>9.4f} "
              f"{ms[base] / ms[label] if base in ms else np.nan:>7.2f}x {metric:>9.4f} {100 * (metric - fp32):>+7.2f}pt"
              f"  (speedup vs the reference's own fp32; change vs the workbench's fp32 export)")
    return rows


def reference_bars(task_name: str, ms: dict, refs: dict[str, str] = REFERENCE_OF,
                   decimals: int = 4) -> list[tuple[str, bool, str]]:
    """One "workbench >= hand-written reference" bar per (target, reference) pair timed in this run."""
    bars = []
    for target, ref in refs.items():
        if target in ms and ref in ms:
            bars.append((f"{task_name} {target}: workbench >= hand-written reference ({ref})",
                         ms[target] <= ms[ref] * NOISE,
                         f"workbench {ms[target]:.{decimals}f} ms, reference {ms[ref]:.{decimals}f} ms "
                         f"({ms[ref] / ms[target]:.2f}x)"))
    return bars


def _short(msg: str) -> str:
    if "failed parity" in msg:
        return "failed parity: " + msg.split(": ", 2)[-1].split(". Figures")[0][:110]
    return msg.split(": ", 1)[-1].split(". ")[0][:120]


def cnn(name: str, threads: int, rounds: int, out: Path, quick: bool) -> list[tuple[str, bool | None, str]]:
    from workbench import Prune, Recover, compress
    from workbench.core.layers import count_macs

    task = zoo.load(name)
    targets = [t for t in TARGETS if not (quick and TARGETS[t].runtime in QUICK_SKIPS)]
    say(f"{name}: exporting {'every target' if len(targets) == len(TARGETS) else ', '.join(targets)}")
    arts, failed = export_all(task, task.model, targets, out / name)
    pruned = {}
    if not quick:
        for scope in ("layer", "global"):
            say(f"{name}: Prune(0.5, structure='channel', scope={scope!r}) + Recover(), exported to onnx and tflite")
            v = compress(task.model, Prune(0.5, structure="channel", scope=scope), Recover(), task=task)
            pruned[scope] = (v, export_all(task, v, ["onnx", "tflite"], out / f"{name}-pruned-{scope}")[0])
    say(f"{name}: the hand-written references (torch.onnx.export -> quantize_static; litert_torch, PT2E)")
    module, x0, cal = task.model.module, task.example_inputs[0], task.calibration[0]
    refs, ref_runs = {}, {}
    for fmt, build in (("onnx", ort_int8_cnn), ("tflite", litert_int8_cnn)):
        for prec, run in build(module, x0, cal, out / f"ref-{fmt}", threads).items():
            label = f"ref {fmt} {prec}"
            ref_runs[label] = run
            path = out / f"ref-{fmt}" / (f"ref{'-int8' if prec == 'int8' else ''}.{fmt}")
            refs[label] = (path.stat().st_size, reference_metric(task, run))
    everything = {**arts, **{f"{t}|pruned-{s}": a for s, (_, pa) in pruned.items() for t, a in pa.items()}}
    x = [a[:1] for a in task.example_inputs]
    runners = {**runners_for(everything, task, threads), **ref_runs}
    say(f"timing {len(runners)} files, {rounds} interleaved rounds")
    ms, _ = interleaved(runners, x, rounds, min_seconds=0.3, max_seconds=3.0)
    rows = table(task, arts, failed, ms, refs)
    goals: list[tuple[str, bool | None, str]] = []
    int8 = {t: rows[t] for t in INT8 if t in rows}
    top = max(int8, key=lambda t: int8[t]["speedup"])
    others = ", ".join(f"{t} {r['speedup']:.2f}x" for t, r in int8.items())
    skipped = f"; --quick leaves out the {'/'.join(QUICK_SKIPS)} targets" if quick else ""
    goals.append((f"{name} best int8 target >= 1.7x", int8[top]["speedup"] >= 1.7,
                  f"{top} {int8[top]['speedup']:.2f}x ({others}){skipped}; benchmarks/runtimes.py shows the ratio "
                  "against model width"))
    if pruned:
        macs0 = count_macs(task.model)
        print(f"\n  50 % channel-pruned {name} (+ Recover(), {task.metric} vs fp32):")
        best = None
        for scope, (v, pa) in pruned.items():
            red = macs0 / count_macs(v)
            for t, a in pa.items():
                speed = ms[t] / ms[f"{t}|pruned-{scope}"]
                change = 100 * (a.parity["artifact"][task.metric] - arts[t].parity["artifact"][task.metric])
                print(f"    scope={scope:6s} {t:7s} {a.size_bytes:>9,} B  p50 {ms[f'{t}|pruned-{scope}']:.4f} ms  "
                      f"speedup {speed:.2f}x / MAC reduction {red:.2f}x = {speed / red:.2f}  ({task.metric} "
                      f"{change:+.2f} pt)")
                if best is None or speed / red > best[0]:
                    best = (speed / red, scope, t, speed, red)
        goals.append(("50 % channel pruning speedup >= 0.8 x MAC reduction", best[0] >= 0.8,
                      f"best {best[0]:.2f} (scope={best[1]}, {best[2]}: {best[3]:.2f}x for {best[4]:.2f}x fewer MACs)"))
    else:
        goals.append(("50 % channel pruning speedup >= 0.8 x MAC reduction", None, "not run with --quick (recovery "
                      "trains); benchmarks/compression.py measures pruning"))
    return goals + reference_bars(name, ms)


def gemm_ceiling(out: Path, threads: int, rounds: int) -> tuple[float, float, float]:
    """(fp32 ms, int8 ms, ratio) of MiniLM's 36 weight GEMMs alone (6 layers of q, k, v, output 384x384 and the
    384x1536x384 feed-forward, on 64 tokens) as an ONNX chain, fp32 vs `quantize_dynamic` per channel: what int8
    could give if attention softmax, layer norms, GELU and quantise steps cost nothing."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from references import ort_session

    rng = np.random.default_rng(0)
    dims = [384] * 4 + [1536, 384]
    nodes, inits, prev = [], [], "x"
    for layer in range(6):
        k = 384
        for j, n in enumerate(dims):
            w = f"w{layer}_{j}"
            inits.append(numpy_helper.from_array((rng.standard_normal((k, n)) * 0.05).astype(np.float32), w))
            nodes.append(helper.make_node("MatMul", [prev, w], [f"{w}_y"]))
            prev, k = f"{w}_y", n
    graph = helper.make_graph(nodes, "gemms", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64, 384])],
                              [helper.make_tensor_value_info(prev, TensorProto.FLOAT, [1, 64, 384])], inits)
    out.mkdir(parents=True, exist_ok=True)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(out / "gemm.onnx"))
    quantize_dynamic(str(out / "gemm.onnx"), str(out / "gemm-int8.onnx"), per_channel=True,
                     weight_type=QuantType.QInt8)
    x = [rng.standard_normal((1, 64, 384)).astype(np.float32)]
    ms, _ = interleaved({"fp32": ort_session(out / "gemm.onnx", threads),
                         "int8": ort_session(out / "gemm-int8.onnx", threads)}, x, rounds)
    return ms["fp32"], ms["int8"], ms["fp32"] / ms["int8"]


def minilm(threads: int, rounds: int, out: Path) -> list[tuple[str, bool | None, str]]:
    from workbench.formats.onnx_optimize import bert_config

    task = zoo.load("minilm")
    say("minilm: exporting every target (minutes: conversions, calibration, parity on 800 glosses)")
    arts, failed = export_all(task, task.model, list(TARGETS), out / "minilm")
    say("minilm: the hand-written reference (torch.onnx.export -> optimize_model -> quantize_dynamic)")
    heads, hidden = bert_config(task.model.module)
    names = [s.name for s in task.model.inputs]
    built = ort_int8_transformer(task.model.module, task.example_inputs, names, out / "ref", threads, heads, hidden)
    files = {"fp32": "ref.onnx", "fp32 fused": "ref-fused.onnx", "int8": "ref-int8.onnx"}
    ref_runs = {f"ref onnx {k}": run for k, run in built.items()}
    refs = {f"ref onnx {k}": ((out / "ref" / files[k]).stat().st_size, task.score(*task.run(run))[task.metric])
            for k, run in built.items()}
    # the workbench's plain export (dynamo, unfused): what `onnx` was before the fusions, and what
    # workbench.runtime(task.model, "onnxruntime") runs
    plain = workbench.runtime(task.model, "onnxruntime", threads=threads)
    ref_runs["plain onnx fp32"] = plain
    refs["plain onnx fp32"] = (plain.artifact.stat().st_size, task.score(*task.run(plain))[task.metric])
    x = [a[:1] for a in task.example_inputs]
    runners = {**runners_for(arts, task, threads), **ref_runs}
    say(f"timing {len(runners)} files, {rounds} interleaved rounds")
    ms, _ = interleaved(runners, x, rounds, min_seconds=0.5, max_seconds=3.0)
    rows = table(task, arts, failed, ms, refs)
    g32, g8, ceiling = gemm_ceiling(out / "gemm", threads, rounds)
    print(f"\n  MiniLM's 36 weight GEMMs alone on ONNX Runtime (the ceiling of its int8 speedup): fp32 {g32:.3f} ms, "
          f"int8 {g8:.3f} ms, {ceiling:.2f}x")
    goals: list[tuple[str, bool | None, str]] = []
    if "onnx-int8-dynamic" in rows and "onnx" in rows:
        r = rows["onnx-int8-dynamic"]
        vs_plain = ms["plain onnx fp32"] / ms["onnx-int8-dynamic"]
        goals.append(("minilm int8 on ONNX Runtime >= 3.5x its best fp32 (the fused export) at <= 1 point loss",
                      r["speedup"] >= 3.5 and r["change"] >= -1.0,
                      f"onnx-int8-dynamic {r['speedup']:.2f}x vs fused fp32 ({ms['onnx']:.3f} ms), {vs_plain:.2f}x vs "
                      f"the "
                      f"plain export ({ms['plain onnx fp32']:.3f} ms), {r['change']:+.2f} pt; its GEMMs alone gain "
                      f"{ceiling:.2f}x"))
    int8 = {t: rows[t] for t in INT8 if t in rows}
    detail = ", ".join(f"{t} {r['speedup']:.2f}x {r['change']:+.2f} pt" for t, r in int8.items())
    goals.append(("minilm: int8 on every runtime (own fp32)", None, detail or "no int8 target exported"))
    goals += reference_bars("minilm", ms, {"onnx": "ref onnx fp32 fused", "onnx-int8-dynamic": "ref onnx int8"},
                            decimals=3)
    return goals


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--cnn", default="kws", choices=("kws", "digits-cnn"), help="the CNN task (default: kws)")
    p.add_argument("--quick", action="store_true",
                   help="the CNN only, no pruning, no torch / ExecuTorch targets (MiniLM takes minutes)")
    p.add_argument("--out", help="keep the exported files here (default: a temporary folder)")
    args = p.parse_args()
    header("Export speedups: every export target in its own runtime, beside hand-written references",
           threads=args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out) if args.out else Path(tmp)
        goals = cnn(args.cnn, args.threads, args.rounds, out, args.quick)
        if args.quick:
            goals.append(("minilm int8 on ONNX Runtime >= 3.5x at <= 1 point loss", None, "run without --quick"))
        else:
            goals += minilm(args.threads, max(3, args.rounds - 2), out)
    print()
    for label, ok, detail in goals:
        verdict(label, ok, detail)
    say("done")


if __name__ == "__main__":
    main()
