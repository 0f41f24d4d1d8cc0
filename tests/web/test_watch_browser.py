"""The *Watch* page in Debian's Chromium (docs/web-browser-tests.md): open a report file through the upload form and
check that plotly drew the three charts and the tables are there; the standalone HTML report drawn from a file.

``docs/screenshots/watch.png`` is written only with ``SERVEWISE_UPDATE_SCREENSHOTS=1``, as for the other pages."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from servewise.watch._html import render_html
from servewise.watch._report import report_document
from tests.watch.test_html import sample_report
from tests.web.conftest import LiveApp
from tests.web.test_browser import NARROW, TIMEOUT_MS, WIDE, horizontal_overflow_px, snap

CHARTS = ("latency", "load", "spend")


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=WIDE)
    context.set_default_timeout(TIMEOUT_MS)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda err: errors.append(str(err)))
    try:
        yield opened
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def _traces(page: Page, key: str) -> list[str]:
    names: list[str] = page.evaluate(
        f"document.querySelector('[data-testid=watch-chart-{key}]').data.map(t => t.name)"
    )
    return names


def test_an_uploaded_report_draws_its_charts(live_app: LiveApp, page: Page, tmp_path: Path) -> None:
    report_file = tmp_path / "report.json"
    report_file.write_text(json.dumps(report_document(sample_report())), encoding="utf-8")
    page.goto(live_app.url + "/watch")
    page.get_by_test_id("report-file").set_input_files(str(report_file))
    page.get_by_test_id("report-button").click()
    page.wait_for_url(live_app.url + "/watch/report")
    for key in CHARTS:
        expect(page.get_by_test_id(f"watch-chart-{key}")).to_have_attribute("data-rendered", "true")
        assert page.get_by_test_id(f"watch-chart-{key}").locator(".main-svg").count() > 0, key
    assert "TTFT p95 target" in _traces(page, "latency")
    assert "budget pace ($/month ÷ 730 h)" in _traces(page, "spend")
    expect(page.get_by_test_id("watch-banner")).to_contain_text("Gate(s) failed: ttft_p95")
    expect(page.get_by_test_id("watch-recommendations")).to_contain_text("★ biggest saving")
    assert page.get_by_test_id("watch-compliance").locator("tbody tr").count() == 3
    snap(page, "watch")


def test_bad_report_shows_the_message_next_to_the_field(live_app: LiveApp, page: Page) -> None:
    page.goto(live_app.url + "/watch")
    page.get_by_test_id("report-text").fill("{not json")
    page.get_by_test_id("report-button").click()
    expect(page.get_by_test_id("error-report")).to_contain_text("not JSON")


def test_the_standalone_report_draws_offline(browser: Browser, tmp_path: Path) -> None:
    path = tmp_path / "watch.html"
    path.write_text(render_html(sample_report()), encoding="utf-8")
    context = browser.new_context(viewport=WIDE, offline=True)
    context.set_default_timeout(TIMEOUT_MS)
    requested: list[str] = []
    context.on("request", lambda request: requested.append(request.url))
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    try:
        page.goto(path.as_uri())
        for key in CHARTS:
            expect(page.locator(f"[data-chart={key}]")).to_have_attribute("data-rendered", "true")
        assert [url for url in requested if not url.startswith(("file:", "data:"))] == []
    finally:
        context.close()
    assert not errors, errors


def test_the_watch_page_fits_a_phone(live_app: LiveApp, browser: Browser) -> None:
    context = browser.new_context(viewport=NARROW)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        page.goto(live_app.url + "/watch")
        page.get_by_test_id("report-text").fill(json.dumps(report_document(sample_report())))
        page.get_by_test_id("report-button").click()
        expect(page.get_by_test_id("watch-chart-load")).to_have_attribute("data-rendered", "true")
        assert horizontal_overflow_px(page) <= 0, "the Watch page scrolls sideways at 390 px"
    finally:
        context.close()
