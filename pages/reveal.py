"""Predict, then reveal: the audience guesses before the model's answer is shown.

One switch ("hide the answer") at the top of a panel of the Next word and Attention pages. While it
is on and the round is not revealed, the page draws nothing that gives the answer away; the
presenter types the guesses (Next word: words, matched to the model's tokens) or clicks them (the
tokens of the sentence, on Attention), then presses Reveal: the real distribution, or the head's
weights, comes back with each guess marked, its rank and its probability or weight. The switch,
the guesses (bound widgets) and the revealed round (?reveal=<round>) live in the URL, so a saved
link replays the round; everything shown is deterministic (no sampling), so a rehearsal is the
talk. A round is named after what is guessed (the model and the text so far; the head and the
query token), so stepping on or picking another head hides the answer again. The words come
from the page's own text file (sections `reveal-*`), the scoring from lmdemo.lab.guesses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import streamlit as st

from lmdemo.lab import guesses
from lmdemo.lab.attention import default_query
from lmdemo.lab.next_token import reshape, token_texts
from lmdemo.lab.sampling import softmax
from lmdemo.plots import attention as attention_plots
from lmdemo.plots import next_word as word_plots
from lmdemo.plots.common import show_token
from pages import ui

QUIZ = "quiz"  # the switch: its widget key and ?quiz= in the URL
REVEAL = "reveal"  # ?reveal=<round>: the round whose answer is shown
WORDS = "guesses"  # the typed guesses of the Next word page (?guesses=Paris, Lyon)
KEYS = "guess_keys"  # the clicked guesses of the Attention page (?guess_keys=animal&...)
QUERY = "guess_query"  # the query token the Attention round is about
MARKDOWN = re.compile(r"([\\`*_{}\[\]<>()#+!|~])")


@dataclass
class Round:
    """What a panel draws after the quiz controls."""

    hidden: bool = False  # the answer is hidden: draw nothing that gives it away
    marks: dict[int, str] = field(default_factory=dict)  # chart bar index -> note on it
    missing: list[str] = field(default_factory=list)  # notes of guesses not on the chart
    slot: object = None  # where the chart goes (above the guesses' results); None: in place


def md(text: str) -> str:
    """Typed text shown as itself in markdown (no emphasis, links or code from it)."""
    return MARKDOWN.sub(r"\\\1", str(text))


def code(token: str) -> str:
    """A token's text for a markdown code span (`...`): shown as it reads on a chart."""
    return show_token(token).replace("`", "ˋ")


def switch(text_file: str) -> bool:
    """The "hide the answer" switch, kept in the URL."""
    return st.toggle(ui.prose(text_file, "reveal-switch"), key=QUIZ,
                     help=ui.prose(text_file, "reveal-switch-help"), **ui.URL)


def revealed(round_id: str) -> bool:
    """Whether the URL says this round's answer is shown."""
    return st.query_params.get(REVEAL) == round_id


def _show(round_id: str) -> None:
    st.query_params[REVEAL] = round_id


def _hide() -> None:
    if REVEAL in st.query_params:
        del st.query_params[REVEAL]


def reveal_button(text_file: str, round_id: str, shown: bool) -> None:
    """Reveal (the round's answer), or hide it again."""
    if shown:
        st.button(ui.prose(text_file, "reveal-hide"), key="reveal_hide", on_click=_hide,
                  icon=":material/visibility_off:")
    else:
        st.button(ui.prose(text_file, "reveal-button"), key="reveal_show", type="primary",
                  on_click=_show, args=(round_id,), icon=":material/visibility:")


def new_round() -> None:
    """The question moved on (a token appended): the last round's typed guesses and its reveal
    are cleared. For a button's callback, before the guesses box is drawn."""
    if st.session_state.get(QUIZ):
        st.session_state[WORDS] = ""
        _hide()


# ----------------------------------------------------------------------------- Next word

