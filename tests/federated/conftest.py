"""A tiny federated task: the 55-parameter TinyCNN (tests/tiny_models.py) on scikit-learn's 8x8 digits 0-2."""

from __future__ import annotations

import numpy as np
import pytest
from tiny_models import make_tiny_cnn


@pytest.fixture(scope="session")
def tiny_task():
    from sklearn.datasets import load_digits

    import workbench

    x, y = load_digits(n_class=3, return_X_y=True)
    x = (x / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order].astype(np.int64)
    model = workbench.load(make_tiny_cnn(), example_inputs=[x[:2]], name="tiny-digits")
    return workbench.Task.from_model(model, [x[400:]], y[400:], name="tiny-digits", train_inputs=[x[:400]],
                                     train_labels=y[:400])
