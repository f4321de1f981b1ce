"""The talk deck in a real Chromium: open an example deck, step with the → / ← keys and with the
buttons (each slide is its live page with its query applied; a key press while typing in a box
does not step), save the view on screen as a new slide, download the deck's JSON and upload it
again, and step across pages with ?lang=zh&present=true kept; a link with ?deck=<example>&slide=<n>
opens that slide in a new session. docs/deck.png is the deck in presenter mode at 1920x1080.
"""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlparse

import pytest

from lmdemo.core import deck as decks
from tests.browser.conftest import ROOT, shot, wait_for_app

pytestmark = pytest.mark.browser
EXCEPTION = '[data-testid="stException"]'
ERROR = '[data-testid="stAlertContentError"]'
SIDEBAR = '[data-testid="stSidebar"]'
OPEN_TAB = '[role="tab"][aria-selected="true"]'
TEXT_BOX = ".st-key-text textarea"
ATTENTION = json.loads((decks.EXAMPLES_DIR / "attention.json").read_text(encoding="utf-8"))


def query(page) -> dict[str, list[str]]:
    return parse_qs(urlparse(page.url).query)


def wait_for_slide(page, n: int, path: str) -> None:
    """Wait until the URL is slide n on `path` and the page has run."""
    page.wait_for_function(f"location.pathname === {path!r} && "
                           f"new URLSearchParams(location.search).get('slide') === '{n}'",
                           timeout=60_000)
    wait_for_app(page)
    assert page.locator(EXCEPTION).count() == 0, page.locator(EXCEPTION).first.inner_text()
    assert page.locator(ERROR).count() == 0, page.locator(ERROR).first.inner_text()


def open_editor(page) -> None:
    """Unfold the deck's expander in the sidebar (once)."""
    details = page.locator(f'{SIDEBAR} [data-testid="stExpander"] details').first
    if details.get_attribute("open") is None:
        details.locator("summary").click()
    page.wait_for_timeout(300)


def pick(page, key: str, option: str) -> None:
    """Choose an option of a select box by typing its name."""
    box = page.locator(f".st-key-{key} input[role='combobox']")
    for _ in range(3):  # a click during the expander's animation may not open the list
        box.click()
        if page.get_by_role("option").count() or page.wait_for_timeout(1000) or \
                page.get_by_role("option").count():
            break
    box.fill(option)
    page.get_by_role("option", name=option, exact=True).click()
    page.wait_for_function(f"document.querySelector('.st-key-{key} input').value === "
                           f"{json.dumps(option)}", timeout=10_000)


def button(page, key: str):
    """The button with this key (a button with help text is drawn twice, once hidden)."""
    return page.locator(f".st-key-{key} button").first


def unfocus(page) -> None:
    """Put the focus on the page itself, as a presenter's click on a chart would."""
    page.locator("h1").first.click()


