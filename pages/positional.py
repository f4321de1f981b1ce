"""Positional encoding: sinusoids, similarity, offsets, sine-only, learned tables, RoPE, ablation.
Each panel draws the inputs it uses and makes its own lmdemo calls (it can rerun alone)."""

import functools

import streamlit as st

from lmdemo.lab import position_ablation as abl
from lmdemo.lab import positional as pos
from lmdemo.lab import rotary
from lmdemo.lab.anatomy import layers_and_heads
from lmdemo.plots import positional as plots
from pages import ui

TEXT = "positional"
START, ROPE, CAP = pos.DEFAULTS, rotary.LIMITS, pos.LIMITS
say = functools.partial(ui.prose, TEXT)  # say(key, **values): a section of the page's text
ui.page(say("title"), "intro", TEXT)


def int_slider(label: str, lo: int, hi: int, value: int, key: str, where=st, **kw) -> int:
    """An int slider bound to the URL; a range of one value shows as text, not a slider."""
    if hi <= lo:
        where.caption(say("only-choice", label=say(label), value=lo))
        return lo
    return where.slider(say(label), lo, hi, min(max(value, lo), hi), key=key, **kw, **ui.URL)


def layer_and_head(prefix: str, model: str, cols, head: str = "head-label") -> list[int]:
    """Layer and head within `model`'s own (URL-kept); one beyond them becomes the last, noted."""
    out = []
    for c, label, count in zip(cols, ("layer-label", head), layers_and_heads(model), strict=True):
        key = f"{prefix}_{'layer' if label == 'layer-label' else 'head'}"
        held = st.session_state[key] if key in st.session_state else st.query_params.get(key)
        if held is not None and not (str(held).isdecimal() and int(held) < count):
            st.session_state[key] = count - 1
            st.info(say("index-clamped", what=say(label), asked=held, model=model, last=count - 1))
        out.append(int(c.number_input(say(label), 0, count - 1, key=key, **ui.URL)))
    return out


def show(charts: list[plots.Chart], **metrics) -> None:
    """Metrics (label: the keyword's section; value or (value, help)), then charts and exports."""
    for col, (key, value) in zip(st.columns(len(metrics)) if metrics else [], metrics.items(),
                                 strict=True):
        value, helptext = value if isinstance(value, tuple) else (value, None)
        col.metric(say(key), value, help=helptext)
    for c in charts:  # an averaged-down heatmap says so in its title
        ui.chart(c.fig, c.name, c.data, key=c.name)


def intro(key: str, n: bool = True, d: bool = True) -> tuple[int, int]:
    """The panel's text and formula, then the sizes it uses: positions, width d_model (URL-kept)."""
    ui.say(TEXT, key)
    ui.formula(TEXT, f"{key}-formula")
    c1, c2 = st.columns(2) if n or d else (st, st)
    return (int_slider("n-label", START.min_positions, CAP.max_length, START.length, "n", c1,
                       help=say("n-help", n=CAP.max_length)) if n else 0,
            int_slider("d-label", CAP.min_d_model, CAP.max_d_model, START.d_model, "d", c2,
                       step=2, help=say("d-help", d=CAP.max_d_model)) if d else 0)


def sinusoidal_tab():
    length, d_model = intro("sinusoidal")
    v = pos.sinusoidal_view(length, d_model)
    show(plots.sinusoidal_charts(v))
    dims = st.multiselect(say("dims-label"), list(range(d_model)), pos.wave_dims(d_model),
                          key="dims", **ui.URL)
    show(plots.wave_charts(v, dims))
    st.caption(say("wavelengths", shortest=f"{v.wavelengths[0]:.2f}", a=d_model - 2,
                   longest=f"{v.wavelengths[-1]:,.0f}", b=d_model - 1))


def similarity_tab():
    length, d_model = intro("similarity")
    c1, c2 = st.columns(2)
    kind = c1.radio(say("kind-label"), pos.ENCODINGS, key="sim_kind", horizontal=True, **ui.URL)
    metric = c2.radio(say("metric-label"), pos.METRICS, key="metric", horizontal=True, **ui.URL)
    v = pos.similarity_view(kind, metric, length, d_model)
    show(plots.similarity_charts(v), spread_label=(
        f"{plots.spread_value(v.stats):.3g}", say("spread-help", raw=f"{v.stats.max_spread:.1e}")))


