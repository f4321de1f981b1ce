"""Sentiment: query a classifier (label, probabilities, token attribution beside [CLS] attention,
batch CSV), fine-tune one in a background job, watch jobs live, evaluate and compare runs.
"""

import time

import streamlit as st

from lmdemo.core.config import settings
from lmdemo.plots import sentiment as plots
from lmdemo.training import jobs, reviews
from lmdemo.training import sentiment as svc
from lmdemo.training.finetune import TrainConfig
from pages import ui

EXAMPLES = ["Not bad at all — the slow start pays off with a brilliant ending.",
            "The trailer was great; the movie, sadly, was not.",
            "Oh wonderful, another two hours of people staring out of windows.",
            "A warm, funny film with a cast that clearly loved making it."]
DEFAULTS = TrainConfig()
DATA_CHOICES = {"shipped": "Shipped reviews (train/validation split)",
                "upload": "Upload CSV / TSV / JSONL", "imdb": "IMDB (stanfordnlp/imdb, hub)"}

ui.page("Sentiment", "intro", "sentiment")
if not ui.models_ready(("classifier",), default=svc.DEFAULT_MODEL):
    st.stop()
model_id = ui.model_picker(("classifier",), default=svc.DEFAULT_MODEL, label="Classifier")
query_tab, tune_tab, jobs_tab, eval_tab = st.tabs(
    ["Query", "Fine-tune", "Jobs", "Evaluate & compare"])


@st.cache_data(max_entries=32, show_spinner="Explaining…")
def get_explanation(model: str, text: str, method: str) -> svc.Explanation:
    return svc.explain(text, model, method)


@st.cache_data(max_entries=16, show_spinner="Evaluating…")
def get_evaluation(model: str, split: str) -> svc.Evaluation:
    return svc.evaluate(reviews.shipped(split), model)


def query() -> None:
    st.markdown(ui.prose("sentiment", "query"))
    text = ui.text_input("review", EXAMPLES, label="Review")
    method = st.radio("Attribution", svc.METHODS, key="attr", horizontal=True, **ui.URL)
    with ui.guard("The prediction"):
        ui.warm_up(model_id)
        ex = get_explanation(model_id, text, method)
        left, right = st.columns([1, 2])
        left.metric("Label", ex.prediction.label)
        left.caption(f"probability {ex.prediction.probs[ex.prediction.label]:.1%}")
        with right:
            ui.chart(plots.probs_figure(ex.prediction.probs), "probabilities",
                     [ex.prediction.probs], key="probs")
        st.html(plots.attribution_html(ex.tokens, ex.attribution, ex.prediction.label))
        ui.chart(plots.attribution_figure(ex.tokens, ex.attribution, ex.cls_attention,
                                          ex.prediction.label, method), "attribution",
                 {"token": ex.tokens, "attribution": ex.attribution,
                  "cls_attention": ex.cls_attention}, key="attribution")
        st.caption(ui.prose("sentiment", "attribution"))
    st.subheader("Batch")
    upload = st.file_uploader("A CSV / TSV / JSONL with a `text` column (one review per row)",
                              type=["csv", "tsv", "jsonl"], key="batch_file")
    if upload is not None:
        with ui.guard("The batch"):
            rows = svc.classify_upload(upload.getvalue(), upload.name, model_id)
            st.dataframe(rows, hide_index=True)
            ui.csv_download(rows, "predictions", key="batch_csv")


def data_choice() -> tuple[str, str | None]:
    """The chosen data source, and the uploaded data as validated JSONL (or None)."""
    from lmdemo.core.hub import dataset_available

    options = ["shipped", "upload"] + (["imdb"] if dataset_available(reviews.IMDB_ID) else [])
    data = st.radio("Data", options, key="ft_data", format_func=DATA_CHOICES.get, **ui.URL)
    if data != "upload":
        return data, None
    upload = st.file_uploader("Training data: a text column and a label column (0/1 or "
                              "negative/positive)", type=["csv", "tsv", "jsonl"], key="ft_file")
    if upload is None:
        return data, None
    raw = upload.getvalue()
    names = reviews.columns(raw, upload.name)
    c1, c2 = st.columns(2)
    text_col = c1.selectbox("Text column", names, key="ft_text_col", index=names.index(
        reviews.guess_column(names, reviews.TEXT_COLUMNS) or names[0]))
    label_col = c2.selectbox("Label column", names, key="ft_label_col", index=names.index(
        reviews.guess_column(names, reviews.LABEL_COLUMNS) or names[-1]))
    parsed = reviews.parse(raw, upload.name, text_col, label_col)
    st.caption(f"{len(parsed)} reviews, {sum(parsed.labels)} positive.")
    return data, parsed.to_jsonl()


