import numpy as np
import pytest

from workbench.core.errors import WorkbenchError
from workbench.federated import class_counts, dirichlet_split


def test_split_partitions_and_is_seeded():
    labels = np.repeat(np.arange(10), 50)
    a = dirichlet_split(labels, 5, alpha=0.5, seed=3)
    b = dirichlet_split(labels, 5, alpha=0.5, seed=3)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert sorted(np.concatenate(a).tolist()) == list(range(500))
    assert not all(np.array_equal(x, y) for x, y in zip(a, dirichlet_split(labels, 5, alpha=0.5, seed=4)))


def test_small_alpha_is_more_skewed_than_large():
    labels = np.repeat(np.arange(10), 100)

    def skew(alpha):  # mean share of each client's largest class
        counts = class_counts(labels, dirichlet_split(labels, 5, alpha=alpha, seed=0))
        return float(np.mean(counts.max(axis=1) / counts.sum(axis=1)))

    assert skew(0.1) > 0.4 > 0.15 > skew(100.0)


@pytest.mark.parametrize("kw", [{"clients": 0}, {"clients": 2.5}, {"alpha": 0}, {"alpha": float("nan")},
                                {"clients": 1000}])
def test_bad_arguments(kw):
    args = {"clients": 3, "alpha": 0.5, **kw}
    with pytest.raises(WorkbenchError):
        dirichlet_split(np.repeat(np.arange(3), 10), args.pop("clients"), **args)
