"""A talk deck: an ordered list of live views (a page and its URL query), each with a title.

A presenter saves views into a deck, steps through them in the app, and downloads the deck as a
small JSON file to upload again later; a few decks ship in `lmdemo/assets/decks/`. The JSON is:

    {"version": 1, "title": "Attention", "lang": "en",
     "slides": [{"title": "One head", "page": "attention", "query": {"tab": "Heatmap"}}]}

`lang` is optional (null: the reader's language). An upload is untrusted, so `parse` checks
everything strictly — size, nesting, types, lengths, known pages and query keys, no NaN, no
duplicate keys, no control characters in titles — and refuses a bad file with a `UserError` that
says what is wrong and where ("slide 3: ..."). This module knows no page list of its own: the
app passes the pages it has (pages/catalog.py), so the model layer never imports the UI.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from pathlib import Path

from lmdemo.core.config import ASSETS
from lmdemo.core.errors import UserError

VERSION = 1  # the format written; the only one read
EXAMPLES_DIR = ASSETS / "decks"  # shipped example decks, one <id>.json each
MAX_BYTES = 64 * 1024  # an upload larger than this is refused before it is parsed
MAX_SLIDES = 100
MAX_TITLE = 120  # characters in a deck's or a slide's title
MAX_PARAMS = 40  # query parameters per slide
MAX_KEY = 40  # characters in a query parameter's name
MAX_VALUES = 50  # values of one query parameter (the options picked in a multiselect)
MAX_VALUE = 20_000  # characters in a query parameter's value (a text box's longest text)
RESERVED = ("lang", "present", "deck", "slide")  # set by the app while stepping, never per slide
KEY = re.compile(r"[A-Za-z][A-Za-z0-9_]*")  # the names the pages give their URL-bound widgets
BIDI = set("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")  # hide text
EXAMPLES = ("how-a-language-model-predicts", "attention", "why-transformers-replaced-rnns")
FIELDS = {"deck": {"version", "title", "lang", "slides"}, "slide": {"title", "page", "query"}}


@dataclass(frozen=True)
class Slide:
    """One live view: a catalog page (its url_path) and the query its widgets read."""

    title: str
    page: str  # a url_path of pages/catalog.py, e.g. "next_word"
    query: dict[str, str | list[str]] = field(default_factory=dict)  # {"tab": "Tokens"}; a list
    # for a widget with several values (a multiselect: ?compare=a&compare=b)

    def to_dict(self) -> dict:
        return {"title": self.title, "page": self.page, "query": dict(self.query)}


@dataclass(frozen=True)
class Deck:
    """An ordered list of slides, with a title and the language it was made in (None: any)."""

    title: str
    slides: tuple[Slide, ...] = ()
    lang: str | None = None

    def to_dict(self) -> dict:
        return {"version": VERSION, "title": self.title, "lang": self.lang,
                "slides": [s.to_dict() for s in self.slides]}

    def to_json(self) -> str:
        """The deck as the JSON file a presenter downloads (UTF-8, readable, stable order)."""
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2) + "\n"

    def added(self, slide: Slide) -> Deck:
        """This deck with `slide` at the end; refused when the deck could not be uploaded again
        (more than MAX_SLIDES slides, or a file over MAX_BYTES)."""
        if len(self.slides) >= MAX_SLIDES:
            raise UserError(f"A deck holds at most {MAX_SLIDES} slides; remove one first.")
        out = replace(self, slides=self.slides + (slide,))
        if len(out.to_json().encode("utf-8")) > MAX_BYTES:
            raise UserError(f"With this slide the deck file would be over {MAX_BYTES // 1024} KB; "
                            "shorten its texts or remove a slide.")
        return out

    def removed(self, index: int) -> Deck:
        """This deck without slide `index` (0-based); an index out of range changes nothing."""
        return replace(self, slides=tuple(s for i, s in enumerate(self.slides) if i != index))

    def moved(self, index: int, by: int) -> Deck:
        """This deck with slide `index` moved `by` places (-1: earlier), kept inside the deck."""
        slides = list(self.slides)
        if not 0 <= index < len(slides):
            return self
        to = min(max(index + by, 0), len(slides) - 1)
        slides.insert(to, slides.pop(index))
        return replace(self, slides=tuple(slides))


def view_query(query: dict[str, list[str]]) -> dict[str, str | list[str]]:
    """The part of a page's URL query (each key's values) that belongs to a slide: everything but
    the app's own settings (language, presenter mode, the deck position); one value as a str."""
    return {k: v[0] if len(v) == 1 else list(v) for k, v in query.items() if k not in RESERVED}


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        twice = next(k for k in keys if keys.count(k) > 1)
        raise UserError(f"The deck file names {twice!r} twice in one object.")
    return dict(pairs)


def _no_constant(name: str):
    raise UserError(f"The deck file holds {name}, which is not valid JSON; use numbers or text.")