def hyperparameters() -> dict:
    from lmdemo.core.hub import hub_reachable
    from lmdemo.core.registry import specs_of_kind

    bases = [s.id for s in specs_of_kind("encoder")]
    base = st.selectbox("Base encoder", bases + (["other hub encoder…"] if hub_reachable()
                                                 else []), key="ft_base", **ui.URL)
    if base == "other hub encoder…":
        base = st.text_input("Hub encoder id", key="ft_base_hub",
                             placeholder="distilbert-base-uncased", **ui.URL)
    method = st.radio("Method", ["lora", "full"], key="ft_method", horizontal=True,
                      format_func={"lora": "LoRA (adapter + head)", "full": "Full"}.get, **ui.URL)
    c1, c2, c3, c4 = st.columns(4)
    cfg = {
        "base": base, "method": method,
        "learning_rate": c1.number_input("Learning rate", value=DEFAULTS.learning_rate if
                                         method == "lora" else 5e-5, format="%.6f",
                                         step=1e-5, key="ft_lr", **ui.URL),
        "epochs": c2.number_input("Epochs", value=DEFAULTS.epochs, step=1, key="ft_epochs",
                                  **ui.URL),
        "batch_size": c3.number_input("Batch size", value=DEFAULTS.batch_size, step=1,
                                      key="ft_bs", **ui.URL),
        "max_length": c4.number_input("Max length (tokens)", value=DEFAULTS.max_length, step=16,
                                      key="ft_maxlen", **ui.URL),
        "warmup": c1.number_input("Warm-up (share of steps)", value=DEFAULTS.warmup, step=0.05,
                                  key="ft_warmup", **ui.URL),
        "weight_decay": c2.number_input("Weight decay", value=DEFAULTS.weight_decay,
                                        step=0.01, key="ft_wd", **ui.URL),
        "seed": c3.number_input("Seed", value=DEFAULTS.seed, step=1, key="ft_seed", **ui.URL),
    }
    import torch

    cfg["mixed_precision"] = c4.checkbox("bf16 mixed precision (GPU)", value=True, key="ft_bf16",
                                         disabled=not torch.cuda.is_available(), **ui.URL)
    return cfg


def fine_tune() -> None:
    st.markdown(ui.prose("sentiment", "finetune"))
    with ui.guard("The fine-tuning form"):
        data, data_jsonl = data_choice()
        cfg = hyperparameters()
        st.session_state.setdefault("ft_name", time.strftime("run-%Y%m%d-%H%M%S"))
        name = st.text_input("Run name", key="ft_name", max_chars=64,
                             help="Letters, digits, '.', '_' and '-'; a new name per run.")
        token = (st.text_input("Training token", type="password", key="ft_token")
                 if settings().train_token else None)
        if st.button("Start fine-tuning", type="primary", icon=":material/play_arrow:"):
            if data == "upload" and data_jsonl is None:
                st.error("Upload a data file first.")
                return
            run = jobs.submit(name, dict(cfg, data=data), data_jsonl, token=token)
            st.session_state["job_run"] = run.name  # the Jobs tab opens on the new run
            st.success(f"Run **{run.name}** is {run.state}; follow it in the Jobs tab.")


def run_panel(run: jobs.RunInfo) -> None:
    s = run.status
    eta = s.get("eta_s")
    st.progress(min(1.0, float(s.get("progress") or 0)),
                text=f"**{run.name}** — {run.state}" + (
                    f", epoch {s.get('epoch')}, about {eta:.0f} s left"
                    if run.state == "running" and eta else ""))
    if s.get("error") and run.state in ("failed", "cancelled"):
        st.warning(s["error"], icon=":material/warning:")
    records = jobs.metrics(run.name)
    if records:
        ui.chart(plots.curves_figure(records), f"curves-{run.name}",
                 [r for r in records if r.get("event") == "epoch"], key=f"curves_{run.name}")
    if run.state in ("queued", "running"):
        token = (st.text_input("Training token", type="password", key=f"cancel_tok_{run.name}")
                 if settings().train_token else None)
        if st.button("Cancel", key=f"cancel_{run.name}", icon=":material/stop:"):
            jobs.cancel(run.name, token=token)
            st.rerun()
    with st.expander("Log"):
        st.code(jobs.log_tail(run.name) or "(empty)")