def test_open_step_save_download_upload(browser, server, tmp_path):
    page = browser.new_page(viewport={"width": 1920, "height": 1080}, accept_downloads=True)
    slides = ATTENTION["slides"]
    try:
        page.goto(f"{server}/?present=true")
        wait_for_app(page)
        open_editor(page)
        pick(page, "deck_pick", "Attention")
        button(page, "deck_open").click()
        wait_for_slide(page, 1, "/attention")
        assert page.locator(TEXT_BOX).input_value() == slides[0]["query"]["text"]
        assert page.locator(OPEN_TAB).inner_text().strip() == "Heatmap"
        assert "Slide 1 of 7" in page.locator(SIDEBAR).inner_text()
        assert query(page)["present"] == ["true"]

        unfocus(page)
        page.keyboard.press("ArrowRight")  # → : slide 2, the same page, another tab
        wait_for_slide(page, 2, "/attention")
        assert page.locator(OPEN_TAB).inner_text().strip() == "All heads"
        assert query(page)["tab"] == ["All heads"] and query(page)["present"] == ["true"]
        open_editor(page)  # for docs/: the stepper and the deck's tools in the sidebar
        page.mouse.move(1200, 300)
        page.evaluate("document.activeElement && document.activeElement.blur()")
        page.locator(SIDEBAR).evaluate("e => [e, ...e.querySelectorAll('*')].forEach("
                                       "x => { x.scrollTop = 0; })")
        page.wait_for_timeout(500)
        page.screenshot(path=str(ROOT / "docs" / "deck.png"))

        button(page, "deck_next").click()  # the button: slide 3, special tokens hidden
        wait_for_slide(page, 3, "/attention")
        assert query(page)["hide"] == ["true"] and query(page)["renorm"] == ["true"]
        assert page.locator(".st-key-hide input").is_checked()
        assert page.locator(".st-key-renorm input").is_checked()
        assert page.locator(OPEN_TAB).inner_text().strip() == "Heatmap"

        button(page, "deck_prev").click()
        wait_for_slide(page, 2, "/attention")
        assert query(page).get("hide") is None, "slide 2 shows the special tokens again"
        assert not page.locator(".st-key-hide input").is_checked()
        unfocus(page)
        page.keyboard.press("ArrowLeft")
        wait_for_slide(page, 1, "/attention")

        page.locator(TEXT_BOX).click()  # typing: the arrow keys move the caret, not the deck
        page.keyboard.press("ArrowRight")
        page.wait_for_timeout(2000)
        assert query(page)["slide"] == ["1"]

        unfocus(page)
        for _ in range(6):  # to the last slide, another page
            page.keyboard.press("ArrowRight")
            n = int(query(page)["slide"][0])
            page.wait_for_function(
                f"Number(new URLSearchParams(location.search).get('slide')) > {n}", timeout=60_000)
            wait_for_app(page)
            unfocus(page)
        wait_for_slide(page, 7, "/positional")
        assert page.locator(OPEN_TAB).inner_text().strip() == "Sinusoidal"
        assert query(page)["present"] == ["true"]
        assert button(page, "deck_next").is_disabled()
        button(page, "deck_prev").click()  # back across pages: text and tab of slide 6 again
        wait_for_slide(page, 6, "/attention")
        assert page.locator(OPEN_TAB).inner_text().strip() == "Two sentences"

        # save the view on screen as a new slide, with a title
        page.locator(OPEN_TAB).scroll_into_view_if_needed()
        page.get_by_role("tab", name="Lines").click()
        page.wait_for_function("new URLSearchParams(location.search).get('tab') === 'Lines'")
        wait_for_app(page)
        open_editor(page)
        page.locator(".st-key-deck_title input").fill("Lines between words")
        page.locator(".st-key-deck_title input").press("Tab")
        button(page, "deck_add").click()
        page.wait_for_function("document.querySelector('[data-testid=\"stSidebar\"]')"
                               ".innerText.includes('Slide 8 of 8')", timeout=30_000)
        wait_for_app(page)
        assert page.locator(".st-key-deck_list input").input_value() == "8. Lines between words"
        shot(page, "deck-presenter-1080p")

        with page.expect_download() as info:
            button(page, "deck_download").click()
        saved = info.value.path().read_text(encoding="utf-8")
        doc = json.loads(saved)
        assert doc["version"] == 1 and doc["lang"] == "en"
        assert [s["title"] for s in doc["slides"]] == \
            [s["title"] for s in slides] + ["Lines between words"]
        assert doc["slides"][:7] == slides
        last = doc["slides"][7]
        assert last["page"] == "attention" and last["query"]["tab"] == "Lines"
        assert not {"present", "lang", "deck", "slide"} & set(last["query"])

        # upload it again: the same slides, from slide 1; the last one opens its tab
        upload = tmp_path / "my-talk.json"
        upload.write_text(saved, encoding="utf-8")
        open_editor(page)
        page.locator('.st-key-deck_upload input[type="file"]').set_input_files(str(upload))
        page.wait_for_function("location.pathname === '/attention' && "
                               "new URLSearchParams(location.search).get('tab') === 'Heatmap'",
                               timeout=60_000)
        wait_for_app(page)
        assert "Slide 1 of 8" in page.locator(SIDEBAR).inner_text()
        assert query(page).get("deck") is None, "an uploaded deck is not an example"
        assert query(page)["slide"] == ["1"]
        with page.expect_download() as again:
            button(page, "deck_download").click()
        assert json.loads(again.value.path().read_text(encoding="utf-8")) == doc

        pick(page, "deck_list", "8. Lines between words")
        button(page, "deck_go").click()
        page.wait_for_function("new URLSearchParams(location.search).get('tab') === 'Lines'",
                               timeout=60_000)
        wait_for_app(page)
        assert page.locator(OPEN_TAB).inner_text().strip() == "Lines"
        assert "Slide 8 of 8" in page.locator(SIDEBAR).inner_text()

        bad = tmp_path / "bad.json"  # a hostile file: refused with a message, deck kept
        bad.write_text(json.dumps({**doc, "slides": [{**doc["slides"][0], "page": "../x"}]}))
        page.locator('.st-key-deck_upload input[type="file"]').set_input_files(str(bad))
        page.wait_for_selector(ERROR, timeout=30_000)
        assert "not '../x'" in page.locator(ERROR).first.inner_text()
        assert "Slide 8 of 8" in page.locator(SIDEBAR).inner_text()
    finally:
        page.close()


