"""Per-model load locks: two different models load at the same time, the same model loads once,
a cached model is served while another one is still loading, and a failed load is retried.

`_load_uncached` is replaced by a slow fake that records when each load ran, so the tests measure
the locking itself (no weights are read). The embedded ids exist in every installation.
"""

from __future__ import annotations

import threading
import time

import pytest

from lmdemo.core import models
from lmdemo.core.errors import UserError

SLOW_S = 0.6


@pytest.fixture
def slow_loads(monkeypatch):
    """Replace the real loader with one that takes SLOW_S seconds; returns its call log
    [(model id, start, end)]."""
    calls: list[tuple[str, float, float]] = []
    guard = threading.Lock()

    def fake(spec, location, dev, dtype):
        start = time.monotonic()
        time.sleep(SLOW_S)
        with guard:
            calls.append((spec.id, start, time.monotonic()))
        return models.Loaded(spec=spec, model=object(), tokenizer=object(), device=dev,
                             dtype=dtype)

    models.clear_cache()
    monkeypatch.setattr(models, "_load_uncached", fake)
    yield calls
    models.clear_cache()


def in_threads(*targets):
    """Run the callables at once; return their results in order (re-raising any error)."""
    results: list = [None] * len(targets)
    errors: list = []

    def run(i, fn):
        try:
            results[i] = fn()
        except Exception as exc:  # noqa: BLE001 - handed back to the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(targets)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    if errors:
        raise errors[0]
    return results


def test_two_different_models_load_at_the_same_time(slow_loads):
    a, b = in_threads(lambda: models.load("tiny-gpt", device="cpu"),
                      lambda: models.load("tiny-lstm", device="cpu"))
    assert {a.spec.id, b.spec.id} == {"tiny-gpt", "tiny-lstm"}
    (_, s1, e1), (_, s2, e2) = slow_loads
    assert max(s1, s2) < min(e1, e2), "the two loads did not overlap in time (one global lock?)"


def test_the_same_model_loads_once(slow_loads):
    got = in_threads(*[lambda: models.load("tiny-gru", device="cpu")] * 5)
    assert len(slow_loads) == 1
    assert all(g is got[0] for g in got)
    assert models.load("tiny-gru", device="cpu") is got[0] and len(slow_loads) == 1
    assert models.is_loaded("tiny-gru") and not models._KEY_LOCKS


def test_a_cached_model_is_served_while_another_loads(slow_loads):
    first = models.load("tiny-rnn", device="cpu")
    loader = threading.Thread(target=lambda: models.load("tiny-gpt", device="cpu"))
    loader.start()
    time.sleep(SLOW_S / 4)  # tiny-gpt is loading now
    start = time.monotonic()
    assert models.load("tiny-rnn", device="cpu") is first
    assert models.is_loaded("tiny-rnn") and not models.is_loaded("tiny-gpt")
    assert time.monotonic() - start < SLOW_S / 3
    loader.join(30)
    assert models.is_loaded("tiny-gpt")


def test_a_failed_load_caches_nothing_and_is_retried(monkeypatch):
    tries = []

    def failing(spec, location, dev, dtype):
        tries.append(spec.id)
        if len(tries) == 1:
            raise UserError("the disk hiccuped")
        return models.Loaded(spec=spec, model=object(), tokenizer=object(), device=dev,
                             dtype=dtype)

    models.clear_cache()
    monkeypatch.setattr(models, "_load_uncached", failing)
    with pytest.raises(UserError, match="hiccuped"):
        models.load("tiny-gpt", device="cpu")
    assert not models.is_loaded("tiny-gpt") and not models._KEY_LOCKS
    assert models.load("tiny-gpt", device="cpu").spec.id == "tiny-gpt"
    assert tries == ["tiny-gpt", "tiny-gpt"]
    models.clear_cache()


def _sized_loads(monkeypatch, calls):
    """A loader whose models hold 0.4 MB each (a torch Linear), recording each load."""
    import torch

    def fake(spec, location, dev, dtype):
        calls.append(spec.id)
        return models.Loaded(spec=spec, model=torch.nn.Linear(320, 320), tokenizer=object(),
                             device=dev, dtype=dtype)

    monkeypatch.setattr(models, "_load_uncached", fake)


def test_the_cache_drops_the_least_recently_used_beyond_its_budget(monkeypatch):
    calls: list[str] = []
    models.clear_cache()
    _sized_loads(monkeypatch, calls)
    monkeypatch.setenv("LMDEMO_MODEL_CACHE_MB", "1")  # two 0.4 MB models fit
    a = models.load("tiny-gpt", device="cpu")
    assert models.model_bytes(a.model) == (320 * 320 + 320) * 4
    models.load("tiny-lstm", device="cpu")
    assert models.load("tiny-gpt", device="cpu") is a  # a hit: tiny-gpt is the newest now
    models.load("tiny-gru", device="cpu")  # over budget: tiny-lstm (least recent) goes
    assert [e["id"] for e in models.cache_info()] == ["tiny-gpt", "tiny-gru"]
    assert not models.is_loaded("tiny-lstm")
    models.load("tiny-lstm", device="cpu")  # loaded again on its next use
    assert calls == ["tiny-gpt", "tiny-lstm", "tiny-gru", "tiny-lstm"]
    models.clear_cache()


def test_a_model_being_loaded_is_never_evicted(monkeypatch):
    """While a slow load runs, other loads fill the cache; the slow one is stored when it ends
    and kept (even alone over the budget) — only the others make room."""
    import torch

    models.clear_cache()
    release = threading.Event()

    def fake(spec, location, dev, dtype):
        if spec.id == "tiny-rnn":
            release.wait(30)
            model = torch.nn.Linear(600, 600)  # 1.4 MB: over the 1 MB budget by itself
        else:
            model = torch.nn.Linear(200, 200)
        return models.Loaded(spec=spec, model=model, tokenizer=object(), device=dev,
                             dtype=dtype)

    monkeypatch.setattr(models, "_load_uncached", fake)
    monkeypatch.setenv("LMDEMO_MODEL_CACHE_MB", "1")
    got = {}
    slow = threading.Thread(target=lambda: got.update(rnn=models.load("tiny-rnn", device="cpu")))
    slow.start()
    for model_id in ("tiny-gpt", "tiny-lstm", "tiny-gru"):
        models.load(model_id, device="cpu")
    assert not models.is_loaded("tiny-rnn")
    release.set()
    slow.join(30)
    assert [e["id"] for e in models.cache_info()] == ["tiny-rnn"]
    assert models.load("tiny-rnn", device="cpu") is got["rnn"]
    models.clear_cache()
