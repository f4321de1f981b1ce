"""The sampling transform: how temperature, top-k and top-p (nucleus) reshape a next-token distribution.

`transform(logits, temperature, top_k, top_p)` takes raw logits (V,) and returns the probabilities
a sampler would draw from: logits divided by the temperature, softmax, then only the k most likely
tokens kept, then only the smallest most-likely prefix whose mass reaches p kept, renormalized to
sum to 1. Temperature 0 means greedy: all mass on the most likely token. Works on numpy, so the
services and the tests share one readable definition. `check_params` turns bad values (NaN,
negative, out of range) into `UserError`s that say what is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmdemo.core.errors import UserError
from lmdemo.core.validate import number

MAX_TEMPERATURE = 100.0


@dataclass(frozen=True)
class SamplingParams:
    """How to reshape a next-token distribution before sampling."""

    temperature: float = 1.0  # 0 = greedy; <1 sharpens, >1 flattens
    top_k: int = 0  # keep only the k most likely tokens (0 = all)
    top_p: float = 1.0  # keep the smallest top set with probability mass >= p (1 = all)


def check_params(temperature=1.0, top_k=0, top_p=1.0, vocab_size: int | None = None
                 ) -> SamplingParams:
    """Validated sampling parameters, or a UserError that says which value is wrong and why."""
    t = number(temperature, "temperature")
    if not 0.0 <= t <= MAX_TEMPERATURE:
        raise UserError(f"temperature must be between 0 and {MAX_TEMPERATURE:g} (0 = greedy), "
                        f"not {t:g}.")
    k = number(top_k, "top_k")
    if k < 0 or k != int(k):
        raise UserError(f"top_k must be a whole number >= 0 (0 = keep all), not {k:g}.")
    if vocab_size is not None and k > vocab_size:
        raise UserError(f"top_k must be at most the vocabulary size {vocab_size}, not {int(k)}.")
    p = number(top_p, "top_p")
    if not 0.0 < p <= 1.0:
        raise UserError(f"top_p must be greater than 0 and at most 1 (1 = keep all), not {p:g}.")
    return SamplingParams(temperature=t, top_k=int(k), top_p=p)


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64) - np.max(logits)  # (V,)
    e = np.exp(z)
    return e / e.sum()


def top_order(probs: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k most likely entries, most likely first, ties by index: the first k of a
    stable descending argsort, found without sorting the whole vocabulary (a partition, then a
    sort of the few candidates)."""
    n = len(probs)
    if k >= n:
        return np.argsort(-probs, kind="stable")
    kth = np.partition(probs, n - k)[n - k]  # the k-th largest value
    cand = np.flatnonzero(probs >= kth)  # (>= k,) every tie of it included
    return cand[np.lexsort((cand, -probs[cand]))][:k]


def _nucleus(probs: np.ndarray, top_p: float, order: np.ndarray | None) -> np.ndarray:
    """The smallest most-likely prefix of `order` (or of the whole distribution) whose mass,
    renormalized over `order`, reaches top_p."""
    k = 64
    while True:
        cand = order if order is not None else top_order(probs, min(k, len(probs)))
        mass = probs[cand] / (probs[order].sum() if order is not None else 1.0)
        cum = np.cumsum(mass)
        if order is not None or cum[-1] >= top_p - 1e-12 or len(cand) == len(probs):
            return cand[: int(np.searchsorted(cum, top_p - 1e-12) + 1)]
        k *= 4


def transform(logits: np.ndarray, params: SamplingParams) -> np.ndarray:
    """The probabilities (V,) a sampler draws from after temperature, top-k and top-p."""
    logits = np.asarray(logits, dtype=np.float64)  # (V,)
    if params.temperature == 0.0:
        out = np.zeros_like(logits)
        out[int(np.argmax(logits))] = 1.0
        return out
    probs = softmax(logits / params.temperature)  # (V,)
    top_k = params.top_k if params.top_k and params.top_k < len(probs) else 0
    if not top_k and params.top_p >= 1.0:
        return probs  # nothing to cut: no sort needed
    kept = top_order(probs, top_k) if top_k else None  # the k most likely, most likely first
    if params.top_p < 1.0:
        kept = _nucleus(probs, params.top_p, kept)
    out = np.zeros_like(probs)
    out[kept] = probs[kept]
    return out / out.sum()


def entropy(probs: np.ndarray) -> float:
    """Shannon entropy in nats of a distribution (V,)."""
    p = probs[probs > 0]
    return float(-(p * np.log(p)).sum())
