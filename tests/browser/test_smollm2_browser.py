"""SmolLM2 in the browser: the default model of Next word when fetched, and, on a server that
cannot reach the package index, a clear message while every page keeps working on tiny-gpt."""

from __future__ import annotations

import tempfile
from urllib.parse import quote

import pytest

from tests.browser.conftest import shot, start_server, stop_server, wait_for_app
from tests.unit.test_smollm2 import require_smollm2

pytestmark = pytest.mark.browser
ERROR = '[data-testid="stAlertContentError"]'
EXCEPTION = '[data-testid="stException"]'


def test_next_word_defaults_to_smollm2_and_predicts_paris(browser, server):
    require_smollm2()
    page = browser.new_page(viewport={"width": 1400, "height": 1800})
    try:
        page.goto(f"{server}/next_word?text={quote('The capital of France is')}")
        wait_for_app(page, timeout_s=300)
        shot(page, "next-word-smollm2")
        body = page.locator('[data-testid="stMain"]').inner_text()
        assert page.locator(EXCEPTION).count() == 0 and page.locator(ERROR).count() == 0
        side = page.locator('[data-testid="stSidebar"]').inner_text()
        assert "SmolLM2-135M-Instruct" in side, side  # the picker's caption of the chosen model
        assert "Paris" in body
    finally:
        page.close()


def test_without_the_package_index_the_page_says_so_and_runs_on_tiny_gpt(browser):
    env = {"LMDEMO_ASSETS_DIR": tempfile.mkdtemp(prefix="lmdemo-no-assets-"), "LMDEMO_FETCH": "1",
           "PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_RETRIES": "0", "PIP_TIMEOUT": "2",
           "PIP_NO_CACHE_DIR": "1"}
    proc, base, _ = start_server(env)
    page = browser.new_page(viewport={"width": 1400, "height": 1800})
    try:
        page.goto(f"{base}/next_word")
        page.get_by_text("could not be fetched").first.wait_for(timeout=90_000)
        wait_for_app(page)
        shot(page, "next-word-fetch-failed")
        assert page.locator(EXCEPTION).count() == 0 and page.locator(ERROR).count() == 0
        assert "tiny-gpt" in page.locator('[data-testid="stMain"]').inner_text()
        assert page.get_by_role("button", name="Try the download again").count() == 1
    finally:
        page.close()
        stop_server(proc)
