"""Query a sentiment classifier: labels and probabilities, token attributions, evaluation.

`classify` returns the label and both probabilities for each review; `explain` adds a per-token
attribution — integrated gradients (computed here in torch: the gradient of the predicted class's
logit along a straight path from a [PAD]-embedding baseline to the review's word embeddings,
averaged with the trapezoid rule and multiplied by the input minus the baseline) or plain
gradient × input — beside the attention that [CLS] pays to each token in the last layer, for
comparison. `evaluate` scores a classifier on labelled reviews. A model is a registry id
(`sentiment-minilm`, `run:<name>`); the command line may also pass a run folder path.

The last part answers what the Sentiment page asks, one call per panel: the choices of the
fine-tuning form (`train_form`), an uploaded training file's columns and reviews, starting a run
(`start_run`), the jobs and one run's progress (`jobs_view`), soups, and the classifiers to compare.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from lmdemo.core.config import settings
from lmdemo.core.errors import UserError
from lmdemo.core.validate import unicode_text
from lmdemo.training.metrics import Metrics, binary_metrics
from lmdemo.training.reviews import FORMATS, Reviews

LABEL_NAMES = ("negative", "positive")
METHODS = ("integrated-gradients", "gradient-x-input")
DEFAULT_MODEL = "sentiment-minilm"
SPLITS = ("test", "validation")  # shipped splits a classifier is evaluated on
UPLOAD_TYPES = FORMATS  # file types a review upload may have
RUN_NAME_CHARS = 64  # longest run name (lmdemo.core.registry.RUN_NAME)
JOBS_REFRESH_S = 2.0  # how often a page redraws the jobs while one is queued or running
SOUP_MIN_RUNS = 2  # a soup averages at least this many runs
UNKNOWN_LIMIT = 0.2  # above this share of [UNK] tokens a review is not read well enough to judge
MAX_TOKENS = 512  # the most tokens `classify` reads of one review (or the model's own limit)
EXPLAIN_TOKENS = 256  # ... and `explain` (integrated gradients run the model ~33 times)


@dataclass(frozen=True)
class Prediction:
    """One review's label and class probabilities, and how much of the review the model read."""

    label: str  # "negative" or "positive"
    probs: dict  # {"negative": p, "positive": 1 - p}
    tokens_read: int = 0  # tokens the classifier read ([CLS] and [SEP] included)
    tokens_total: int = 0  # tokens of the whole review; more than tokens_read when it was cut
    max_length: int = 0  # the most tokens the classifier reads of one review
    unknown_share: float = 0.0  # share of the text tokens that are [UNK] (unreadable)

    @property
    def truncated(self) -> bool:
        """Only the beginning of the review was read (it is longer than max_length tokens)."""
        return self.tokens_total > self.tokens_read

    @property
    def unsure(self) -> bool:
        """Too much of the review is unknown to the model (a language or emoji it never
        learned): its label is a guess and must be shown as one."""
        return self.unknown_share > UNKNOWN_LIMIT

    def warnings(self) -> list[str]:
        """What a reader of the label must know (English: the CLI and the HTTP API)."""
        out = []
        if self.unsure:
            out.append(f"{self.unknown_share:.0%} of this review's tokens are unknown to the model "
                       f"([UNK]): the label is a guess, not an answer.")
        if self.truncated:
            out.append(f"Only the first {self.tokens_read} of the review's {self.tokens_total} "
                       f"tokens were read (the model reads at most {self.max_length}); the rest "
                       "did not count.")
        return out

    def to_json(self) -> dict:
        return {"label": self.label, "probs": dict(self.probs), "unsure": self.unsure,
                "unknown_share": round(self.unknown_share, 4), "tokens_read": self.tokens_read,
                "tokens_total": self.tokens_total, "max_length": self.max_length,
                "truncated": self.truncated, "warnings": self.warnings()}


