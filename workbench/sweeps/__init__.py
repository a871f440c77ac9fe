"""Sweeps: many variants of one model, measured and stored, and the trade-offs they show.

`grid` describes the variants, `sweep` builds and measures them (serially, in a process pool or on Dask) into
a crash-safe `ResultStore`, `pareto` and `best` read the results.
"""

from workbench.sweeps.analysis import best, pareto, pareto_table
from workbench.sweeps.run import sweep
from workbench.sweeps.spec import Grid, VariantSpec, grid, load_spec
from workbench.sweeps.store import ResultStore

__all__ = ["Grid", "ResultStore", "VariantSpec", "best", "grid", "load_spec", "pareto", "pareto_table", "sweep"]
