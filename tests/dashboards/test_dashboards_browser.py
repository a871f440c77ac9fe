"""The dashboards in a real browser: Voilà serves them on localhost exactly as a fresh checkout does (the shipped
demo results, no WORKBENCH_RESULTS), headless Chromium (Debian's, driven by Playwright) reads the decision card,
changes a control and sees the page change, clicks a point and sees its details, and saves a screenshot of each
page into the test's temporary folder. The first paint of each page is timed (``first_paint.json`` beside the
screenshots, and printed): with the shipped results no page sweeps, so it is a kernel starting, the notebook
running and the browser drawing the page."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from workbench.ui.server import render_url, serve, stop

RENDER_MS = 180_000  # first render of a dashboard: a kernel starts, imports torch and plotly, runs the notebook
UPDATE_MS = 60_000  # a control change: browser -> kernel -> figure update -> browser (2 loaded cores: generous)
FIRST_PAINT: dict[str, float] = {}


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("screenshots")
    yield path
    if FIRST_PAINT:
        (path / "first_paint.json").write_text(json.dumps(FIRST_PAINT, indent=1))
        print("\nfirst paint (s): " + ", ".join(f"{k} {v:.1f}" for k, v in FIRST_PAINT.items()))


@pytest.fixture(scope="module")
def server(sandbox, shipped_results, dashboards_dir, tmp_path_factory):
    """One Voilà server for the dashboards folder, state in the sandbox, showing what a fresh checkout shows: the
    shipped demo results (a folder has no spare kernels: each page starts its own)."""
    log = tmp_path_factory.mktemp("voila-log") / "voila.log"
    proc, url = serve(dashboards_dir, env=sandbox, log=log, timeout=90)
    yield url
    stop(proc)
    assert "Traceback" not in log.read_text(errors="replace"), log.read_text(errors="replace")[-3000:]


@pytest.fixture(scope="module")
def browser(chromium):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(**chromium)
        yield b
        b.close()


def open_page(browser, url: str, ready: str, name: str | None = None):
    """Open a dashboard and wait for `ready`; records the first paint (navigation to `ready`) under `name`."""
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    t0 = time.monotonic()
    page.goto(url, timeout=RENDER_MS)
    page.wait_for_selector(ready, timeout=RENDER_MS)
    if name and name not in FIRST_PAINT:
        FIRST_PAINT[name] = time.monotonic() - t0
    assert page.locator(".wb-error").count() == 0, page.locator(".wb-error").first.inner_text()
    assert page.locator(".wb-loading").count() == 0, "the page swept instead of opening on the shipped results"
    assert "Traceback" not in page.locator("body").inner_text()
    page.errors = errors
    return page


def words(text: str) -> str:
    """Option labels as ipywidgets renders them (spaces become no-break spaces)."""
    return text.replace(" ", "\xa0")


def text_of(page, selector: str) -> str:
    return page.locator(selector).first.text_content() or ""


def options(page, selector: str) -> list[str]:
    return [o.replace("\xa0", " ") for o in page.locator(f"{selector} option").all_text_contents()]


def open_advanced(page) -> None:
    """Unfold the explorer's "Advanced: axes and filters" section (axes and filters live there)."""
    from workbench.ui.explorer import ADVANCED

    if not page.locator(".wb-x select").is_visible():
        page.get_by_text(ADVANCED).first.click()
        page.locator(".wb-x select").wait_for(state="visible", timeout=UPDATE_MS)