def _text(value, where: str, limit: int, *, title: bool) -> str:
    """A string of at most `limit` characters, valid Unicode, with no control characters (a value
    may hold tabs and line breaks); a title also has no bidi overrides and is not blank."""
    if not isinstance(value, str):
        raise UserError(f"{where} must be text, not {_kind(value)}.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise UserError(f"{where} holds a lone surrogate (broken UTF-16); give UTF-8 text.") \
            from None
    if len(value) > limit:
        raise UserError(f"{where} is {len(value):,} characters long; at most {limit:,} are "
                        "accepted.")
    allowed = "" if title else "\n\r\t"
    bad = next((c for c in value if c not in allowed and (
        unicodedata.category(c) == "Cc" or (title and c in BIDI))), None)
    if bad is not None:
        raise UserError(f"{where} holds the control character U+{ord(bad):04X}; remove it.")
    if title and not value.strip():
        raise UserError(f"{where} is empty: give it a title.")
    return value


def _kind(value) -> str:
    return {bool: "true/false", int: "a number", float: "a number", type(None): "null",
            list: "a list", dict: "an object", str: "text"}.get(type(value), type(value).__name__)


def _object(value, where: str, kind: str) -> dict:
    if not isinstance(value, dict):
        raise UserError(f"{where} must be a JSON object, not {_kind(value)}.")
    unknown = sorted(set(value) - FIELDS[kind])
    if unknown:
        raise UserError(f"{where} has unknown field(s) {', '.join(map(repr, unknown))}; a "
                        f"{kind} has {', '.join(sorted(FIELDS[kind]))}.")
    return value


def slide_from(value, where: str, pages: Collection[str]) -> Slide:
    """A Slide from one decoded JSON object, checked (`pages`: the url_paths the app has)."""
    raw = _object(value, where, "slide")
    title = _text(raw.get("title"), f"{where}: the title", MAX_TITLE, title=True)
    page = raw.get("page")
    if not isinstance(page, str) or page not in pages:
        shown = repr(page[:40]) if isinstance(page, str) else _kind(page)
        raise UserError(f"{where}: the page must be one of this app's pages "
                        f"({', '.join(pages)}), not {shown}.")
    query = raw.get("query", {})
    if not isinstance(query, dict):
        raise UserError(f"{where}: the query must be an object of texts (or lists of texts), not "
                        f"{_kind(query)}.")
    if len(query) > MAX_PARAMS:
        raise UserError(f"{where}: {len(query)} query parameters; at most {MAX_PARAMS}.")
    for key, val in query.items():
        if len(key) > MAX_KEY or not KEY.fullmatch(key):
            raise UserError(f"{where}: {key[:MAX_KEY]!r} is not a query parameter name (letters, "
                            f"digits and _, at most {MAX_KEY} characters).")
        if key in RESERVED:
            raise UserError(f"{where}: {key!r} is set by the app while stepping, not by a "
                            "slide; remove it (a deck's language is its \"lang\" field).")
        if isinstance(val, list) and len(val) > MAX_VALUES:
            raise UserError(f"{where}: {key!r} has {len(val)} values; at most {MAX_VALUES}.")
        for v in val if isinstance(val, list) else [val]:
            _text(v, f"{where}: the value of {key!r}", MAX_VALUE, title=False)
    return Slide(title, page, {k: list(v) if isinstance(v, list) else v
                               for k, v in query.items()})


def deck_from(value, pages: Collection[str], langs: Collection[str]) -> Deck:
    """A Deck from decoded JSON, checked (`langs`: the languages the app can show)."""
    raw = _object(value, "The deck", "deck")
    if raw.get("version") != VERSION or isinstance(raw.get("version"), bool):
        raise UserError(f"This is not an lmdemo deck of version {VERSION} (its \"version\" is "
                        f"{json.dumps(raw.get('version'))[:20]}).")
    title = _text(raw.get("title"), "The deck's title", MAX_TITLE, title=True)
    lang = raw.get("lang")
    if lang is not None and lang not in langs:
        raise UserError(f"The deck's language must be one of {', '.join(langs)} or null, not "
                        f"{json.dumps(lang)[:20]}.")
    slides = raw.get("slides")
    if not isinstance(slides, list):
        raise UserError(f"The deck's slides must be a list, not {_kind(slides)}.")
    if len(slides) > MAX_SLIDES:
        raise UserError(f"The deck has {len(slides)} slides; at most {MAX_SLIDES} are accepted.")
    return Deck(title, tuple(slide_from(s, f"Slide {i + 1}", pages)
                             for i, s in enumerate(slides)), lang)


def parse(data: bytes | str, pages: Collection[str], langs: Collection[str]) -> Deck:
    """A Deck from an uploaded file's bytes: at most MAX_BYTES, UTF-8 JSON, strictly checked;
    anything else is refused with a UserError that says what is wrong."""
    size = len(data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data)
    if size > MAX_BYTES:
        raise UserError(f"The deck file is {size:,} bytes; at most {MAX_BYTES:,} are accepted.")
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise UserError(f"The deck file is not UTF-8 text (byte {exc.start + 1} is not); "
                            "save it as UTF-8 JSON.") from None
    try:
        value = json.loads(data, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise UserError(f"The deck file is not valid JSON (line {exc.lineno}, column "
                        f"{exc.colno}: {exc.msg}).") from None
    except RecursionError:
        raise UserError("The deck file is nested too deeply to be a deck.") from None
    return deck_from(value, pages, langs)


def example(deck_id: str, pages: Collection[str], langs: Collection[str]) -> Deck:
    """A shipped example deck by id (one of EXAMPLES, the file's name), checked like an
    upload."""
    if deck_id not in EXAMPLES:
        raise UserError(f"There is no example deck {str(deck_id)[:40]!r}; the examples are "
                        f"{', '.join(EXAMPLES)}.")
    return parse(Path(EXAMPLES_DIR / f"{deck_id}.json").read_bytes(), pages, langs)
