"""The talk deck model (lmdemo.core.deck): a deck round-trips through its JSON; an upload is
checked strictly and each kind of bad file is refused with a message that says what is wrong;
every shipped example deck validates, each slide names a real page and only query keys that page
reads, and its slide titles are those of pages/text/<lang>/deck.md."""

from __future__ import annotations

import json
import re

import pytest

from lmdemo.core import deck as decks
from lmdemo.core.errors import UserError
from pages import ui
from pages.catalog import PAGES
from tests.helpers import ROOT

PATHS = [p.url_path for p in PAGES]
LANGS = list(ui.LANGS)
SHARED_WIDGETS = (ROOT / "pages" / "ui.py").read_text(encoding="utf-8")  # model, temp, topk...


def parse(data):
    return decks.parse(data, PATHS, LANGS)


def good() -> dict:
    return {"version": 1, "title": "My talk", "lang": "zh", "slides": [
        {"title": "One head", "page": "attention", "query": {"text": "它累了\nok", "tab": "Heatmap"}},
        {"title": "Side by side", "page": "next_word", "query": {"compare": ["tiny-gpt", "tiny-rnn"]}},
        {"title": "Home", "page": "home", "query": {}}]}


def refused(doc, *words):
    data = doc if isinstance(doc, (bytes, str)) else json.dumps(doc)
    with pytest.raises(UserError) as exc:
        parse(data)
    message = str(exc.value)
    for word in words:
        assert word in message, message
    return message


def test_a_deck_round_trips_through_its_json():
    deck = parse(json.dumps(good()))
    assert deck.title == "My talk" and deck.lang == "zh" and len(deck.slides) == 3
    assert deck.slides[0] == decks.Slide("One head", "attention",
                                         {"text": "它累了\nok", "tab": "Heatmap"})
    again = parse(deck.to_json().encode("utf-8"))
    assert again == deck
    assert json.loads(deck.to_json())["version"] == decks.VERSION
    assert parse(b"\xef\xbb\xbf" + deck.to_json().encode()) == deck  # a BOM is fine


def test_editing_a_deck():
    deck = parse(json.dumps(good()))
    extra = decks.Slide("Tokens", "next_word", {"tab": "Tokens"})
    longer = deck.added(extra)
    assert [s.title for s in longer.slides] == ["One head", "Side by side", "Home", "Tokens"]
    assert [s.title for s in longer.moved(3, -1).slides] == ["One head", "Side by side",
                                                              "Tokens", "Home"]
    assert [s.title for s in longer.moved(0, -5).slides] == [s.title for s in longer.slides]
    assert [s.title for s in longer.moved(0, 9).slides][-1] == "One head"
    assert [s.title for s in longer.removed(0).slides] == ["Side by side", "Home", "Tokens"]
    assert decks.view_query({"text": ["a"], "lang": ["zh"], "present": ["true"], "deck": ["x"],
                             "slide": ["2"], "compare": ["tiny-gpt", "tiny-rnn"]}) == \
        {"text": "a", "compare": ["tiny-gpt", "tiny-rnn"]}


def test_a_full_deck_takes_no_more_slides():
    slide = decks.Slide("s", "home", {})
    full = decks.Deck("t", (slide,) * decks.MAX_SLIDES)
    with pytest.raises(UserError, match="at most 100 slides"):
        full.added(slide)
    big = decks.Deck("t", (decks.Slide("s", "home", {"text": "x" * 20_000}),) * 3)
    assert len(big.added(slide).slides) == 4  # 60 KB: still fits
    with pytest.raises(UserError, match="over 64 KB"):
        big.added(decks.Slide("s", "home", {"text": "y" * 6_000}))


def with_slide(**changes) -> dict:
    doc = good()
    doc["slides"][0].update(changes)
    return doc


