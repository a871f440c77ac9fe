"""Sweeps: many variants of one model, measured and stored, and the trade-offs they show.

`grid` describes the variants, `sweep` builds and measures them (serially, in a process pool or on Dask) into
a crash-safe `ResultStore`, `pareto` and `best` read the results.
"""

from workbench.sweep.analysis import best, pareto, pareto_table
from workbench.sweep.grid import Grid, VariantSpec, grid, load_spec
from workbench.sweep.run import sweep
from workbench.sweep.store import ResultStore

__all__ = ["Grid", "ResultStore", "VariantSpec", "best", "grid", "load_spec", "pareto", "pareto_table", "sweep"]