def test_tradeoff_explorer(server, browser, shots):
    page = open_page(browser, render_url(server, "tradeoff_explorer"), ".wb-figure .scatterlayer .point",
                     "tradeoff_explorer")
    fig = ".wb-figure"
    assert text_of(page, f"{fig} .gtitle").endswith("against median latency")
    assert "latency" in text_of(page, f"{fig} .g-xtitle")
    assert "Best:" in text_of(page, ".wb-summary")
    points = page.locator(f"{fig} .scatterlayer .point").count()

    # x axis: the title and the point positions change
    def positions() -> list:
        return [p.get_attribute("transform") for p in page.locator(f"{fig} .scatterlayer .point").all()]

    open_advanced(page)
    before = positions()
    size = next(o for o in options(page, ".wb-x") if o.startswith("file size"))
    page.locator(".wb-x select").select_option(label=words(size))
    page.wait_for_function("() => document.querySelector('.wb-figure .g-xtitle').textContent.includes('file size')",
                           timeout=UPDATE_MS)
    assert positions() != before

    # bits filter: only the int8 variants stay
    page.locator(".wb-bits select").select_option(label=[words("8-bit")])
    page.wait_for_function(f"() => document.querySelectorAll('{fig} .scatterlayer .point').length < {points}",
                           timeout=UPDATE_MS)

    # click a point: its details appear, and the Export button is enabled
    point = page.locator(f"{fig} .scatterlayer .trace .points path.point").first
    box = point.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx, cy)
    page.mouse.click(cx, cy)
    page.wait_for_function("() => document.querySelector('.wb-details').textContent.includes('Variant:')",
                           timeout=UPDATE_MS)
    details = text_of(page, ".wb-details")
    assert "q8" in details and "8-bit" in details
    assert page.locator(".wb-export-button").is_enabled()
    page.screenshot(path=str(shots / "tradeoff_explorer.png"), full_page=True)
    assert (shots / "tradeoff_explorer.png").stat().st_size > 10_000
    assert not page.errors, page.errors


def test_device_fit(server, browser, shots):
    page = open_page(browser, render_url(server, "device_fit"), ".wb-devices-figure .barlayer .point", "device_fit")
    fig = ".wb-devices-figure"
    title = text_of(page, f"{fig} .gtitle")
    assert "on each device" in title
    bars = page.locator(f"{fig} .bartext").all_text_contents()
    other = next(o for o in options(page, ".wb-devices-variant") if o.startswith("channel-0.50+q8"))
    page.locator(".wb-devices-variant select").select_option(label=words(other))
    page.wait_for_function("() => document.querySelector('.wb-devices-figure .gtitle').textContent"
                           ".includes('channel-0.50+q8')", timeout=UPDATE_MS)
    assert page.locator(f"{fig} .bartext").all_text_contents() != bars
    assert any(name in text_of(page, ".wb-devices-table") for name in ("ESP32-S3", "esp32-s3"))
    assert page.locator(".wb-devices-fit .heatmaplayer").count() == 1  # the fit grid
    page.screenshot(path=str(shots / "device_fit.png"), full_page=True)
    assert not page.errors, page.errors


def test_export_report(server, browser, shots):
    from workbench import zoo

    page = open_page(browser, render_url(server, "export_report"), ".wb-export-details .wb-variant", "export_report")
    assert "Variant:" in text_of(page, ".wb-export-details")  # the smallest within 0.02 of the original
    page.locator(".wb-export-variant select").select_option(label=words("baseline on onnxruntime"))
    page.wait_for_function("() => document.querySelector('.wb-export-details').textContent.includes('baseline')",
                           timeout=UPDATE_MS)
    page.locator(".wb-export-button").click()
    page.wait_for_function("() => (document.querySelector('.wb-export-report') || {}).textContent"
                           "?.includes('passed')", timeout=RENDER_MS)
    report = text_of(page, ".wb-export-report")
    assert f"{zoo.DEFAULT}-onnx.onnx" in report and "signature verifies" in report
    page.screenshot(path=str(shots / "export_report.png"), full_page=True)
    assert not page.errors, page.errors


def test_runtimes(server, browser, shots):
    """The shipped sweep of every installed runtime: one bar per runtime, labelled with what ran."""
    page = open_page(browser, render_url(server, "runtimes"), ".wb-runtimes-figure .barlayer .point", "runtimes")
    fig = ".wb-runtimes-figure"
    assert text_of(page, f"{fig} .gtitle") == "baseline on every runtime (measured on this machine)"
    assert "Fastest here:" in text_of(page, ".wb-runtimes-summary")
    assert "fp32" in page.locator(f"{fig} .bartext").all_text_contents()
    page.locator(".wb-runtimes-variant select").select_option(label=words("q8"))
    page.wait_for_function("() => document.querySelector('.wb-runtimes-figure .gtitle').textContent"
                           ".startsWith('q8 on every runtime')", timeout=UPDATE_MS)
    assert "int8 QDQ" in page.locator(f"{fig} .bartext").all_text_contents()
    assert "raspberry-pi-4" in text_of(page, ".wb-runtimes-fit")
    page.screenshot(path=str(shots / "runtimes.png"), full_page=True)
    assert not page.errors, page.errors


