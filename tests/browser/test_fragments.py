"""A click inside a tab's panel reruns that panel alone, in a real Chromium against a real server.

Two observables: a small app on `ui.lazy_tabs` that counts its own runs (the page's count stays
put while the panel's grows; a button outside the panel still reruns the page), and the real
pages, where the server's messages after a click carry the panel's new content but never the
page's introduction again (a full rerun resends every element; a fragment rerun only its own).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

import pytest

from tests.browser.conftest import ROOT, _free_port, shot, stop_server, wait_for_app

pytestmark = pytest.mark.browser
EXCEPTION = '[data-testid="stException"]'
MAIN = '[data-testid="stMainBlockContainer"]'
COUNTER_APP = '''
import streamlit as st
from pages import ui

st.session_state["page_runs"] = st.session_state.get("page_runs", 0) + 1
st.title("Fragments")
st.markdown(f"page runs: {st.session_state['page_runs']}")


def panel():
    st.session_state["panel_runs"] = st.session_state.get("panel_runs", 0) + 1
    st.button("Inside", key="inside")
    st.markdown(f"panel runs: {st.session_state['panel_runs']}, "
                f"page runs seen: {st.session_state['page_runs']}")


ui.lazy_tabs({"One": panel, "Two": lambda: st.markdown("two")})
st.button("Outside", key="outside")
'''


@pytest.fixture(scope="module")
def counter_app(tmp_path_factory):
    """`streamlit run` of COUNTER_APP (pages/ from this tree on its path)."""
    folder = tmp_path_factory.mktemp("fragments")
    (folder / "counter_app.py").write_text(COUNTER_APP)
    port = _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT),
           "LMDEMO_HOME": tempfile.mkdtemp(prefix="lmdemo-fragments-")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "counter_app.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true"],
        cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(base + "/_stcore/health", timeout=1):
                break
        except OSError:
            time.sleep(0.2)
    yield base
    stop_server(proc)


def _text(page, pattern: str) -> str:
    return page.get_by_text(re.compile(pattern)).first.inner_text()


def test_a_click_in_a_panel_reruns_the_panel_alone(browser, counter_app):
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    try:
        page.goto(counter_app)
        wait_for_app(page, 60)
        assert _text(page, r"^page runs") == "page runs: 1"
        assert _text(page, r"^panel runs").startswith("panel runs: 1,")
        for n in (2, 3, 4):
            page.locator(".st-key-inside button").first.click()
            page.get_by_text(f"panel runs: {n}, page runs seen: 1").wait_for(timeout=20_000)
        assert _text(page, r"^page runs") == "page runs: 1"  # the page's own work never reran
        shot(page, "fragments-counter")
        page.locator(".st-key-outside button").first.click()  # a full rerun: the count moves
        page.get_by_text("page runs: 2").wait_for(timeout=20_000)
        page.get_by_text("page runs seen: 2").wait_for(timeout=20_000)
    finally:
        page.close()


class Frames:
    """Every websocket message the page receives from the server, as bytes."""

    def __init__(self, page):
        self.got: list[bytes] = []
        page.on("websocket", lambda ws: ws.on("framereceived", self._add))

    def _add(self, payload) -> None:
        self.got.append(payload if isinstance(payload, bytes) else payload.encode())

    def since(self, n: int) -> bytes:
        return b"".join(self.got[n:])


def _intro(text_file: str, lang: str = "en") -> bytes:
    """A run of plain words from the page's introduction (as the server sends it)."""
    from pages import ui

    intro = ui._sections(lang, text_file)["intro"]
    return max(re.split(r"[*_`\[\]()$\\{}<>\n]", intro), key=len).strip()[:30].encode()


CHART_STATE = """() => {
  const c = document.querySelector('[data-testid="stMainBlockContainer"] [data-testid="stPlotlyChart"]');
  const t = c && c.querySelector('.gtitle');
  return c && c.querySelector('.main-svg') && !c.closest('[data-stale="true"]')
    ? (c.closest('[class*="st-key-"]') || {className: ''}).className + '|' + (t ? t.textContent : '')
    : null;
}"""


