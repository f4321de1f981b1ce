"""The next-token service's prompt memo and top-entry selection: a remembered prompt gives exactly
what the model's own logits give, whatever the sampling knobs, and entries are the true top ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lmdemo.core.models import load
from lmdemo.lab import next_token as svc
from tests.unit.test_next_token import reference


def _model_logits(model_id: str, text: str) -> np.ndarray:
    loaded = load(model_id)
    tok = loaded.tokenizer
    ids = [tok.bos_token_id] + tok(text, add_special_tokens=False)["input_ids"]
    with torch.inference_mode():
        return loaded.model(torch.tensor([ids])).logits[0, -1].double().numpy()  # (V,)


@pytest.mark.parametrize("model_id", ["tiny-gpt", "tiny-gru"])
def test_memo_hits_match_the_models_own_logits(model_id):
    text = "She opened the window and"
    logits = _model_logits(model_id, text)
    raw = np.exp(logits - logits.max())
    raw /= raw.sum()
    svc.clear_memo()
    for knobs in ({"temperature": 1.0}, {"temperature": 0.5, "top_k": 7},
                  {"temperature": 1.5, "top_p": 0.8}, {"temperature": 0.0}):
        res = svc.next_token(model_id, text, show=25, **knobs)
        want = reference(logits, knobs.get("temperature", 1.0), knobs.get("top_k", 0),
                         knobs.get("top_p", 1.0))
        ids = [e.id for e in res.entries]
        np.testing.assert_allclose([e.prob for e in res.entries], raw[ids], rtol=1e-4, atol=1e-7)
        np.testing.assert_allclose([e.sampling_prob for e in res.entries], want[ids], atol=1e-6)
    assert len(svc._MEMO) == 1  # four calls, one forward pass
    top = set(np.argsort(-raw)[:25].tolist())
    assert set(ids) == top


def test_entries_are_the_top_ones_in_order():
    res = svc.next_token("tiny-gpt", "The weather today is", show=40)
    logits = _model_logits("tiny-gpt", "The weather today is")
    assert [e.id for e in res.entries] == np.argsort(-logits, kind="stable")[:40].tolist()


def test_memo_is_bounded():
    svc.clear_memo()
    for i in range(svc.LIMITS.memo_prompts + 5):
        svc.next_token("tiny-gpt", f"number {i}")
    assert len(svc._MEMO) == svc.LIMITS.memo_prompts
