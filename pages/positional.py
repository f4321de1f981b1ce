"""Positional encoding: sinusoids, similarity, relative offsets, sine-only, learned tables, RoPE
and a position ablation. One lmdemo call per panel; words and formulas in pages/text/en/."""

import functools

import streamlit as st

from lmdemo.lab import position_ablation as abl
from lmdemo.lab import positional as pos
from lmdemo.lab import rotary
from lmdemo.plots import positional as plots
from pages import ui

TEXT = "positional"
START, ROPE = pos.DEFAULTS, rotary.LIMITS
say = functools.partial(ui.prose, TEXT)  # say(key, **values): a section of the page's text
ui.page(say("title"), "intro", TEXT)


def int_slider(label: str, lo: int, hi: int, value: int, key: str, where=st, **kw) -> int:
    """An int slider bound to the URL; a range of one value shows as text, not a slider."""
    if hi <= lo:
        where.caption(say("only-choice", label=say(label), value=lo))
        return lo
    return where.slider(say(label), lo, hi, min(max(value, lo), hi), key=key, **kw, **ui.URL)


def layer_and_head(prefix: str, hi: int, cols, head: str = "head-label") -> list[int]:
    return [int(c.number_input(say(label), 0, hi, 0, key=f"{prefix}_{k}", **ui.URL))
            for c, label, k in zip(cols, ("layer-label", head), ("layer", "head"), strict=True)]


def show(charts: list[plots.Chart], **metrics: str) -> None:
    """Metrics (labels: the text sections named by the keywords), then charts with exports."""
    for col, (key, value) in zip(st.columns(len(metrics)) if metrics else [], metrics.items(),
                                 strict=True):
        col.metric(say(key), value)
    for c in charts:
        if c.step > 1:
            st.caption(say("thinned", step=c.step, rows=c.shape[0], cols=c.shape[1]))
        ui.chart(c.fig, c.name, c.data, key=c.name)


def intro(key: str) -> None:
    ui.say(TEXT, key)
    ui.formula(TEXT, f"{key}-formula")


side = st.sidebar
d_model = int_slider("d-label", pos.LIMITS.min_d_model, pos.LIMITS.max_d_model, START.d_model, "d",
                     side, step=2, help=say("d-help"))
length = int_slider("n-label", START.min_positions, pos.LIMITS.max_length, START.length, "n", side)
side.caption(say("caps", d=pos.LIMITS.max_d_model, n=pos.LIMITS.max_length))


def sinusoidal_tab():
    intro("sinusoidal")
    v = pos.sinusoidal_view(length, d_model)
    show(plots.sinusoidal_charts(v))
    dims = st.multiselect(say("dims-label"), list(range(d_model)), pos.wave_dims(d_model),
                          key="dims", **ui.URL)
    show(plots.wave_charts(v, dims))
    st.caption(say("wavelengths", shortest=f"{v.wavelengths[0]:.2f}", a=d_model - 2,
                   longest=f"{v.wavelengths[-1]:,.0f}", b=d_model - 1))


def similarity_tab():
    intro("similarity")
    c1, c2 = st.columns(2)
    kind = c1.radio(say("kind-label"), pos.ENCODINGS, key="sim_kind", horizontal=True, **ui.URL)
    metric = c2.radio(say("metric-label"), pos.METRICS, key="metric", horizontal=True, **ui.URL)
    v = pos.similarity_view(kind, metric, length, d_model)
    show(plots.similarity_charts(v), spread_label=f"{v.stats.max_spread:.3g}")


def offset_tab():
    intro("offset")
    v = pos.offset_view(length, d_model, int_slider("k-label", 1, length - 1, START.offset, "k"))
    sin, only = v.checks["sinusoidal"], v.checks["sine-only"]
    show(plots.offset_charts(v), offset_sinusoidal=f"{sin.max_error:.2e}",
         offset_sine_only=f"{only.max_error:.3g}", offset_bound=f"{only.lower_bound:.3g}")
    st.caption(say("corner", k=v.k))
    st.dataframe(plots.corner_table(v))


