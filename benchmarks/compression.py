"""Channel-pruning speed, measured side by side on every installed runtime, beside a hand-written torch-pruning script.

    .venv/bin/python benchmarks/compression.py [--quick] [--tasks kws,digits-cnn] [--runtimes onnxruntime,openvino]
                                               [--rounds 5] [--threads 1] [--no-study]

For each task (default: ``kws``, the MLPerf Tiny DS-CNN, and ``digits-cnn``) and runtime, at batch 1: the original,
a plain ``Prune(0.5, structure="channel")`` (the defaults: global ranking, multiples of 8 channels), the same without
rounding (``round_to=1``), rounded to 4 and 16, and ``scope="layer"``; all realised by `workbench.realize` and
run by `workbench.runtime`. Beside them, the reference: the script a competent user writes by hand
(torch-pruning's ``MagnitudePruner`` with ``round_to=8``, then the runtime's own converter and session, one
thread), timed in the same interleaved rounds with the same input. The study then times the DS-CNN scaled in
width (x1, x2, x4) at batch 1 and a larger batch, and a model with next to no compute (the per-call floor), to
show where the 0.8 bar is reachable at all.

Bars (PASS / MISS per row):
  * a plain ``Prune(0.5, structure="channel")`` is not slower than the original, on every runtime;
  * 50 % channel pruning: measured speedup >= 0.8 x its MAC reduction (batch 1);
  * workbench >= hand-written reference: the workbench's file, loaded by the same hand-written code, is as fast
    (within 5 %, or within the spread between two sessions of one file when that is larger).
The int8 bars are in benchmarks/export_speedups.py and benchmarks/runtimes.py.
Runners are timed in interleaved rounds and the median of round medians is reported, so background load
hits every variant alike. Nothing here is a test: it prints what this machine measures.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import os
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

import numpy as np
from common import header, verdict

import workbench
from workbench import Prune, compress, zoo
from workbench.core.layers import count_macs
from workbench.measurement.latency import time_runner
from workbench.realize import realize

RUNTIMES = ("onnxruntime", "litert", "openvino", "executorch")
MODULES = {"onnxruntime": "onnxruntime", "litert": "ai_edge_litert", "openvino": "openvino", "executorch": "executorch"}
NOISE = 1.05
"""`workbench >= reference` passes when the workbench's p50 is at most this factor above the reference's, or within
the spread measured between two sessions of one file, when that is larger (timing noise)."""

VARIANTS = {  # name -> config (None: the original)
    "original": None,
    "default (global, x8)": Prune(0.5, structure="channel"),
    "no rounding": Prune(0.5, structure="channel", round_to=1),
    "round to 4": Prune(0.5, structure="channel", round_to=4),
    "round to 16": Prune(0.5, structure="channel", round_to=16),
    "scope=layer (x8)": Prune(0.5, structure="channel", scope="layer"),
}
QUICK = ("original", "default (global, x8)", "no rounding", "scope=layer (x8)")
DEFAULT = "default (global, x8)"


def timed(runners: dict[str, Callable[..., Any]], inputs: list[np.ndarray], rounds: int) -> dict[str, float]:
    """Median over `rounds` interleaved rounds of each runner's p50 (ms)."""
    p50: dict[str, list[float]] = {k: [] for k in runners}
    for _ in range(rounds):
        for k, run in runners.items():
            p50[k].append(time_runner(run, inputs, min_seconds=0.3, max_seconds=1.5).p50)
    return {k: float(np.median(v)) for k, v in p50.items()}


def widths(module: Any) -> tuple[int, ...]:
    import torch.nn as nn

    return tuple(m.out_channels for m in module.modules() if isinstance(m, nn.Conv2d))


def accuracy(task: Any, module_or_handle: Any) -> float:
    handle = module_or_handle if isinstance(module_or_handle, workbench.ModelHandle) else workbench.load(
        module_or_handle, example_inputs=task.example_inputs, name="reference")
    return float(task.evaluate(workbench.runtime(handle, "torch"))["accuracy"])


# ------------------------------------------------------------------------------------- hand-written reference


def reference_prune(module: Any, x: np.ndarray) -> Any:
    """What a user writes with torch-pruning directly: magnitude importance, 50 %, multiples of 8, head kept."""
    import torch
    import torch_pruning as tp

    model = copy.deepcopy(module).eval()
    pruner = tp.pruner.MagnitudePruner(model, torch.from_numpy(x), importance=tp.importance.MagnitudeImportance(p=1),
                                       pruning_ratio=0.5, round_to=8, ignored_layers=[model.classifier])
    pruner.step()
    return model


