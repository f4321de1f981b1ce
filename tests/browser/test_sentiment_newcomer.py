"""The Sentiment page as a newcomer meets it, in a real Chromium against `streamlit run app.py`:
a long review says how much of it was read, a Chinese one gets "can't tell" and a warning, a
batch file says which column it read and how many rows were blank and keeps the file's row
numbers in the CSV it gives back, the Fine-tune tab estimates the duration before anything starts
and shows the bf16 box unticked on a CPU, the open tab is kept in the URL (and reopens from it),
and the charts speak Chinese with ?lang=zh. Screenshots: artifacts/screenshots/sentiment-*.png.
"""

from __future__ import annotations

import csv
import io

import pytest

from tests.browser.conftest import shot, wait_for_app

pytestmark = pytest.mark.browser
EXCEPTION = '[data-testid="stException"]'
ERROR = '[data-testid="stAlertContentError"]'
WARNING = '[data-testid="stAlertContentWarning"]'
INFO = '[data-testid="stAlertContentInfo"]'
LONG = "A warm and funny film with a cast that clearly loved making it. " * 40


def _clean(page) -> None:
    assert page.locator(EXCEPTION).count() == 0, page.locator(EXCEPTION).first.inner_text()
    assert page.locator(ERROR).count() == 0, page.locator(ERROR).first.inner_text()


def _review(page, text: str) -> None:
    box = page.locator(".st-key-review textarea")
    box.fill(text)
    box.press("Control+Enter")
    page.wait_for_timeout(500)
    wait_for_app(page)


def _open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name, exact=True).click()
    page.wait_for_timeout(500)
    wait_for_app(page)


def test_a_newcomer_queries_uploads_and_plans_a_run(browser, server, tmp_path):
    page = browser.new_page(viewport={"width": 1400, "height": 2000}, accept_downloads=True)
    try:
        page.goto(f"{server}/sentiment?attr=gradient-x-input")  # the fast attribution
        wait_for_app(page)
        _clean(page)
        assert page.locator(WARNING).count() == 0  # the first example: an English review
        assert page.get_by_text("The classifier read").count() == 1

        _review(page, LONG)
        warning = page.locator(WARNING, has_text="Only the beginning").inner_text()
        assert "the first 256 of its" in warning and "at most 256" in warning
        shot(page, "sentiment-long-review")

        _review(page, "这部电影真好看，演员的表演非常精彩，结尾让我感动得流泪。")
        assert page.locator(WARNING, has_text="[UNK]").count() == 1
        assert page.locator('[data-testid="stMetricValue"]').first.inner_text() == "can't tell"
        _clean(page)

        batch = tmp_path / "reviews.csv"
        batch.write_text("id,review\n1,A lovely warm film.\n2,\n3,Dull and far too long.\n",
                         encoding="utf-8")
        page.locator('.st-key-batch_file input[type="file"]').set_input_files(str(batch))
        page.get_by_text("Reviews read from the column").wait_for(timeout=60_000)
        wait_for_app(page)
        caption = page.get_by_text("Reviews read from the column").inner_text()
        assert "review: 2 classified, 1 blank rows skipped" in caption, caption
        with page.expect_download() as info:
            page.get_by_role("button", name="Download predictions (CSV)").click()
        rows = list(csv.DictReader(io.StringIO(info.value.path().read_text(encoding="utf-8"))))
        assert [r["row"] for r in rows] == ["1", "3"]  # the file's own row numbers
        assert [r["label"] for r in rows] == ["positive", "negative"]
        assert {r["unsure"] for r in rows} == {"False"} and rows[0]["tokens_read"] == "7"
        shot(page, "sentiment-batch")
        _clean(page)

        _open_tab(page, "Fine-tune")
        assert "tab=Fine-tune" in page.url
        estimate = page.locator(INFO, has_text="Estimated duration").inner_text()
        assert "This is an estimate" in estimate and "2,158 reviews × 3 epochs" in estimate
        box = page.locator(".st-key-ft_bf16_cpu input[type='checkbox']")
        assert not box.is_checked() and box.is_disabled()
        shot(page, "sentiment-finetune")
        _clean(page)

        page.goto(page.url)  # a shared link reopens the same tab
        wait_for_app(page)
        assert page.get_by_role("tab", name="Fine-tune", exact=True).get_attribute(
            "aria-selected") == "true"
        _open_tab(page, "Jobs")
        assert "tab=Jobs" in page.url
        assert page.get_by_text("No fine-tuning runs yet").count() == 1
        _clean(page)
    finally:
        page.close()


def test_the_charts_speak_chinese(browser, server):
    page = browser.new_page(viewport={"width": 1400, "height": 1800})
    try:
        page.goto(f"{server}/sentiment?lang=zh")
        wait_for_app(page)
        _clean(page)
        charts = page.locator('[data-testid="stPlotlyChart"]')
        text = " ".join(charts.nth(i).inner_text() for i in range(charts.count()))
        for zh in ("概率", "正面", "负面", "归因"):
            assert zh in text, (zh, text[:500])
        assert "probability" not in text and "towards positive" not in page.content()
        shot(page, "sentiment-zh")
    finally:
        page.close()
