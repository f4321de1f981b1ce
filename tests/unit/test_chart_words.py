"""Chart words: every figure module's WORDS table has the same keys and placeholders in English
and Chinese, and the chart language follows set_language (English by default and for unknown codes)."""

from __future__ import annotations

import importlib
import pkgutil
import string
import threading

import pytest

import lmdemo.plots as plots_pkg
from lmdemo.plots import common

MODULES = [importlib.import_module(f"lmdemo.plots.{m.name}")
           for m in pkgutil.iter_modules(plots_pkg.__path__)]
TABLES = [(m.__name__, m.WORDS) for m in MODULES if hasattr(m, "WORDS")]


def _fields(text: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(text) if f}


@pytest.mark.parametrize("name,table", TABLES, ids=[n for n, _ in TABLES])
def test_words_have_the_same_keys_and_placeholders_in_both_languages(name, table):
    assert set(table) == set(common.LANGUAGES), name
    assert set(table["en"]) == set(table["zh"]), set(table["en"]) ^ set(table["zh"])
    for key, en in table["en"].items():
        assert _fields(en) == _fields(table["zh"][key]), (name, key)
        assert table["zh"][key].strip(), (name, key)


def test_word_follows_the_language_set_for_this_thread():
    table = {"en": {"t": "tokens {n}"}, "zh": {"t": "词元 {n}"}}
    out = {}

    def run(lang):
        common.set_language(lang)
        out[lang] = common.word(table, "t", n=3)

    for lang in ("zh", "en", "xx"):
        t = threading.Thread(target=run, args=(lang,))
        t.start()
        t.join()
    assert out == {"zh": "词元 3", "en": "tokens 3", "xx": "tokens 3"}
    assert common.language() == "en"  # another thread's choice never leaks into this one


def test_a_key_missing_in_chinese_falls_back_to_english():
    def run():
        common.set_language("zh")
        assert common.word({"en": {"a": "A"}, "zh": {}}, "a") == "A"

    t = threading.Thread(target=run)
    t.start()
    t.join()


def test_every_figure_module_keeps_its_words_in_a_table():
    """So the parity test above covers every chart: a figure module without WORDS fails here."""
    names = {m.__name__.rsplit(".", 1)[1] for m in MODULES} - {"common"}
    assert names and names == {n.rsplit(".", 1)[1] for n, _ in TABLES}, names
