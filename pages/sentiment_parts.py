"""The Sentiment page's panels (pages/sentiment.py lays them out as tabs). Each panel reads what it
needs when it runs — the classifier picked in the sidebar (kept in the session), its own widgets —
and makes its own lmdemo calls, so it can rerun alone as a fragment and never draws with values
left over from the page's last full run. No server path or process id reaches the page: errors and
logs pass through `lmdemo.api.public_message`, and a run's log needs the training token when the
server has one."""

from __future__ import annotations

import functools

import streamlit as st

from lmdemo.api import may_see_run_details, public_message
from lmdemo.core.errors import UserError
from lmdemo.plots import sentiment as plots
from lmdemo.training import finetune, jobs
from lmdemo.training import sentiment as svc
from pages import ui

T = "sentiment"
t = functools.partial(ui.prose, T)  # t(key, **values): a section of the page's text
MODEL_KEY = "_sentiment_classifier"  # the classifier picked in the sidebar, for the panels
# the URL names of the form's number boxes, in the order of finetune.FORM_STEPS
NUMBER_KEYS = ("ft_lr", "ft_epochs", "ft_bs", "ft_maxlen", "ft_warmup", "ft_wd", "ft_seed")
FORMATS = {"learning_rate": "%.6f"}  # learning rates are small
MINUTE_FROM_S = 90  # durations from this many seconds on are given in minutes
ESTIMATE_TTL_S = 60  # a duration estimate is redone after this (a finished run measures rates)


def pick_classifier() -> None:
    """The classifier picker in the sidebar (run at the page's top level); the choice is kept in
    the session, where every panel reads it with `classifier()`."""
    st.session_state[MODEL_KEY] = ui.model_picker(("classifier",), default=svc.DEFAULT_MODEL,
                                                  label=t("label-classifier"))


def classifier() -> str:
    """The classifier picked in the sidebar."""
    return st.session_state.get(MODEL_KEY) or svc.DEFAULT_MODEL


def token_box(key: str) -> str | None:
    """The training-token box, drawn only when this server asks for the token."""
    return ui.secret_box(t("label-token"), key, needed=svc.token_required())


def duration_text(seconds: float) -> str:
    """A duration as a reader takes it in: seconds below MINUTE_FROM_S, else minutes."""
    if seconds < MINUTE_FROM_S:
        return t("duration-s", s=f"{seconds:.0f}")
    return t("duration-min", m=f"{seconds / 60:.0f}")


def explain(model_id: str, text: str, method: str):
    """svc.explain with the model first (the order `ui.cached` calls it in)."""
    return svc.explain(text, model_id, method)


def evaluation(model_id: str, split: str):
    """svc.evaluate_split with the model first (for `ui.cached`)."""
    return svc.evaluate_split(split, model_id)


def prediction(text: str, method: str) -> None:
    """The label, both probabilities, the attributions beside the [CLS] attention — and a
    warning when most of the review is unknown to the model or only its beginning was read."""
    model_id = classifier()
    with ui.guard(t("guard-prediction")):
        ui.warm_up(model_id)
        with st.spinner(t("spinner-explain")):
            ex = ui.cached(explain, model_id, text, method)
        p = ex.prediction
        ui.note(p.unsure and t("unknown-warning", share=f"{p.unknown_share:.0%}"), warn=True)
        ui.note(p.truncated and t("truncated", read=p.tokens_read, total=p.tokens_total,
                                  limit=p.max_length), warn=True)
        left, right = st.columns([1, 2])
        label = t(f"class-{p.label}")  # the class's name in the reader's language
        left.metric(t("metric-label"), t("label-unsure") if p.unsure else label)
        left.caption(t("probability-unsure" if p.unsure else "probability", label=label,
                       p=f"{p.probs[p.label]:.1%}"))
        left.caption(t("tokens-read", read=p.tokens_read, total=p.tokens_total))
        ui.chart(plots.probs_figure(p.probs), "probabilities", [p.probs], key="probs",
                 container=right)
        st.html(plots.attribution_html(ex.tokens, ex.attribution, p.label))
        ui.chart(plots.explanation_figure(ex), "attribution", ex.columns(), key="attribution")
        st.caption(t("attribution"))


def batch() -> None:
    """An uploaded file classified row by row: which column was read, how many rows were blank,
    cut or unreadable; each prediction keeps its row number in the file (and in the CSV)."""
    st.subheader(t("heading-batch"))
    upload = st.file_uploader(t("label-batch-file"), svc.UPLOAD_TYPES, key="batch_file")
    if not upload:
        return
    with ui.guard(t("guard-batch")):
        res = svc.classify_upload(upload.getvalue(), upload.name, classifier())
        st.caption(t("batch-read", column=res.text_column, n=len(res.rows),
                     blank=res.blank_rows))
        ui.note(res.truncated and t("batch-cut", n=res.truncated, limit=res.max_length))
        ui.note(res.unsure and t("batch-unsure", n=res.unsure), warn=True)
        st.dataframe(res.rows, hide_index=True)
        ui.csv_download(res.rows, "predictions", key="batch_csv")


