"""Next word: the next-token distribution (raw beside reshaped by temperature / top-k / top-p),
step-by-step generation that reuses the prefix cache (click a token to force it, sample, greedy,
undo), the text coloured by surprisal with its perplexity, the tokenizer's pieces, several models
side by side, and candidate sentences ranked by probability.
"""

import math

import streamlit as st

from lmdemo.core.errors import UserError
from lmdemo.lab import generation
from lmdemo.lab.sampling import SamplingParams
from lmdemo.plots import next_word as plots
from pages import ui

KINDS = ("causal-lm", "recurrent-lm")
EXAMPLES = ["The capital of France is", "I drink a cup of", "The cat sat on the",
            "The weather today is", "Once upon a time, there was a",
            "The best way to learn a new language is to", "My favourite food is"]
PRESETS = {
    "Machine translation: which output reads like English?": [
        "The cat is sleeping on the sofa.",
        "The cat sleeps on the sofa.",
        "The cat is on the sofa sleeping.",
        "Sleeping is the cat on the sofa.",
        "The cat on the sofa is sleep."],
    "Speech recognition: rescoring what was heard": [
        "It is hard to recognize speech.",
        "It is hard to wreck a nice beach.",
        "It is hard to wreck an ice beach."],
    "Speech recognition: homophones": [
        "I would like two cups of tea.",
        "I would like to cups of tea.",
        "I would like too cups of tea."],
    "Word order": [
        "We went to the park after lunch.",
        "We went to the lunch after park.",
        "Park the after lunch went to we."],
}
COMPARE_DEFAULT = ["smollm2", "tiny-gpt", "tiny-lstm", "tiny-gru", "tiny-rnn"]

ui.page("Next word", "intro", "next_word")
default_model = ui.default_lm()
if not ui.models_ready(KINDS, default_model):
    st.stop()
model_id = ui.model_picker(KINDS, default=default_model)
side = st.sidebar
side.subheader("Reshape the distribution")
temperature = side.slider("Temperature", 0.0, 2.0, 1.0, 0.05, key="temp", **ui.URL,
                          help="0 = greedy (always the most likely token).")
top_k = side.number_input("Top-k (0 = off)", 0, 10_000, 0, 1, key="topk", **ui.URL)
top_p = side.slider("Top-p", 0.01, 1.0, 1.0, 0.01, key="topp", **ui.URL,
                    help="1 = off; near 0 keeps only the most likely token.")
shown = side.slider("Tokens on the chart", 5, 30, 12, key="bars", **ui.URL)
seed = side.number_input("Sampling seed", 0, 1_000_000, 0, key="seed", **ui.URL)
text = ui.text_input("text", EXAMPLES, label="Prompt", height=80)
sampling = SamplingParams(temperature, int(top_k), top_p)


def where(model: str) -> str:
    """The model's folder: part of each cache key, so other weights never reuse a result."""
    from lmdemo.core.registry import get_spec

    return get_spec(model).location


@st.cache_data(max_entries=64, show_spinner=False)
def get_score(model: str, txt: str, at: str):
    from lmdemo.lab.next_token import score

    return score(model, txt)


@st.cache_data(max_entries=64, show_spinner=False)
def get_next(model: str, txt: str, k: int, temp: float, p: float, show: int, at: str):
    from lmdemo.lab.next_token import next_token

    return next_token(model, txt, top_k=k, temperature=temp, top_p=p, show=show)


# ---- the Generation kept between clicks ------------------------------------------------------
def _save_steps(gen: generation.Generation) -> None:
    """Keep the appended tokens in the URL, so a copied link restores the continuation."""
    if gen.steps:
        st.query_params["steps"] = ",".join(str(s.id) for s in gen.steps)
    elif "steps" in st.query_params:
        del st.query_params["steps"]


def _replay(gen: generation.Generation) -> None:
    for raw in str(st.query_params.get("steps", "")).split(",")[: generation.MAX_STEPS]:
        if raw.strip().isdigit():
            try:
                gen.force(int(raw), sampling)
            except UserError:
                break


def current() -> generation.Generation:
    """The Generation of this model and prompt: reused across reruns, restarted when either
    changes (a fresh session replays the tokens kept in the URL)."""
    held = st.session_state.get("_gen")
    if held is None or held[0] != (model_id, where(model_id), text):
        gen = generation.start(model_id, text)
        if held is None:
            _replay(gen)
        st.session_state["_gen"] = ((model_id, where(model_id), text), gen)
        _save_steps(gen)
    return st.session_state["_gen"][1]