@dataclass
class Explanation:
    """A prediction with per-token attributions and [CLS] attention."""

    tokens: list[str]
    attribution: np.ndarray  # (T,) signed: > 0 pushes towards the predicted label
    cls_attention: np.ndarray  # (T,) last layer, mean over heads, [CLS] row; sums to 1
    prediction: Prediction
    method: str
    completeness_gap: float = 0.0  # |sum(IG) - (f(x) - f(baseline))|, small when steps suffice

    @property
    def unknown_share(self) -> float:
        """The share of the review's tokens that are [UNK] (unreadable)."""
        return self.prediction.unknown_share

    @property
    def unsure(self) -> bool:
        """Too much of the review is unknown to the model (a language it never learned, say):
        its label is a guess and should be shown as one."""
        return self.prediction.unsure

    @property
    def truncated(self) -> bool:
        """Only the beginning of the review was read and explained."""
        return self.prediction.truncated

    def columns(self) -> dict:
        """token, attribution and cls_attention: the CSV export."""
        return {"token": self.tokens, "attribution": self.attribution,
                "cls_attention": self.cls_attention}

    def to_json(self) -> dict:
        return {"tokens": self.tokens, "attribution": [float(x) for x in self.attribution],
                "cls_attention": [float(x) for x in self.cls_attention],
                "method": self.method, "completeness_gap": self.completeness_gap,
                **self.prediction.to_json()}


@dataclass
class Evaluation:
    """Scores of a classifier on labelled reviews, with the reviews it got wrong."""

    metrics: Metrics
    misclassified: list[dict] = field(default_factory=list)  # text, label, predicted, p_positive

    def scores(self) -> dict:
        """accuracy, precision, recall, f1 (shares) and reviews (a count), in that order."""
        m = self.metrics
        return {"accuracy": m.accuracy, "precision": m.precision, "recall": m.recall,
                "f1": m.f1, "reviews": m.n}

    def confusion_columns(self) -> dict:
        """The confusion matrix as columns (rows = the true label): the CSV export."""
        return {"true": list(LABEL_NAMES), "pred_negative": [r[0] for r in self.metrics.confusion],
                "pred_positive": [r[1] for r in self.metrics.confusion]}

    def to_json(self) -> dict:
        return {**self.metrics.to_json(), "misclassified": self.misclassified}


def _run_folder_spec(path: Path):
    """A classifier spec for a run folder given on the command line."""
    from lmdemo.core.registry import ModelSpec

    model_dir = path / "model" if (path / "model").is_dir() else path
    base = "minilm"
    for cfg_file in (path / "config.json", path.parent / "config.json"):
        try:
            base = str(json.loads(cfg_file.read_text()).get("base", base))
            break
        except (OSError, ValueError):
            continue
    if not ((model_dir / "adapter_config.json").exists() or (model_dir / "config.json").exists()):
        raise UserError(f"{str(path)!r} holds no trained model (no model/ folder with "
                        "adapter_config.json or config.json); has the run finished?")
    return ModelSpec(f"path:{model_dir.resolve()}", "classifier", "run", f"run folder {path.name}",
                     "hf-classifier", str(model_dir.resolve()), attentions=True,
                     learned_positions=True, base=base)


def load_classifier(model: str, allow_path: bool = False):
    """The loaded classifier for a registry id, or (command line only) a run folder path."""
    from lmdemo.core import models

    if allow_path and model and ("/" in model or model.startswith(".")) and Path(model).is_dir():
        return models.load_spec(_run_folder_spec(Path(model)))
    return models.load(model or DEFAULT_MODEL, kinds=("classifier",))


def _check_texts(texts: list[str]) -> list[str]:
    if isinstance(texts, str):
        texts = [texts]
    limit = settings().max_text_chars
    out = []
    for i, text in enumerate(texts):
        text = (text or "").strip()
        if not text:
            raise UserError(f"Review {i + 1} is empty: type a review to classify.")
        if len(text) > limit:
            raise UserError(f"Review {i + 1} has {len(text)} characters; the limit is {limit}.")
        out.append(unicode_text(text, f"review {i + 1}"))
    if not out:
        raise UserError("Give at least one review to classify.")
    return out


def _encode(loaded, texts: list[str], max_length: int = MAX_TOKENS, count: bool = True):
    """(token ids cut at the limit, each review's full token count (with `count`; else []),
    the limit)."""
    limit = min(max_length, loaded.max_positions)
    tok = loaded.tokenizer
    encoded = tok(texts, truncation=True, max_length=limit)["input_ids"]
    totals = [len(ids) for ids in tok(texts, return_attention_mask=False)["input_ids"]] \
        if count else []
    return encoded, totals, limit


