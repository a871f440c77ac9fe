"""Search instead of grids: a multi-objective, constraint-aware search over uniform and per-layer choices.

`Space` says what may be chosen (a grid's axes, per-layer bits and pruning ratios, recovery, technique order),
`search` runs an Optuna study over it (NSGA-II by default) through the sweep's own spine and results store,
serially, in a process pool or on Dask, and `hypervolume` / `hypervolume_history` score the fronts it finds.
"""

from workbench.searches.run import search
from workbench.searches.space import Space, load_search_spec
from workbench.searches.volume import bounds, hypervolume, hypervolume_history

__all__ = ["Space", "bounds", "hypervolume", "hypervolume_history", "load_search_spec", "search"]
