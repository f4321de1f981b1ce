"""Every page, opened in a real Chromium against a real `streamlit run app.py`: it renders its
title, shows no exception box and no error box, and leaves a screenshot in artifacts/screenshots.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest

from pages.catalog import PAGES
from tests.browser.conftest import shot, wait_for_app

pytestmark = pytest.mark.browser
EXCEPTION = '[data-testid="stException"]'
ERROR = '[data-testid="stAlertContentError"]'


@pytest.mark.parametrize("info", PAGES, ids=[p.url_path for p in PAGES])
def test_page_renders_in_chromium(browser, server, info):
    page = browser.new_page(viewport={"width": 1400, "height": 2200})
    try:
        page.goto(f"{server}/{info.url_path}")
        wait_for_app(page)
        shot(page, info.url_path)
        assert page.locator(EXCEPTION).count() == 0, page.locator(EXCEPTION).first.inner_text()
        assert page.locator(ERROR).count() == 0, page.locator(ERROR).first.inner_text()
        assert info.title.split()[0].lower() in page.locator("h1").first.inner_text().lower() \
            or info.url_path == "home"
    finally:
        page.close()


def test_presenter_mode_keeps_the_sidebar(browser, server):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(f"{server}/home?present=true")
        wait_for_app(page)
        shot(page, "home-presenter")
        assert page.locator('[data-testid="stSidebarNav"]').is_visible()
        assert page.locator('[data-testid="stButton"] button:has-text("Leave presenter mode")') \
            .is_visible()
        size = page.evaluate("getComputedStyle(document.querySelector('h1')).fontSize")
        assert float(size.rstrip("px")) >= 40
    finally:
        page.close()


def test_home_links_every_page(browser, server):
    page = browser.new_page()
    try:
        page.goto(f"{server}/home")
        wait_for_app(page)
        hrefs = page.eval_on_selector_all('[data-testid="stPageLink"] a', "els => els.map(e => e.href)")
        for info in PAGES[1:]:
            assert any(h.rstrip("/").endswith("/" + info.url_path) for h in hrefs), info.url_path
    finally:
        page.close()


def test_unknown_page_does_not_crash(browser, server):
    page = browser.new_page()
    try:
        page.goto(f"{server}/{quote('no-such-page')}?model=%00%ff")
        wait_for_app(page)
        assert page.locator(EXCEPTION).count() == 0
    finally:
        page.close()


def test_first_visit_straight_to_a_page_shows_only_the_catalog(browser):
    """A fresh server whose first request is a page's address (not the home page) still shows
    app.py's navigation, not every module of the pages/ folder."""
    from tests.browser.conftest import start_server

    proc, base, _ = start_server()
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        target = PAGES[-1]
        page.goto(f"{base}/{target.url_path}")
        wait_for_app(page)
        links = page.locator('[data-testid="stSidebarNav"] a').all_inner_texts()
        assert [x.strip().splitlines()[-1] for x in links] == [p.title for p in PAGES]
        assert page.locator(EXCEPTION).count() == 0
    finally:
        page.close()
        proc.terminate()
