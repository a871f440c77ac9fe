"""Constraints in the problem's own terms (`workbench.best`'s keys), as Optuna's constraint values and as a column.

Optuna counts a trial feasible when every constraint value is <= 0; each value here is the budget's miss scaled by
the budget (``(latency - budget) / budget``), so one badly missed budget weighs more than a near miss, whatever
the units. The same budgets, through `workbench.sweeps.analysis.within_budget`, mark the ``feasible`` column of
the results, so a search and `best` agree on what meets a constraint (the metric's direction included:
``max_metric`` for perplexity).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd

from workbench.core.errors import WorkbenchError


class Feasibility:
    """The constraints of one search, read from its `constraints` dict (see `workbench.search`).

    Example:
        >>> f = Feasibility(task, {"min_accuracy": 0.9, "max_size_bytes": 1e5})
        >>> f.values({"accuracy": 0.95, "size_bytes": 2e5}), f.count
        ([1.0, -0.05555555555555548], 2)
    """

    def __init__(self, task: Any, constraints: Mapping[str, Any]) -> None:
        from workbench.sweeps.frame import LOWER_IS_BETTER

        c = dict(constraints)
        metric = task.metric
        lower = metric in LOWER_IS_BETTER
        if lower and c.get("min_accuracy") is not None:
            raise WorkbenchError(f"search: lower {metric} is better; give its highest acceptable value as "
                                 "max_metric=..., not min_accuracy")
        if not lower and c.get("max_metric") is not None:
            raise WorkbenchError(f"search: higher {metric} is better; give its lowest acceptable value as min_accuracy")
        self.device = c.get("device")
        self.runtime = c.get("runtime")
        self.realized_only = bool(c.get("realized_only", False))
        self.budgets = dict(
            min_metric=c.get("max_metric") if lower else c.get("min_accuracy"), max_latency_ms=c.get("max_latency_ms"),
            max_energy_mj=c.get("max_energy_mj"), max_size_bytes=c.get("max_size_bytes"),
            max_memory_bytes=c.get("max_memory_bytes"), metric=metric,
            latency_col="latency_ms_est" if self.device else "latency_ms_p50",
            must_fit=self.device is not None and bool(c.get("must_fit", True)))
        for k in ("min_metric", "max_latency_ms", "max_energy_mj", "max_size_bytes", "max_memory_bytes"):
            v = self.budgets[k]
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v)):
                raise WorkbenchError(f"search: constraint {k} must be a number, got {v!r}")
        self.count = (sum(self.budgets[k] is not None for k in ("min_metric", "max_latency_ms", "max_energy_mj",
                                                                 "max_size_bytes", "max_memory_bytes"))
                      + int(self.budgets["must_fit"]) + int(self.runtime is not None) + int(self.realized_only))

    def values(self, row: Mapping[str, Any]) -> list[float]:
        """One value per constraint for a results row, each <= 0 when met (a missing value counts as missed)."""
        from workbench.sweeps.analysis import within_budget

        if not self.count:
            return [0.0]
        _, budgets = within_budget(pd.DataFrame([dict(row)]), **self.budgets)
        out = []
        for b in budgets:
            v = float(b.values.iloc[0])
            if b.op == "==":
                out.append(0.0 if bool(b.ok.iloc[0]) else 1.0)
            elif not np.isfinite(v):
                out.append(1.0)
            else:
                scale = max(abs(float(b.limit)), 1e-12)
                out.append((v - b.limit) / scale if b.op == "<=" else (b.limit - v) / scale)
        if self.runtime is not None:
            out.append(0.0 if row.get("runtime") == self.runtime else 1.0)
        if self.realized_only:
            out.append(0.0 if row.get("realized") is True else 1.0)
        return out

    def mark(self, df: pd.DataFrame) -> pd.DataFrame:
        """`df` with a boolean ``feasible`` column: meets every constraint, on the constraint's device, no error."""
        from workbench.sweeps.analysis import within_budget
        from workbench.sweeps.frame import error_mask

        out = df.copy()
        if not len(out):
            out["feasible"] = pd.Series(dtype=bool)
            return out
        ok, _ = within_budget(out, **self.budgets)
        ok &= ~error_mask(out)
        if self.device is not None and "device" in out:
            ok &= out["device"] == self.device
        if self.runtime is not None:
            ok &= out["runtime"] == self.runtime
        if self.realized_only and "realized" in out:
            ok &= out["realized"].map(lambda v: v is True or v == True)  # noqa: E712 - numpy bools too
        out["feasible"] = ok.astype(bool)
        return out
