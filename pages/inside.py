"""Inside the model: the logit lens (a prediction forming layer by layer), head ablation (which heads
a prediction needs), activation patching (where a fact lives) and induction heads (copying from
earlier in the text), live on the sidebar's model. Each tab: its widgets, one service, one figure."""

import math
from urllib.parse import urlencode

import streamlit as st

from lmdemo.core.registry import CAUSAL_KINDS, LM_KINDS
from lmdemo.lab import head_ablation as ablation
from lmdemo.lab import induction, lens, patching
from lmdemo.plots import inside as plots
from pages import ui

T = "inside"  # this page's text file
TOP_HEADS_LINKED = 5  # induction heads listed with a link to the Attention page

ui.page(ui.prose(T, "title"), "intro", T)
default_model = ui.default_lm()
if not ui.models_ready(CAUSAL_KINDS, default_model):
    st.stop()
model_id = ui.model_picker(LM_KINDS, default=default_model)
with ui.guard():
    ui.warm_up(model_id)


def text_box() -> str:
    return ui.text_input("text", ui.lines(T, "examples"), label=ui.prose(T, "label-text"),
                         height=70)


def lens_tab() -> None:
    ui.say(T, "lens")
    text = text_box()
    pin = st.text_input(ui.prose(T, "label-pin"), " Paris", key="pin",
                        help=ui.prose(T, "help-pin"), **ui.URL)
    res = ui.cached(lens.lens, model_id, text, pin or None)
    ui.note(res.message)
    ui.chart(plots.lens_grid(res, ui.prose(T, "lens-title", model=model_id)), "logit-lens",
             res.rows(), key="lens")
    if res.pinned is not None:
        first = res.first_top(res.pinned.id)
        c1, c2 = st.columns(2)
        c1.metric(ui.prose(T, "metric-first-top"),
                  res.depths[first] if first is not None else ui.prose(T, "never-top"))
        c2.metric(ui.prose(T, "metric-final-prob"), f"{res.pinned_curve()[-1]:.1%}")
        title = ui.prose(T, "pin-title", token=res.pinned.token, tail=text[-30:])
        ui.chart(plots.pinned_curve(res, title=title), "pinned-token",
                 {"depth": res.depths, "prob": res.pinned_curve().tolist()}, key="pin_curve")


def add_clicked_head() -> None:
    """A click on the importance map adds that head to the heads to ablate."""
    point = ui.clicked_point("head_map")
    head = plots.clicked_head(point) if point else None
    if head is not None:
        picked, name = list(st.session_state.get("heads") or []), ablation.head_name(*head)
        st.session_state["heads"] = picked + [name] * (name not in picked)


def heads_picker(imp) -> list[str]:
    """The heads to ablate, only among the model's own: any other (in a link made for a bigger
    model, or picked on the last model) is left out with a note. At first: the top three."""
    n_layers, n_heads = imp.importance.shape
    held = (st.session_state["heads"] if "heads" in st.session_state
            else st.query_params.get_all("heads") if "heads" in st.query_params else None)
    kept, dropped = ablation.within_model(held or [], n_layers, n_heads)
    if dropped:
        st.info(ui.prose(T, "heads-dropped", heads=", ".join(dropped), model=model_id,
                         layers=n_layers - 1, last=n_heads - 1), icon=":material/straighten:")
    st.session_state["heads"] = kept if held is not None else [
        ablation.head_name(h["layer"], h["head"]) for h in imp.top_heads[:3]]
    return st.multiselect(ui.prose(T, "label-heads"), ablation.head_names(n_layers, n_heads),
                          key="heads", help=ui.prose(T, "help-heads"), **ui.URL)


