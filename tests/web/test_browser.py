"""Browser tests (issue #9, item 4): Debian's Chromium drives the real app — describe → plan → compare → download
the deploy zip, the Catalog and Spend pages, errors, and every page at 1280×800 and 390×844.

Screenshots of each page are written to ``docs/screenshots/<page>.png`` only when ``SERVEWISE_UPDATE_SCREENSHOTS=1``
(CI must not rewrite committed files); see docs/web-browser-tests.md.
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, ViewportSize, expect

from tests.web.conftest import SPEND_DAYS, TENANTS, LiveApp, seed_spend

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
WIDE: ViewportSize = {"width": 1280, "height": 800}
NARROW: ViewportSize = {"width": 390, "height": 844}
SCREENSHOT_MAX_HEIGHT_PX = 1800
DESCRIPTION = "a support chatbot for 5,000 employees, answers within half a second, under $8k a month"
TIMEOUT_MS = 30_000


def snap(page: Page, name: str) -> None:
    """Save ``docs/screenshots/<name>.png`` (the top of the page, 1280 px wide) when asked to refresh them."""
    if os.environ.get("SERVEWISE_UPDATE_SCREENSHOTS") != "1":
        return
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    height = min(int(page.evaluate("document.documentElement.scrollHeight")), SCREENSHOT_MAX_HEIGHT_PX)
    page.screenshot(
        path=str(SCREENSHOTS / f"{name}.png"),
        full_page=True,
        clip={
            "x": 0,
            "y": 0,
            "width": page.viewport_size["width"] if page.viewport_size else 1280,
            "height": height,
        },
        animations="disabled",
    )


def horizontal_overflow_px(page: Page) -> int:
    """How far the page is wider than the viewport (0 = no sideways scrolling of the page itself)."""
    return int(page.evaluate("document.documentElement.scrollWidth - window.innerWidth"))


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=WIDE, accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda err: errors.append(str(err)))
    try:
        yield opened
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@dataclass(frozen=True)
class PlannedFlow:
    plan_id: str


@pytest.fixture(scope="module")
def planned(live_app: LiveApp, browser: Browser) -> PlannedFlow:
    """Describe a workload in words and plan it, through the browser, once for the module."""
    context = browser.new_context(viewport=WIDE)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        page.goto(live_app.url + "/")
        page.get_by_test_id("intent-text").fill(DESCRIPTION)
        page.get_by_test_id("parse-button").click()
        expect(page.get_by_test_id("workload-form")).to_be_visible()
        snap(page, "describe")
        page.get_by_test_id("plan-button").click()
        page.wait_for_url(re.compile(r"/plan/[^/?#]+$"))
        plan_id = page.url.rstrip("/").rsplit("/", 1)[-1]
    finally:
        context.close()
    return PlannedFlow(plan_id)


def test_describe_plan_compare_and_download_the_deploy_zip(
    live_app: LiveApp, planned: PlannedFlow, page: Page
) -> None:
    page.goto(f"{live_app.url}/plan/{planned.plan_id}")
    options = page.get_by_test_id("options-table").locator("tbody tr")
    assert options.count() >= 2, "the chatbot plan should offer at least two options to compare"
    expect(page.locator(".chart[data-rendered=true]").first).to_be_visible()
    snap(page, "plan")

    boxes = page.locator("input[type=checkbox][name=options]")
    boxes.nth(0).check()
    boxes.nth(1).check()
    page.get_by_test_id("compare-button").click()
    page.wait_for_url(re.compile(r"/compare"))
    expect(page.get_by_test_id("compare-table")).to_be_visible()
    snap(page, "compare")

    page.goto(f"{live_app.url}/plan/{planned.plan_id}")
    page.get_by_test_id("deploy-link").click()
    page.wait_for_url(re.compile(rf"/deploy/{re.escape(planned.plan_id)}\?"))
    expect(page.get_by_test_id("validation-status")).to_contain_text("✓")
    files = page.get_by_test_id("bundle-file")
    assert files.count() >= 3
    assert page.locator("[data-testid=bundle-file][data-status=fail]").count() == 0
    deployment = page.locator("[data-testid=bundle-file][data-path$='kubernetes/deployment.yaml']")
    expect(deployment).to_have_count(1)
    deployment.locator("summary").click()
    expect(deployment.locator("pre")).to_contain_text("kind: Deployment")
    snap(page, "deploy")

    with page.expect_download() as waited:
        page.get_by_test_id("download-zip").click()
    download = waited.value
    assert download.suggested_filename.endswith(".zip")
    with zipfile.ZipFile(io.BytesIO(Path(download.path()).read_bytes())) as archive:
        names = archive.namelist()
        deployment_name = next(n for n in names if n.endswith("kubernetes/deployment.yaml"))
        assert b"kind: Deployment" in archive.read(deployment_name)


def test_deploy_shows_errors_next_to_the_field_and_a_way_back(
    live_app: LiveApp, planned: PlannedFlow, page: Page
) -> None:
    response = page.goto(f"{live_app.url}/deploy/no-such-plan?option=1")
    assert response is not None and response.status == 404
    expect(page.get_by_test_id("page-error")).to_contain_text("no-such-plan")
    page.get_by_test_id("back-link").click()
    page.wait_for_url(live_app.url + "/")

    response = page.goto(f"{live_app.url}/deploy/{planned.plan_id}?option=999999&target=helm")
    assert response is not None and response.status == 400
    expect(page.get_by_test_id("error-option")).to_contain_text("out of range")
    expect(page.get_by_test_id("download-zip")).to_have_count(0)

    response = page.goto(f"{live_app.url}/deploy/{planned.plan_id}.zip?option=1&target=openshift")
    assert response is not None and response.status == 400
    expect(page.get_by_test_id("error-target")).to_contain_text("vllm, kserve, helm")


def test_catalog_lists_prices_with_source_and_age_and_the_health_warnings(
    live_app: LiveApp, page: Page
) -> None:
    page.goto(live_app.url + "/catalog")
    for kind in ("gpus", "models", "offers", "api-prices"):
        assert page.get_by_test_id(f"catalog-{kind}").locator("tbody tr").count() > 0, kind
    h100 = page.get_by_test_id("catalog-gpus").locator("tr", has_text="H100").first
    expect(h100).to_contain_text("GB")
    ages = page.get_by_test_id("price-age")
    assert ages.count() > 0
    stale = page.locator("[data-testid=price-age].stale")
    assert stale.count() > 0, "the packaged catalog has undated prices, which must be highlighted"
    expect(stale.first).to_contain_text(re.compile(r"undated|\d+ d"))
    expect(page.get_by_test_id("catalog-health")).to_contain_text("undated_price")
    snap(page, "catalog")


def test_spend_shows_an_empty_state_then_the_ledger_against_the_budget(live_app: LiveApp, page: Page) -> None:
    page.goto(live_app.url + "/spend")
    expect(page.get_by_test_id("spend-empty")).to_contain_text("servewise gateway --config")

    rows = seed_spend(live_app.db_url)
    page.reload()
    expect(page.get_by_test_id("spend-chart")).to_have_attribute("data-rendered", "true")
    tenants = page.get_by_test_id("spend-by-tenant")
    for org in TENANTS:
        expect(tenants).to_contain_text(org)
    expect(page.get_by_test_id("spend-summary")).to_contain_text(f"{rows:,}")
    expect(page.get_by_test_id("spend-by-route")).to_contain_text("bulk")
    expect(page.get_by_test_id("spend-budgets")).to_contain_text("acme")
    traces = page.evaluate("document.querySelector('[data-testid=spend-chart]').data.map(t => t.name)")
    assert {*TENANTS, "acme daily budget"} <= set(traces)
    days = page.evaluate("document.querySelector('[data-testid=spend-chart]').data[0].x.length")
    assert days == SPEND_DAYS
    snap(page, "spend")


@pytest.mark.parametrize("viewport", [WIDE, NARROW], ids=["1280x800", "390x844"])
def test_every_page_fits_the_screen(
    live_app: LiveApp, planned: PlannedFlow, browser: Browser, viewport: ViewportSize
) -> None:
    context = browser.new_context(viewport=viewport)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        paths = (
            "/",
            f"/plan/{planned.plan_id}",
            f"/compare?plan={planned.plan_id}&options=1,2",
            f"/deploy/{planned.plan_id}",
            f"/deploy/{planned.plan_id}?option=0",
            "/catalog",
            "/spend",
        )
        for path in paths:
            page.goto(live_app.url + path)
            expect(page.get_by_test_id("nav")).to_be_visible()
            assert horizontal_overflow_px(page) <= 0, f"{path} scrolls sideways at {viewport}"
    finally:
        context.close()
