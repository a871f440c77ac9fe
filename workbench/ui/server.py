"""Serve a dashboard with Voilà on localhost: `serve("tradeoff_explorer")` → ``(process, url)``."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Mapping

from workbench.core.errors import WorkbenchError

DASHBOARDS = ("tradeoff_explorer", "device_fit", "export_report", "llm_explorer", "runtimes")


def dashboards_dir() -> Path:
    """The repository's `dashboards/` folder (``$WORKBENCH_DASHBOARDS`` if set)."""
    env = os.environ.get("WORKBENCH_DASHBOARDS")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "dashboards"


def dashboard_path(notebook: str | os.PathLike) -> Path:
    """A dashboard notebook by name (``"tradeoff_explorer"``) or path, or a folder of notebooks."""
    p = Path(notebook)
    if p.is_dir():
        return p
    if p.suffix != ".ipynb":
        p = dashboards_dir() / f"{p.name}.ipynb"
    if not p.is_file():
        raise WorkbenchError(f"dashboard {p} does not exist; dashboards: {', '.join(DASHBOARDS)} (in "
                             f"{dashboards_dir()}; run from a checkout of the repository or set WORKBENCH_DASHBOARDS).")
    return p


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def voila_command(path: Path, port: int) -> list[str]:
    return [sys.executable, "-m", "voila", str(path), "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1",
            "--Voila.port_retries=0", "--Voila.token=", "--VoilaConfiguration.show_tracebacks=True"]


def serve(notebook: str | os.PathLike = "tradeoff_explorer", port: int | None = None, *, results: Any = None,
          env: Mapping[str, str] | None = None, timeout: float = 60.0, log: str | os.PathLike | None = None,
          warm: bool = False) -> tuple[subprocess.Popen, str]:
    """Start Voilà on localhost serving a dashboard; return the server process and the page's URL.

    The server keeps running until you stop it (``process.terminate()``). The page renders (runs the notebook)
    when it is first opened, which takes several seconds.

    Args:
        notebook: a dashboard name (``"tradeoff_explorer"``, ``"device_fit"``, ``"export_report"``) or a path;
            a folder serves every notebook in it (each at ``<url>voila/render/<name>.ipynb``).
        port: the port (default: a free one).
        results: a results file for the dashboard to show (sets ``WORKBENCH_RESULTS`` for it).
        env: extra environment variables for the server and its kernels.
        timeout: seconds to wait for the server to listen.
        log: file for Voilà's output (default: a temporary file; its path is ``process.log_path``).
        warm: also request the page once before returning (the first render, then later loads are faster).

    Returns:
        ``(process, url)``.

    Example:
        >>> proc, url = serve("tradeoff_explorer")   # results="results.sqlite" shows a stored sweep
        >>> url.startswith("http://127.0.0.1:")     # open it in a browser
        True
        >>> stop(proc)
    """
    path = dashboard_path(notebook)
    port = port or free_port()
    full_env = {**os.environ, **(env or {})}
    if results is not None:
        res = Path(results).expanduser().resolve()
        if not res.is_file():
            raise WorkbenchError(f"results file {res} does not exist; run a sweep with --store {res} first.")
        full_env["WORKBENCH_RESULTS"] = str(res)
    log_path = Path(log) if log is not None else Path(tempfile.mkstemp(prefix="workbench-voila-", suffix=".log")[1])
    out = open(log_path, "wb")  # handed to the child process; this copy is closed below
    proc = subprocess.Popen(voila_command(path, port), stdout=out, stderr=subprocess.STDOUT, env=full_env,
                            cwd=str(path if path.is_dir() else path.parent), stdin=subprocess.DEVNULL)
    out.close()
    proc.log_path = log_path  # type: ignore[attr-defined]
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for_port(port, proc, timeout, log_path)
        if warm:
            urllib.request.urlopen(url, timeout=max(timeout, 120)).read()
    except BaseException:
        stop(proc)
        raise
    return proc, url


def render_url(base: str, name: str) -> str:
    """The page of one notebook on a server started with a folder."""
    return f"{base}voila/render/{name}.ipynb"


def wait_for_port(port: int, proc: subprocess.Popen | None, timeout: float, log_path: Path | None = None) -> None:
    """Block until something accepts connections on 127.0.0.1:`port` (or the process exits, or time runs out)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:] if log_path and log_path.exists() else ""
            raise WorkbenchError(f"Voilà exited with code {proc.returncode} before serving:\n{tail}")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise WorkbenchError(f"Voilà did not listen on port {port} within {timeout:.0f} s"
                         + (f"; its log: {log_path}" if log_path else ""))


def stop(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """Stop a server started by `serve` (terminate, then kill if it lingers)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
