"""Next word: the next-token distribution raw beside reshaped (temperature, top-k, top-p), guessed
first if asked (pages/reveal.py); generation step by step, surprisal, tokens, models side by side,
sentences ranked. The session keeps the model id, the text and the steps; panels read them."""

import math
from functools import partial

import streamlit as st

from lmdemo.core.registry import specs_of_kind
from lmdemo.lab import next_token
from lmdemo.plots import next_word as plots
from pages import reveal, ui

T = "next_word"  # this page's text file
tx = partial(ui.prose, T)  # tx(key, **values): a section of the page's text
KINDS = next_token.LM_KINDS
COMPARE_DEFAULT = ["smollm2", "tiny-gpt", "tiny-lstm", "tiny-gru", "tiny-rnn"]
BUTTONS = [("greedy", ("greedy",), ":material/trending_up:"),  # text key, action, icon
           ("sample", ("sample",), ":material/casino:"), ("sample-10", ("sample", 0, 10), None),
           ("undo", ("undo",), ":material/undo:"), ("reset", ("reset",), ":material/restart_alt:")]

ui.page(tx("title"), "intro", T)
default_model = ui.default_lm()
if not ui.models_ready(KINDS, default_model):
    st.stop()
model_id = ui.model_picker(KINDS, default=default_model)
sampling, shown, seed = ui.sampling_controls(T)
text = ui.text_input("text", ui.lines(T, "examples"), label=tx("label-prompt"), height=80)
current = partial(ui.generation, model_id, text, sampling, seed)  # prompt + kept steps (+ action)


def act(*action) -> None:
    """A button's callback: one step (force, greedy, sample, undo, reset); new guesses next."""
    reveal.new_round()
    current(action)


def clicked_bar(key: str, ids: list[int]) -> None:
    """A click on a bar of the distribution chart forces that token."""
    if (i := ui.clicked_index(key)) is not None and 0 <= i < len(ids):
        act("force", ids[i])


def next_token_tab() -> None:
    gen = current()
    ui.note(gen.message)  # here, so a step that fills the context says so at once
    dist = gen.distribution(sampling, top=shown)
    title = tx("chart-title", model=model_id, tail=gen.text()[-40:] or tx("start-of-text"))
    quiz = reveal.next_word(T, gen, sampling, dist, title)
    if quiz.hidden:  # the audience is guessing: nothing here may give the answer away
        return
    ui.say(T, "distribution")
    c1, c2, c3 = st.columns(3)
    c1.metric(tx("metric-entropy-raw"), tx("value-bits", bits=f"{dist.entropy_raw:.2f}"),
              help=tx("help-entropy-raw", vocab=dist.vocab_size,
                      max_bits=f"{math.log2(dist.vocab_size):.1f}"))
    c2.metric(tx("metric-entropy-shaped"), tx("value-bits", bits=f"{dist.entropy_shaped:.2f}"),
              delta=f"{dist.entropy_shaped - dist.entropy_raw:+.2f}", delta_color="off")
    c3.metric(tx("metric-kept"), tx("value-kept", kept=f"{dist.kept:,}", vocab=f"{dist.vocab_size:,}"))
    t = sampling.temperature
    ui.formula(T, "formula-reshape", temperature=f"{t:g}", top_k=sampling.top_k or r"\infty",
               top_p=f"{sampling.top_p:g}", greedy=tx("formula-greedy") if t == 0 else "")
    key = f"dist_{len(gen.ids)}"
    ui.chart(plots.distribution_bars(dist.tokens, dist.raw, dist.shaped, title, marks=quiz.marks,
                                     missing=quiz.missing), "next-token-distribution",
             dist.rows(), key=key, container=quiz.slot,
             on_select=lambda: clicked_bar(key, dist.ids), selection_mode="points")
    st.subheader(tx("heading-steps"))
    ui.say(T, "steps")
    cols = st.columns(6)  # each button says the probability sampling draws with (raw on hover)
    for i, r in enumerate(dist.rows()[:12]):
        cols[i % 6].button(f"{plots.show_token(r['token'])}  ·  {r['reshaped_probability']:.1%}",
                           key=f"tok_{i}", on_click=act, args=("force", r["id"]),
                           use_container_width=True, help=tx("help-token", id=r["id"],
                                                             raw=f"{r['raw_probability']:.1%}"))
    for col, (key, args, icon) in zip(st.columns(6), BUTTONS, strict=False):
        col.button(tx(f"button-{key}"), on_click=act, args=args, key=key.replace("-", ""),
                   icon=icon, disabled=key in ("undo", "reset") and not gen.steps,
                   help=tx("help-sample") if key == "sample" else None)
    ui.show_generation_error()
    rows = plots.step_rows(gen.steps)
    st.html(plots.generated_html(gen.prompt_text(), rows))
    if rows:
        ui.csv_download(rows, "generated-tokens", key="csv_steps")
    else:
        st.caption(tx("nothing-appended"))


