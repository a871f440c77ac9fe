"""Hypervolume: exact against a brute-force count, normalised, and over trials."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.core.errors import WorkbenchError
from workbench.searches import bounds, hypervolume, hypervolume_history
from workbench.searches.volume import exact_hypervolume


@pytest.mark.parametrize("d", [2, 3, 4])
def test_exact_matches_a_brute_force_cell_count(d):
    rng = np.random.default_rng(d)
    pts = rng.integers(0, 8, size=(12, d)).astype(float)
    ref = np.full(d, 8.0)
    cells = np.stack(np.meshgrid(*[np.arange(8) + 0.5] * d, indexing="ij"), -1).reshape(-1, d)
    dominated = (pts[None, :, :] <= cells[:, None, :]).all(axis=2).any(axis=1)
    assert exact_hypervolume(pts, ref) == pytest.approx(dominated.sum())


def test_points_outside_the_reference_add_nothing():
    assert exact_hypervolume(np.array([[5.0, 0.0], [np.nan, 0.0]]), [4.0, 4.0]) == 0.0


def test_normalised_and_directions_respected():
    d = pd.DataFrame({"accuracy": [0.9, 0.8, 0.5], "size_bytes": [100, 50, 10]})
    obj = {"accuracy": "max", "size_bytes": "min"}
    full = hypervolume(d, obj)
    assert 0 < full < 1
    # dropping a front member loses volume; a dominated extra row adds none
    assert hypervolume(d.iloc[:2], obj, box=bounds(d, obj)) < full
    worse = pd.concat([d, pd.DataFrame({"accuracy": [0.4], "size_bytes": [200]})])
    assert hypervolume(worse, obj, box=bounds(d, obj)) == pytest.approx(full)
    with pytest.raises(WorkbenchError, match="'min' or 'max'"):
        hypervolume(d, {"accuracy": "up"})


def test_history_rises_with_trials_and_ignores_infeasible_rows():
    d = pd.DataFrame({"trial": [0, 1, 2, 3], "accuracy": [0.5, 0.9, 0.8, 0.95],
                      "size_bytes": [10, 100, 50, 5], "feasible": [True, True, True, False]})
    h = hypervolume_history(d, {"accuracy": "max", "size_bytes": "min"})
    assert h["trial"].tolist() == [0, 1, 2, 3] and h["evaluations"].tolist() == [1, 2, 3, 4]
    assert h["hypervolume"].is_monotonic_increasing
    assert h["hypervolume"].iloc[3] == h["hypervolume"].iloc[2]  # the infeasible (dominating) row adds nothing