def reference_file(model: Any, x: np.ndarray, runtime: str, tmp: Path) -> Path:
    """The pruned module converted with the runtime's own converter, as a user would (batch 1)."""
    import torch

    t = torch.from_numpy(x.copy())  # a copy: the kws features' size-1 channel axis has stride 0 (ExecuTorch refuses)
    if runtime in ("onnxruntime", "openvino"):
        path = tmp / "reference.onnx"
        from workbench.formats.convert import quiet_conversion

        with quiet_conversion():  # silences the exporter's progress lines, changes nothing else
            torch.onnx.export(model, (t,), str(path), input_names=["x"], dynamo=True, external_data=False)
    elif runtime == "litert":
        from workbench.formats.convert import quiet_conversion

        os.environ.setdefault("LITERT_TORCH_SHOW_PROGRESS", "n")  # silences the converter, changes nothing else
        import litert_torch

        path = tmp / "reference.tflite"
        with quiet_conversion():
            litert_torch.convert(model, (t,)).export(str(path))
    else:
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
        from executorch.exir import to_edge_transform_and_lower

        path = tmp / "reference.pte"
        program = to_edge_transform_and_lower(torch.export.export(model, (t,)), partitioner=[XnnpackPartitioner()])
        path.write_bytes(program.to_executorch().buffer)
    return path


def raw_session(path: Path, runtime: str, threads: int) -> Callable[..., Any]:
    """`path` loaded with the runtime's own Python API, `threads` threads: a user's deployment code."""
    if runtime == "onnxruntime":
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        return lambda a: sess.run(None, {name: a})
    if runtime == "openvino":
        import openvino as ov

        core = ov.Core()
        model = core.read_model(str(path))
        model.reshape({0: ov.PartialShape([1, *model.inputs[0].get_partial_shape()[1:]])})  # batch 1, static
        compiled = core.compile_model(model, "CPU", {"INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1,
                                                     "PERFORMANCE_HINT": "LATENCY"})
        req = compiled.create_infer_request()
        return lambda a: req.infer({0: a}, share_inputs=True, share_outputs=True)
    if runtime == "litert":
        from ai_edge_litert.interpreter import Interpreter

        interp = Interpreter(model_path=str(path), num_threads=threads)
        interp.allocate_tensors()
        i, o = interp.get_input_details()[0]["index"], interp.get_output_details()[0]["index"]

        def run(a: np.ndarray) -> np.ndarray:
            interp.set_tensor(i, a)
            interp.invoke()
            return interp.get_tensor(o)

        return run
    import torch
    from executorch.extension.pybindings import portable_lib
    from executorch.runtime import Runtime

    method = Runtime.get().load_program(str(path)).load_method("forward")

    def execute(a: np.ndarray) -> Any:
        if portable_lib._threadpool_get_thread_count() != threads:  # one process-wide pool, as the workbench pins
            portable_lib._unsafe_reset_threadpool(threads)
        return method.execute([torch.from_numpy(a)])

    return execute


# ------------------------------------------------------------------------------------------------ the rows


