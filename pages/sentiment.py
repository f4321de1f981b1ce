"""Sentiment: query a classifier (label, probabilities, token attribution beside [CLS] attention,
batch CSV), fine-tune one in a background job (with its duration estimated first), watch jobs
live, evaluate and compare runs. Each tab's panel reads its own inputs and makes its own lmdemo
calls (pages/sentiment_parts.py), so it can rerun alone; only the sidebar's classifier picker
runs at the top level, and the panels read the pick from the session."""

import streamlit as st

from lmdemo.core import quiet
from lmdemo.plots import sentiment as plots
from lmdemo.training import sentiment as svc
from pages import sentiment_parts as parts
from pages import ui

T, t = parts.T, parts.t
quiet.install()  # no library notices in the server's log (and none in the jobs it starts)
ui.page(t("title"), "intro", T)
if not ui.models_ready(("classifier",), default=svc.DEFAULT_MODEL):
    st.stop()
parts.pick_classifier()


def query_tab() -> None:
    ui.say(T, "query")
    text = ui.text_input("review", ui.lines(T, "examples"), label=t("label-review"))
    method = st.radio(t("label-attribution"), svc.METHODS, key="attr", horizontal=True, **ui.URL)
    parts.prediction(text, method)
    parts.batch()


def finetune_tab() -> None:
    ui.say(T, "finetune")
    data, parsed = parts.data_choice()
    cfg = parts.hyperparameters()
    st.session_state.setdefault("ft_name", svc.new_run_name())
    name = st.text_input(t("label-run-name"), key="ft_name", max_chars=svc.RUN_NAME_CHARS,
                         help=t("help-run-name"))
    parts.estimate(cfg, data, parsed)
    token = parts.token_box("ft_token")
    if st.button(t("button-start"), type="primary", icon=":material/play_arrow:"):
        run = svc.start_run(name, cfg, data, parsed.to_jsonl() if parsed else None, token)
        st.session_state["job_run"] = run.name  # the Jobs tab opens on the new run
        st.success(t("started", name=run.name, state=run.state))


def evaluate_tab() -> None:
    ui.say(T, "evaluate")
    split = st.radio(t("label-split"), svc.SPLITS, key="ev_split", horizontal=True, **ui.URL)
    with ui.guard(t("guard-evaluation")):
        with st.spinner(t("spinner-evaluate")):
            ev = ui.cached(parts.evaluation, parts.classifier(), split)
        for col, (k, v) in zip(st.columns(len(ev.scores())), ev.scores().items(), strict=True):
            col.metric(t(f"metric-{k}"), v if k == "reviews" else f"{v:.1%}")
        left, right = st.columns([1, 2])
        ui.chart(plots.confusion_figure(ev.metrics.confusion), "confusion matrix",
                 ev.confusion_columns(), key="cm", container=left)
        right.caption(t("misclassified", n=len(ev.misclassified)))
        right.dataframe(ev.misclassified, hide_index=True, height=300)
    st.subheader(t("heading-compare"))
    with ui.guard(t("guard-compare")):
        parts.compare_runs()
    parts.soup()
    st.subheader(t("heading-before-after"))
    ids, default = svc.classifier_choices()
    chosen = st.multiselect(t("label-models"), ids, default=default, key="ba_models")
    text = st.text_input(t("label-review"), ui.lines(T, "examples")[0], key="ba_text", **ui.URL)
    res = svc.compare_models(text, chosen)  # the last panel: the tab's guard shows its errors
    ui.chart(plots.before_after_figure(res.rows), "before-after", res.rows, key="ba")


ui.lazy_tabs(dict(zip(ui.english(T, "tabs").splitlines(),
                      (query_tab, finetune_tab, parts.jobs_tab, evaluate_tab), strict=True)))
ui.share_hint()