def _positive_probs(loaded, encoded: list[list[int]], batch_size: int = 32) -> np.ndarray:
    from lmdemo.training.finetune import predict_encoded

    pad_id = loaded.tokenizer.pad_token_id or 0
    return predict_encoded(loaded.model, encoded, pad_id, loaded.device, batch_size)


def _prediction(p_pos: float, ids: list[int] | None = None, total: int = 0, limit: int = 0,
                tokenizer=None) -> Prediction:
    p_pos = float(p_pos)
    read = len(ids) if ids is not None else 0
    return Prediction(LABEL_NAMES[int(p_pos >= 0.5)], {"negative": 1.0 - p_pos, "positive": p_pos},
                      read, max(read, total), limit,
                      unknown_share(tokenizer, ids) if tokenizer is not None and ids else 0.0)


def classify(texts: list[str] | str, model: str = DEFAULT_MODEL,
             allow_path: bool = False) -> list[Prediction]:
    """Label and probabilities of each review, in input order, with how many of its tokens were
    read (a review longer than the model's limit is cut) and how many are unknown to it."""
    texts = _check_texts(texts)
    loaded = load_classifier(model, allow_path)
    encoded, totals, limit = _encode(loaded, texts)
    probs = _positive_probs(loaded, encoded)
    return [_prediction(p, ids, total, limit, loaded.tokenizer)
            for p, ids, total in zip(probs, encoded, totals, strict=True)]


def evaluate(data: Reviews, model: str = DEFAULT_MODEL, allow_path: bool = False,
             max_misclassified: int = 200) -> Evaluation:
    """Accuracy, precision, recall, F1, confusion matrix and the misclassified reviews."""
    if len(data) == 0:
        raise UserError("There are no reviews to evaluate on.")
    loaded = load_classifier(model, allow_path)
    probs = _positive_probs(loaded, _encode(loaded, data.texts, count=False)[0])
    preds = (probs >= 0.5).astype(int)
    wrong = [{"text": t, "label": LABEL_NAMES[y], "predicted": LABEL_NAMES[p],
              "p_positive": round(float(q), 4)}
             for t, y, p, q in zip(data.texts, data.labels, preds, probs, strict=True) if y != p]
    return Evaluation(binary_metrics(data.labels, preds), wrong[:max_misclassified])


def explain(text: str, model: str = DEFAULT_MODEL, method: str = "integrated-gradients",
            steps: int = 32, allow_path: bool = False,
            max_tokens: int = EXPLAIN_TOKENS) -> Explanation:
    """Per-token attribution of the predicted label and the [CLS] attention of the last layer,
    of the first `max_tokens` tokens of the review (the prediction says how many it has)."""
    import torch

    if method not in METHODS:
        raise UserError(f"Unknown attribution method {method!r}: use one of {', '.join(METHODS)}.")
    if not 1 <= int(steps) <= 512:
        raise UserError("Integrated-gradient steps must be between 1 and 512.")
    text = _check_texts([text])[0]
    loaded = load_classifier(model, allow_path)
    tok, net, dev = loaded.tokenizer, loaded.model, loaded.device
    limit = min(max_tokens, loaded.max_positions)
    enc = tok(text, truncation=True, max_length=limit, return_tensors="pt")
    total = len(tok(text, return_attention_mask=False)["input_ids"])
    ids = enc["input_ids"].to(dev)  # (1, T)
    mask = enc["attention_mask"].to(dev)  # (1, T)
    tokens = tok.convert_ids_to_tokens(ids[0].tolist())
    with torch.inference_mode():
        out = net(input_ids=ids, attention_mask=mask, output_attentions=True)
        probs = torch.softmax(out.logits.float(), -1)[0]  # (2,)
        att = out.attentions[-1][0].float()  # (heads, T, T)
        cls_att = att[:, 0, :].mean(0).cpu().numpy()  # (T,)
    target = int(probs.argmax())
    emb_layer = net.get_input_embeddings()
    with torch.enable_grad():
        x = emb_layer(ids).detach().float()  # (1, T, H)
        pad = tok.pad_token_id or 0
        base_ids = torch.where((ids == tok.cls_token_id) | (ids == tok.sep_token_id), ids,
                               torch.full_like(ids, pad))  # keep [CLS]/[SEP], pad the words
        baseline = emb_layer(base_ids).detach().float()  # (1, T, H)
        if method == "gradient-x-input":
            alphas = torch.ones(1, device=dev)
        else:
            alphas = torch.linspace(0.0, 1.0, int(steps) + 1, device=dev)  # (S+1,)
        grads, logits_path = [], []
        for chunk in alphas.split(16):
            path = (baseline + chunk.view(-1, 1, 1) * (x - baseline)).requires_grad_(True)
            logits = net(inputs_embeds=path.to(x.dtype if dev == "cpu" else loaded.dtype),
                         attention_mask=mask.expand(len(chunk), -1)).logits.float()  # (s, 2)
            (g,) = torch.autograd.grad(logits[:, target].sum(), path)  # (s, T, H)
            grads.append(g.detach())
            logits_path.append(logits[:, target].detach())
        g_all = torch.cat(grads)  # (S+1, T, H)
        if method == "gradient-x-input":
            avg = g_all[0]
            attr = (avg * x[0]).sum(-1)  # (T,)
            gap = 0.0
        else:
            avg = ((g_all[:-1] + g_all[1:]) / 2).mean(0)  # trapezoid rule, (T, H)
            attr = (avg * (x[0] - baseline[0])).sum(-1)  # (T,)
            ends = torch.cat(logits_path)
            gap = float(abs(attr.sum() - (ends[-1] - ends[0])))
    attr_np = attr.cpu().numpy().astype(np.float64)
    return Explanation(tokens, attr_np, cls_att.astype(np.float64),
                       _prediction(float(probs[1]), ids[0].tolist(), total, limit, tok), method,
                       gap)


