"""Sweeps: many variants of one model, measured and stored, and the trade-offs they show.

`grid` describes the variants, `sweep` builds and measures them (serially, in a process pool or on Dask) into
a crash-safe `ResultStore`, `pareto`, `best` and `within_budget` read the results. `results_frame` measures a
few variants into the same layout without a sweep; `workbench.sweeps.frame` owns that layout.
"""

from workbench.sweeps.analysis import best, pareto, pareto_table, within_budget
from workbench.sweeps.decision import Decision, decide, decide_or_none, decisions
from workbench.sweeps.measured import results_frame
from workbench.sweeps.noise import noise_column, noise_text, within_noise
from workbench.sweeps.run import sweep
from workbench.sweeps.spec import Grid, VariantSpec, grid, load_spec
from workbench.sweeps.store import ResultStore

__all__ = ["Decision", "Grid", "ResultStore", "VariantSpec", "best", "decide", "decide_or_none", "decisions", "grid",
           "load_spec", "noise_column", "noise_text", "pareto", "pareto_table", "results_frame", "sweep",
           "within_budget", "within_noise"]
