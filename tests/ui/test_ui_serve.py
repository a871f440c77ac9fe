"""serve(): the checks before Voilà starts (serving itself is exercised by the dashboard browser tests)."""

from __future__ import annotations

import pytest

from workbench import ui
from workbench.core.errors import WorkbenchError
from workbench.ui.server import DASHBOARDS, dashboard_path, free_port, render_url, voila_command


def test_dashboards_by_name():
    for name in DASHBOARDS:
        assert dashboard_path(name).name == f"{name}.ipynb"
    assert dashboard_path(dashboard_path("device_fit").parent).is_dir()
    with pytest.raises(WorkbenchError, match="tradeoff_explorer"):
        dashboard_path("nope")


def test_serve_checks_before_starting(tmp_path):
    with pytest.raises(WorkbenchError, match="does not exist"):
        ui.serve("tradeoff_explorer", results=tmp_path / "missing.sqlite")


def test_command_is_local_and_tokenless(tmp_path):
    port = free_port()
    cmd = voila_command(tmp_path / "x.ipynb", port)
    assert "--Voila.ip=127.0.0.1" in cmd and f"--port={port}" in cmd and "--no-browser" in cmd
    assert render_url("http://127.0.0.1:1/", "device_fit") == "http://127.0.0.1:1/voila/render/device_fit.ipynb"
