"""Command line: `python -m workbench baseline [--task NAME]` (the README's main job)."""

from __future__ import annotations

import argparse
import os
import sys
import time

from workbench.errors import WorkbenchError


def _parser() -> argparse.ArgumentParser:
    from workbench import zoo

    p = argparse.ArgumentParser(prog="workbench", description="Edge Workbench: compress, measure, export.")
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("baseline", help="measure a task's original model on every runtime and print a table")
    b.add_argument("--task", default=zoo.DEFAULT, choices=zoo.names(), help="built-in task (default: %(default)s)")
    b.add_argument("--model", help="a model file to measure instead (fidelity to itself on random inputs)")
    b.add_argument("--runtimes", nargs="+", help="runtimes (default: all available)")
    b.add_argument("--threads", type=int, default=1, help="intra-op threads (default: %(default)s)")
    b.add_argument("--limit", type=int, help="evaluate only the first N samples")
    b.add_argument("--csv", help="also write the table to this CSV file")
    sub.add_parser("tasks", help="list the built-in tasks")
    return p


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    args = _parser().parse_args(argv)
    try:
        if args.command == "tasks":
            from workbench import zoo

            for name, desc in zoo.describe().items():
                print(f"{name:12s} {desc}")
            return 0
        return _baseline(args)
    except WorkbenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def _baseline(args: argparse.Namespace) -> int:
    from workbench import zoo
    from workbench.baseline import baseline, format_table

    t0 = time.perf_counter()

    def say(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:6.1f}s] {msg}", file=sys.stderr, flush=True)

    if args.model:
        task = _task_for_file(args.model)
    else:
        say(f"loading task {args.task}")
        task = zoo.load(args.task)
    say(f"{task.model!r}")
    df = baseline(task, runtimes=args.runtimes, threads=args.threads, limit=args.limit, progress=say)
    n = len(task.eval_inputs[0]) if args.limit is None else min(args.limit, len(task.eval_inputs[0]))
    print(f"\nBaseline of {task.name} ({task.description})")
    print(f"measured here: metrics on {n} evaluation samples; latency at batch 1, {args.threads} thread(s)\n")
    print(format_table(df))
    if args.csv:
        df.to_csv(args.csv, index=False)
        print(f"\nwrote {args.csv}")
    return 0


def _task_for_file(path: str):
    import numpy as np

    from workbench.model import load
    from workbench.task import Task

    handle = load(path)
    rng = np.random.default_rng(0)
    arrays = []
    for s in handle.inputs:
        if s.shape is None or s.dtype is None or any(d is None for d in s.shape[1:]):
            raise WorkbenchError(f"{path}: input {s.describe()} has no static shape; measure it from Python "
                                 "with workbench.Task.from_model(handle, inputs).")
        shape = (16, *s.shape[1:])
        arrays.append(rng.standard_normal(shape).astype(s.dtype) if np.dtype(s.dtype).kind == "f"
                      else np.zeros(shape, s.dtype))
    return Task.from_model(handle, arrays)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