def heads_tab() -> None:
    ui.say(T, "heads")
    text = text_box()
    c1, c2 = st.columns(2)
    target = c1.text_input(ui.prose(T, "label-target"), " Paris", key="target", **ui.URL)
    mode = c2.radio(ui.prose(T, "label-mode"), ablation.MODES, key="mode", horizontal=True,
                    format_func=lambda m: ui.prose(T, f"mode-{m}"), **ui.URL)
    with st.spinner():
        imp = ui.cached(ablation.importance, model_id, text, target, mode)
    ui.chart(plots.head_map(imp.importance, ui.prose(T, "heads-title", model=model_id,
                                                     target=target),
                            ui.prose(T, "colorbar-drop"), diverging=True),
             "head-importance", imp.rows(), key="head_map", on_select=add_clicked_head,
             selection_mode="points")
    heads = ", ".join(heads_picker(imp))
    res = ui.cached(ablation.head_ablation, model_id, text, heads, mode, 10, target)
    cols = st.columns(3)
    for col, key, value in ((cols[0], "before", res.target_logprob_before),
                            (cols[1], "after", res.target_logprob_after)):
        col.metric(ui.prose(T, f"metric-{key}"), f"{math.exp(value):.1%}")
    cols[2].metric(ui.prose(T, "metric-kl"), ui.prose(T, "value-nats", kl=f"{res.kl:.2f}"))
    ui.chart(plots.ablation_bars(res, ui.prose(T, "ablation-title", n=len(res.heads))),
             "head-ablation", res.rows(), key="ablation")


def patch_tab() -> None:
    ui.say(T, "patching")
    presets = patching.PRESETS
    preset = st.selectbox(ui.prose(T, "label-preset"), [str(i + 1) for i in range(len(presets))],
                          key="preset", **ui.URL)  # the number is the URL's ?preset=
    if st.session_state.get("_preset_filled") != preset:
        st.session_state["_preset_filled"] = preset
        st.session_state["clean"], st.session_state["corrupt"] = presets[int(preset) - 1]
    clean = st.text_input(ui.prose(T, "label-clean"), key="clean")
    corrupt = st.text_input(ui.prose(T, "label-corrupt"), key="corrupt")
    with st.spinner():
        res = ui.cached(patching.patch, model_id, clean, corrupt)
    st.caption(ui.prose(T, "patch-summary", clean_answer=res.clean_answer,
                        corrupt_answer=res.corrupt_answer, clean_diff=f"{res.clean_diff:+.2f}",
                        corrupt_diff=f"{res.corrupt_diff:+.2f}"))
    ui.chart(plots.patch_grid(res, ui.prose(T, "patch-title", model=model_id)), "patching",
             res.rows(), key="patch")


def induction_tab() -> None:
    ui.say(T, "induction")
    c1, c2 = st.columns(2)
    limits = induction.LIMITS
    length = c1.slider(ui.prose(T, "label-length"), limits.min_length, limits.max_length,
                       limits.default_length, key="length", **ui.URL)
    seed = c2.number_input(ui.prose(T, "label-seed"), 0, 1_000_000, 0, key="iseed", **ui.URL)
    res = ui.cached(induction.induction, model_id, int(length), int(seed))
    m1, m2 = st.columns(2)
    m1.metric(ui.prose(T, "metric-loss-first"), ui.prose(T, "value-loss", loss=f"{res.loss_first:.2f}"))
    m2.metric(ui.prose(T, "metric-loss-second"),
              ui.prose(T, "value-loss", loss=f"{res.loss_second:.2f}"))
    ui.chart(plots.loss_curve(res, ui.prose(T, "loss-title", model=model_id)), "induction-loss",
             res.loss_rows(), key="ind_loss")
    ui.chart(plots.head_map(res.scores, ui.prose(T, "induction-title", model=model_id),
                            ui.prose(T, "colorbar-score")), "induction-scores", res.rows(),
             key="ind_map")
    st.markdown(ui.prose(T, "top-heads"))
    for h in res.top_heads[:TOP_HEADS_LINKED]:
        url = "attention?" + urlencode({"model": model_id, "text": res.text, "layer": h["layer"],
                                        "head": h["head"], "tab": "Heatmap", **ui.lang_query()})
        st.markdown("- " + ui.prose(T, "head-link", layer=h["layer"], head=h["head"],
                                    score=f"{h['score']:.2f}", url=url))


ui.lazy_tabs({"Logit lens": lens_tab, "Head ablation": heads_tab, "Patching": patch_tab,
              "Induction heads": induction_tab})
ui.share_hint()