def test_language_and_presenter_mode_are_kept_while_stepping(browser, server, tmp_path):
    """At ?lang=zh&present=true: the example deck in Chinese, and a deck whose slides move the
    same text box between pages (next word → attention) keep both settings and each slide's
    text."""
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    first, second = "I drink a cup of", "The cat sat on the mat because it was warm"
    talk = {"version": 1, "title": "换页", "lang": None, "slides": [
        {"title": "下一个词", "page": "next_word", "query": {"text": first, "tab": "Tokens"}},
        {"title": "注意力", "page": "attention", "query": {"text": second, "tab": "Heatmap"}}]}
    deck_file = tmp_path / "talk.json"
    deck_file.write_text(json.dumps(talk, ensure_ascii=False), encoding="utf-8")
    try:
        page.goto(f"{server}/?lang=zh&present=true")
        wait_for_app(page)
        open_editor(page)
        pick(page, "deck_pick", "注意力")
        button(page, "deck_open").click()
        wait_for_slide(page, 1, "/attention")
        unfocus(page)
        page.keyboard.press("ArrowRight")
        wait_for_slide(page, 2, "/attention")
        assert query(page)["lang"] == ["zh"] and query(page)["present"] == ["true"]
        assert re.search(r"[\u4e00-\u9fff]", page.locator("h1").first.inner_text())
        assert "第 2 / 7 张" in page.locator(SIDEBAR).inner_text()
        assert "所有注意力头一览" in page.locator(SIDEBAR).inner_text()  # the slide's zh title
        assert page.locator(".st-key-leave_present button").is_visible()  # presenter mode

        open_editor(page)
        page.locator('.st-key-deck_upload input[type="file"]').set_input_files(str(deck_file))
        page.wait_for_function("location.pathname === '/next_word'", timeout=60_000)
        wait_for_app(page, timeout_s=300)
        assert page.locator(TEXT_BOX).input_value() == first
        assert query(page)["lang"] == ["zh"] and query(page)["present"] == ["true"]
        unfocus(page)
        page.keyboard.press("ArrowRight")  # the text box of another page takes its own text
        page.wait_for_function("location.pathname === '/attention'", timeout=60_000)
        wait_for_app(page)
        assert page.locator(TEXT_BOX).input_value() == second
        assert query(page)["text"] == [second]
        assert query(page)["lang"] == ["zh"] and query(page)["present"] == ["true"]
        button(page, "deck_prev").click()  # and back
        page.wait_for_function("location.pathname === '/next_word'", timeout=60_000)
        wait_for_app(page, timeout_s=300)
        assert page.locator(TEXT_BOX).input_value() == first
        assert query(page)["lang"] == ["zh"] and query(page)["present"] == ["true"]
        assert page.locator(EXCEPTION).count() == 0
        shot(page, "deck-zh-presenter")
    finally:
        page.close()

    link = browser.new_page(viewport={"width": 1600, "height": 1000})  # a new session
    try:  # a link to an example deck's slide opens that slide, with the deck held
        link.goto(f"{server}/?deck=attention&slide=2&lang=zh&present=true")
        wait_for_slide(link, 2, "/attention")
        assert link.locator(OPEN_TAB).inner_text().strip() == "All heads"
        assert "第 2 / 7 张" in link.locator(SIDEBAR).inner_text()
        assert query(link)["lang"] == ["zh"] and query(link)["present"] == ["true"]
        button(link, "deck_next").click()
        wait_for_slide(link, 3, "/attention")
        assert link.locator(".st-key-hide input").is_checked()
    finally:
        link.close()