def unknown_share(tokenizer, ids: list[int]) -> float:
    """The share of a review's tokens the classifier's vocabulary does not know ([UNK])."""
    from lmdemo.lab.tokenization import split_ids

    return split_ids(tokenizer, ids).unknown_share


@dataclass(frozen=True)
class BeforeAfter:
    """The same review classified by two models."""

    text: str
    rows: list[dict]  # model, label, p_positive

    def to_json(self) -> dict:
        return asdict(self)


def compare_models(text: str, models: list[str]) -> BeforeAfter:
    """One review through several classifiers (e.g. before and after fine-tuning)."""
    if not models:
        raise UserError("Pick at least one model to compare.")
    text = _check_texts([text])[0]
    rows = []
    for m in models:
        pred = classify([text], m)[0]
        rows.append({"model": m, "label": pred.label, "p_positive": pred.probs["positive"]})
    return BeforeAfter(text, rows)


@dataclass(frozen=True)
class BatchPredictions:
    """The predictions for an uploaded file, and how it was read."""

    rows: list[dict]  # one per review: its row in the file, text, label, P(positive), unsure,
    #                   tokens read of tokens in all[, true label]
    text_column: str  # the column the reviews were read from
    blank_rows: int  # rows skipped because that column was empty
    guessed: bool = True  # the column was picked by its name (no column was asked for)
    max_length: int = 0  # the most tokens of a review the classifier reads

    @property
    def truncated(self) -> int:
        """Reviews of which only the beginning was read."""
        return sum(r["tokens_total"] > r["tokens_read"] for r in self.rows)

    @property
    def unsure(self) -> int:
        """Reviews mostly unknown to the model (their label is a guess)."""
        return sum(bool(r["unsure"]) for r in self.rows)


