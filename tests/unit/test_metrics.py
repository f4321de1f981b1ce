"""Binary metrics agree with scikit-learn, including the zero-denominator corner cases."""

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

from lmdemo.training.metrics import binary_metrics


@pytest.mark.parametrize("seed", range(5))
def test_matches_sklearn_on_random_labels(seed):
    rng = np.random.default_rng(seed)
    y, p = rng.integers(0, 2, 200), rng.integers(0, 2, 200)
    m = binary_metrics(y, p)
    prec, rec, f1, _ = precision_recall_fscore_support(y, p, average="binary", zero_division=0)
    assert m.accuracy == pytest.approx(accuracy_score(y, p))
    assert (m.precision, m.recall, m.f1) == pytest.approx((prec, rec, f1))
    assert m.confusion == confusion_matrix(y, p, labels=[0, 1]).tolist()
    assert m.n == 200


def test_no_positive_predictions_gives_zero_not_nan():
    m = binary_metrics([1, 0, 1], [0, 0, 0])
    prec, rec, f1, _ = precision_recall_fscore_support([1, 0, 1], [0, 0, 0], average="binary",
                                                       zero_division=0)
    assert (m.precision, m.recall, m.f1) == (prec, rec, f1) == (0.0, 0.0, 0.0)
    assert m.accuracy == pytest.approx(1 / 3)


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError):
        binary_metrics([0, 1], [1])


def test_wilson_intervals_match_scipy_and_the_bootstrap_brackets_the_estimate():
    from scipy.stats import binomtest

    from lmdemo.training.metrics import binary_metrics, intervals, wilson

    for k, n in ((907, 1190), (0, 10), (10, 10), (512, 621)):
        ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        assert wilson(k, n) == pytest.approx((ci.low, ci.high), abs=1e-6)
    truth = [0] * 504 + [1] * 686
    preds = [0] * 395 + [1] * 109 + [0] * 174 + [1] * 512
    m = binary_metrics(truth, preds)
    out = intervals(m)
    for name in ("accuracy", "precision", "recall", "f1"):
        assert out[name]["bootstrap_low"] < getattr(m, name) < out[name]["bootstrap_high"]
    assert out["accuracy"]["wilson_low"] == pytest.approx(0.7372, abs=1e-4)
    assert intervals(m) == out  # seeded
    assert "wilson_low" not in out["f1"]


def test_the_evaluate_command_reports_intervals_around_its_figures(capsys):
    import json

    from lmdemo import cli

    assert cli.main(["evaluate", "--data", "shipped", "--split", "validation", "--limit", "40",
                     "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n"] == 40
    for name in ("accuracy", "precision", "recall", "f1"):
        ci = out["intervals"][name]
        assert ci["bootstrap_low"] <= out[name] <= ci["bootstrap_high"]
    assert out["intervals"]["accuracy"]["wilson_low"] < out["accuracy"]