@pytest.mark.parametrize("doc, words", [
    (b"x" * (decks.MAX_BYTES + 1), ["65,537 bytes", "65,536"]),
    (b'{"version": 1, "title": "\xff"}', ["not UTF-8"]),
    ("{not json", ["not valid JSON", "line 1"]),
    ("[" * 5000 + "]" * 5000, ["nested too deeply"]),
    ('{"version": 1, "title": "t", "lang": null, "slides": [], "x": NaN}', ["NaN"]),
    ('{"version": 1, "title": "a", "title": "b", "lang": null, "slides": []}', ["'title' twice"]),
    ([1, 2], ["must be a JSON object"]),
    ({**good(), "macro": "rm -rf"}, ["unknown field", "'macro'"]),
    ({**good(), "version": 2}, ["version 1"]),
    ({**good(), "version": True}, ["version 1"]),
    ({**good(), "lang": "fr"}, ["language", "en, zh"]),
    ({**good(), "title": "   "}, ["title is empty"]),
    ({**good(), "title": "evil\u202egnp.exe"}, ["U+202E"]),
    ({**good(), "title": "x" * 121}, ["121 characters", "at most 120"]),
    ({**good(), "slides": {"0": {}}}, ["slides must be a list", "an object"]),
    ({**good(), "slides": [good()["slides"][1]] * 101}, ["101 slides", "at most 100"]),
    ({**good(), "slides": ["home"]}, ["Slide 1", "JSON object, not text"]),
    (with_slide(page="../../etc/passwd"), ["Slide 1", "one of this app's pages", "not '../../etc/passwd'"]),
    (with_slide(page=3), ["Slide 1", "not a number"]),
    (with_slide(title="a\x00b"), ["Slide 1", "U+0000"]),
    (with_slide(title=None), ["Slide 1", "title must be text, not null"]),
    (with_slide(query=["text"]), ["Slide 1", "query must be an object"]),
    (with_slide(query={"text": 3}), ["Slide 1", "'text' must be text, not a number"]),
    (with_slide(query={"text": None}), ["not null"]),
    (with_slide(query={"text": ["a", 2]}), ["'text' must be text, not a number"]),
    (with_slide(query={"text": [["a"]]}), ["not a list"]),
    (with_slide(query={"text": ["a"] * 51}), ["51 values", "at most 50"]),
    (with_slide(query={"text": True}), ["not true/false"]),
    (with_slide(query={"text": "a\x1bb"}), ["U+001B"]),
    (with_slide(query={"text": "x" * 20_001}), ["20,001 characters"]),
    (with_slide(query={"<script>": "x"}), ["'<script>' is not a query parameter name"]),
    (with_slide(query={"k" * 41: "x"}), ["not a query parameter name"]),
    (with_slide(query={f"k{i}": "x" for i in range(41)}), ["41 query parameters"]),
    (with_slide(query={"present": "true"}), ["'present' is set by the app"]),
    (with_slide(colour="red"), ["Slide 1", "unknown field", "'colour'"]),
], ids=lambda x: None if isinstance(x, list) else "")
def test_a_bad_upload_is_refused_with_a_message(doc, words):
    refused(doc, *words)


def test_a_lone_surrogate_is_refused():
    text = json.dumps(with_slide(title="a\ud800b"))  # JSON can escape one; UTF-8 cannot hold it
    assert "\\ud800" in text
    refused(text, "Slide 1", "lone surrogate")


@pytest.mark.parametrize("deck_id", decks.EXAMPLES)
def test_every_example_deck_validates_and_shows_real_views(deck_id):
    deck = decks.example(deck_id, PATHS, LANGS)
    assert deck.slides and deck.lang is None
    for slide in deck.slides:
        info = next(p for p in PAGES if p.url_path == slide.page)
        own = (ROOT / info.file).read_text(encoding="utf-8")
        if 'text_input("text"' in own:  # stepping is a history move: an absent text is empty
            assert slide.query.get("text", "").strip(), (deck_id, slide.title)
        source = own + SHARED_WIDGETS
        for key, value in slide.query.items():
            # the page (or a shared widget of ui.py it uses) has a widget with this key
            assert (re.search(rf"""key=(f?)["']{key}["']""", source) or re.search(
                rf"""text_input\(["']{key}["']""", source) or key == "tab"), (deck_id, key)
            if key == "tab":  # a tab the page really has (tab names are English in the URL)
                assert value in source or value in (ROOT / "pages/text/en" / f"{slide.page}.md") \
                    .read_text(encoding="utf-8"), (deck_id, value)


def test_the_examples_are_the_shipped_files_and_their_titles_are_translated():
    assert sorted(decks.EXAMPLES) == sorted(p.stem for p in decks.EXAMPLES_DIR.glob("*.json"))
    for deck_id in decks.EXAMPLES:
        deck = decks.example(deck_id, PATHS, LANGS)
        for lang in LANGS:
            titles = [t.strip() for t in ui._sections(lang, "deck")[f"titles-{deck_id}"]
                      .splitlines() if t.strip()]
            assert len(titles) == len(deck.slides), (lang, deck_id)
            if lang == "en":
                assert titles == [s.title for s in deck.slides]
    with pytest.raises(UserError, match="no example deck"):
        decks.example("../secrets", PATHS, LANGS)


def test_the_decks_ship_as_package_data():
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert '"assets/**/*"' in pyproject
    assert decks.EXAMPLES_DIR == ROOT / "lmdemo" / "assets" / "decks"
