"""Sentiment: query a classifier (label, probabilities, token attribution beside [CLS] attention,
batch CSV), fine-tune one in a background job, watch jobs live, evaluate and compare runs."""

import functools

import streamlit as st

from lmdemo.plots import sentiment as plots
from lmdemo.training import finetune, jobs
from lmdemo.training import sentiment as svc
from pages import ui

T = "sentiment"
t = functools.partial(ui.prose, T)  # t(key, **values): a section of the page's text
# the URL names of the form's number boxes, in the order of finetune.FORM_STEPS
NUMBER_KEYS = ("ft_lr", "ft_epochs", "ft_bs", "ft_maxlen", "ft_warmup", "ft_wd", "ft_seed")
FORMATS = {"learning_rate": "%.6f"}  # learning rates are small

ui.page(t("title"), "intro", T)
if not ui.models_ready(("classifier",), default=svc.DEFAULT_MODEL):
    st.stop()
model_id = ui.model_picker(("classifier",), default=svc.DEFAULT_MODEL, label=t("label-classifier"))
token_box = functools.partial(ui.secret_box, t("label-token"), needed=svc.token_required())
explain = st.cache_data(max_entries=32, show_spinner=t("spinner-explain"))(svc.explain)
evaluate = st.cache_data(max_entries=16, show_spinner=t("spinner-evaluate"))(svc.evaluate_split)


def query_tab() -> None:
    ui.say(T, "query")
    text = ui.text_input("review", ui.lines(T, "examples"), label=t("label-review"))
    method = st.radio(t("label-attribution"), svc.METHODS, key="attr", horizontal=True, **ui.URL)
    with ui.guard(t("guard-prediction")):
        ui.warm_up(model_id)
        ex = explain(text, model_id, method)
        label, probs = ex.prediction.label, ex.prediction.probs
        ui.note(ex.unsure and t("unknown-warning", share=f"{ex.unknown_share:.0%}"), warn=True)
        left, right = st.columns([1, 2])
        left.metric(t("metric-label"), t("label-unsure") if ex.unsure else label)
        left.caption(t("probability-unsure" if ex.unsure else "probability", label=label,
                       p=f"{probs[label]:.1%}"))
        ui.chart(plots.probs_figure(probs), "probabilities", [probs], key="probs", container=right)
        st.html(plots.attribution_html(ex.tokens, ex.attribution, label))
        ui.chart(plots.explanation_figure(ex), "attribution", ex.columns(), key="attribution")
        st.caption(t("attribution"))
    st.subheader(t("heading-batch"))
    upload = st.file_uploader(t("label-batch-file"), svc.UPLOAD_TYPES, key="batch_file")
    if upload:  # the last panel: the tab's own guard shows its errors
        res = svc.classify_upload(upload.getvalue(), upload.name, model_id)
        st.caption(t("batch-read", column=res.text_column, n=len(res.rows), blank=res.blank_rows))
        st.dataframe(res.rows, hide_index=True)
        ui.csv_download(res.rows, "predictions", key="batch_csv")


def finetune_tab() -> None:
    ui.say(T, "finetune")
    form = svc.train_form()
    data = st.radio(t("label-data"), form.sources, key="ft_data",
                    format_func=lambda s: t(f"data-{s}"), **ui.URL)
    parsed = ui.table_upload(T, "ft_file", svc.UPLOAD_TYPES, svc.upload_columns,
                             svc.training_upload) if data == "upload" else None
    other = t("option-other-base")
    base = st.selectbox(t("label-base"), form.bases + [other] * form.hub, key="ft_base", **ui.URL)
    if base == other:
        base = st.text_input(t("label-hub-base"), key="ft_base_hub",
                             placeholder=t("placeholder-hub-base"), **ui.URL)
    method = st.radio(t("label-method"), finetune.METHODS, key="ft_method", horizontal=True,
                      format_func=lambda m: t(f"method-{m}"), **ui.URL)
    defaults = finetune.defaults(method)
    cfg, cols = ui.number_boxes(T, {name: (key, getattr(defaults, name), step, FORMATS.get(name))
                                    for (name, step), key in zip(finetune.FORM_STEPS.items(),
                                                                 NUMBER_KEYS, strict=True)})
    cfg.update(base=base, method=method)
    bf16 = defaults.mixed_precision and form.cuda  # no GPU: the disabled box is not ticked
    cfg["mixed_precision"] = cols[-1].checkbox(t("label-bf16"), bf16, key="ft_bf16",
                                               disabled=not form.cuda, **ui.URL)
    st.session_state.setdefault("ft_name", svc.new_run_name())
    name = st.text_input(t("label-run-name"), key="ft_name", max_chars=svc.RUN_NAME_CHARS,
                         help=t("help-run-name"))
    token = token_box("ft_token")
    if st.button(t("button-start"), type="primary", icon=":material/play_arrow:"):
        run = svc.start_run(name, cfg, data, parsed.to_jsonl() if parsed else None, token)
        st.session_state["job_run"] = run.name  # the Jobs tab opens on the new run
        st.success(t("started", name=run.name, state=run.state))


