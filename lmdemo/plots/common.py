"""Helpers shared by the figure modules: how a token reads on a chart (a leading space as ␣, a
line break as ⏎) and distinct category labels for an axis where the same token appears twice.
Plain strings in and out; no plotly, no torch.
"""

from __future__ import annotations


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