def surprisal_tab() -> None:
    ui.say(T, "surprisal")
    if not text.strip():
        return st.info(tx("surprisal-empty"))
    res = ui.cached(next_token.score, model_id, text)
    ui.note(res.message)
    view = plots.surprisal(res.tokens, res.token_ids, res.log_probs)
    c1, c2 = st.columns(2)
    c1.metric(tx("metric-perplexity"), f"{res.perplexity:.2f}", help=tx("help-perplexity"))
    c2.metric(tx("metric-mean-surprisal"), tx("value-mean-surprisal", bits=f"{view.mean_bits:.2f}"))
    st.html(view.html)
    ui.formula(T, "formula-surprisal", ppl=f"{res.perplexity:.2f}")
    ui.csv_download(view.rows, "surprisal", key="csv_surprisal")


def tokens_tab() -> None:
    gen = current()
    ui.say(T, "tokens")
    ui.tokens_view(gen.loaded.tokenizer, gen.ids, tx("tokens-count", n=len(gen.ids),
                                                     vocab=f"{len(gen.loaded.tokenizer):,}"))


def compare_tab() -> None:
    ui.say(T, "compare")
    context = text + current().text(generated_only=True)
    st.caption(tx("compare-after", context=context[-60:]) if context else tx("compare-after-start"))
    options = [s.id for s in specs_of_kind(*KINDS)]
    default = [m for m in COMPARE_DEFAULT if m in options] or options[:2]
    picked = st.multiselect(tx("label-models"), options, default=default, key="compare", **ui.URL)
    res = next_token.side_by_side(picked, context, sampling.top_k, sampling.temperature,
                                  sampling.top_p, shown)
    for model, why in res.errors.items():
        st.error(f"{model}: {why}")
    if res.results:
        ui.chart(plots.side_by_side(res.results), "next-token-side-by-side", res.rows(),
                 key="compare_fig")


def scoring_tab() -> None:
    ui.say(T, "scoring")
    presets = ui.groups(T, "presets")
    preset = st.selectbox(tx("label-preset"), list(presets), key="preset", **ui.URL)
    if st.session_state.get("_preset_filled") != preset:
        st.session_state.update(_preset_filled=preset, sentences="\n".join(presets.get(preset, [])))
    raw = st.text_area(tx("label-sentences"), key="sentences", height=150)
    sentences = tuple(s.strip() for s in raw.splitlines() if s.strip())
    if len(sentences) < 2:
        return st.info(tx("scoring-too-few"))
    ranked = ui.cached(next_token.rank, model_id, sentences[:next_token.MAX_SENTENCES])
    ui.chart(plots.ranked_bars(ranked, tx("scoring-title", model=model_id)),
             "sentence-scores", ranked.rows(), key="scores_fig")
    st.success(tx("scoring-best", sentence=ranked.scores[0].text), icon=":material/emoji_events:")
    ui.formula(T, "formula-scoring")


ui.computed(None, current, spinner=tx("reading", model=model_id))  # the first read, with a spinner
if not text.strip():
    st.info(tx("empty-prompt"), icon=":material/info:")
ui.lazy_tabs({"Next token": next_token_tab, "Surprisal": surprisal_tab, "Tokens": tokens_tab,
              "Side by side": compare_tab, "Sentence scoring": scoring_tab})
ui.share_hint()