def jobs_panel() -> None:
    with ui.guard(t("guard-jobs")):  # a fragment reruns alone, outside the tab's guard
        if not (view := svc.jobs_view(st.session_state.get("job_run"))).names:
            return st.info(t("no-runs"))
        st.dataframe(view.rows, hide_index=True)
        st.selectbox(t("label-run"), view.names, key="job_run")
        d = view.detail
        eta = t("progress-eta", epoch=d.epoch, eta=f"{d.eta_s:.0f}") if d.eta_s else ""
        st.progress(d.progress, text=t("progress", name=d.name, state=d.state) + eta)
        ui.note(d.error, ":material/warning:", warn=True)
        if d.records:
            ui.chart(plots.curves_figure(d.records), f"curves-{d.name}", d.epochs,
                     key=f"curves_{d.name}")
        token = token_box(f"cancel_tok_{d.name}") if d.active else None
        if d.active and st.button(t("button-cancel"), key=f"cancel_{d.name}",
                                  icon=":material/stop:"):
            jobs.cancel(d.name, token=token)
            st.rerun()
        with st.expander(t("label-log")):
            st.code(d.log or t("empty-log"))


def compare_runs() -> None:
    if not (rows := jobs.compare_rows()):
        return st.caption(t("no-compare"))
    st.dataframe(rows, hide_index=True)
    ui.chart(plots.compare_figure(rows), "runs compared", rows, key="compare")


def evaluate_tab() -> None:
    ui.say(T, "evaluate")
    split = st.radio(t("label-split"), svc.SPLITS, key="ev_split", horizontal=True, **ui.URL)
    with ui.guard(t("guard-evaluation")):
        ev = evaluate(split, model_id)
        for col, (k, v) in zip(st.columns(len(ev.scores())), ev.scores().items(), strict=True):
            col.metric(t(f"metric-{k}"), v if k == "reviews" else f"{v:.1%}")
        left, right = st.columns([1, 2])
        ui.chart(plots.confusion_figure(ev.metrics.confusion), "confusion matrix",
                 ev.confusion_columns(), key="cm", container=left)
        right.caption(t("misclassified", n=len(ev.misclassified)))
        right.dataframe(ev.misclassified, hide_index=True, height=300)
    st.subheader(t("heading-compare"))
    with ui.guard(t("guard-compare")):
        compare_runs()
    with st.expander(t("label-soup")):  # finished LoRA runs averaged, as sentiment-minilm is
        st.caption(t("soup"))
        chosen = st.multiselect(t("label-soup-runs"), svc.soup_candidates(), key="soup_runs")
        name, token = st.text_input(t("label-soup-name"), key="soup_name"), token_box("soup_token")
        if st.button(t("button-soup"), disabled=len(chosen) < svc.SOUP_MIN_RUNS
                     or not name.strip()):
            with ui.guard(t("guard-soup")):
                st.success(t("soup-ready", name=svc.make_soup(chosen, name, token)))
    st.subheader(t("heading-before-after"))
    ids, default = svc.classifier_choices()
    chosen = st.multiselect(t("label-models"), ids, default=default, key="ba_models")
    text = st.text_input(t("label-review"), ui.lines(T, "examples")[0], key="ba_text", **ui.URL)
    res = svc.compare_models(text, chosen)  # the last panel: the tab's guard shows its errors
    ui.chart(plots.before_after_figure(res.rows), "before-after", res.rows, key="ba")


jobs_tab = lambda: ui.live(  # noqa: E731 - redrawn every few seconds while a run is live
    jobs_panel, svc.JOBS_REFRESH_S if svc.jobs_view().live else None)
ui.lazy_tabs({"Query": query_tab, "Fine-tune": finetune_tab, "Jobs": jobs_tab,
              "Evaluate & compare": evaluate_tab})
ui.share_hint()