def task_rows(name: str, runtimes: list[str], threads: int, rounds: int, quick: bool) -> None:
    import torch

    task = zoo.load(name)
    x = [a[:1].copy() for a in task.example_inputs]  # a copy: fresh strides (see reference_file)
    variants = {k: task.model if c is None else compress(task.model, c, task=task)
                for k, c in VARIANTS.items() if not quick or k in QUICK}
    ref_module = reference_prune(task.model.module, x[0])
    shapes = {k: widths(v.module) for k, v in variants.items()} | {"reference": widths(ref_module)}
    macs = {k: count_macs(v) for k, v in variants.items()}
    with torch.no_grad():
        macs["reference"] = count_macs(workbench.load(ref_module, example_inputs=task.example_inputs, name="ref"))
    acc = {k: accuracy(task, v) for k, v in variants.items()} | {"reference": accuracy(task, ref_module)}
    timed_as = {k: next(j for j in variants if shapes[j] == shapes[k]) for k in variants}  # same widths: timed once
    # the workbench variant the reference is compared with: the same layer widths (the default when it has them)
    twin = timed_as.get(next((k for k in variants if shapes[k] == shapes["reference"]), DEFAULT), DEFAULT)
    print(f"\n{name}: {task.model.num_params:,} parameters, {macs['original']:,} MACs; accuracy on torch before any "
          "Recover; conv widths listed in model order", flush=True)
    for k in [*variants, "reference"]:
        print(f"  {k:22s} widths {'/'.join(map(str, shapes[k]))}  MACs {macs[k]:>10,}  accuracy {acc[k]:.3f}")
    print("  reference: torch-pruning's MagnitudePruner(pruning_ratio=0.5, round_to=8, the classifier ignored); "
          f"compared with the workbench's {twin!r}"
          + (" (the same widths)" if shapes[twin] == shapes["reference"] else " (no variant has its widths)"))
    for rt in runtimes:
        bare = dict.fromkeys(("original", DEFAULT, twin, "reference"))
        with tempfile.TemporaryDirectory() as tmp:
            try:
                real = {k: realize(v, rt, task) for k, v in variants.items() if timed_as[k] == k}
                runners = {k: workbench.runtime(r.handle, rt, threads=threads) for k, r in real.items()}
                # the reference, and the workbench's files loaded by the same hand-written code; two sessions of
                # each file, because on this VM one session of a file can run ~40 % slower than another
                paths = {k: real[k].path for k in bare if k != "reference"}
                paths["reference"] = reference_file(ref_module, x[0], rt, Path(tmp))
                for i in (1, 2):
                    runners |= {f"{k} #{i}": raw_session(path, rt, threads) for k, path in paths.items()}
            except Exception as e:  # noqa: BLE001 - one runtime failing must not hide the others' rows
                verdict(f"{name} on {rt}", None, f"could not build the runners: {str(e).splitlines()[0][:160]}")
                continue
            ms = timed(runners, x, rounds)
        ms |= {k: ms[timed_as[k]] for k in variants}
        raw = {k: min(ms[f"{k} #1"], ms[f"{k} #2"]) for k in bare}
        spread = max(max(ms[f"{k} #1"], ms[f"{k} #2"]) / raw[k] for k in bare)
        print(f"\n{name} on {rt}, batch 1, {threads} thread(s): p50 (median of {rounds} interleaved rounds)")
        print(f"  {'variant':22s} {'p50 us':>8s} {'speedup':>8s} {'MAC red.':>9s} {'ratio':>6s}   through workbench.runtime")
        for k in variants:
            speed, red = ms["original"] / ms[k], macs["original"] / macs[k]
            same = f"  (same widths as {timed_as[k]!r}: timed once)" if timed_as[k] != k else ""
            print(f"  {k:22s} {ms[k] * 1e3:8.1f} {speed:7.2f}x {red:8.2f}x {speed / red:6.2f}{same}")
        print("  the same files, and the reference, in the hand-written session code (best of 2 sessions; they differ "
              f"by up to {spread:.2f}x):")
        for k in bare:
            speed, red = raw["original"] / raw[k], macs["original"] / macs[k]
            print(f"  {k:22s} {raw[k] * 1e3:8.1f} {speed:7.2f}x {red:8.2f}x {speed / red:6.2f}")
        print(f"  workbench.runtime's own cost per call: {(ms['original'] - raw['original']) * 1e3:+.1f} us on the "
              f"original, {(ms[DEFAULT] - raw[DEFAULT]) * 1e3:+.1f} us on the default (its p50 minus a bare session's)")
        speed, red = ms["original"] / ms[DEFAULT], macs["original"] / macs[DEFAULT]
        bare_ratio = raw["original"] / raw[DEFAULT] / red
        verdict(f"{name} {rt}: plain Prune(0.5, structure='channel') not slower than the original", speed >= 1.0,
                f"{ms['original'] * 1e3:.1f} -> {ms[DEFAULT] * 1e3:.1f} us ({speed:.2f}x); without rounding "
                f"(round_to=1): {ms['original'] / ms['no rounding']:.2f}x")
        verdict(f"{name} {rt}: speedup >= 0.8 x MAC reduction", speed / red >= 0.8,
                f"{speed:.2f}x / {red:.2f}x = {speed / red:.2f}; in a bare session {bare_ratio:.2f} (the study below: "
                "what this size allows)")
        noise = max(NOISE, spread)
        verdict(f"{name} {rt}: workbench >= hand-written reference", raw[twin] <= noise * raw["reference"],
                f"the workbench's {twin!r} file {raw[twin] * 1e3:.1f} us vs the reference's {raw['reference'] * 1e3:.1f}"
                f" us, same session code ({raw['reference'] / raw[twin]:.2f}x, noise allowed {noise:.2f}x; widths "
                f"{'the same' if shapes[twin] == shapes['reference'] else 'differ'}; accuracy {acc[twin]:.3f} vs "
                f"{acc['reference']:.3f})")


# ------------------------------------------------------------------------------------------------- the study


def scaled_dscnn(width: int) -> Any:
    """The kws DS-CNN's layers at `width` channels instead of 64 (random weights: only speed is measured)."""
    import torch.nn as nn

    from workbench.nets.blocks import DepthwiseSeparable

    class ScaledDSCNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Sequential(OrderedDict(
                conv=nn.Conv2d(1, width, (10, 4), stride=2, padding=(5, 1), bias=False),
                bn=nn.BatchNorm2d(width), act=nn.ReLU()))
            self.blocks = nn.Sequential(*(DepthwiseSeparable(width, width, 1) for _ in range(4)))
            self.classifier = nn.Linear(width, 12)

        def forward(self, x: Any) -> Any:
            return self.classifier(self.blocks(self.stem(x)).mean((2, 3)))

    return ScaledDSCNN().eval()


