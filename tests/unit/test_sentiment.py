"""Classify, explain and evaluate: probabilities, integrated-gradient completeness, [CLS]
attention, metrics against scikit-learn, bad input, and the shipped classifier's accuracy goal."""

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score

from lmdemo.core.errors import UserError
from lmdemo.core.registry import embedded_available, get_spec
from lmdemo.training import reviews, sentiment
from tests import helpers
from tests.helpers import train_tiny_run

INDEPENDENT = Path(__file__).resolve().parents[1] / "data" / "independent_reviews.csv"
SHIPPED_MODEL = embedded_available(get_spec("sentiment-minilm"))


@pytest.fixture(scope="module")
def tiny_run(tiny_env_module):
    train_tiny_run("tiny", method="full", epochs=1)
    return "run:tiny"


def test_classify_probabilities_and_order(tiny_run):
    texts = ["A wonderful film.", "Dreadful.", "Fine."]
    preds = sentiment.classify(texts, tiny_run)
    assert len(preds) == 3
    for p in preds:
        assert p.probs["negative"] + p.probs["positive"] == pytest.approx(1.0)
        assert p.label == max(p.probs, key=p.probs.get)
    # batching and length sorting must not reorder the answers
    single = [sentiment.classify([t], tiny_run)[0].probs["positive"] for t in texts]
    assert [p.probs["positive"] for p in preds] == pytest.approx(single, abs=1e-5)


def test_integrated_gradients_are_complete(tiny_run):
    ex = sentiment.explain("Not bad at all, a really good film.", tiny_run, steps=64)
    assert len(ex.tokens) == len(ex.attribution) == len(ex.cls_attention)
    assert ex.tokens[0] == "[CLS]" and ex.tokens[-1] == "[SEP]"
    assert ex.cls_attention.sum() == pytest.approx(1.0, abs=1e-4)
    span = float(np.abs(ex.attribution).sum())
    assert ex.completeness_gap < 0.05 * max(span, 1e-3)  # sum(IG) ≈ f(x) − f(baseline)
    gxi = sentiment.explain("Not bad at all, a really good film.", tiny_run,
                            method="gradient-x-input")
    assert gxi.attribution.shape == ex.attribution.shape and np.isfinite(gxi.attribution).all()


def test_evaluate_matches_sklearn(tiny_run, tmp_path):
    data = reviews.read_path(helpers.write_reviews(tmp_path / "r.csv", repeat=1))
    ev = sentiment.evaluate(data, tiny_run)
    preds = [1 if sentiment.classify([t], tiny_run)[0].label == "positive" else 0
             for t in data.texts]
    assert ev.metrics.accuracy == pytest.approx(accuracy_score(data.labels, preds))
    assert ev.metrics.f1 == pytest.approx(f1_score(data.labels, preds, zero_division=0))
    assert len(ev.misclassified) == ev.metrics.n - round(ev.metrics.accuracy * ev.metrics.n)


def test_before_after(tiny_run):
    out = sentiment.compare_models("Great film.", [tiny_run, tiny_run])
    assert [r["model"] for r in out.rows] == [tiny_run, tiny_run]


@pytest.mark.parametrize("call", [
    lambda m: sentiment.classify([""], m),
    lambda m: sentiment.classify([], m),
    lambda m: sentiment.explain("ok", m, method="shap"),
    lambda m: sentiment.explain("ok", m, steps=0),
    lambda m: sentiment.classify(["ok"], "minilm"),  # an encoder, not a classifier
    lambda m: sentiment.classify(["ok"], "run:../x"),
    lambda m: sentiment.classify(["ok"], "/etc"),  # paths only on the command line
    lambda m: sentiment.evaluate(reviews.Reviews([], []), m),
])
def test_bad_input_is_a_user_error(tiny_run, call):
    with pytest.raises(UserError):
        call(tiny_run)


REPORTED_RT_TEST_ACCURACY = 0.845  # README and MODEL_CARD (1,190 snippets, scored once)


def _recorded_equals_measured(recorded: dict, ev) -> None:
    measured = ev.metrics.to_json()
    recorded = {k: v for k, v in recorded.items() if k != "intervals"}
    assert measured.pop("confusion") == recorded.pop("confusion")
    assert measured == pytest.approx(recorded)