def classify_upload(data: bytes, filename: str, model: str = DEFAULT_MODEL,
                    text_col: str | None = None) -> BatchPredictions:
    """Predictions for every row of an uploaded CSV / TSV / JSONL (read from memory): one dict
    per review with its row number in the file (1 = the first row under the header), its text,
    label and P(positive), plus the true label when the file has one; blank rows are counted."""
    from lmdemo.training.reviews import LABEL_COLUMNS, TEXT_COLUMNS, _frame, _label, guess_column

    frame = _frame(data, filename)
    names = list(frame.columns)
    guessed = not text_col
    text_col = text_col or guess_column(names, TEXT_COLUMNS) or (names[0] if len(names) == 1
                                                                  else None)
    if not text_col or text_col not in names:
        raise UserError(f"{filename!r} has no text column among {names[:12]}; name it 'text'.")
    texts = [str(t).strip() for t in frame[text_col].tolist()]
    keep = [i for i, t in enumerate(texts) if t and t != "nan"]
    if not keep:
        raise UserError(f"{filename!r} has no reviews in column {text_col!r}.")
    preds = classify([texts[i] for i in keep], model)
    label_col = guess_column(names, LABEL_COLUMNS)
    rows = []
    for i, pred in zip(keep, preds, strict=True):
        row = {"row": i + 1, "text": texts[i], "label": pred.label,
               "p_positive": round(pred.probs["positive"], 4), "unsure": pred.unsure,
               "tokens_read": pred.tokens_read, "tokens_total": pred.tokens_total}
        if label_col:
            try:
                row["true_label"] = LABEL_NAMES[_label(frame[label_col].iloc[i], i, label_col)]
            except UserError:
                row["true_label"] = ""
        rows.append(row)
    return BatchPredictions(rows, str(text_col), len(texts) - len(keep), guessed,
                            preds[0].max_length)


def evaluate_split(split: str, model: str = DEFAULT_MODEL) -> Evaluation:
    """`evaluate` on a split of the shipped reviews (see SPLITS)."""
    from lmdemo.training.reviews import shipped

    return evaluate(shipped(split), model)


def classifier_choices() -> tuple[list[str], list[str]]:
    """Every usable classifier, and the two compared by default (the first and the newest)."""
    from lmdemo.core.registry import specs_of_kind

    ids = [s.id for s in specs_of_kind("classifier")]
    return ids, ids[:1] + ids[-1:] if len(ids) > 1 else ids


def token_required() -> bool:
    """Whether training on this server needs the training token (LMDEMO_TRAIN_TOKEN)."""
    return bool(settings().train_token)


@dataclass(frozen=True)
class TrainForm:
    """What the fine-tuning form offers on this server."""

    sources: list[str]  # "shipped", "upload" and, when they can be loaded, the Rotten Tomatoes sets, "imdb"
    bases: list[str]  # embedded encoders to fine-tune
    hub: bool  # another encoder can be named by its hub id
    cuda: bool  # bf16 mixed precision can be asked for
    token: bool  # starting a run needs the training token


def train_form() -> TrainForm:
    """The data sources, base encoders and options the fine-tuning form can offer now."""
    from lmdemo.core.assets import is_fetched
    from lmdemo.core.hub import dataset_available, hub_reachable
    from lmdemo.core.registry import specs_of_kind
    from lmdemo.training.finetune import hardware
    from lmdemo.training.reviews import IMDB_ID, MIX_ID, RT_ID

    sources = ["shipped", "upload"] + ([RT_ID, MIX_ID] if is_fetched(RT_ID) else []) + (
        ["imdb"] if dataset_available(IMDB_ID) else [])
    return TrainForm(sources, [s.id for s in specs_of_kind("encoder")], hub_reachable(),
                     hardware().cuda, token_required())


@dataclass(frozen=True)
class UploadColumns:
    """An uploaded training file's columns, with the text and label columns guessed."""

    names: list[str]
    text: int  # index in names of the guessed text column
    label: int  # ... and of the label column


def upload_columns(data: bytes, filename: str) -> UploadColumns:
    from lmdemo.training.reviews import LABEL_COLUMNS, TEXT_COLUMNS, columns, guess_column

    names = columns(data, filename)
    text = guess_column(names, TEXT_COLUMNS) or names[0]
    label = guess_column(names, LABEL_COLUMNS) or names[-1]
    return UploadColumns(names, names.index(text), names.index(label))


def training_upload(data: bytes, filename: str, text_col: str, label_col: str) -> Reviews:
    """The labelled reviews of an uploaded training file (a UserError says what is wrong)."""
    from lmdemo.training.reviews import parse

    return parse(data, filename, text_col, label_col)


def new_run_name() -> str:
    """A fresh run name from the clock, e.g. run-20250101-120000."""
    return time.strftime("run-%Y%m%d-%H%M%S")


