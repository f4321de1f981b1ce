"""Every language in pages/text/ has the same files, the same keys in each file, and the same
{{placeholders}} in each section, so a page never misses a word when the reader switches language.
Sections are read with the app's own reader (pages.ui._sections)."""

from __future__ import annotations

import re

import pytest

from pages import ui

TEXT = ui.TEXT_DIR
LANGS = sorted(p.name for p in TEXT.iterdir() if p.is_dir())
FILES = sorted(p.stem for p in (TEXT / ui.DEFAULT_LANG).glob("*.md"))
PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


def test_every_language_of_the_switch_has_a_folder():
    assert set(ui.LANGS) == set(LANGS), (ui.LANGS, LANGS)
    for lang in LANGS:
        assert sorted(p.stem for p in (TEXT / lang).glob("*.md")) == FILES, lang


@pytest.mark.parametrize("lang", [x for x in LANGS if x != ui.DEFAULT_LANG])
@pytest.mark.parametrize("name", FILES)
def test_same_keys_and_placeholders_as_english(lang, name):
    en, other = ui._sections(ui.DEFAULT_LANG, name), ui._sections(lang, name)
    assert not sorted(set(en) - set(other)), f"missing in {lang}/{name}.md"
    assert not sorted(set(other) - set(en)), f"missing in {ui.DEFAULT_LANG}/{name}.md"
    for key, text in en.items():
        assert set(PLACEHOLDER.findall(text)) == set(PLACEHOLDER.findall(other[key])), \
            f"{lang}/{name}.md <!-- {key} --> has other {{{{placeholders}}}} than English"
        assert other[key].strip(), f"{lang}/{name}.md <!-- {key} --> is empty"


@pytest.mark.parametrize("name", FILES)
def test_tab_names_are_the_same_in_every_language(name):
    """Tab names are the URL's ?tab= values: a link must open the same tab in any language."""
    for lang in LANGS:
        sections = ui._sections(lang, name)
        tabs = {k: v for k, v in sections.items() if k == "tabs" or k.startswith("tab_")}
        english = ui._sections(ui.DEFAULT_LANG, name)
        assert tabs == {k: english[k] for k in tabs}, (lang, name)


def test_the_checks_catch_a_missing_key_and_a_renamed_placeholder(tmp_path, monkeypatch):
    for lang, body in (("en", "<!-- a -->\nHi {{name}}\n<!-- b -->\nx"),
                       ("zh", "<!-- a -->\n你好 {{who}}")):
        (tmp_path / lang).mkdir()
        (tmp_path / lang / "t.md").write_text(body, encoding="utf-8")
    monkeypatch.setattr(ui, "TEXT_DIR", tmp_path)
    ui._sections.cache_clear()
    try:
        en, zh = ui._sections("en", "t"), ui._sections("zh", "t")
        assert set(en) - set(zh) == {"b"}
        assert PLACEHOLDER.findall(en["a"]) != PLACEHOLDER.findall(zh["a"])
    finally:
        ui._sections.cache_clear()
