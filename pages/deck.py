"""The talk deck in the sidebar of every page (called from ui.page): open an example deck or upload
one, add the view on screen as a slide, reorder or remove slides, step with ← / → or the buttons,
download the deck as JSON. A slide is a live page: stepping opens its page with its query,
keeping the language and presenter mode. The deck (lmdemo.core.deck) lives in the session; the
position is also in the URL (?slide=<n>, and ?deck=<id> for an example deck), so the browser's
Back and Forward move between slides and a link to an example deck's slide reopens it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlencode

import streamlit as st

from lmdemo.core import deck as decks
from lmdemo.core.errors import UserError
from pages import ui
from pages.catalog import PAGES

T = "deck"  # this module's text file
ROOT = Path(__file__).resolve().parents[1]
BY_PATH = {p.url_path: p for p in PAGES}
HELD, AT, EXAMPLE = "_deck", "_deck_at", "_deck_example"  # session keys
GO_SCRIPT = """<script>/* move MOVES */ (() => {
  const parts = window.location.pathname.split("/");
  parts[parts.length - 1] = PATH;  // the page's address, under the app's own base path
  window.history.pushState(null, "", parts.join("/") + "?" + QUERY);
  window.dispatchEvent(new PopStateEvent("popstate"));
})();</script>"""  # Streamlit reruns on the browser's history moves, reading the new URL


def tx(section: str, **values) -> str:
    """A section of the deck's text (pages/text/<lang>/deck.md)."""
    return ui.prose(T, section, **values)


def current_page():
    """The catalog page this script run draws (None outside app.py's navigation)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    if ctx is None:
        return None
    info = ctx.pages_manager.get_pages().get(ctx.page_script_hash) or {}
    path = Path(info.get("script_path") or ctx.main_script_path).resolve()
    return next((p for p in PAGES if (ROOT / p.file).resolve() == path), None)


def load(deck: decks.Deck, example: str | None = None) -> None:
    """Hold `deck` in the session (`example`: its id when it is a shipped one) and open slide 1;
    a deck made in another language switches the pages to it."""
    st.session_state.update({HELD: deck, AT: 0, EXAMPLE: example})
    if deck.lang:
        st.session_state["_lang"] = deck.lang
    if deck.slides:
        go(0, lang=deck.lang)


def go(index: int, lang: str | None = None) -> None:
    """Open slide `index` as a visit to its link would: its page and its query, plus the
    language, presenter mode and ?slide=<n> (and ?deck=<id> for an example deck). The browser is
    sent there as a history step (so Back returns to the previous slide): Streamlit then sets
    every widget of the page from the URL, to its default where the URL says nothing."""
    slide = st.session_state[HELD].slides[index]
    query = dict(slide.query)
    lang = lang or ui.lang()
    if lang != ui.DEFAULT_LANG:
        query["lang"] = lang
    if ui.presenter():
        query["present"] = "true"
    if st.session_state.get(EXAMPLE):
        query["deck"] = st.session_state[EXAMPLE]
    query["slide"] = str(index + 1)
    path = "" if slide.page == PAGES[0].url_path else slide.page  # the default page is at /
    moves = st.session_state.get("_deck_moves", 0) + 1  # a new script element each time
    st.session_state.update({AT: index, "_deck_moves": moves})
    _release(set(slide.query) | set(_view_query()))
    st.sidebar.html(GO_SCRIPT.replace("PATH", json.dumps(path)).replace(
        "QUERY", json.dumps(urlencode(query, doseq=True))).replace("MOVES", str(moves)),
        unsafe_allow_javascript=True)
    st.stop()  # the widgets of this page must not bind the URL again before the browser moves


def _release(keys: set[str]) -> None:
    """Unbind these query keys from this page's widgets: on a page switch Streamlit drops a URL
    parameter bound on the page left, so a slide's ?text= would not reach the next page."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    with ctx.session_state.query_params() as qp:
        for key in keys:
            if (binding := qp.get_binding_for_param(key)) is not None:
                qp.unbind_widget(binding.widget_id)


def _restore_from_url(here) -> None:
    """?deck=<example>&slide=<n> in a new session (a link): hold that example at slide n, and
    open it unless this page is that slide's page. With a deck held, ?slide=<n> of that deck
    (the browser's Back and Forward) sets the position."""
    wanted, n = st.query_params.get("deck"), st.query_params.get("slide", "")
    if HELD not in st.session_state and wanted in decks.EXAMPLES:
        deck = example(wanted)
        at = _index(n, deck)
        st.session_state.update({HELD: deck, AT: at, EXAMPLE: wanted})
        if deck.slides and (here is None or deck.slides[at].page != here.url_path):
            go(at)
    elif HELD in st.session_state and n and wanted == st.session_state.get(EXAMPLE):
        st.session_state[AT] = _index(n, st.session_state[HELD])


def _index(n: str, deck: decks.Deck) -> int:
    """A 1-based slide number from the URL as an index into the deck (clamped)."""
    return min(int(n) - 1 if n.isdigit() and int(n) > 0 else 0, max(len(deck.slides) - 1, 0))


def example(deck_id: str) -> decks.Deck:
    """A shipped deck, its slide titles in the reader's language (pages/text/<lang>/deck.md)."""
    deck = decks.example(deck_id, BY_PATH, ui.LANGS)
    titles = ui.lines(T, f"titles-{deck_id}")
    slides = tuple(decks.Slide(t, s.page, s.query) for s, t in zip(deck.slides, titles,
                                                                      strict=True))
    return decks.Deck(tx(f"example-{deck_id}"), slides, deck.lang)


