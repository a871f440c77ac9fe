"""Dashboards: their data (the shipped demo results; the language-model page's fast sweep, made once per session)
and a sandbox for Voilà and Chromium."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

DASHBOARDS = Path(__file__).resolve().parents[2] / "dashboards"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-sync"]


@pytest.fixture(scope="session")
def shipped_results() -> Path:
    """The precomputed results the dashboards open with (``data/demo/<default task>.parquet`` and the runtimes
    page's ``-runtimes`` file); fails, saying how to rebuild them, when they are stale against the code (then
    every dashboard would sweep on first open)."""
    from workbench import zoo
    from workbench.ui.data import BUILD_COMMAND, demo_grid, shipped_path, stale_reasons
    from workbench.ui.runtime_data import runtime_grid, runtime_name

    for name, grid in ((zoo.DEFAULT, demo_grid(fast=False)), (runtime_name(), runtime_grid(fast=False))):
        reasons = stale_reasons(name, zoo.DEFAULT, grid)
        if reasons:
            pytest.fail(f"the shipped results data/demo/{name}.parquet are stale ({'; '.join(reasons)}): run "
                        f"`{BUILD_COMMAND}`.", pytrace=False)
    return shipped_path(zoo.DEFAULT)


@pytest.fixture(scope="session")
def llm_dashboard_store() -> Path:
    """The language-model dashboard's built-in sweep (SmolLM2, fast mode), measured once per session into the
    session's workbench cache, so the dashboard's kernels read it instead of measuring."""
    from workbench.ui.llm_data import llm_results, llm_store

    saved = {v: os.environ.pop(v, None) for v in ("WORKBENCH_FAST", "WORKBENCH_RESULTS")}
    os.environ["WORKBENCH_FAST"] = "1"
    try:
        from workbench import zoo

        task = zoo.load("smollm2")
        df = llm_results(task)
        store = llm_store(task, fast=True)
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value
    assert len(df) and df["error"].isna().all(), df["error"].dropna().unique()
    return store


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory) -> dict[str, str]:
    """Environment for Voilà, its kernels and Chromium with every state folder inside a temporary directory."""
    root = tmp_path_factory.mktemp("voila-sandbox")
    env = {}
    for var in ("TMPDIR", "JUPYTER_RUNTIME_DIR", "JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "XDG_CONFIG_HOME",
                "XDG_CACHE_HOME", "XDG_DATA_HOME", "IPYTHONDIR", "MPLCONFIGDIR"):
        path = root / var.lower()
        path.mkdir()
        env[var] = str(path)
    env["WORKBENCH_FAST"] = "1"
    env["WORKBENCH_RESULTS"] = ""  # the dashboards' own data: the shipped results (never the caller's file)
    env["WORKBENCH_EXPORTS"] = str(root / "exports")
    env["OMP_NUM_THREADS"] = "1"
    return env


def require_chromium() -> str:
    """The Chromium binary, or a failure that says how to install it (never a silent skip)."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)) and not shutil.which("chromium"):
        pytest.fail("Chromium is missing: the dashboard browser tests need Debian's headless Chromium at "
                    f"{CHROMIUM}. Install it with `apt-get install chromium` (`make setup` does).", pytrace=False)
    return CHROMIUM if os.path.isfile(CHROMIUM) else shutil.which("chromium")


@pytest.fixture(scope="module")
def chromium(sandbox) -> dict:
    """Keyword arguments for Playwright's ``chromium.launch``: Debian's binary, headless, state in the sandbox
    (fails, saying `apt-get install chromium`, when the binary is missing)."""
    return {"executable_path": require_chromium(), "args": CHROMIUM_ARGS, "env": sandbox}


@pytest.fixture(scope="session")
def dashboards_dir() -> Path:
    return DASHBOARDS
