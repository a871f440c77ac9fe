"""Doctest set-up: every docstring example in `workbench/` runs (``--doctest-modules`` in pyproject's addopts).

Examples may use these names without importing them: ``workbench``, ``np``, ``pd``, the technique configs
(``Prune``, ``Quantize``, ``Recover``, ``LowRank``), ``task`` (the digits-cnn task) and ``df`` (a small sweep of it read from a results store committed under tests/, so no sweep runs).
Each example runs in a fresh temporary directory, so files it writes ("out/", "keys/", "r.sqlite") vanish.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from _pytest.doctest import DoctestItem

STORE = Path(__file__).parent / "tests" / "sweeps" / "data" / "store_written_by_0.1.0.sqlite"


@pytest.fixture(autouse=True)
def _doctest_setup(request: pytest.FixtureRequest) -> None:
    if not isinstance(request.node, DoctestItem):
        return
    import numpy as np
    import pandas as pd

    import workbench

    namespace = request.getfixturevalue("doctest_namespace")
    tmp = request.getfixturevalue("tmp_path")
    request.getfixturevalue("monkeypatch").chdir(tmp)
    namespace.update(workbench=workbench, np=np, pd=pd, task=workbench.zoo.load("digits-cnn"),
                     Prune=workbench.Prune, Quantize=workbench.Quantize, Recover=workbench.Recover,
                     LowRank=workbench.LowRank)
    with workbench.ResultStore(shutil.copy(STORE, tmp / "doctest-results.sqlite")) as store:
        namespace["df"] = store.to_frame()
