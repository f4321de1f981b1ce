"""Attention, from one head's weights (guessed first if asked: pages/reveal.py) to the recomputed
multi-head layer; words in text/<lang>/. Each panel reads the text's attention itself (cached)."""

from functools import partial

import streamlit as st

from lmdemo.lab import attention as svc
from lmdemo.plots import attention as plots
from pages import reveal, ui

TEXT = "attention"
tx = partial(ui.prose, TEXT)  # one section of the page's text, its {{placeholders}} filled
say = partial(ui.say, TEXT)
EXAMPLES = tx("examples").splitlines()

ui.page(tx("title"), "intro", TEXT)
model_id = ui.model_picker(svc.KINDS, default=svc.default_model())
text = ui.text_input("text", EXAMPLES)
get_attention = st.cache_data(svc.attention, max_entries=svc.RESULTS_KEPT, show_spinner=False)
get_steps = st.cache_data(svc.step_by_step, max_entries=svc.RESULTS_KEPT, show_spinner=False)


def preview() -> None:
    """The precomputed head view of the default example, drawn while the model loads."""
    if v := svc.precomputed(model_id, text):
        title = tx("preview_title", **v.numbers)
        ui.chart(*plots.heatmap_chart(v, title, "attention-preview", export=False), key="preview")


def shown(txt: str, word: str = "") -> tuple[svc.AttentionView, str]:
    """The chosen view of `txt` (special tokens hidden if asked, the row of `word`), its title."""
    v = svc.view_of(get_attention(model_id, txt), view, layer, head, hide, renorm, word)
    return v, tx(f"title_{view}", **v.numbers)


def heatmap_tab():
    say("heatmap")
    v, title = shown(text)
    if reveal.attention(TEXT, v, get_attention(model_id, text).causal, title, tx("word")):
        return  # the audience is guessing: no heatmap yet
    ui.formula(TEXT, f"formula_{view}")
    ui.chart(*plots.heatmap_chart(v, title), key="heatmap")


def grid_tab():
    say("grid")  # a click on a thumbnail selects its layer and head: the whole page follows
    res = get_attention(model_id, text)
    ui.chart(plots.grid_figure(svc.grid_of(res, hide, renorm), (layer, head)),
             "attention-all-heads", key="grid", selection_mode="points", on_select=lambda:
             st.session_state.update(plots.grid_click(st.session_state.grid, res.n_heads)))
    if (st.session_state.get("layer"), st.session_state.get("head")) != (layer, head):
        st.rerun(scope="app")  # the sidebar's sliders are outside this panel
    st.caption(tx("grid_selected", layer=layer, head=head))


def lines_tab():
    say("lines")
    v, title = shown(text)
    st.caption(title)
    st.components.v1.html(**plots.line_view(v), scrolling=True)


def steps(intro: str) -> svc.StepResult:  # the chosen head recomputed for the query token picked
    say(intro)
    res = get_attention(model_id, text)
    query = ui.pick_index(st.selectbox, tx("query"), "query", svc.default_query(
        res.tokens, tx("word")), len(res.tokens), format_func=lambda i: f"{i}: {res.tokens[i]}")
    return get_steps(model_id, text, layer, head, query)


def step_tab():
    s = steps("step")
    for note in s.notes:
        st.caption(note)
    say("project", **s.numbers)
    with st.expander(tx("numbers_rope" if s.rope else "numbers", **s.numbers)):
        for key, table in plots.qkv_tables(s):
            st.caption(tx(f"table_{key}", **s.numbers))
            st.dataframe(table)
    kv_groups(s)
    if s.rope:  # q and k turned pair by pair by position·θ_i before their dot product
        say("rope", **s.numbers)
        ui.chart(*plots.rope_chart(s), key="ropefig")
    say("score_causal" if s.causal else "score", **s.numbers)
    ui.chart(*plots.step_chart(s), key="stepfig")
    check(s.softmax_diffs, s.softmax_matches, "softmax")
    say("weighted_sum", **s.numbers)
    st.dataframe(plots.output_table(s))


def multihead_tab():
    s = steps("multihead")
    say("multihead_math", **s.numbers)
    st.dataframe(plots.shape_table(s), hide_index=True)
    kv_groups(s)
    check({"mha": s.mha_max_abs_diff}, s.mha_matches, "mha")
    ui.chart(*plots.contrib_chart(s), key="contrib")


def kv_groups(s: svc.StepResult) -> None:  # grouped-query attention: the heads sharing K and V
    if s.n_kv_heads != s.n_heads:
        say("gqa", **s.numbers)
        st.dataframe(plots.kv_group_rows(s.kv_groups, s.head), hide_index=True)


def check(diffs: dict[str, float], ok: bool, what: str) -> None:
    """How far the recomputation is from the model (one metric each), and whether they agree."""
    for col, (key, diff) in zip(st.columns(len(diffs)), diffs.items(), strict=True):
        col.metric(tx(f"diff_{key}"), f"{diff:.1e}")
    verdict = tx(f"{what}_ok" if ok else f"{what}_off", diff=f"{max(diffs.values()):.1e}")
    show, icon = (st.success, "check_circle") if ok else (st.warning, "warning")
    show(verdict, icon=f":material/{icon}:")


def compare_tab():
    say("compare")
    word = st.text_input(tx("follow"), tx("word"), key="word", **ui.URL).strip()  # above the charts
    cols = st.columns(2)  # each: its sentence, its heatmap, where the followed word looks
    for col, name, example in zip(cols, "AB", EXAMPLES[:2], strict=True):
        txt = col.text_input(tx("sentence", name=name), example, key=f"text_{name.lower()}",
                             **ui.URL)
        with col, ui.guard(tx("sentence", name=name)):
            v, title = shown(txt, word)
            for c in plots.sentence_charts(v, name, tx("compare_title", name=name, title=title),
                                           word, tx("word_looks", name=name, word=word)):
                ui.chart(*c, key=c.name)
            if word and v.word_row is None:
                st.caption(tx("word_missing", word=word, name=name))


with ui.guard(tx("guard_attention")):  # the panels above need the text's attention first
    ui.warm_up(model_id, preview)
    res = get_attention(model_id, text)
    ui.note(res.message)
    first_layer, first_head = svc.featured_head(model_id)
    layer = ui.pick_index(st.sidebar.select_slider, tx("layer"), "layer", first_layer,
                              res.n_layers)
    head = ui.pick_index(st.sidebar.select_slider, tx("head"), "head", first_head, res.n_heads)
    view = st.sidebar.radio(tx("view"), svc.VIEWS, format_func=lambda v: tx(f"view_{v}"),
                            key="view", **ui.URL)
    hide = st.sidebar.toggle(tx("hide"), key="hide", help=tx("hide_help"), **ui.URL)
    renorm = st.sidebar.toggle(tx("renorm"), key="renorm", disabled=not hide,
                               help=tx("renorm_help"), **ui.URL)
    st.sidebar.caption(tx("summary_causal" if res.causal else "summary", **res.numbers))
    ui.lazy_tabs({ui.english(TEXT, f"tab_{panel.__name__.removesuffix('_tab')}"): panel for panel in (
        heatmap_tab, grid_tab, lines_tab, step_tab, multihead_tab, compare_tab)})
    ui.share_hint()