def jobs_view() -> None:
    runs = jobs.list_runs()
    if not runs:
        st.info("No fine-tuning runs yet: start one in the Fine-tune tab.")
        return
    live = any(r.state in ("queued", "running") for r in runs)

    @st.fragment(run_every=2.0 if live else None)
    def panel() -> None:
        with ui.guard("The jobs"):
            current = jobs.list_runs()
            st.dataframe([{"run": r.name, "state": r.state, "base": r.config.get("base"),
                           "method": r.config.get("method"),
                           "progress": f"{float(r.status.get('progress') or 0):.0%}",
                           "val accuracy": r.status.get("best_val_accuracy")}
                          for r in current], hide_index=True)
            names = [r.name for r in current]
            pick = st.selectbox("Run", names, key="job_run")
            run_panel({r.name: r for r in current}[pick or names[0]])

    panel()


def soup_form() -> None:
    """Average finished LoRA runs into a new run (a model soup, as sentiment-minilm is)."""
    lora = [r.name for r in jobs.list_runs(refresh=False)
            if r.state == "done" and r.config.get("method") == "lora"]
    with st.expander("Average runs into a soup"):
        st.caption("A uniform model soup: the average of the runs' weights, one model as fast as "
                   "each run. The shipped sentiment-minilm is a soup of five LoRA runs.")
        chosen = st.multiselect("Finished LoRA runs (two or more, same base model)", lora,
                                key="soup_runs")
        name = st.text_input("Name of the new run", key="soup_name")
        token = (st.text_input("Training token", type="password", key="soup_token")
                 if settings().train_token else None)
        if st.button("Make the soup", disabled=len(chosen) < 2 or not name.strip()):
            with ui.guard("The soup"):
                from lmdemo.training.soup import soup_run

                jobs.check_token(token)
                folder = soup_run(chosen, name.strip())
                st.success(f"Run {folder.name} is ready: pick run:{folder.name} as a model.")


def evaluate_view() -> None:
    st.markdown(ui.prose("sentiment", "evaluate"))
    split = st.radio("Shipped split", ["test", "validation"], key="ev_split", horizontal=True,
                     **ui.URL)
    with ui.guard("The evaluation"):
        ev = get_evaluation(model_id, split)
        m = ev.metrics
        cols = st.columns(5)
        for col, (k, v) in zip(cols, [("accuracy", m.accuracy), ("precision", m.precision),
                                      ("recall", m.recall), ("F1", m.f1), ("reviews", m.n)],
                               strict=True):
            col.metric(k, f"{v:.1%}" if k != "reviews" else v)
        left, right = st.columns([1, 2])
        with left:
            ui.chart(plots.confusion_figure(m.confusion), "confusion matrix",
                     {"true": ["negative", "positive"], "pred_negative": [r[0] for r in
                      m.confusion], "pred_positive": [r[1] for r in m.confusion]}, key="cm")
        with right:
            st.caption(f"{len(ev.misclassified)} misclassified")
            st.dataframe(ev.misclassified, hide_index=True, height=300)
    st.subheader("Runs compared")
    with ui.guard("The comparison"):
        rows = jobs.compare_rows()
        if rows:
            st.dataframe(rows, hide_index=True)
            ui.chart(plots.compare_figure(rows), "runs compared", rows, key="compare")
        else:
            st.caption("Finished runs appear here (and as models in every picker).")
    soup_form()
    st.subheader("Before and after")
    from lmdemo.core.registry import specs_of_kind

    ids = [s.id for s in specs_of_kind("classifier")]
    chosen = st.multiselect("Models", ids, default=ids[:1] + ids[-1:] if len(ids) > 1 else ids,
                            key="ba_models")
    text = st.text_input("Review", EXAMPLES[0], key="ba_text", **ui.URL)
    with ui.guard("The before/after comparison"):
        res = svc.compare_models(text, chosen)
        ui.chart(plots.before_after_figure(res.rows), "before-after", res.rows, key="ba")


with query_tab:
    query()
with tune_tab:
    fine_tune()
with jobs_tab:
    jobs_view()
with eval_tab:
    evaluate_view()
ui.share_hint()
