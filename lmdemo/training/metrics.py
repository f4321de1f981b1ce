"""Binary classification metrics: accuracy, precision, recall, F1 and the confusion matrix.

Plain numpy, positive class = 1, so the numbers match scikit-learn's `accuracy_score`,
`precision_recall_fscore_support(average="binary")` and `confusion_matrix` (checked in the tests);
a ratio with a zero denominator is 0, as scikit-learn's `zero_division=0` gives. `intervals`
gives 95 % intervals of a test figure: Wilson score intervals of the three proportions and a
bootstrap over the confusion cells for each metric (F1 has only the bootstrap).
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


def wilson(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """The Wilson score interval of a proportion successes / n (95 % by default)."""
    if n <= 0:
        return 0.0, 0.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(centre - half), float(centre + half)


def intervals(m: Metrics, draws: int = 10_000, seed: int = 0) -> dict[str, dict[str, float]]:
    """95 % intervals of accuracy, precision, recall and F1: `wilson` (not for F1) and
    `bootstrap` (the 2.5th and 97.5th percentiles of the metric over `draws` multinomial
    resamplings of the confusion cells, seeded). Items are treated as independent."""
    (tn, fp), (fn, tp) = m.confusion
    n = tn + fp + fn + tp
    cells = np.random.default_rng(seed).multinomial(n, np.array([tn, fp, fn, tp]) / max(n, 1),
                                                    size=draws).astype(np.float64)
    btn, bfp, bfn, btp = cells.T
    with np.errstate(divide="ignore", invalid="ignore"):
        boot = {"accuracy": (btp + btn) / n, "precision": np.nan_to_num(btp / (btp + bfp)),
                "recall": np.nan_to_num(btp / (btp + bfn)),
                "f1": np.nan_to_num(2 * btp / (2 * btp + bfp + bfn))}
    out = {}
    for name, values in boot.items():
        lo, hi = np.percentile(values, [2.5, 97.5])
        out[name] = {"bootstrap_low": round(float(lo), 4), "bootstrap_high": round(float(hi), 4)}
    for name, (k, d) in {"accuracy": (tp + tn, n), "precision": (tp, tp + fp),
                         "recall": (tp, tp + fn)}.items():
        lo, hi = wilson(k, d)
        out[name].update(wilson_low=round(lo, 4), wilson_high=round(hi, 4))
    return out
