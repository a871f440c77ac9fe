"""`workbench search SPEC.yaml`: a search run headless (same engine, store and study as `workbench.search`)."""

from __future__ import annotations

import argparse
import sys

from workbench.cli.common import write_rows
from workbench.core.errors import WorkbenchError


def add_parsers(sub: argparse._SubParsersAction) -> None:
    from workbench import zoo

    s = sub.add_parser("search", help="search a space of variants headless (Optuna; same store as sweep)",
                       description="Run a multi-objective search from a YAML spec (see workbench.Space.save: "
                                   "'task', 'space' and 'search' entries). Flags override the spec. A killed "
                                   "search resumes where it stopped; a finished one measures nothing.")
    s.add_argument("spec", help="search spec YAML")
    s.add_argument("--task", choices=zoo.names(), help="built-in task (default: the spec's)")
    s.add_argument("--n-trials", type=int, help="the study's total number of trials")
    s.add_argument("--sampler", help="nsga2 (default), tpe or random")
    s.add_argument("--store", help="results store (default: the spec's, else results.sqlite)")
    s.add_argument("--executor", help="serial (default), processes, dask, or a scheduler address")
    s.add_argument("--workers", type=int, help="parallel trials for processes / dask")
    s.add_argument("--seed", type=int, help="the sampler's seed")
    s.add_argument("--no-memory", action="store_true", help="skip the peak-memory probe (about 1 s per variant)")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    s.add_argument("--csv", help="also export the trials' rows to CSV (or .parquet)")
    s.add_argument("--report", help="also write the HTML report here")


def _search(args: argparse.Namespace) -> int:
    from workbench import zoo
    from workbench.searches import load_search_spec, search

    task_name, space, settings = load_search_spec(args.spec)
    for name in ("n_trials", "sampler", "store", "executor", "workers", "seed"):
        value = getattr(args, name)
        if value is not None:
            settings[name] = value
    settings.setdefault("store", "results.sqlite")
    name = args.task or task_name
    if name is None:
        raise WorkbenchError(f"search spec {args.spec} names no task: add 'task: kws' to it, or pass --task")
    task = zoo.load(name)
    print(f"search of {task.name}: {space.size} combinations, {settings.get('n_trials', 30)} trials, "
          f"store {settings['store']}", file=sys.stderr)
    df = search(task, space, progress=not args.no_progress, memory=not args.no_memory, **settings)
    a = df.attrs
    print(f"\n{a['trials']} trials ({a['evaluated']} measured now, the rest read from the store); "
          f"{int(df['feasible'].sum())} feasible rows")
    front = df[df["pareto"]]
    objectives = a["objectives"]
    print(f"\nPareto front ({', '.join(f'{c} {d}' for c, d in objectives.items())}), feasible trials only:\n")
    if len(front):
        cols = [c for c in ["trial", "variant", "runtime", *objectives, "realized"] if c in front]
        print(front[cols].to_string(index=False))
    else:
        print("  (no feasible trial yet: loosen the constraints or add trials)")
    if args.csv:
        write_rows(df, args.csv)
    if args.report:
        from workbench.report import write_report

        print(f"\nwrote {write_report(df, args.report)}")
    return 0


HANDLERS = {"search": _search}