def test_the_decision_card_says_measured_then_estimated_for_a_chosen_device(server, browser, shots):
    """The card at the top of the explorer: on first paint a recommendation measured on this machine; choosing a
    device makes it an estimate for that device, in so many words."""
    page = open_page(browser, render_url(server, "tradeoff_explorer"), ".wb-card .wb-decision", "decision_card")
    card = text_of(page, ".wb-card")
    assert "(measured)" in card and "on this machine (measured)" in card and "(estimated)" not in card
    device = next(o for o in options(page, ".wb-device") if o == "Raspberry Pi 4")
    page.locator(".wb-device select").select_option(label=words(device))
    page.wait_for_function("() => document.querySelector('.wb-card').textContent.includes('(estimated)')",
                           timeout=UPDATE_MS)
    card = text_of(page, ".wb-card")
    assert "on Raspberry Pi 4 (estimated)" in card and "on this machine (measured)" not in card
    page.screenshot(path=str(shots / "decision_card.png"), full_page=True)
    assert not page.errors, page.errors


@pytest.mark.slow  # measures the fast demo sweep in the page's kernel (about a minute on 2 cores)
def test_without_shipped_results_the_page_shows_the_sweeps_progress(sandbox, dashboards_dir, browser, tmp_path):
    """No shipped results (WORKBENCH_NO_SHIPPED=1) and an empty cache, the explorer served as `make demo` serves
    it (one dashboard, a spare kernel that has run the notebook but measures only once a visitor comes): the page
    is not blank while the sweep runs, it says "Measuring variant k of 6…" with a progress bar, then shows the
    explorer."""
    env = {**sandbox, "WORKBENCH_NO_SHIPPED": "1", "WORKBENCH_CACHE": str(tmp_path / "cache")}
    proc, url = serve(dashboards_dir / "tradeoff_explorer.ipynb", env=env, log=tmp_path / "voila.log", timeout=90,
                      wait_spare=RENDER_MS / 1000)
    try:
        assert not (tmp_path / "cache" / "demo").exists(), "the spare kernel measured before anyone visited"
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(url, timeout=RENDER_MS)
        page.wait_for_selector(".wb-loading .wb-loading-progress", timeout=RENDER_MS)
        page.wait_for_function("() => /Measuring variant [2-6] of 6/.test(document.querySelector("
                               "'.wb-loading-status').textContent)", timeout=RENDER_MS)
        try:
            page.wait_for_selector(".wb-figure .scatterlayer .point, .wb-loading-status.wb-error", timeout=600_000)
        finally:
            page.screenshot(path=str(tmp_path / "progress.png"), full_page=True)
            status = page.locator(".wb-loading-status")
            print("progress page:", status.first.inner_text() if status.count() else "(panel shown)")
        assert page.locator(".wb-error").count() == 0, page.locator(".wb-error").first.inner_text()
        assert page.locator(".wb-loading-status").count() == 0
    finally:
        stop(proc)


@pytest.mark.slow  # the SmolLM2 sweep behind it is measured once per session (minutes)
def test_llm_explorer(llm_dashboard_store, server, browser, shots):
    page = open_page(browser, render_url(server, "llm_explorer"), ".wb-lm-figure .scatterlayer .point")
    fig = ".wb-lm-figure"
    assert text_of(page, f"{fig} .g-ytitle") == "perplexity (measured; lower is better)"
    assert "Best:" in text_of(page, ".wb-lm-summary") and "Q4_1" in text_of(page, ".wb-lm-note")
    page.locator(".wb-lm-cost select").select_option(label=words("tokens per second (estimate)"))
    page.wait_for_function("() => document.querySelector('.wb-lm-figure .g-xtitle').textContent"
                           ".includes('estimate for')", timeout=UPDATE_MS)
    page.locator(".wb-lm-prompt textarea").fill("What is the capital of France?")
    page.locator(".wb-lm-send button, button.wb-lm-send").first.click()
    for box in (".wb-lm-answer", ".wb-lm-reference"):
        page.wait_for_function(f"() => (document.querySelector('{box} .wb-answer-figures') || {{}}).textContent"
                               "?.includes('tokens per second')", timeout=RENDER_MS)
    assert "Paris" in text_of(page, ".wb-lm-reference .wb-answer-text")
    page.screenshot(path=str(shots / "llm_explorer.png"), full_page=True)
    assert not page.errors, page.errors