def data_choice():
    """The training data: its source, and the parsed reviews of an upload (else None)."""
    form = svc.train_form()
    data = st.radio(t("label-data"), form.sources, key="ft_data",
                    format_func=lambda s: t(f"data-{s}"), **ui.URL)
    parsed = ui.table_upload(T, "ft_file", svc.UPLOAD_TYPES, svc.upload_columns,
                             svc.training_upload) if data == "upload" else None
    return data, parsed


def hyperparameters() -> dict:
    """Base encoder, method, the number boxes and bf16: the run's config as the form holds it.
    Without a GPU the bf16 box is unticked and disabled, with a note why (a shared link that
    asks for bf16 does not tick it)."""
    form = svc.train_form()
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
    if form.cuda:
        bf16 = cols[-1].checkbox(t("label-bf16"), defaults.mixed_precision, key="ft_bf16",
                                 **ui.URL)
    else:  # not bound to the URL: a link from a GPU server must not tick it here
        bf16 = cols[-1].checkbox(t("label-bf16"), False, key="ft_bf16_cpu", disabled=True,
                                 help=t("help-bf16-cpu"))
    return dict(cfg, base=base, method=method, mixed_precision=bool(bf16))


@st.cache_data(max_entries=32, ttl=ESTIMATE_TTL_S, show_spinner=False)
def _estimate(config: tuple, data: str, data_jsonl: str | None):
    return svc.estimate_run(dict(config), data, data_jsonl)


def estimate(cfg: dict, data: str, parsed) -> None:
    """How long the run would take, said to be an estimate (nothing when the settings are not
    valid yet: the start button says what is wrong)."""
    if data == "upload" and parsed is None:
        return
    with ui.guard(t("guard-estimate")):
        try:
            with st.spinner(t("spinner-estimate")):
                est = _estimate(tuple(sorted(cfg.items())), data,
                                parsed.to_jsonl() if parsed is not None else None)
        except UserError:
            return
        tokens = f"{est.train_tokens * est.epochs:,}"
        if est.seconds is None:
            return st.caption(t("estimate-unknown", base=cfg["base"], tokens=tokens))
        source = (t("rate-typical") if est.source == "typical"
                  else t("rate-measured", run=est.source.removeprefix("run:")))
        st.info(t("estimate", duration=duration_text(est.seconds), reviews=f"{est.reviews:,}",
                  epochs=est.epochs, tokens=tokens, rate=f"{est.rates.tokens_per_s:,.0f}",
                  source=source), icon=":material/timer:")


def jobs_panel() -> None:
    """Every run, the chosen one's progress, smoothed time left, curves, error and log (the log
    only with the training token when the server has one); redrawn while a run is live."""
    with ui.guard(t("guard-jobs")):  # a fragment reruns alone, outside the tab's guard
        if not (view := svc.jobs_view(st.session_state.get("job_run"))).names:
            return st.info(t("no-runs"))
        st.dataframe(view.rows, hide_index=True)
        st.selectbox(t("label-run"), view.names, key="job_run")
        d = view.detail
        eta = (t("progress-eta", epoch=d.epoch, eta=duration_text(d.eta_s))
               if d.active and d.eta_s is not None else "")
        st.progress(d.progress, text=t("progress", name=d.name, state=d.state) + eta)
        ui.note(public_message(d.error), ":material/warning:", warn=True)
        if d.records:
            ui.chart(plots.curves_figure(d.records), f"curves-{d.name}", d.epochs,
                     key=f"curves_{d.name}")
        token = token_box("jobs_token")
        if d.active and st.button(t("button-cancel"), key=f"cancel_{d.name}",
                                  icon=":material/stop:"):
            jobs.cancel(d.name, token=token)
            st.rerun()
        with st.expander(t("label-log")):
            if may_see_run_details(token):
                st.code(public_message(d.log) or t("empty-log"))
            else:
                st.caption(t("log-needs-token"))


def jobs_tab() -> None:
    """The jobs panel as a fragment that redraws itself while a run is queued or running."""
    ui.live(jobs_panel, svc.JOBS_REFRESH_S if svc.jobs_view().live else None)


def compare_runs() -> None:
    """The shipped classifier and every finished run side by side."""
    if not (rows := jobs.compare_rows()):
        return st.caption(t("no-compare"))
    st.dataframe(rows, hide_index=True)
    ui.chart(plots.compare_figure(rows), "runs compared", rows, key="compare")


def soup() -> None:
    """Finished LoRA runs averaged into a new run (a uniform model soup)."""
    with st.expander(t("label-soup")):  # finished LoRA runs averaged, as sentiment-minilm is
        st.caption(t("soup"))
        chosen = st.multiselect(t("label-soup-runs"), svc.soup_candidates(), key="soup_runs")
        name, token = st.text_input(t("label-soup-name"), key="soup_name"), token_box("soup_token")
        if made := st.session_state.pop("_soup_made", None):
            st.success(t("soup-ready", name=made))
        if st.button(t("button-soup"), disabled=len(chosen) < svc.SOUP_MIN_RUNS
                     or not name.strip()):
            with ui.guard(t("guard-soup")):
                st.session_state["_soup_made"] = svc.make_soup(chosen, name, token)
            if "_soup_made" in st.session_state:  # the whole page: the picker lists the new model
                st.rerun(scope="app")