def stepper(deck: decks.Deck) -> None:
    """Previous / next (← / →) and where the talk is."""
    n = len(deck.slides)
    at = min(st.session_state.get(AT, 0), n - 1)
    st.sidebar.caption(tx("position", i=at + 1, n=n, deck=_plain(deck.title)))
    st.sidebar.markdown(f"**{_plain(deck.slides[at].title)}**")
    if st.sidebar.button(tx("button-next"), key="deck_next", shortcut="Right", type="primary",
                         disabled=at >= n - 1, width="stretch"):  # the key's badge shows →
        go(at + 1)
    if st.sidebar.button(tx("button-prev"), key="deck_prev", shortcut="Left", disabled=at <= 0,
                         width="stretch"):
        go(at - 1)


def editor(deck: decks.Deck | None, here) -> None:
    """Open, upload, add this view, reorder, remove, download."""
    picked = st.selectbox(tx("label-example"), decks.EXAMPLES, index=None, key="deck_pick",
                          format_func=lambda i: tx(f"example-{i}"), placeholder=tx("pick"))
    if st.button(tx("button-open"), key="deck_open", disabled=picked is None,
                 icon=":material/slideshow:"):
        load(example(picked), picked)
    upload = st.file_uploader(tx("label-upload"), ["json"], key="deck_upload", max_upload_size=1,
                              help=tx("help-upload"))
    if upload is not None and st.session_state.get("_deck_upload_id") != upload.file_id:
        st.session_state["_deck_upload_id"] = upload.file_id  # each file is read once
        try:
            load(decks.parse(upload.getvalue(), BY_PATH, ui.LANGS))
        except UserError as exc:
            st.error(str(exc), icon=":material/error:")
    if st.session_state.pop("_deck_added", False):
        st.session_state["deck_title"] = ""  # an empty box for the next slide's title
    title = st.text_input(tx("label-title"), key="deck_title", max_chars=decks.MAX_TITLE,
                          placeholder=ui.page_title(here) if here else "")
    if st.button(tx("button-add"), key="deck_add", icon=":material/add:", disabled=here is None,
                 help=tx("help-add")):
        with ui.guard():
            slide = decks.slide_from({"title": title.strip() or ui.page_title(here),
                                      "page": here.url_path,
                                      "query": _view_query()},
                                     tx("this-view"), BY_PATH)
            deck = (deck or decks.Deck(tx("untitled"), lang=ui.lang())).added(slide)
            st.session_state["_deck_added"] = True
            _edit(deck, len(deck.slides) - 1)
    if deck and deck.slides:
        slides(deck)


def slides(deck: decks.Deck) -> None:
    """The slide list: pick one, then go to it, move it or remove it; the download."""
    n, at = len(deck.slides), min(st.session_state[AT], len(deck.slides) - 1)
    if st.session_state.get("_deck_list_at") != (at, n):  # the list follows the talk
        st.session_state.update({"deck_list": at, "_deck_list_at": (at, n)})
    pick = st.selectbox(tx("label-slides", n=n), range(n), key="deck_list",
                        format_func=lambda i: f"{i + 1}. {deck.slides[i].title}")
    go_to, up, down, drop = st.columns(4)
    if go_to.button("", key="deck_go", icon=":material/play_arrow:", help=tx("help-go")):
        go(pick)
    for col, key, by, icon in ((up, "deck_up", -1, "arrow_upward"),
                               (down, "deck_down", 1, "arrow_downward")):
        if col.button("", key=key, icon=f":material/{icon}:", help=tx(f"help-{key[5:]}")):
            _edit(deck.moved(pick, by), min(max(pick + by, 0), n - 1))
    if drop.button("", key="deck_remove", icon=":material/delete:", help=tx("help-remove")):
        _edit(deck.removed(pick), max(min(pick, n - 2), 0))
    name = re.sub(r"[^\w-]+", "-", deck.title, flags=re.ASCII).strip("-").lower() or "deck"
    saved = decks.Deck(deck.title, deck.slides, ui.lang())
    st.download_button(tx("button-download"), saved.to_json().encode("utf-8"), f"{name}.json",
                       "application/json", key="deck_download", icon=":material/download:")


def _edit(deck: decks.Deck, at: int) -> None:
    """Hold an edited deck (no longer the example it came from) at slide `at`."""
    st.session_state.update({HELD: deck, AT: at, EXAMPLE: None})
    for key in ("deck", "slide"):
        if key in st.query_params:
            del st.query_params[key]
    st.rerun()


def _view_query() -> dict:
    """The URL query of the view on screen, without the app's own settings."""
    return decks.view_query({k: st.query_params.get_all(k) for k in st.query_params})


def _plain(text: str) -> str:
    """A title shown as text, never as Markdown or HTML."""
    return re.sub(r"([\\`*_{}\[\]()<>#+\-.!|~$:=^])", r"\\\1", text)


def sidebar() -> None:
    """The deck's part of the sidebar; called once per run by ui.page()."""
    here = current_page()
    _restore_from_url(here)
    deck = st.session_state.get(HELD)
    if deck and deck.slides:
        stepper(deck)
    with st.sidebar.expander(tx("heading"), icon=":material/slideshow:"):
        if not deck:
            st.caption(tx("intro"))
        editor(deck, here)