def offset_tab():
    length, d_model = intro("offset")
    v = pos.offset_view(length, d_model, int_slider("k-label", 1, length - 1, START.offset, "k"))
    show(plots.offset_charts(v), **plots.offset_metrics(v))
    st.caption(say("corner", k=v.k))
    st.dataframe(plots.corner_table(v))


def sine_only_tab():
    v = pos.sine_only_view(*intro("sine-only"))
    show(plots.sine_only_charts(v), **{f"nearest-{k}": (f"{r.min_distance:.3g}", say(
        "nearest-help", **dict(zip("pq", r.closest_pairs[0][:2], strict=True))))
        for k, r in v.reports.items()})
    st.caption(say("closest-caption"))
    st.dataframe(plots.closest_pairs_table(v))


def learned_tab():
    length, _ = intro("learned", d=False)  # the width is the model's own
    if not pos.installed(START.gpt_model):
        st.info(say("learned-gpt-missing", model=START.gpt_model))
    model = ui.model_picker(START.learned_kinds, key="model", default=START.learned_model,
                            container=st)
    v = pos.learned_view(model, length)
    st.caption(say("learned-caption", **vars(v), lo=plots.ROBUST[0], hi=plots.ROBUST[1]))
    show(plots.learned_charts(v), learned_spread_label=f"{v.stats.max_spread:.3g}")


def rotary_tab():
    length, d_model = intro("rotary")
    c1, c2 = st.columns(2)
    pair = int_slider("pair-label", 0, d_model // 2 - 1, 0, "pair", c1)
    steps = int_slider("steps-label", START.min_positions, ROPE.max_steps, ROPE.steps, "steps", c2)
    with ui.guard(say("rotary-guard")):  # the real model below is shown even if this fails
        v = rotary.rotary_view(length, d_model, pair, steps)
        show(plots.rotary_charts(v), **plots.rotary_metrics(v))
    st.subheader(say("rotary-model-title", model=ROPE.real_model))
    ui.say(TEXT, "rotary-model")
    if not rotary.real_model_ready():
        return st.info(say("rotary-model-missing"), icon=":material/info:")
    text = ui.text_input("rope_text", say("examples").splitlines(), label=say("text-label"))
    c1, c2, c3 = st.columns(3)
    layer, head = layer_and_head("rope", ROPE.real_model, (c1, c2), "query-head-label")
    grid = int_slider("grid-label", START.min_positions, ROPE.page_grid, ROPE.grid, "rope_grid", c3)
    r = rotary.measure(ROPE.real_model, text, layer, head, length=grid)
    st.caption(say("rotary-model-caption", **vars(r), pairs=r.head_dim // 2,
                   q_token=repr(r.tokens[r.query_index]), k_token=repr(r.tokens[r.key_index])))
    show(plots.rotary_model_charts(r), **plots.rotary_model_metrics(r))


def ablation_tab():
    intro("ablation", n=False, d=False)
    if not abl.any_model_installed():
        return st.info(say("ablation-missing"), icon=":material/hourglass_top:")
    model = ui.model_picker(abl.KINDS, key="abl_model", default=abl.default_model(), container=st)
    text = ui.text_input("abl_text", say("examples").splitlines(), label=say("text-label"))
    c1, c2, c3 = st.columns(3)
    mode = c1.selectbox(say("mode-label"), abl.MODES, key="abl_mode",
                        format_func=lambda m: say(f"mode-{m}"), **ui.URL)
    r = abl.ablate(model, text, mode, *layer_and_head("abl", model, (c2, c3)))
    show(plots.ablation_charts(r), kl_label=say("kl-value", kl=f"{r.kl:.3g}"))


ui.lazy_tabs(dict(zip(ui.english(TEXT, "tabs").splitlines(), [
    sinusoidal_tab, similarity_tab, offset_tab, sine_only_tab, learned_tab, rotary_tab,
    ablation_tab], strict=True)))
ui.share_hint()