def floor_model() -> Any:
    """Next to no compute, the kws model's input and output: what a call costs on its own."""
    import torch.nn as nn

    class Floor(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.classifier = nn.Linear(10, 12)

        def forward(self, x: Any) -> Any:
            return self.classifier(x.mean((1, 2)))

    return Floor().eval()


def study(runtimes: list[str], threads: int, rounds: int, quick: bool) -> None:
    import torch

    torch.manual_seed(0)
    task = zoo.load("kws")
    scales = (1, 2) if quick else (1, 2, 4)
    batches = (1,) if quick else (1, 16)
    models = {1: task.model} | {s: workbench.load(scaled_dscnn(64 * s), example_inputs=task.example_inputs,
                                                  name=f"dscnn-x{s}") for s in scales if s > 1}
    pairs = {s: (m, compress(m, Prune(0.5, structure="channel"))) for s, m in models.items()}
    floor = workbench.load(floor_model(), example_inputs=task.example_inputs, name="call-floor")
    inputs = {b: [np.ascontiguousarray(np.resize(task.example_inputs[0], (b, *task.example_inputs[0].shape[1:])))]
              for b in batches}
    print("\nstudy: the kws DS-CNN scaled in width, original vs plain Prune(0.5, structure='channel'), "
          f"{threads} thread(s); 'ceiling' is an estimate: the ratio if the time above the call floor shrank "
          "exactly with the MACs")
    reached: list[str] = []
    for rt in runtimes:
        runners = {"floor": workbench.runtime(realize(floor, rt).handle, rt, threads=threads)}
        for s, (o, p) in pairs.items():
            runners[f"x{s} original"] = workbench.runtime(realize(o, rt, task).handle, rt, threads=threads)
            runners[f"x{s} pruned"] = workbench.runtime(realize(p, rt, task).handle, rt, threads=threads)
        for b, x in inputs.items():
            ms = timed(runners, x, rounds)
            f = ms["floor"]
            print(f"  {rt}, batch {b}: call floor {f * 1e3:.1f} us")
            for s, (o, p) in pairs.items():
                t_o, t_p = ms[f"x{s} original"], ms[f"x{s} pruned"]
                red = count_macs(o) / count_macs(p)
                ratio, ceiling = t_o / t_p / red, t_o / (f + max(t_o - f, 0.0) / red) / red
                print(f"    width x{s} ({64 * s:3d} ch): {t_o * 1e3:9.1f} -> {t_p * 1e3:9.1f} us  speedup "
                      f"{t_o / t_p:5.2f}x  MAC red. {red:4.2f}x  ratio {ratio:4.2f}  ceiling (est.) {ceiling:4.2f}")
                if ratio >= 0.8:
                    reached.append(f"{rt} x{s} batch {b} ({ratio:.2f})")
    print("  (a ratio above 1: the original's activations no longer fit the CPU's caches, the pruned model's do)")
    verdict("speedup >= 0.8 x MAC reduction, reachable at a larger size or batch (same runtime)",
            bool(reached),
            ("reached at " + ", ".join(reached)) if reached else "not reached at any measured width or batch")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=None, help="interleaved timing rounds (default 5; 3 with --quick)")
    p.add_argument("--tasks", default="kws,digits-cnn")
    p.add_argument("--runtimes", default=",".join(RUNTIMES), help="comma-separated; those not installed are skipped")
    p.add_argument("--quick", action="store_true", help="kws only, 4 variants, ONNX Runtime + OpenVINO, short study")
    p.add_argument("--no-study", action="store_true", help="skip the width / batch study")
    args = p.parse_args()
    rounds = args.rounds or (3 if args.quick else 5)
    wanted = [r for r in args.runtimes.split(",") if r]
    if args.quick and args.runtimes == p.get_default("runtimes"):
        wanted = ["onnxruntime", "openvino"]
    runtimes = [r for r in wanted if importlib.util.find_spec(MODULES.get(r, r)) is not None]
    header("Channel pruning: speedup vs MAC reduction on every runtime, workbench vs hand-written torch-pruning",
           threads=args.threads)
    print("int8 speed bars: see benchmarks/export_speedups.py and benchmarks/runtimes.py")
    for r in sorted(set(wanted) - set(runtimes)):
        verdict(f"runtime {r}", None, "not installed")
    for name in (["kws"] if args.quick else [t for t in args.tasks.split(",") if t]):
        task_rows(name, runtimes, args.threads, rounds, args.quick)
    if not args.no_study:
        study([r for r in runtimes if r in ("onnxruntime", "openvino")], args.threads, rounds, args.quick)


if __name__ == "__main__":
    main()