@pytest.mark.parametrize("lang, axis", [("en", "probability"), ("zh", "概率")])
def test_a_next_word_step_reruns_only_its_panel(browser, server, lang, axis):
    """Next word on tiny-gpt: a click on a token button redraws the distribution for the longer
    text, in the reader's language, and nothing of the page outside the panel (its introduction)
    is sent again."""
    page = browser.new_page(viewport={"width": 1400, "height": 1600})
    frames = Frames(page)
    try:
        page.goto(f"{server}/next_word?model=tiny-gpt&lang={lang}")
        wait_for_app(page)
        intro = _intro("next_word", lang)
        assert intro in frames.since(0), "the first run sends the introduction"
        for _ in range(2):
            before, n = page.evaluate(CHART_STATE), len(frames.got)
            assert before, "the distribution chart is drawn"
            page.locator(".st-key-tok_0 button").first.click()
            page.wait_for_function(f"(b) => {{ const s = ({CHART_STATE})(); return s && s !== b; }}",
                                   arg=before, timeout=60_000)
            wait_for_app(page)
            after = frames.since(n)
            assert after, "the click was answered by the server"
            assert intro not in after, "the click reran the whole page"
            ytitle = page.locator(f"{MAIN} [data-testid='stPlotlyChart'] .ytitle").first
            assert ytitle.text_content() == axis  # chart words follow the reader after the rerun
        shot(page, f"fragments-next-word-{lang}")
        assert page.locator(EXCEPTION).count() == 0
    finally:
        page.close()


def test_a_sentiment_query_reruns_only_its_panel(browser, server):
    """Sentiment's Query tab: a new review gets its label and word attribution, and the page's
    introduction is not sent again."""
    page = browser.new_page(viewport={"width": 1400, "height": 1600})
    frames = Frames(page)
    try:
        page.goto(f"{server}/sentiment")
        wait_for_app(page)
        intro = _intro("sentiment")
        assert intro in frames.since(0)
        n = len(frames.got)
        review = "A gorgeous, heartfelt story with wonderful acting."
        box = page.locator(".st-key-review textarea")
        box.fill(review)
        box.press("Control+Enter")
        page.locator('[data-testid="stHtml"]', has_text="heartfelt").first.wait_for(
            timeout=60_000)
        wait_for_app(page)
        after = frames.since(n)
        assert b"heartfelt" in after
        assert intro not in after, "the query reran the whole page"
        label = page.locator('[data-testid="stMetricValue"]').first.inner_text().lower()
        assert "positive" in label, label
        shot(page, "fragments-sentiment")
        assert page.locator(EXCEPTION).count() == 0
    finally:
        page.close()


def test_a_switch_through_the_navigation_keeps_each_pages_text(browser, server):
    """Pages share the name of their text box ("text"): a switch through the sidebar opens the
    next page on its own text (its first example, or what was typed there before), never on an
    empty box or on the other page's text, and its first chart is drawn."""
    from pages import ui

    page = browser.new_page(viewport={"width": 1400, "height": 1200})
    box = page.locator(f"{MAIN} .st-key-text textarea").first

    def go(url_path: str) -> None:
        page.locator(f'[data-testid="stSidebarNav"] a[href$="/{url_path}"]').click()
        page.wait_for_url(f"**/{url_path}*")
        wait_for_app(page)

    try:
        page.goto(f"{server}/rnn_vs_transformer")
        wait_for_app(page)
        assert box.input_value() == ui.lines("rnn_vs_transformer", "examples")[0]
        box.fill("A cat sat on the warm mat.")
        box.press("Control+Enter")
        page.get_by_text("A cat sat on the warm mat.").first.wait_for(timeout=20_000)
        wait_for_app(page)
        go("next_word")
        assert box.input_value() == ui.lines("next_word", "examples")[0]
        go("rnn_vs_transformer")
        assert box.input_value() == "A cat sat on the warm mat."
        page.locator(f"{MAIN} [data-testid='stPlotlyChart'] .main-svg").first.wait_for(
            timeout=60_000)
        shot(page, "fragments-navigation-text")
        assert page.locator(EXCEPTION).count() == 0
    finally:
        page.close()
