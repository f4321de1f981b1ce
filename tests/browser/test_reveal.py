"""Predict, then reveal, in a real Chromium: on Next word and Attention (tiny-gpt, for speed) the
switch hides the answer, the guesses are typed or clicked, Reveal draws the chart with the guesses
marked, and the page's link (switch, guesses, revealed round) opens the same revealed view in a
fresh tab. In English, and in Chinese in presenter mode (controls in the main area). Screenshots:
artifacts/screenshots/reveal-*.png; docs/reveal.png is the revealed Next-word chart on SmolLM2 in
presenter mode at 1920×1080.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, quote, urlparse

import pytest

from lmdemo.plots.next_word import WORDS as CHART_WORDS
from pages import ui
from tests.browser.conftest import ROOT, shot, wait_for_app

pytestmark = pytest.mark.browser
EXCEPTION = '[data-testid="stException"]'
ERROR = '[data-testid="stAlertContentError"]'
MAIN = '[data-testid="stMain"]'
CHART = f'{MAIN} [data-testid="stPlotlyChart"]'
NOTES = f"{CHART} .annotation-text"  # the notes plotly draws on a chart
LANGS = {"en": "", "zh": "&lang=zh&present=true"}
PROMPT = "The cat sat on the"


def words(lang: str, page: str, key: str, **values) -> str:
    """A section of a page's text in `lang` (the labels the test clicks)."""
    text = ui._sections(lang, page)[key]
    return re.sub(r"\{\{(\w+)\}\}", lambda m: str(values[m.group(1)]), text)


def clean(page) -> None:
    assert page.locator(EXCEPTION).count() == 0, page.locator(EXCEPTION).first.inner_text()
    assert page.locator(ERROR).count() == 0, page.locator(ERROR).first.inner_text()


def switch_on(page, lang: str, text_file: str) -> None:
    label = words(lang, text_file, "reveal-switch")
    page.locator(f'{MAIN} [data-testid="stCheckbox"]', has_text=label).locator("label").click()
    wait_for_app(page)


def reveal(page, lang: str, text_file: str) -> None:
    page.locator(MAIN).get_by_role("button", name=words(lang, text_file, "reveal-button"),
                                   exact=True).click()
    page.locator(CHART).first.wait_for(timeout=60_000)
    wait_for_app(page)
    page.locator(CHART).first.scroll_into_view_if_needed()  # for the screenshot
    page.wait_for_timeout(300)


def query(page) -> dict:
    return {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}


def notes(page) -> list[str]:
    return page.locator(NOTES).all_text_contents()


def next_tokens(text: str) -> list[str]:
    """tiny-gpt's most likely next tokens after `text`, computed here (not by the page)."""
    from lmdemo.lab.next_token import next_token

    return [e.token for e in next_token("tiny-gpt", text, show=12).entries]


def reopen(browser, url: str, viewport: dict):
    """The link in a fresh tab (a new session)."""
    again = browser.new_page(viewport=viewport)
    again.goto(url)
    wait_for_app(again)
    return again


@pytest.mark.parametrize("lang", LANGS)
def test_next_word_guess_then_reveal(browser, server, lang):
    size = {"width": 1400, "height": 1600}
    page = browser.new_page(viewport=size)
    again = None
    try:
        page.goto(f"{server}/next_word?model=tiny-gpt&text={quote(PROMPT)}{LANGS[lang]}")
        wait_for_app(page)
        switch_on(page, lang, "next_word")
        assert page.locator(CHART).count() == 0, "the distribution is hidden"
        assert page.locator(MAIN).get_by_role("button", name=re.compile("·")).count() == 0
        box = page.locator(f"{MAIN} input").and_(page.get_by_label(
            words(lang, "next_word", "reveal-guesses"), exact=True))
        second = next_tokens(PROMPT)[1]  # the model's second choice, a word after a space
        box.fill(f"{second.strip()}, mat, zebra")
        box.press("Enter")
        wait_for_app(page)
        assert page.locator(CHART).count() == 0, "typing guesses reveals nothing"
        assert "␣mat" in page.locator(MAIN).inner_text()  # matched to the leading-space token
        shot(page, f"reveal-next-word-{lang}-hidden")
        clean(page)

        reveal(page, lang, "next_word")
        shot(page, f"reveal-next-word-{lang}-revealed")
        clean(page)
        marked = notes(page)
        on_chart = {"en": f"{second.strip()}: #2", "zh": f"{second.strip()}：第 2 名"}[lang]
        assert on_chart in marked, marked  # the guess on its bar, with its rank
        corner = next(n for n in marked if "zebra" in n)  # listed in a corner: not on the chart
        assert CHART_WORDS[lang]["not-shown"].format(top=12) in corner, corner
        assert "␣mat" in page.locator(MAIN).inner_text()
        assert page.locator(MAIN).get_by_role("button", name=re.compile("·")).count() > 0
        q = query(page)
        assert q.get("quiz") == "true" and q.get("reveal") and "zebra" in q.get("guesses", ""), q

        again = reopen(browser, page.url, size)  # the saved link: the same revealed round
        clean(again)
        assert again.locator(CHART).count() > 0 and notes(again) == marked

        page.locator(MAIN).get_by_role("button", name=re.compile("·")).first.click()  # a step
        wait_for_app(page)
        clean(page)
        assert page.locator(CHART).count() == 0, "the next round starts hidden"
        assert box.input_value() == "" and "reveal" not in query(page)
        assert "steps" in query(page)
    finally:
        page.close()
        if again is not None:
            again.close()


