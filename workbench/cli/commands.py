"""`workbench tasks | baseline | sweep | demo | report`: the measuring and sweeping commands."""

from __future__ import annotations

import argparse
import os
import sys
import time

from workbench.cli.common import task_for_file, write_rows
from workbench.core.errors import WorkbenchError


def add_parsers(sub: argparse._SubParsersAction) -> None:
    from workbench import zoo

    b = sub.add_parser("baseline", help="measure a task's original model on every runtime and print a table")
    b.add_argument("--task", default=zoo.DEFAULT, choices=zoo.names(), help="built-in task (default: %(default)s)")
    b.add_argument("--model", help="a model file to measure instead (fidelity to itself on random inputs)")
    b.add_argument("--runtimes", nargs="+", help="runtimes (default: all available)")
    b.add_argument("--threads", type=int, default=1, help="intra-op threads (default: %(default)s)")
    b.add_argument("--limit", type=int, help="evaluate only the first N samples")
    b.add_argument("--csv", help="also write the table to this CSV file")
    sub.add_parser("tasks", help="list the built-in tasks")
    _sweep_parser(sub)
    d = sub.add_parser("demo", help="the main job: sweep the default model, write the report",
                       description="Sweep the default model (prune ratios x structures x bit-widths, with recovery "
                                   "fine-tuning, estimated for a few devices), print the Pareto front and write "
                                   "the HTML report. Results are stored, so a second run is instant.")
    d.add_argument("--task", default=zoo.DEFAULT, choices=zoo.names(), help="built-in task (default: %(default)s)")
    d.add_argument("--out", default="results", help="folder for the store and report (default: %(default)s)")
    d.add_argument("--limit", type=int, help="evaluate on the first N samples only")
    d.add_argument("--no-serve", action="store_true",
                   help="headless: stop after writing the report instead of serving the trade-off explorer")
    d.add_argument("--port", type=int, help="port for the Voilà server (default: a free one)")
    _duty_arguments(d, rate_hz=5.0, battery_mah=2000.0)
    r = sub.add_parser("report", help="write a self-contained HTML report of a results store")
    r.add_argument("store", help="the results store (.sqlite) a sweep wrote")
    r.add_argument("-o", "--output", default="report.html", help="HTML file to write (default: %(default)s)")
    r.add_argument("--task", help="only this task's rows (default: every task in the store)")
    _duty_arguments(r)


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers such as 0,0.5, got {text!r}") from None


def _ints_or_none(text: str) -> list[int | None]:
    out: list[int | None] = []
    for v in text.split(","):
        v = v.strip().lower()
        if v in ("none", "0", ""):
            out.append(None)
            continue
        try:
            out.append(int(v))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated integers (or none), got {text!r}") from None
    return out


