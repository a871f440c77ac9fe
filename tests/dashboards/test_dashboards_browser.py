"""The dashboards in a real browser: Voilà serves them on localhost, headless Chromium (Debian's, driven by
Playwright) changes a control and sees the figure change, clicks a point and sees its details, and saves a
screenshot of each page into the test's temporary folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.ui.server import render_url, serve, stop

RENDER_MS = 180_000  # first render of a dashboard: a kernel starts, imports torch and plotly, runs the notebook
UPDATE_MS = 30_000  # a control change: browser -> kernel -> figure update -> browser


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="module")
def server(sandbox, dashboard_store, dashboards_dir, tmp_path_factory):
    """One Voilà server for the dashboards folder, state in the sandbox, showing the session's demo sweep."""
    log = tmp_path_factory.mktemp("voila-log") / "voila.log"
    proc, url = serve(dashboards_dir, env={**sandbox, "WORKBENCH_RESULTS": str(dashboard_store)}, log=log, timeout=90)
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


def open_page(browser, url: str, ready: str):
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url, timeout=RENDER_MS)
    page.wait_for_selector(ready, timeout=RENDER_MS)
    assert page.locator(".wb-error").count() == 0, page.locator(".wb-error").first.inner_text()
    assert "Traceback" not in page.locator("body").inner_text()
    page.errors = errors
    return page


def words(text: str) -> str:
    """Option labels as ipywidgets renders them (spaces become no-break spaces)."""
    return text.replace(" ", "\xa0")


def text_of(page, selector: str) -> str:
    return page.locator(selector).first.text_content() or ""


def test_tradeoff_explorer(server, browser, shots):
    page = open_page(browser, render_url(server, "tradeoff_explorer"), ".wb-figure .scatterlayer .point")
    fig = ".wb-figure"
    assert text_of(page, f"{fig} .gtitle") == "Accuracy against median latency"
    assert text_of(page, f"{fig} .g-xtitle") == "latency, median (measured, ms)"
    assert "Best:" in text_of(page, ".wb-summary")
    points = page.locator(f"{fig} .scatterlayer .point").count()

    # x axis: the title and the point positions change
    def positions() -> list:
        return [p.get_attribute("transform") for p in page.locator(f"{fig} .scatterlayer .point").all()]

    before = positions()
    page.locator(".wb-x select").select_option(label=words("file size (measured, bytes)"))
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
    assert "q8" in details and "weight bits" in details
    assert page.locator(".wb-export-button").is_enabled()
    page.screenshot(path=str(shots / "tradeoff_explorer.png"), full_page=True)
    assert (shots / "tradeoff_explorer.png").stat().st_size > 10_000
    assert not page.errors, page.errors


def test_device_fit(server, browser, shots):
    page = open_page(browser, render_url(server, "device_fit"), ".wb-devices-figure .barlayer .point")
    fig = ".wb-devices-figure"
    assert "baseline on each device" in text_of(page, f"{fig} .gtitle")
    bars = page.locator(f"{fig} .bartext").all_text_contents()
    page.locator(".wb-devices-variant select").select_option(label=words("channel-0.50+q8"))
    page.wait_for_function("() => document.querySelector('.wb-devices-figure .gtitle').textContent"
                           ".includes('channel-0.50+q8')", timeout=UPDATE_MS)
    assert page.locator(f"{fig} .bartext").all_text_contents() != bars
    assert "channel-0.50+q8" not in bars and "esp32-s3" in text_of(page, ".wb-devices-table")
    assert page.locator(".wb-devices-fit .heatmaplayer").count() == 1  # the fit grid
    page.screenshot(path=str(shots / "device_fit.png"), full_page=True)
    assert not page.errors, page.errors


def test_export_report(server, browser, shots):
    page = open_page(browser, render_url(server, "export_report"), ".wb-export-details .wb-variant")
    assert "Variant: q8" in text_of(page, ".wb-export-details")  # the smallest within 0.02 of the original
    page.locator(".wb-export-variant select").select_option(label=words("baseline on onnxruntime"))
    page.wait_for_function("() => document.querySelector('.wb-export-details').textContent.includes('baseline')",
                           timeout=UPDATE_MS)
    page.locator(".wb-export-button").click()
    page.wait_for_function("() => (document.querySelector('.wb-export-report') || {}).textContent"
                           "?.includes('passed')", timeout=RENDER_MS)
    report = text_of(page, ".wb-export-report")
    assert "digits-cnn-onnx.onnx" in report and "signature verifies" in report
    page.screenshot(path=str(shots / "export_report.png"), full_page=True)
    assert not page.errors, page.errors


@pytest.mark.slow  # a second store of several runtimes behind the page; the four others cover the server path
def test_runtimes(server, browser, shots):
    """The server shows the ONNX Runtime demo sweep: one bar per variant, labelled with what ran."""
    page = open_page(browser, render_url(server, "runtimes"), ".wb-runtimes-figure .barlayer .point")
    fig = ".wb-runtimes-figure"
    assert text_of(page, f"{fig} .gtitle") == "baseline on every runtime (measured on this machine)"
    assert "Fastest here: ONNX Runtime" in text_of(page, ".wb-runtimes-summary")
    assert "fp32" in page.locator(f"{fig} .bartext").all_text_contents()
    page.locator(".wb-runtimes-variant select").select_option(label=words("q8"))
    page.wait_for_function("() => document.querySelector('.wb-runtimes-figure .gtitle').textContent"
                           ".startsWith('q8 on every runtime')", timeout=UPDATE_MS)
    assert "int8 QDQ" in page.locator(f"{fig} .bartext").all_text_contents()
    assert "raspberry-pi-4" in text_of(page, ".wb-runtimes-fit")
    page.screenshot(path=str(shots / "runtimes.png"), full_page=True)
    assert not page.errors, page.errors


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
