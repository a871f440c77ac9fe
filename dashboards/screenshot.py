"""Write the README's picture of the trade-off explorer from exactly what `make demo` serves: run
``python -m workbench demo`` (its sweep, its results store, its Voilà server), open the page in headless Chromium,
click the best variant, and save a PNG.

    python dashboards/screenshot.py                      # what `make demo` serves -> docs/dashboard.png
    python dashboards/screenshot.py --task kws --out docs/dashboard.png
    python dashboards/screenshot.py --results r.sqlite   # another results file instead (not the demo)

The demo keeps its store in ``--demo-out`` (default ``results/``, as `make demo`), so a second run measures
nothing. Needs Debian's Chromium (`apt-get install chromium`); Playwright drives it and never downloads a browser.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workbench.ui.server import free_port, serve, stop, wait_for_port  # noqa: E402

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]
STATE_VARS = ("TMPDIR", "JUPYTER_RUNTIME_DIR", "JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "XDG_CONFIG_HOME",
              "XDG_CACHE_HOME")


def sandbox() -> tuple[Path, dict[str, str]]:
    """A temporary folder for Voilà's, Jupyter's and Chromium's state, and the environment that points there."""
    state = Path(tempfile.mkdtemp(prefix="workbench-screenshot-"))
    env = {v: str(state / v.lower()) for v in STATE_VARS}
    for path in env.values():
        Path(path).mkdir()
    env["WORKBENCH_EXPORTS"] = str(state / "exports")
    return state, env


def demo_command(task: str | None, port: int, out: str) -> list[str]:
    """The command `make demo` runs (``python -m workbench demo``), on a known port."""
    cmd = [sys.executable, "-m", "workbench", "demo", "--port", str(port), "--out", out]
    return cmd + (["--task", task] if task else [])


def start_demo(task: str | None, out: str, env: dict[str, str], log: Path, timeout: float) -> tuple[Any, str]:
    """Run the demo as `make demo` does; return its process and the explorer's URL once Voilà listens."""
    port = free_port()
    full = {**os.environ, **env}
    full.pop("CI", None)  # the demo does not serve under CI
    for var in ("WORKBENCH_RESULTS", "WORKBENCH_FAST"):  # the demo's own results, full size, as `make demo`
        full.pop(var, None)
    with open(log, "wb") as out_file:
        proc = subprocess.Popen(demo_command(task, port, out), stdout=out_file, stderr=subprocess.STDOUT, env=full,
                                cwd=str(ROOT), stdin=subprocess.DEVNULL, start_new_session=True)
    print(f"python -m workbench demo (log {log}); waiting for its server on port {port}…", flush=True)
    wait_for_port(port, proc, timeout, log)
    return proc, f"http://127.0.0.1:{port}/"


def stop_demo(proc: subprocess.Popen) -> None:
    """Ctrl-C the demo (it stops its Voilà server), then end what is left of the process group it started."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(10)


def capture(url: str, out: Path, chromium: str, width: int, env: dict[str, str]) -> Path:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=ARGS, env=env)
        page = browser.new_page(viewport={"width": width, "height": 1000}, device_scale_factor=1)
        t0 = time.monotonic()
        page.goto(url, timeout=300_000)
        page.wait_for_selector(".wb-figure .scatterlayer .point", timeout=300_000)
        print(f"first paint {time.monotonic() - t0:.1f} s", flush=True)
        # click the ringed best variant (the trace named "highlighted") so its details show
        centre = page.evaluate("""() => {
            const gd = document.querySelector('.wb-figure.js-plotly-plot, .wb-figure .js-plotly-plot');
            const i = gd.data.findIndex(t => t.name === 'highlighted');
            const p = i < 0 ? null : gd.querySelectorAll('.scatterlayer .trace')[i].querySelector('path.point');
            if (!p) return null;
            const r = p.getBoundingClientRect();
            return [r.x + r.width / 2, r.y + r.height / 2];
        }""")
        if centre:
            page.mouse.move(*centre)
            page.mouse.click(*centre)
            page.wait_for_function("() => document.querySelector('.wb-details').textContent"
                                   ".includes('Variant:')", timeout=60_000)
        top = page.locator(".wb-explorer").bounding_box()
        fig = page.locator(".wb-figure").bounding_box()
        clip = {"x": 0, "y": top["y"] - 8, "width": width, "height": fig["y"] + fig["height"] - top["y"] + 10}
        out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out), clip=clip)
        browser.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", help="the demo's task (default: the demo's, workbench.zoo.DEFAULT)")
    ap.add_argument("--demo-out", default="results", help="the demo's --out folder (default: %(default)s, as "
                                                          "`make demo`)")
    ap.add_argument("--results", help="serve this results file instead of running the demo")
    ap.add_argument("--out", default=str(ROOT / "docs" / "dashboard.png"))
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--width", type=int, default=1200)
    ap.add_argument("--timeout", type=float, default=3600, help="seconds to wait for the demo's sweep and server")
    args = ap.parse_args()

    if not os.path.isfile(args.chromium):
        print(f"{args.chromium} is missing: apt-get install chromium", file=sys.stderr)
        return 2
    state, env = sandbox()
    out = Path(args.out)
    if args.results:
        proc, url = serve("tradeoff_explorer", results=args.results, env=env, log=state / "voila.log")
        stopper = stop
    else:
        proc, url = start_demo(args.task, args.demo_out, env, state / "demo.log", args.timeout)
        stopper = stop_demo
    try:
        capture(url, out, args.chromium, args.width, env)
    finally:
        stopper(proc)
    print(f"wrote {out} ({out.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
