"""Dashboards: their data (a fast demo sweep, made once per session) and a sandbox for Voilà and Chromium."""

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
def dashboard_store() -> Path:
    """The fast demo sweep the dashboards show (``ui.demo_results()`` in fast mode), stored once per session in
    the session's workbench cache; later calls (kernels included) read it."""
    from workbench.ui.data import demo_results, demo_store

    before = os.environ.get("WORKBENCH_FAST")
    os.environ["WORKBENCH_FAST"] = "1"
    try:
        df = demo_results()
    finally:
        if before is None:
            os.environ.pop("WORKBENCH_FAST", None)
        else:
            os.environ["WORKBENCH_FAST"] = before
    assert len(df) and df["error"].isna().all(), df.get("error")
    return demo_store(fast=True)


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


@pytest.fixture(scope="session")
def runtimes_dashboard_store(tmp_path_factory) -> Path:
    """The runtimes dashboard's data: its fast sweep (baseline and int8) on ONNX Runtime and PyTorch, stored once
    per session (the dashboard reads it through WORKBENCH_RESULTS; its own default measures every installed
    runtime)."""
    from workbench.sweeps import sweep
    from workbench.ui.runtime_data import runtime_grid

    store = tmp_path_factory.mktemp("runtimes") / "runtimes.sqlite"
    df = sweep("digits-cnn", runtime_grid(["onnxruntime", "torch"], fast=True), store=store, memory=False,
               progress=False)
    assert set(df["runtime"]) == {"onnxruntime", "torch"} and df["error"].isna().all(), df.get("error")
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