def sine_only_tab():
    intro("sine-only")
    v = pos.sine_only_view(length, d_model)
    for col, (kind, r) in zip(st.columns(len(v.reports)), v.reports.items(), strict=True):
        (p, q, dist), *_ = r.closest_pairs
        col.metric(say("nearest-label", kind=kind), f"{dist:.3g}",
                   help=say("nearest-help", p=p, q=q))
    show(plots.sine_only_charts(v))
    st.caption(say("closest-caption"))
    st.dataframe(plots.closest_pairs_table(v))


def learned_tab():
    intro("learned")
    if not pos.installed(START.gpt_model):
        st.info(say("learned-gpt-missing", model=START.gpt_model))
    model = ui.model_picker(START.learned_kinds, key="model", default=START.learned_model,
                            container=st)
    v = pos.learned_view(model, length)
    st.caption(say("learned-caption", **vars(v)))
    show(plots.learned_charts(v), learned_spread_label=f"{v.stats.max_spread:.3g}")


def rotary_tab():
    intro("rotary")
    c1, c2 = st.columns(2)
    pair = int_slider("pair-label", 0, d_model // 2 - 1, 0, "pair", c1)
    steps = int_slider("steps-label", START.min_positions, ROPE.max_steps, ROPE.steps, "steps", c2)
    with ui.guard(say("rotary-guard")):  # the real model below is shown even if this fails
        v = rotary.rotary_view(length, d_model, pair, steps)
        show(plots.rotary_charts(v), rope_deviation=f"{v.check.max_deviation:.2e}",
             rope_additive=f"{v.check.max_additive_deviation:.3g}")
    st.subheader(say("rotary-model-title", model=ROPE.real_model))
    ui.say(TEXT, "rotary-model")
    if not rotary.real_model_ready():
        return st.info(say("rotary-model-missing"), icon=":material/info:")
    text = ui.text_input("rope_text", say("examples").splitlines(), label=say("text-label"))
    c1, c2, c3 = st.columns(3)
    layer, head = layer_and_head("rope", ROPE.max_index, (c1, c2), "query-head-label")
    grid = int_slider("grid-label", START.min_positions, ROPE.page_grid, ROPE.grid, "rope_grid", c3)
    r = rotary.measure(ROPE.real_model, text, layer, head, length=grid)
    st.caption(say("rotary-model-caption", **vars(r), pairs=r.head_dim // 2,
                   q_token=repr(r.tokens[r.query_index]), k_token=repr(r.tokens[r.key_index])))
    show(plots.rotary_model_charts(r), model_theta=f"{r.theta:,.0f}",
         model_deviation=f"{r.relative_deviation:.1e}",
         model_additive=f"{r.relative_additive_deviation:.3g}",
         model_diff=f"{r.model_max_diff:.1e}")


def ablation_tab():
    intro("ablation")
    if not abl.any_model_installed():
        return st.info(say("ablation-missing"), icon=":material/hourglass_top:")
    model = ui.model_picker(abl.KINDS, key="abl_model", default=abl.default_model(), container=st)
    text = ui.text_input("abl_text", say("examples").splitlines(), label=say("text-label"))
    c1, c2, c3 = st.columns(3)
    mode = c1.selectbox(say("mode-label"), abl.MODES, key="abl_mode",
                        format_func=lambda m: say(f"mode-{m}"), **ui.URL)
    r = abl.ablate(model, text, mode, *layer_and_head("abl", abl.LIMITS.max_index, (c2, c3)))
    show(plots.ablation_charts(r), kl_label=say("kl-value", kl=f"{r.kl:.3g}"))


ui.lazy_tabs(dict(zip(ui.english(TEXT, "tabs").splitlines(), [sinusoidal_tab, similarity_tab, offset_tab,
                 sine_only_tab, learned_tab, rotary_tab, ablation_tab], strict=True)))
ui.share_hint()
