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
from typing import Any, Mapping, Sequence

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


PREHEAT_REFILL_S = 30
"""Seconds a preheated server waits after a visit before it starts the next spare kernel (so that kernel does not
compete with the page being drawn for 2 cores)."""
NOT_PREHEATED = ("llm_explorer",)
"""Dashboards without a spare kernel: the language-model explorer loads a language model as it opens."""


def voila_command(path: Path, port: int, preheat: bool = False) -> list[str]:
    """The Voilà command line: localhost only, no token, tracebacks shown; with `preheat`, per dashboard one
    kernel that has already run the notebook waits for the next visitor (``--preheat_kernel``, a pool of one,
    refilled `PREHEAT_REFILL_S` after each visit; none for `NOT_PREHEATED`)."""
    cmd = [sys.executable, "-m", "voila", str(path), "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1",
           "--Voila.port_retries=0", "--Voila.token=", "--VoilaConfiguration.show_tracebacks=True"]
    if preheat:
        cmd += ["--preheat_kernel=True", "--pool_size=1", f"--VoilaKernelManager.fill_delay={PREHEAT_REFILL_S}",
                f"--VoilaKernelManager.preheat_denylist={list(NOT_PREHEATED)!r}"]
    return cmd


def preheated(path: Path) -> list[str]:
    """The notebooks a preheated server for `path` (a notebook or a folder) keeps a spare kernel for."""
    notebooks = sorted(path.glob("*.ipynb")) if path.is_dir() else [path]
    return [p.name for p in notebooks if p.stem not in NOT_PREHEATED]


def wait_preheated(proc: subprocess.Popen, names: Sequence[str], timeout: float) -> bool:
    """Wait (at most `timeout` s) until a spare kernel has run each notebook in `names`: Voilà's log says "Kernel
    pool of <name> is filled" (the kernel started), then the server and its kernels go quiet (under 0.2 s of CPU
    in a second, twice running: the notebooks have run). True when both happened in time."""
    import psutil

    log = Path(getattr(proc, "log_path", ""))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        text = log.read_text(errors="replace") if log.is_file() else ""
        if all(f"Kernel pool of {n} is filled" in text for n in names):
            break
        time.sleep(0.5)
    else:
        return False

    def cpu_seconds() -> float:
        total = 0.0
        try:
            tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            return 0.0
        for p in tree:
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.NoSuchProcess:
                continue
        return total

    quiet, last = 0, cpu_seconds()
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(1.0)
        now = cpu_seconds()
        quiet = quiet + 1 if now - last < 0.2 else 0
        last = now
        if quiet >= 2:
            return True
    return False


def serve(notebook: str | os.PathLike = "tradeoff_explorer", port: int | None = None, *, results: Any = None,
          env: Mapping[str, str] | None = None, timeout: float = 60.0, log: str | os.PathLike | None = None,
          warm: bool = False, preheat: bool | None = None, wait_spare: float = 0.0) -> tuple[subprocess.Popen, str]:
    """Start Voilà on localhost serving a dashboard; return the server process and the page's URL.

    The server keeps running until you stop it (``process.terminate()``). A page runs its notebook in a kernel:
    ahead of the visit (`preheat`, a single dashboard), else when it is opened (several seconds).

    Args:
        notebook: a dashboard name (``"tradeoff_explorer"``, ``"device_fit"``, ``"export_report"``) or a path;
            a folder serves every notebook in it (each at ``<url>voila/render/<name>.ipynb``).
        port: the port (default: a free one).
        results: a results file for the dashboard to show (sets ``WORKBENCH_RESULTS`` for it).
        env: extra environment variables for the server and its kernels.
        timeout: seconds to wait for the server to listen.
        log: file for Voilà's output (default: a temporary file; its path is ``process.log_path``).
        warm: also request the page once before returning (the first render, then later loads are faster).
        preheat: per dashboard, keep a kernel that has already run the notebook ready for the next visitor, so
            a page opens without waiting for a kernel to start and the notebook to run (on 2 cores: about 5 s
            instead of about 15). Default: for a single dashboard (as ``python -m workbench demo`` serves it);
            not for a folder, whose spare kernels (one per dashboard but `NOT_PREHEATED`) would all start at
            once (on 2 cores, Voilà then at times never finished sending a page).
        wait_spare: with `preheat`, also wait up to this many seconds for the spare kernels to be ready.

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
    preheat = (not path.is_dir()) if preheat is None else preheat
    proc = subprocess.Popen(voila_command(path, port, preheat), stdout=out, stderr=subprocess.STDOUT, env=full_env,
                            cwd=str(path if path.is_dir() else path.parent), stdin=subprocess.DEVNULL)
    out.close()
    proc.log_path = log_path  # type: ignore[attr-defined]
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for_port(port, proc, timeout, log_path)
        if preheat and wait_spare > 0:
            wait_preheated(proc, preheated(path), wait_spare)
        if warm:
            urllib.request.urlopen(url, timeout=max(timeout, 120)).read()
    except BaseException:
        stop(proc)
        raise
    return proc, url


def wait_for_visitor() -> None:
    """In a spare Voilà kernel (one a preheated server keeps ready, ``VOILA_PREHEAT=True``), block until a visitor
    takes it; elsewhere return at once. A page that must measure first calls this before sweeping, so the spare
    kernel never measures what the visible page is measuring.

    Example:
        >>> wait_for_visitor()  # not in a spare kernel: returns at once
    """
    if os.environ.get("VOILA_PREHEAT") == "True":
        from voila.utils import wait_for_request

        wait_for_request()
        os.environ["VOILA_PREHEAT"] = "False"  # the kernel is a visitor's now (Voilà tells each kernel only once)


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
