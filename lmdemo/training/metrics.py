"""Binary classification metrics: accuracy, precision, recall, F1 and the confusion matrix.

Plain numpy, positive class = 1, so the numbers match scikit-learn's `accuracy_score`,
`precision_recall_fscore_support(average="binary")` and `confusion_matrix` (checked in the tests);
a ratio with a zero denominator is 0, as scikit-learn's `zero_division=0` gives.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Metrics:
    """Scores of predictions against true labels (1 = positive)."""

    accuracy: float
    precision: float
    recall: float
    f1: float
    n: int
    confusion: list[list[int]]  # [[true neg, false pos], [false neg, true pos]] (rows = truth)

    def to_json(self) -> dict:
        return asdict(self)


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b else 0.0


def binary_metrics(y_true, y_pred) -> Metrics:
    """Metrics of 0/1 predictions `y_pred` against 0/1 labels `y_true` (same length)."""
    t = np.asarray(y_true, dtype=np.int64).ravel()
    p = np.asarray(y_pred, dtype=np.int64).ravel()
    if t.shape != p.shape:
        raise ValueError(f"{t.size} labels but {p.size} predictions")
    tp = int(((t == 1) & (p == 1)).sum())
    tn = int(((t == 0) & (p == 0)).sum())
    fp = int(((t == 0) & (p == 1)).sum())
    fn = int(((t == 1) & (p == 0)).sum())
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    return Metrics(accuracy=_ratio(tp + tn, t.size), precision=precision, recall=recall,
                   f1=_ratio(2 * tp, 2 * tp + fp + fn), n=int(t.size),
                   confusion=[[tn, fp], [fn, tp]])