def next_word(text_file: str, gen, sampling, dist, question: str) -> Round:
    """The quiz controls of the next-token panel: the switch; when it is on, the guesses box, the
    question and Reveal; once revealed, a slot for the page's chart and each guess scored under
    it. The page draws its chart with the returned marks unless the round is hidden."""
    if not switch(text_file):
        return Round()
    tx = ui.prose
    typed = st.text_input(tx(text_file, "reveal-guesses"), key=WORDS, help=tx(
        text_file, "reveal-guesses-help"), placeholder=tx(text_file, "reveal-placeholder"),
        **ui.URL)
    logits = gen.logits  # (V,)
    tok = gen.loaded.tokenizer
    scored = guesses.score_tokens(tok, guesses.split_guesses(typed), softmax(logits),
                                  reshape(logits, sampling),
                                  token_text=lambda i: token_texts(tok, [i])[0])
    round_id = guesses.round_id(gen.loaded.spec.id, ui.weights_of(gen.loaded.spec.id),
                                tuple(gen.ids))
    shown = revealed(round_id)
    st.subheader(question)
    reveal_button(text_file, round_id, shown)
    if not shown:
        items = [tx(text_file, "reveal-as", guess=md(g.guess), token=code(g.token),
                    pieces=pieces(text_file, g)) for g in scored]
        st.markdown("  \n".join(items) or tx(text_file, "reveal-none"))
        st.info(tx(text_file, "reveal-hidden"), icon=":material/visibility_off:")
        return Round(hidden=True)
    slot = st.container()
    top = len(dist.ids)
    st.markdown(tx(text_file, "reveal-answer", token=code(dist.tokens[0]),
                   p=f"{dist.raw[0]:.1%}"))
    lines = [tx(text_file, "reveal-line", guess=md(g.guess), token=code(g.token),
                pieces=pieces(text_file, g), rank=f"{g.rank:,}", vocab=f"{dist.vocab_size:,}",
                p=f"{g.p_raw:.2%}", shaped=f"{g.p_shaped:.2%}",
                where=fragment(text_file, "reveal-top") if g.rank == 1 else
                fragment(text_file, "reveal-off-chart", top=top) if not g.shown(top) else "")
             for g in scored]
    st.markdown("\n".join(f"- {line}" for line in lines) or tx(text_file, "reveal-none"))
    if scored:
        ui.csv_download(guesses.token_rows(scored, top), "guesses", key="csv_guesses")
    marks, missing = word_plots.guess_marks(dist.ids, scored)
    return Round(marks=marks, missing=missing, slot=slot)


def pieces(text_file: str, g: guesses.TokenGuess) -> str:
    """" (the first of its 3 tokens)" for a guess that is several tokens, else ""."""
    return fragment(text_file, "reveal-pieces", n=g.pieces) if g.pieces > 1 else ""


def fragment(text_file: str, section: str, **values) -> str:
    """A section that continues a sentence: a space before it, unless it opens with a comma or
    such, or with full-width (Chinese) punctuation, which carries its own spacing."""
    text = ui.prose(text_file, section, **values)
    return text if text[:1] in ",.;:!?)" or ord(text[:1] or " ") >= 0x3000 else " " + text


# ----------------------------------------------------------------------------- Attention

def key_labels(tokens: list[str]) -> list[str]:
    """The tokens as distinct labels for clickable guesses (a repeat gets " (2)", " (3)"...)."""
    seen: dict[str, int] = {}
    out = []
    for t in tokens:
        seen[t] = seen.get(t, 0) + 1
        out.append(t if seen[t] == 1 else f"{t} ({seen[t]})")
    return out


def attention(text_file: str, v, causal: bool, title: str, word: str) -> bool:
    """The quiz controls of a heatmap panel (`v`: the AttentionView drawn): the switch; when it
    is on, the query token, the clickable guesses, the question and Reveal; once revealed, the
    query's weights with the guesses marked. True while the answer is hidden (the page then
    draws no heatmap)."""
    if not switch(text_file):
        return False
    tx, n = ui.prose, len(v.tokens)
    query = ui.pick_index(st.selectbox, tx(text_file, "reveal-query"), QUERY, default_query(
        v.tokens, word), n, format_func=lambda i: f"{i}: {v.tokens[i]}")  # "it" where a token
    labels = key_labels(v.tokens)
    options = guesses.guessable_keys(n, query, causal)
    if KEYS in st.session_state:  # keys a causal query cannot see are dropped, not an error
        st.session_state[KEYS] = [k for k in st.session_state[KEYS] if k in options]
    picked = st.pills(tx(text_file, "reveal-keys"), options, selection_mode="multi", key=KEYS,
                      format_func=lambda k: labels[k], **ui.URL) or []
    row = v.matrix[query]  # (T,)
    round_id = guesses.round_id(v.model_id, v.view, v.layer, v.head, tuple(v.tokens), query,
                                [round(float(w), 4) for w in row])
    shown = revealed(round_id)
    st.subheader(tx(text_file, "reveal-question", token=md(v.tokens[query])))
    reveal_button(text_file, round_id, shown)
    if not shown:
        st.info(tx(text_file, "reveal-hidden"), icon=":material/visibility_off:")
        return True
    scored = guesses.score_keys(row, v.tokens, picked)
    top = guesses.top_key(row)
    ui.chart(*attention_plots.reveal_chart(v, query, {g.key: g.rank for g in scored}, top, tx(
        text_file, "reveal-chart-title", token=v.tokens[query], title=title)), key="reveal_row")
    st.markdown(tx(text_file, "reveal-answer", query=md(v.tokens[query]),
                   token=md(labels[top]), weight=f"{row[top]:.2f}"))
    lines = [tx(text_file, "reveal-line", token=md(labels[g.key]), rank=g.rank,
                weight=f"{g.weight:.2f}", hit=fragment(text_file, "reveal-hit") if g.rank == 1
                else "")
             for g in scored]
    st.markdown("\n".join(f"- {line}" for line in lines) or tx(text_file, "reveal-none"))
    return False

