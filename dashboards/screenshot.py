"""Write the README's picture of the trade-off explorer: serve it with Voilà, open it in headless Chromium,
click the best variant, and save a PNG.

    python dashboards/screenshot.py                    # the full demo sweep (cached after the first run)
    python dashboards/screenshot.py --results r.sqlite --out docs/dashboard.png

Needs Debian's Chromium (`apt-get install chromium`); Playwright drives it and never downloads a browser.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workbench.ui.server import serve, stop  # noqa: E402

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", help="results file to show (default: the full demo sweep, made if missing)")
    ap.add_argument("--out", default=str(ROOT / "docs" / "dashboard.png"))
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--width", type=int, default=1200)
    args = ap.parse_args()

    if not os.path.isfile(args.chromium):
        print(f"{args.chromium} is missing: apt-get install chromium", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    from workbench.ui.data import demo_results, demo_store

    results = args.results
    if results is None:
        demo_results(fast=False, progress=True)  # a no-op once the demo sweep is stored
        results = str(demo_store(fast=False))
    state = Path(tempfile.mkdtemp(prefix="workbench-screenshot-"))
    env = {v: str(state / v.lower()) for v in ("TMPDIR", "JUPYTER_RUNTIME_DIR", "JUPYTER_CONFIG_DIR",
                                              "JUPYTER_DATA_DIR", "XDG_CONFIG_HOME", "XDG_CACHE_HOME")}
    for path in env.values():
        Path(path).mkdir()
    env["WORKBENCH_EXPORTS"] = str(state / "exports")
    proc, url = serve("tradeoff_explorer", results=results, env=env, log=state / "voila.log")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, args=ARGS, env=env)
            page = browser.new_page(viewport={"width": args.width, "height": 1000}, device_scale_factor=1)
            page.goto(url, timeout=300_000)
            page.wait_for_selector(".wb-figure .scatterlayer .point", timeout=300_000)
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
            clip = {"x": 0, "y": top["y"] - 8, "width": args.width, "height": fig["y"] + fig["height"] - top["y"] + 10}
            out = Path(args.out)
            out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out), clip=clip)
            browser.close()
    finally:
        stop(proc)
    print(f"wrote {out} ({out.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