def estimate_run(config: dict, data: str, data_jsonl: str | None = None):
    """How long a run with these settings would take on this server, before it starts
    (`lmdemo.training.duration.Estimate`; its `seconds` is None when no rate is known yet)."""
    from lmdemo.core import models
    from lmdemo.core.device import pick_device
    from lmdemo.training import duration, jobs, reviews
    from lmdemo.training.finetune import TrainConfig

    cfg = TrainConfig.from_json(config)
    uploaded = None
    if data == "upload":
        if data_jsonl is None:
            raise UserError("Upload a data file first.")
        uploaded = reviews.parse(data_jsonl.encode("utf-8"), "data.jsonl")
    train, val = reviews.for_run(dict(config, data=data), cfg.seed, uploaded)
    loaded = models.load(cfg.base, kinds=("encoder",))  # its tokenizer counts the tokens
    limit = min(int(cfg.max_length), loaded.max_positions)
    lengths = [len(ids) for ids in loaded.tokenizer(
        train.texts, truncation=True, max_length=limit, return_attention_mask=False)["input_ids"]]
    val_lengths = [len(ids) for ids in loaded.tokenizer(
        val.texts, truncation=True, max_length=limit, return_attention_mask=False)["input_ids"]]
    return duration.estimate(cfg.base, cfg.method, pick_device(), cfg.epochs, cfg.batch_size,
                             lengths, val_lengths, jobs.list_runs(refresh=False))


def start_run(name: str, config: dict, data: str, data_jsonl: str | None = None,
              token: str | None = None):
    """Queue a fine-tuning run on `data` ("shipped", "rotten-tomatoes", "imdb" or "upload" with
    `data_jsonl`)."""
    from lmdemo.training import jobs

    if data == "upload" and data_jsonl is None:
        raise UserError("Upload a data file first.")
    return jobs.submit(name, dict(config, data=data), data_jsonl, token=token)


@dataclass
class RunDetail:
    """One run as a page follows it."""

    name: str
    state: str
    progress: float  # 0..1
    epoch: int | None
    eta_s: float | None  # seconds left, while running (else None)
    error: str  # why it failed or was cancelled, else ""
    records: list[dict]  # metrics.jsonl: step and epoch records
    log: str  # the end of its log
    active: bool  # queued or running (it can be cancelled)

    @property
    def epochs(self) -> list[dict]:
        return [r for r in self.records if r.get("event") == "epoch"]


@dataclass
class JobsView:
    """Every run as a table, and the chosen one in detail."""

    rows: list[dict]  # run, state, base, method, progress, val accuracy
    names: list[str]
    live: bool  # a run is queued or running: the view should refresh
    detail: RunDetail | None  # the chosen run (the first when none or an unknown one is chosen)


def jobs_view(chosen: str | None = None) -> JobsView:
    """The fine-tuning runs, newest state, with `chosen` (or the first) in detail."""
    from lmdemo.training import jobs

    runs = jobs.list_runs()
    rows = [{"run": r.name, "state": r.state, "base": r.config.get("base"),
             "method": r.config.get("method"),
             "progress": f"{float(r.status.get('progress') or 0):.0%}",
             "val accuracy": r.status.get("best_val_accuracy")} for r in runs]
    by_name = {r.name: r for r in runs}
    run = by_name.get(chosen) or (runs[0] if runs else None)
    detail = None
    if run is not None:
        s = run.status
        eta = s.get("eta_s") if run.state == "running" else None
        if isinstance(eta, (int, float)):  # counted down since the job last wrote its status
            eta = max(0.0, eta - max(0.0, time.time() - float(s.get("updated") or time.time())))
        detail = RunDetail(
            run.name, run.state, min(1.0, float(s.get("progress") or 0)), s.get("epoch"), eta,
            str(s.get("error") or "") if run.state in ("failed", "cancelled")
            else "", jobs.metrics(run.name), jobs.log_tail(run.name),
            run.state in ("queued", "running"))
    return JobsView(rows, list(by_name), any(r.state in ("queued", "running") for r in runs),
                    detail)


def soup_candidates() -> list[str]:
    """Finished LoRA runs: what a soup can average."""
    from lmdemo.training import jobs

    return [r.name for r in jobs.list_runs(refresh=False)
            if r.state == "done" and r.config.get("method") == "lora"]


def make_soup(runs: list[str], name: str, token: str | None = None) -> str:
    """Average finished LoRA runs into a new run (a uniform model soup); its name."""
    from lmdemo.training import jobs
    from lmdemo.training.soup import soup_run

    jobs.check_token(token)
    return soup_run(runs, name.strip()).name
