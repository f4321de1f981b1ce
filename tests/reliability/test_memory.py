"""The model cache stays within its memory budget: least recently used models are dropped (and
freed once nobody holds them), embedded defaults come back on their next use, and the resident
memory of a process that loads many distinct models in turn stays bounded.

Real loads, no network: a small random GPT-2 (about 13 MB of weights) saved once, loaded under
many different ids (as many `run:<name>` models would be), and the embedded tiny models.
"""

from __future__ import annotations

import gc
import weakref

import pytest

from lmdemo.core import models
from lmdemo.core.registry import ModelSpec

MB = 2**20


@pytest.fixture(scope="module")
def gpt_folder(tmp_path_factory):
    """A random GPT-2 of about 13 MB (float32) saved as the hub serves it."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast
    from transformers.models.gpt2 import GPT2Tokenizer  # noqa: F401  (the fast one's base)

    from tests.helpers import save_tiny_gpt2

    folder = tmp_path_factory.mktemp("gpt13")
    save_tiny_gpt2(folder)  # its tokenizer files
    tok = GPT2TokenizerFast.from_pretrained(folder)
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=len(tok), n_positions=64, n_embd=288, n_layer=3, n_head=4,
                     bos_token_id=0, eos_token_id=0)
    GPT2LMHeadModel(cfg).save_pretrained(folder, safe_serialization=True)
    return folder


@pytest.fixture
def budget(monkeypatch):
    def set_mb(mb: int) -> None:
        monkeypatch.setenv("LMDEMO_MODEL_CACHE_MB", str(mb))

    models.clear_cache()
    yield set_mb
    models.clear_cache()


def _spec(i: int, folder) -> ModelSpec:
    return ModelSpec(f"run:mem{i}", "causal-lm", "run", f"mem {i}", "hf-causal", str(folder),
                     attentions=True, causal=True)


def _rss() -> int:
    import psutil

    gc.collect()
    return psutil.Process().memory_info().rss


def test_least_recently_used_models_are_evicted_and_freed(gpt_folder, budget):
    budget(40)
    first = models.load_spec(_spec(0, gpt_folder), device="cpu")
    size = models.model_bytes(first.model)
    assert 10 * MB < size < 16 * MB, size
    gone = weakref.ref(first.model)
    models.load_spec(_spec(1, gpt_folder), device="cpu")
    assert models.load_spec(_spec(0, gpt_folder), device="cpu") is first  # 0 used last now
    del first
    for i in (2, 3):  # 3 fit in 40 MB: the least recently used (1) goes first, then 0
        models.load_spec(_spec(i, gpt_folder), device="cpu")
    ids = [e["id"] for e in models.cache_info()]
    assert ids == ["run:mem0", "run:mem2", "run:mem3"], ids
    models.load_spec(_spec(4, gpt_folder), device="cpu")
    assert [e["id"] for e in models.cache_info()] == ["run:mem2", "run:mem3", "run:mem4"]
    assert sum(e["bytes"] for e in models.cache_info()) <= 40 * MB
    gc.collect()
    assert gone() is None, "an evicted model nobody holds must be freed"


def test_a_model_over_the_budget_is_kept_until_the_next_load(gpt_folder, budget):
    budget(1)  # smaller than any one model: the one just loaded stays, alone
    a = models.load_spec(_spec(0, gpt_folder), device="cpu")
    assert [e["id"] for e in models.cache_info()] == ["run:mem0"]
    assert models.load_spec(_spec(0, gpt_folder), device="cpu") is a
    models.load_spec(_spec(1, gpt_folder), device="cpu")
    assert [e["id"] for e in models.cache_info()] == ["run:mem1"]


def test_embedded_defaults_are_evicted_and_loaded_again(gpt_folder, budget):
    budget(1)
    tiny = models.load("tiny-gpt", device="cpu")
    assert models.is_loaded("tiny-gpt")
    models.load_spec(_spec(0, gpt_folder), device="cpu")
    assert not models.is_loaded("tiny-gpt")
    again = models.load("tiny-gpt", device="cpu")
    assert again is not tiny and models.is_loaded("tiny-gpt")
    assert again.spec.id == "tiny-gpt"


def test_resident_memory_stays_bounded_over_many_loads(monkeypatch, budget):
    """Each load allocates its own weights, as a merged LoRA run does (real loads of one file
    share its memory-mapped pages, which would hide a leak): 20 distinct models of 13 MB."""
    import dataclasses

    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = GPT2Config(vocab_size=96, n_positions=64, n_embd=288, n_layer=3, n_head=4)

    def fresh(spec, location, dev, dtype):
        return models.Loaded(spec=spec, model=GPT2LMHeadModel(cfg).eval(), tokenizer=None,
                             device=dev, dtype=dtype)

    monkeypatch.setattr(models, "_load_uncached", fresh)
    budget(40)  # three of these models; without a budget the 20 more would keep ~260 MB
    spec = dataclasses.replace(_spec(0, "."), location="")
    for i in range(4):
        models.load_spec(dataclasses.replace(spec, id=f"run:mem{i}"), device="cpu")
    warm = peak = _rss()
    for i in range(4, 24):
        models.load_spec(dataclasses.replace(spec, id=f"run:mem{i}"), device="cpu")
        assert sum(e["bytes"] for e in models.cache_info()) <= 40 * MB
        peak = max(peak, _rss())
    growth = (peak - warm) / MB
    print(f"\nRSS after 4 loads {warm / MB:.0f} MB; peak over 20 more distinct models "
          f"{peak / MB:.0f} MB (+{growth:.0f} MB; unbounded: about +235 MB)")
    assert growth < 100, growth
    assert len(models.cache_info()) == 3
