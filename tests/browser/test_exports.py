"""Exports, read back: the CSV a visitor downloads from the Next word page holds the model's own
probabilities (checked against the service called here), and the chart's PNG button gives a PNG."""

from __future__ import annotations

import csv
import io
from urllib.parse import quote

import pytest

from tests.browser.conftest import wait_for_app

pytestmark = pytest.mark.browser
TEXT = "The capital of France is"


def test_the_distribution_csv_and_png_exports(browser, server):
    from lmdemo.core.registry import default_lm
    from lmdemo.lab.next_token import next_token

    page = browser.new_page(viewport={"width": 1400, "height": 1800}, accept_downloads=True)
    try:
        page.goto(f"{server}/next_word?text={quote(TEXT)}")
        wait_for_app(page, timeout_s=300)
        button = page.get_by_role("button", name="Download next-token-distribution (CSV)")
        with page.expect_download() as info:
            button.click()
        rows = list(csv.DictReader(io.StringIO(info.value.path().read_text(encoding="utf-8"))))
        want = next_token(default_lm(), TEXT, show=len(rows)).entries
        assert [r["token"] for r in rows] == [e.token for e in want]
        assert [int(r["id"]) for r in rows] == [e.id for e in want]
        for r, e in zip(rows, want, strict=True):
            assert float(r["raw_probability"]) == pytest.approx(e.prob, rel=1e-4, abs=1e-7)
        chart = page.locator('[data-testid="stPlotlyChart"]').first
        chart.hover()
        with page.expect_download() as png:
            chart.get_by_role("button", name="Download plot as a PNG").click()
        data = png.value.path().read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
        assert png.value.suggested_filename == "next-token-distribution.png"
    finally:
        page.close()
