"""Presenter mode (?present=true) in a real Chromium: the page list and the controls stay in the
sidebar, a visible button leaves presenter mode, charts grow (tick labels >= 20 px), and the
mode is kept when moving between pages through the sidebar. Screenshots at 1920x1080 go to docs/.
"""

from __future__ import annotations

import pytest

from tests.browser.conftest import ROOT, shot, wait_for_app

pytestmark = pytest.mark.browser
EXCEPTION = '[data-testid="stException"]'
ERROR = '[data-testid="stAlertContentError"]'
NAV = '[data-testid="stSidebarNav"]'
LEAVE = '[data-testid="stButton"] button:has-text("Leave presenter mode")'
TICK = '[data-testid="stPlotlyChart"] .xtick text'
VIEWPORTS = {"720p": (1280, 720), "1080p": (1920, 1080)}
PAGES = {"next_word": "next-word", "attention": "attention"}  # url_path: screenshot name
TITLES = {"next_word": "Next word", "attention": "Attention"}


def _tick_size(page) -> float:
    size = page.eval_on_selector(TICK, "e => getComputedStyle(e).fontSize || e.style.fontSize")
    return float(size.rstrip("px"))


def _nav_to(page, title: str, path: str) -> None:
    """Click a page in the sidebar's page list and wait for it to run."""
    page.locator(NAV).get_by_role("link", name=title, exact=True).click()
    page.wait_for_function(f"location.pathname === {path!r}", timeout=30_000)
    wait_for_app(page)


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=list(VIEWPORTS))
@pytest.mark.parametrize("url_path", PAGES, ids=list(PAGES))
def test_presenter_mode(browser, server, url_path, viewport):
    width, height = VIEWPORTS[viewport]
    page = browser.new_page(viewport={"width": width, "height": height})
    try:
        page.goto(f"{server}/{url_path}?present=true")
        wait_for_app(page)
        shot(page, f"presenter-{url_path}-{viewport}")
        if viewport == "1080p":  # for docs/: the first chart in view, beside the sidebar
            page.locator('[data-testid="stPlotlyChart"]').first.scroll_into_view_if_needed()
            page.wait_for_timeout(500)
            page.screenshot(path=str(ROOT / "docs" / f"screenshot-presenter-{PAGES[url_path]}.png"))
        assert page.locator(EXCEPTION).count() == 0, page.locator(EXCEPTION).first.inner_text()
        assert page.locator(ERROR).count() == 0, page.locator(ERROR).first.inner_text()
        assert page.locator(NAV).is_visible(), "the sidebar page list stays in presenter mode"
        assert page.locator(NAV).get_by_role("link", name="Home", exact=True).is_visible()
        assert page.locator(LEAVE).is_visible()
        assert page.locator(TICK).count() > 0, "a chart with x tick labels"
        assert _tick_size(page) >= 20

        _nav_to(page, "Home", "/")  # moving through the sidebar keeps presenter mode
        assert "present=true" in page.url
        assert page.locator(LEAVE).is_visible()
        _nav_to(page, TITLES[url_path], f"/{url_path}")
        assert "present=true" in page.url
        assert page.locator(LEAVE).is_visible()
        assert _tick_size(page) >= 20

        page.locator(LEAVE).click()
        page.wait_for_function("!location.search.includes('present=true')", timeout=30_000)
        wait_for_app(page)
        assert page.locator(LEAVE).count() == 0
        assert page.locator(NAV).is_visible()
        assert _tick_size(page) < 20, "charts are back to their normal size"
        assert page.locator(EXCEPTION).count() == 0
    finally:
        page.close()