def test_shipped_classifier_is_one_small_adapter_and_its_challenge_figures_hold():
    """The shipped soup is one safetensors adapter under 10 MB; the figures in its metrics.json
    (shown on the model card) for the independently written reviews (a challenge set) are what
    the model gives now, and a double negation still reads as praise."""
    import json

    assert SHIPPED_MODEL, "lmdemo/assets/sentiment-minilm is missing"
    folder = Path(get_spec("sentiment-minilm").location)
    weights = folder / "adapter_model.safetensors"
    assert weights.stat().st_size < 10_000_000 and not list(folder.glob("*.bin"))
    data = reviews.read_path(INDEPENDENT)
    assert len(data) >= 150 and sum(data.labels) == len(data) // 2
    ev = sentiment.evaluate(data, "sentiment-minilm")
    recorded = json.loads((folder / "metrics.json").read_text())
    _recorded_equals_measured(recorded["challenge_independent"], ev)
    assert ev.metrics.accuracy >= 0.85, ev.metrics  # 89.3 % when shipped; guarded with a margin
    pred = sentiment.classify(["Not bad at all — I loved it."], "sentiment-minilm")[0]
    assert pred.label == "positive"


@pytest.mark.skipif(not __import__("lmdemo.core.assets", fromlist=["x"]).is_fetched(
    reviews.RT_ID), reason="run `python -m lmdemo fetch rotten-tomatoes` first (CI does)")
def test_shipped_classifier_on_the_rotten_tomatoes_test_split():
    """The shipped model's Rotten Tomatoes test figures are what it gives now, and stay within
    2 points of the accuracy the README reports."""
    import json

    folder = Path(get_spec("sentiment-minilm").location)
    ev = sentiment.evaluate(reviews.rotten_tomatoes("test"), "sentiment-minilm")
    assert ev.metrics.n == 1190
    _recorded_equals_measured(json.loads((folder / "metrics.json").read_text())["test"], ev)
    assert ev.metrics.accuracy >= REPORTED_RT_TEST_ACCURACY - 0.02, ev.metrics


def test_what_the_page_asks(tiny_run):
    from lmdemo.training import finetune

    assert finetune.defaults("full").learning_rate < finetune.defaults("lora").learning_rate
    assert finetune.defaults("lora") == finetune.TrainConfig()
    assert set(finetune.FORM_STEPS) <= {f for f in finetune.TrainConfig.__dataclass_fields__}
    assert finetune.hardware().cuda in (True, False)
    form = sentiment.train_form()
    assert form.sources[:2] == ["shipped", "upload"] and form.token is False
    with pytest.raises(UserError, match="Upload"):
        sentiment.start_run("x", {}, "upload", None)
    data = b"review,stars\nGreat fun.,positive\nDull.,negative\n"
    cols = sentiment.upload_columns(data, "r.csv")
    assert cols.names[cols.text] == "review" and cols.names[cols.label] == "stars"
    assert sentiment.training_upload(data, "r.csv", "review", "stars").labels == [1, 0]
    view = sentiment.jobs_view("no-such-run")
    assert view.names and view.detail.name == view.names[0] and not view.live
    assert view.detail.progress == 1.0 and not view.detail.active and view.detail.eta_s is None
    assert "tiny" not in sentiment.soup_candidates()  # a full fine-tuning run
    ids, default = sentiment.classifier_choices()
    assert tiny_run in ids and set(default) <= set(ids)
    ev = sentiment.evaluate_split("validation", tiny_run)
    assert list(ev.scores()) == ["accuracy", "precision", "recall", "f1", "reviews"]
    assert sum(ev.confusion_columns()["pred_negative"] + ev.confusion_columns()["pred_positive"]) \
        == ev.metrics.n


def test_batch_upload_says_which_column_and_keeps_row_numbers(tiny_run):
    """A `review` column is picked (and named), blank rows are counted, not silently dropped, and
    each prediction keeps its row in the file (1 = the first row under the header)."""
    data = b"id,review,label\n1,A wonderful film.,1\n2,,0\n3,   ,1\n4,Dreadful.,0\n"
    res = sentiment.classify_upload(data, "reviews.csv", tiny_run)
    assert res.text_column == "review"
    assert res.blank_rows == 2
    assert [r["row"] for r in res.rows] == [1, 4]
    assert [r["text"] for r in res.rows] == ["A wonderful film.", "Dreadful."]
    assert [r["true_label"] for r in res.rows] == ["positive", "negative"]


LONG_REVIEW = "A warm and funny film with a cast that clearly loved making it. " * 30