def act(what: str, *args) -> None:
    """A button's callback: one step on the held Generation; a UserError becomes a message."""
    gen = st.session_state["_gen"][1]
    try:
        if what == "force":
            gen.force(args[0], sampling)
        elif what == "sample":
            for _ in range(args[0] if args else 1):
                gen.sample(sampling, seed=int(seed))
        elif what == "greedy":
            for _ in range(args[0] if args else 1):
                gen.greedy()
        elif what == "undo":
            gen.undo()
        elif what == "reset":
            while gen.undo():
                pass
        st.session_state.pop("_gen_error", None)
    except UserError as exc:
        st.session_state["_gen_error"] = str(exc)
    _save_steps(gen)


def clicked_bar(key: str, ids: list[int]) -> None:
    """A click on a bar of the distribution chart forces that token."""
    points = (st.session_state.get(key) or {}).get("selection", {}).get("points", [])
    if points and 0 <= points[0].get("point_index", -1) < len(ids):
        act("force", ids[points[0]["point_index"]])


# ---- panels --------------------------------------------------------------------------------------
def next_token_tab(gen: generation.Generation) -> None:
    st.markdown(ui.prose("next_word", "distribution"))
    dist = gen.distribution(sampling, top=shown)
    c1, c2, c3 = st.columns(3)
    c1.metric("Entropy, raw", f"{dist.entropy_raw:.2f} bits",
              help=f"At most log₂({dist.vocab_size}) = {math.log2(dist.vocab_size):.1f}")
    c2.metric("Entropy, reshaped", f"{dist.entropy_shaped:.2f} bits",
              delta=f"{dist.entropy_shaped - dist.entropy_raw:+.2f}", delta_color="off")
    c3.metric("Tokens that can still be drawn", f"{dist.kept:,} of {dist.vocab_size:,}")
    k_shown = str(int(top_k)) if top_k else r"\infty"
    st.latex(r"p_i = \frac{e^{z_i/T}}{\sum_j e^{z_j/T}},\quad T = " + f"{temperature:g}"
             + (r"\;(\text{greedy})" if temperature == 0 else "")
             + r",\quad \text{top-}k = " + k_shown + r",\quad \text{top-}p = " + f"{top_p:g}")
    chart_key = f"dist_{len(gen.ids)}"
    ui.chart(plots.distribution_bars(dist.tokens, dist.raw, dist.shaped,
                                     f"{model_id}: what comes after “…{_tail(gen)}”?"),
             "next-token-distribution", dist.rows(), key=chart_key, on_select=lambda: clicked_bar(
                 chart_key, dist.ids), selection_mode="points")
    steps_panel(gen, dist)


def _tail(gen: generation.Generation, n: int = 40) -> str:
    t = gen.text()
    return t[-n:] if t else "(start of text)"


def steps_panel(gen: generation.Generation, dist: generation.Distribution) -> None:
    st.subheader("Step by step")
    st.markdown(ui.prose("next_word", "steps"))
    cols = st.columns(6)
    for i, (tok_id, tok, p) in enumerate(zip(dist.ids[:12], dist.tokens, dist.raw, strict=False)):
        cols[i % 6].button(f"{plots.show_token(tok)}  ·  {p:.1%}", key=f"tok_{i}",
                           on_click=act, args=("force", tok_id), use_container_width=True,
                           help=f"Append token {tok_id}")
    b = st.columns(6)
    b[0].button("Greedy", on_click=act, args=("greedy",), icon=":material/trending_up:",
                key="greedy")
    b[1].button("Sample", on_click=act, args=("sample",), icon=":material/casino:", key="sample",
                help="Draw from the dark bars. The same seed at the same position draws the same "
                     "token (reproducible from the URL); change the seed for another draw.")
    b[2].button("Sample 10", on_click=act, args=("sample", 10), key="sample10")
    b[3].button("Undo", on_click=act, args=("undo",), icon=":material/undo:", key="undo",
                disabled=not gen.steps)
    b[4].button("Reset", on_click=act, args=("reset",), icon=":material/restart_alt:",
                key="reset", disabled=not gen.steps)
    if st.session_state.get("_gen_error"):
        st.error(st.session_state["_gen_error"])
    prompt = gen.loaded.tokenizer.decode(gen.prompt_ids, skip_special_tokens=True)
    rows = [{"token": s.token, "id": s.id, "p_raw": s.p_raw, "p_shaped": s.p_shaped,
             "how": s.how} for s in gen.steps]
    st.html(plots.generated_html(prompt, rows))
    if rows:
        ui.csv_download(rows, "generated-tokens", key="csv_steps")
    else:
        st.caption("No token appended yet: click one above.")