@pytest.mark.parametrize("lang", LANGS)
def test_attention_guess_then_reveal(browser, server, lang):
    size = {"width": 1400, "height": 1600}
    page = browser.new_page(viewport=size)
    again = None
    sentence = "The animal didn't cross the street because it was too tired"
    try:
        page.goto(f"{server}/attention?model=tiny-gpt&text={quote(sentence)}&guess_query=8"
                  f"{LANGS[lang]}")  # query 8: "␣it"
        wait_for_app(page)
        switch_on(page, lang, "attention")
        assert page.locator(CHART).count() == 0, "the heatmap is hidden"
        question = words(lang, "attention", "reveal-question", token="␣it")
        assert question in page.locator(MAIN).inner_text()
        pills = page.locator(f'{MAIN} [data-testid="stButtonGroup"] button')
        assert pills.count() == 9  # a causal model: "it" sees itself and the 8 tokens before it
        for name in ("␣animal", "␣street"):
            pills.filter(has_text=re.compile(f"^{name}$")).click()
            wait_for_app(page)
        assert page.locator(CHART).count() == 0
        shot(page, f"reveal-attention-{lang}-hidden")
        clean(page)

        reveal(page, lang, "attention")
        shot(page, f"reveal-attention-{lang}-revealed")
        clean(page)
        marked = notes(page)
        assert len(marked) >= 2, marked  # the key attended to most, and the guesses
        assert page.locator(CHART).count() == 2  # the guesses' row, then the heatmap
        answer = words(lang, "attention", "reveal-answer", query="␣it", token="", weight="")
        assert answer.split("**")[0].strip() in page.locator(MAIN).inner_text()
        q = query(page)
        assert q.get("quiz") == "true" and q.get("reveal"), q

        again = reopen(browser, page.url, size)
        clean(again)
        assert again.locator(CHART).count() == 2 and notes(again) == marked
    finally:
        page.close()
        if again is not None:
            again.close()


def test_docs_screenshot_of_a_revealed_round(browser, server):
    """docs/reveal.png: SmolLM2 after "The capital of France is", four guesses, revealed, in
    presenter mode at 1920×1080."""
    from tests.unit.test_smollm2 import require_smollm2

    require_smollm2()
    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    try:
        page.goto(f"{server}/next_word?model=smollm2&present=true&quiz=true"
                  f"&text={quote('The capital of France is')}"
                  f"&guesses={quote('Paris, London, Lyon, banana')}")
        wait_for_app(page, timeout_s=300)
        reveal(page, "en", "next_word")
        clean(page)
        assert "Paris: #1" in notes(page)  # the guess as typed, on the bar of ␣Paris
        page.locator(f"{MAIN} h3").first.evaluate("e => e.scrollIntoView({block: 'start'})")
        page.wait_for_timeout(500)
        page.screenshot(path=str(ROOT / "docs" / "reveal.png"))
    finally:
        page.close()


def test_a_thumbnail_click_moves_the_whole_attention_page(browser, server):
    """A click on a thumbnail of All heads selects that layer and head for the page's sliders,
    even when the panel reruns on its own (a fragment): the panel then reruns the page."""
    page = browser.new_page(viewport={"width": 1400, "height": 1600})
    try:
        page.goto(f"{server}/attention?model=tiny-gpt&tab={quote('All heads')}")
        wait_for_app(page)
        selected = words("en", "attention", "grid_selected", layer=1, head=2).split(".")[0]
        points = page.locator(f'{CHART} .scatterlayer .point')
        assert points.count() == 16  # tiny-gpt: 4 layers × 4 heads
        points.nth(6).click(force=True)  # point k is layer k // 4, head k % 4
        page.get_by_text(selected).first.wait_for(timeout=30_000)
        wait_for_app(page)
        clean(page)
        assert query(page).get("layer") == "1" and query(page).get("head") == "2", page.url
    finally:
        page.close()