def _names(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def _positive(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = float("nan")
    if not v > 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return v


def _duty_arguments(p: argparse.ArgumentParser, rate_hz: float | None = None,
                    battery_mah: float | None = None) -> None:
    p.add_argument("--rate-hz", type=_positive, default=rate_hz,
                   help="inferences per second, for average power and battery life on each device in the "
                        "recommendation (default: %(default)s)")
    p.add_argument("--battery-mah", type=_positive, default=battery_mah,
                   help="battery capacity (mAh at 3.7 V) for the battery life at --rate-hz (default: %(default)s)")


def _sweep_parser(sub: argparse._SubParsersAction) -> None:
    from workbench import zoo

    s = sub.add_parser("sweep", help="run a sweep headless (same engine and store as workbench.sweep)",
                       description="Run a sweep from a YAML spec (see workbench.Grid.save) or from flags; "
                                   "flags given with a spec override it.")
    s.add_argument("spec", nargs="?", help="sweep spec YAML (task, prune, structure, bits, recover, runtimes, ...)")
    s.add_argument("--task", choices=zoo.names(), help=f"built-in task (default: the spec's, else {zoo.DEFAULT})")
    s.add_argument("--prune", type=_floats, help="prune ratios, e.g. 0,0.25,0.5,0.75")
    s.add_argument("--structure", type=_names, help="unstructured,channel,2:4")
    s.add_argument("--bits", type=lambda t: [int(v) for v in _floats(t)], help="e.g. 32,16,8,4,2")
    s.add_argument("--recover", type=_ints_or_none, help="fine-tuning steps after pruning, e.g. none,200")
    s.add_argument("--runtimes", type=_names, help="e.g. onnxruntime,litert,openvino,executorch, or all (installed)")
    s.add_argument("--devices", type=_names, help="device profiles to estimate for, e.g. raspberry-pi-4,esp32-s3")
    s.add_argument("--threads", type=int, help="intra-op threads while timing (default 1)")
    s.add_argument("--limit", type=int, help="evaluate on the first N samples only")
    s.add_argument("--store", default="results.sqlite", help="results store (default: %(default)s)")
    s.add_argument("--executor", default="serial", help="serial, processes, dask, or a scheduler address")
    s.add_argument("--workers", type=int, help="worker processes for processes / dask")
    s.add_argument("--no-memory", action="store_true", help="skip the peak-memory probe (about 1 s per variant)")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    s.add_argument("--csv", help="also export the sweep's rows to CSV (or .parquet)")
    s.add_argument("--report", help="also write the HTML report here")
    _duty_arguments(s)


def _tasks(args: argparse.Namespace) -> int:
    from workbench import zoo

    for name, desc in zoo.describe().items():
        print(f"{name:12s} {desc}")
    return 0


def _baseline(args: argparse.Namespace) -> int:
    from workbench import zoo
    from workbench.measurement.baseline import baseline, format_table

    t0 = time.perf_counter()

    def say(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:6.1f}s] {msg}", file=sys.stderr, flush=True)

    if args.model:
        task = task_for_file(args.model)
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


def _sweep(args: argparse.Namespace) -> int:
    from workbench import zoo
    from workbench.sweeps import grid as make_grid
    from workbench.sweeps import load_spec, pareto_table, sweep
    from workbench.sweeps.frame import error_mask

    task_name, spec = load_spec(args.spec) if args.spec else (None, None)
    fields = spec.to_dict() if spec is not None else {}
    for name in ("prune", "structure", "bits", "recover", "runtimes", "devices", "threads", "limit"):
        value = getattr(args, name)
        if value is not None:
            fields[name] = value
    try:
        g = make_grid(**fields)
    except ValueError as e:
        raise WorkbenchError(str(e)) from None
    task = zoo.load(args.task or task_name or zoo.DEFAULT)
    print(f"sweep of {task.name}: {len(g)} variants x {len(g.runtimes)} runtime(s)"
          + (f" x {len(g.devices)} device(s)" if g.devices else "") + f", store {args.store}", file=sys.stderr)
    df = sweep(task, g, store=args.store, executor=args.executor, workers=args.workers,
               progress=not args.no_progress, memory=not args.no_memory)
    failed = df[error_mask(df)].drop_duplicates(["variant", "runtime"])
    print(f"\nPareto front of {task.name} ({task.metric} up; file size and measured p50 latency down):\n")
    print(_pareto_text(pareto_table(df, maximize=[task.metric])))
    print("\n" + _decision_text(df, task.metric, args.rate_hz, args.battery_mah))
    if len(failed):
        print(f"\n{len(failed)} variant(s) failed (stored with their error):")
        for _, r in failed.iterrows():
            print(f"  {r['variant']} on {r['runtime']}: {r['error']}")
    if args.csv:
        write_rows(df, args.csv)
    if args.report:
        from workbench.report import write_report

        print(f"\nwrote {write_report(df, args.report, rate_hz=args.rate_hz, battery_mah=args.battery_mah)}")
    return 0


def _decision_text(df, metric: str, rate_hz: float | None, battery_mah: float | None) -> str:
    """The decision cards in plain text: measured on this machine, then one per device (estimated)."""
    from workbench.sweeps.decision import decisions

    cards = decisions(df, metric=metric, rate_hz=rate_hz, battery_mah=battery_mah)
    return "Recommendation:\n" + "\n\n".join("\n".join(f"  {line}" for line in c.plain().splitlines())
                                            for c in cards)


DEMO_DEVICES = ["raspberry-pi-4", "jetson-orin-nano", "esp32-s3"]


def _sweep_args(argv: list[str]) -> argparse.Namespace:
    """`workbench sweep ARGV` parsed (the demo is a sweep with fixed arguments)."""
    p = argparse.ArgumentParser(prog="workbench")
    _sweep_parser(p.add_subparsers(dest="command", required=True))
    return p.parse_args(["sweep", *argv])


def _demo(args: argparse.Namespace) -> int:
    from pathlib import Path

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    argv = ["--task", args.task, "--recover", "200", "--devices", ",".join(DEMO_DEVICES),
            "--store", str(out / f"{args.task}.sqlite"), "--report", str(out / f"{args.task}-report.html")]
    if args.limit:
        argv += ["--limit", str(args.limit)]
    for flag, value in (("--rate-hz", args.rate_hz), ("--battery-mah", args.battery_mah)):
        if value is not None:
            argv += [flag, f"{value:g}"]
    rc = _sweep(_sweep_args(argv))
    if rc or args.no_serve or os.environ.get("CI"):
        return rc
    from workbench.ui import serve, stop

    proc, url = serve("tradeoff_explorer", args.port, results=out / f"{args.task}.sqlite")
    print(f"\nTrade-off explorer (Voilà) at {url}\n  open it in a browser; the first render takes a few seconds."
          "\n  Ctrl-C stops the server.", flush=True)
    try:
        proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stop(proc)
    return 0


def _pareto_text(df) -> str:
    show = df.copy()
    for col in show.columns:
        if col.startswith("latency"):
            show[col] = show[col].map(lambda v: f"{v:.4f}")
        elif col.endswith("bytes") or col == "macs":
            show[col] = show[col].map(lambda v: "-" if v != v else f"{int(v):,}")
        elif show[col].dtype.kind == "f":
            show[col] = show[col].map(lambda v: f"{v:.4f}")
    return show.to_string(index=False)


def _report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from workbench.report import write_report
    from workbench.sweeps.store import ResultStore

    if not Path(args.store).is_file():
        raise WorkbenchError(f"{args.store}: no such results store; run `workbench sweep --store {args.store}` first")
    with ResultStore(args.store) as st:
        df = st.to_frame()
    if args.task:
        df = df[df["task"] == args.task]
    if df.empty:
        raise WorkbenchError(f"{args.store} holds no results" + (f" for task {args.task}" if args.task else ""))
    print(f"wrote {write_report(df, args.output, rate_hz=args.rate_hz, battery_mah=args.battery_mah)}")
    return 0


HANDLERS = {"tasks": _tasks, "baseline": _baseline, "sweep": _sweep, "demo": _demo, "report": _report}