def surprisal_tab() -> None:
    st.markdown(ui.prose("next_word", "surprisal"))
    if not text.strip():
        st.info("Type a text to see how surprising each of its tokens is.")
        return
    res = get_score(model_id, text, where(model_id))
    if res.message:
        st.info(res.message, icon=":material/content_cut:")
    bits = [-lp / math.log(2) for lp in res.log_probs]
    c1, c2 = st.columns(2)
    c1.metric("Perplexity", f"{res.perplexity:.2f}",
              help="2^(mean surprisal in bits) = e^(mean −ln p)")
    c2.metric("Mean surprisal", f"{sum(bits) / len(bits):.2f} bits per token")
    st.html(plots.surprisal_html(res.tokens, bits))
    st.latex(r"\text{surprisal}(w_t) = -\log_2 p(w_t \mid w_{<t}),\qquad "
             r"\text{PPL} = 2^{\frac{1}{N}\sum_t \text{surprisal}(w_t)} = "
             + f"{res.perplexity:.2f}")
    ui.csv_download([{"token": t, "id": i, "log_prob": lp, "surprisal_bits": b}
                     for t, i, lp, b in zip(res.tokens, res.token_ids, res.log_probs, bits,
                                            strict=True)],
                    "surprisal", key="csv_surprisal")


def tokens_tab(gen: generation.Generation) -> None:
    st.markdown(ui.prose("next_word", "tokens"))
    ids = gen.ids
    tokens = [generation.token_text(gen.loaded.tokenizer, i) for i in ids]
    st.html(plots.tokens_html(tokens, ids))
    st.caption(f"{len(ids)} tokens (the first is the start token the model reads before any "
               "text), from a vocabulary of "
               f"{len(gen.loaded.tokenizer):,}.")
    ui.csv_download({"position": list(range(len(ids))), "token": tokens, "id": ids}, "tokens",
                    key="csv_tokens")


def compare_tab(gen: generation.Generation) -> None:
    st.markdown(ui.prose("next_word", "compare"))
    context = text + gen.text(generated_only=True)
    st.caption(f"After “…{context[-60:]}”" if context else "After the start token")
    from lmdemo.core.registry import specs_of_kind

    options = [s.id for s in specs_of_kind(*KINDS)]
    default = [m for m in COMPARE_DEFAULT if m in options] or options[:2]
    picked = st.multiselect("Models", options, default=default, key="compare", **ui.URL)
    results, rows = [], []
    for m in picked:
        with ui.guard(m):
            r = get_next(m, context, int(top_k), temperature, top_p, shown, where(m))
            results.append((m, [e.token for e in r.entries], [e.prob for e in r.entries]))
            rows += [{"model": m, "rank": i + 1, "token": e.token, "id": e.id,
                      "probability": e.prob, "reshaped": e.sampling_prob,
                      "entropy_bits": r.entropy / math.log(2)}
                     for i, e in enumerate(r.entries)]
    if results:
        ui.chart(plots.side_by_side(results), "next-token-side-by-side", rows, key="compare_fig")


def scoring_tab() -> None:
    st.markdown(ui.prose("next_word", "scoring"))
    preset = st.selectbox("Preset", list(PRESETS), key="preset", **ui.URL)
    if st.session_state.get("_preset_filled") != preset:
        st.session_state["_preset_filled"] = preset
        st.session_state["sentences"] = "\n".join(PRESETS[preset])
    raw = st.text_area("Candidate sentences (one per line)", key="sentences", height=150)
    sentences = [s.strip() for s in raw.splitlines() if s.strip()][:20]
    if len(sentences) < 2:
        st.info("Give at least two sentences, one per line, to rank them.")
        return
    rows = []
    for s in sentences:
        r = get_score(model_id, s, where(model_id))
        rows.append({"sentence": s, "log_prob_nats": r.total_log_prob, "tokens": len(r.tokens),
                     "perplexity": r.perplexity})
    ui.chart(plots.sentence_bars([r["sentence"] for r in rows],
                                 [r["log_prob_nats"] for r in rows],
                                 f"{model_id}: which sentence is most likely?"),
             "sentence-scores", rows, key="scores_fig")
    best = max(rows, key=lambda r: r["log_prob_nats"])
    st.success(f"Most likely: “{best['sentence']}”", icon=":material/emoji_events:")
    st.latex(r"\log p(w_1\dots w_N) = \sum_{t=1}^{N} \log p(w_t \mid w_{<t})")


gen = None
with ui.guard("The model"):
    with st.spinner(f"Reading the prompt with {model_id}…"):
        gen = current()
if gen is None:
    st.stop()
if gen.message:
    st.info(gen.message, icon=":material/content_cut:")
if not text.strip():
    st.info("The prompt is empty: this is the distribution of the first token of a text, after "
            "the start token.", icon=":material/info:")

TABS = {"Next token": lambda: next_token_tab(gen), "Surprisal": surprisal_tab,
        "Tokens": lambda: tokens_tab(gen), "Side by side": lambda: compare_tab(gen),
        "Sentence scoring": scoring_tab}
ui.lazy_tabs(TABS)
ui.share_hint()