def test_a_long_review_says_how_much_of_it_was_read(tiny_run):
    """The tiny classifier reads at most 128 tokens: a longer review is cut, and says so in the
    prediction, its JSON (the CLI's and the API's answer) and the explanation."""
    long, short = sentiment.classify([LONG_REVIEW, "A lovely film."], tiny_run)
    assert long.max_length == 128 and long.tokens_read == 128 and long.tokens_total > 300
    assert long.truncated and not long.unsure
    data = long.to_json()
    assert data["truncated"] is True and data["tokens_read"] == 128
    assert data["tokens_total"] == long.tokens_total
    assert any(f"first 128 of the review's {long.tokens_total} tokens" in w
               for w in data["warnings"])
    assert short.tokens_read == short.tokens_total == 6 and not short.truncated  # [CLS] … [SEP]
    assert short.to_json()["warnings"] == []
    ex = sentiment.explain(LONG_REVIEW, tiny_run, method="gradient-x-input")
    assert len(ex.tokens) == ex.prediction.tokens_read == 128 and ex.truncated


@pytest.mark.parametrize("text", ["这部电影真好看，演员的表演非常精彩。", "😍😍😍🎬🍿👍"])
def test_unreadable_text_is_flagged_everywhere(tiny_run, text, capsys):
    """Chinese and emoji are mostly [UNK] to MiniLM's vocabulary: the prediction is marked unsure
    with a warning — in the service, the HTTP API's answer and `classify --json`."""
    import json

    from lmdemo import api
    from lmdemo.cli import main

    pred = sentiment.classify([text], tiny_run)[0]
    assert pred.unknown_share > sentiment.UNKNOWN_LIMIT and pred.unsure
    assert api.classify(text, tiny_run)[0]["unsure"] is True
    assert main(["classify", "--model", tiny_run, "--text", text, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["unsure"] is True and "unknown to the model" in out["warnings"][0]
    english = sentiment.classify(["A lovely film."], tiny_run)[0]
    assert english.unknown_share == 0 and not english.unsure


def test_the_duration_is_estimated_before_a_run(tiny_run):
    """Before any run of a base the estimate says it has no rate; a finished run of that base and
    method (the module's tiny run) gives this server's own rates."""
    from lmdemo.training import duration, jobs

    config = {"base": helpers.TINY_ID, "method": "lora", "epochs": 2, "batch_size": 16,
              "learning_rate": 1e-3, "max_length": 32}
    est = sentiment.estimate_run(config, "shipped")
    shipped = reviews.shipped("train")
    assert est.seconds is None and est.source == "" and est.reviews == len(shipped)
    assert est.steps == -(-len(shipped) // 16) and len(shipped) < est.train_tokens <= 32 * len(
        shipped)
    full = sentiment.estimate_run(dict(config, method="full"), "shipped")
    status = jobs.get_run("tiny").status
    assert full.source == "run:tiny" and full.rates.tokens_per_s == status["train_tokens_per_s"]
    assert full.seconds == pytest.approx(duration.run_seconds(
        full.train_tokens, full.steps, full.val_tokens, 2, full.rates))
    with pytest.raises(UserError, match="Upload"):
        sentiment.estimate_run(config, "upload")


def test_sentiment_charts_speak_the_readers_language():
    """Chart words (axes, legends, class names, the HTML legend) follow set_language; the data
    stays as it is. Set in a thread, as a Streamlit script run sets it."""
    import threading

    from lmdemo.plots import common
    from lmdemo.plots import sentiment as plots

    out = {}

    def draw(lang):
        common.set_language(lang)
        probs = plots.probs_figure({"negative": 0.25, "positive": 0.75})
        curves = plots.curves_figure([{"event": "step", "step": 1, "loss": 0.7},
                                      {"event": "epoch", "step": 1, "train_loss": 0.7,
                                       "val_accuracy": 0.5}])
        out[lang] = (list(probs.data[0].y), probs.layout.xaxis.title.text,
                     [t.name for t in curves.data], curves.layout.xaxis.title.text,
                     plots.attribution_html(["[CLS]", "good", "[SEP]"], [0, 1, 0]),
                     list(plots.confusion_figure([[1, 2], [3, 4]]).data[0].x))

    for lang in ("zh", "en"):
        thread = threading.Thread(target=draw, args=(lang,))
        thread.start()
        thread.join()
    zh, en = out["zh"], out["en"]
    assert zh[0] == ["负面", "正面"] and en[0] == ["negative", "positive"]
    assert (zh[1], zh[3]) == ("概率", "步数") and (en[1], en[3]) == ("probability", "step")
    assert zh[2] == ["训练损失", "每轮平均损失", "验证准确率"]
    assert "偏向正面" in zh[4] and "towards positive" in en[4] and "good" in zh[4]
    assert zh[5] == ["预测为负面", "预测为正面"] and en[5] == ["predicted negative",
                                                             "predicted positive"]
