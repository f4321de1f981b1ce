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


def test_shipped_classifier_meets_the_goal_on_independent_reviews():
    """The shipped soup reaches the 90 % goal on the independent reviews (135 of 150), and the
    numbers in its metrics.json (shown on the model card) are what the model gives now."""
    import json

    assert SHIPPED_MODEL, "lmdemo/assets/sentiment-minilm is missing"
    folder = Path(get_spec("sentiment-minilm").location)
    weights = folder / "adapter_model.safetensors"
    assert weights.stat().st_size < 10_000_000 and not list(folder.glob("*.bin"))
    data = reviews.read_path(INDEPENDENT)
    assert len(data) >= 150 and sum(data.labels) == len(data) // 2
    ev = sentiment.evaluate(data, "sentiment-minilm")
    assert ev.metrics.accuracy >= 0.90, ev.misclassified[:10]
    recorded = json.loads((folder / "metrics.json").read_text())["independent"]
    measured = ev.metrics.to_json()
    assert measured.pop("confusion") == recorded.pop("confusion")
    assert measured == pytest.approx(recorded)
    pred = sentiment.classify(["Not bad at all — I loved it."], "sentiment-minilm")[0]
    assert pred.label == "positive"


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
