"""Helpers shared by the figure modules: how a token reads on a chart (a leading space as ␣, a
line break as ⏎) and distinct category labels for an axis where the same token appears twice.
Also the language of chart words: each figure module keeps its axis titles, legends and chart
titles in a `WORDS = {"en": {...}, "zh": {...}}` table and reads them with `word(WORDS, key)`;
the Streamlit pages set the reader's language once per run (`set_language`), the CLI and Gradio
keep English. Plain strings in and out; no plotly, no torch.
"""

from __future__ import annotations

from contextvars import ContextVar

LANGUAGES = ("en", "zh")
_language: ContextVar[str] = ContextVar("chart_language", default="en")


def set_language(lang: str) -> None:
    """The language of chart words for the rest of this thread's run (a Streamlit script run);
    anything but a known language code means English."""
    _language.set(lang if lang in LANGUAGES else "en")


def language() -> str:
    return _language.get()


def word(table: dict[str, dict[str, str]], key: str, **values) -> str:
    """`table[lang][key]` formatted with `values`, in the current chart language (English when
    that language lacks the key; a test keeps the tables' keys in step)."""
    text = table.get(language(), {}).get(key)
    if text is None:
        text = table["en"][key]
    return text.format(**values) if values else text


def show_token(tok: str) -> str:
    """A token as it reads on a chart: a leading space as ␣, line breaks as ⏎, empty as ∅."""
    if tok == "":
        return "∅"
    out = tok.replace("\n", "⏎").replace("\t", "⇥")
    if out.startswith(" "):
        out = "␣" + out[1:]
    return out


def category_labels(tokens: list[str]) -> list[str]:
    """Tokens as distinct category labels (a repeated label gets zero-width spaces), so a
    categorical axis keeps one row per token."""
    seen: dict[str, int] = {}
    out = []
    for t in tokens:
        s = show_token(t)
        n = seen.get(s, 0)
        seen[s] = n + 1
        out.append(s + "\u200b" * n)
    return out
