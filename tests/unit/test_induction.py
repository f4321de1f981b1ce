"""Induction heads (lmdemo.lab.induction) on a tiny random Llama and the shipped tiny-gpt (GPT-2).

Scores and losses are checked against a slow explicit loop written here (find each token's earlier
occurrence by searching the sequence; read the attention weight on the token after it), and the
score formula on a hand-made attention pattern whose answer is known.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lmdemo.core.errors import UserError
from lmdemo.lab import induction as ind
from tests.helpers import tiny_llama_loaded
from tests.unit.test_smollm2 import require_smollm2


@pytest.fixture(scope="module", params=["llama", "gpt2"])
def loaded(request):
    if request.param == "llama":
        return tiny_llama_loaded()
    from lmdemo.core.models import load

    return load("tiny-gpt", device="cpu")


def slow(loaded, ids):
    """(scores (L, H), losses (T-1,)) by explicit loops over layers, heads and positions."""
    with torch.no_grad():
        out = loaded.model(torch.tensor([ids]), output_attentions=True)
    logp = torch.log_softmax(out.logits[0].double(), -1)  # (T, V)
    losses = [-float(logp[j - 1, ids[j]]) for j in range(1, len(ids))]
    n_layers, n_heads = len(out.attentions), out.attentions[0].shape[1]
    scores = np.zeros((n_layers, n_heads))
    n = (len(ids) - 1) // 2
    for layer in range(n_layers):
        for head in range(n_heads):
            weights = []
            for q in range(n + 1, len(ids)):
                earlier = ids.index(ids[q])  # first occurrence: in the first copy
                assert earlier < q
                weights.append(float(out.attentions[layer][0, head, q, earlier + 1]))
            scores[layer, head] = np.mean(weights)
    return scores, np.array(losses)


@pytest.mark.parametrize("length, seed", [(2, 0), (7, 3), (20, 1)])
def test_scores_and_losses_equal_a_slow_loop(loaded, length, seed):
    res = ind.induction_of(loaded, length, seed)
    scores, losses = slow(loaded, res.token_ids)
    assert res.scores.shape == scores.shape
    np.testing.assert_allclose(res.scores, scores, atol=1e-6)
    np.testing.assert_allclose(res.losses, losses, atol=1e-4)
    assert res.loss_first == pytest.approx(losses[:length].mean(), abs=1e-4)
    assert res.loss_second == pytest.approx(losses[length:].mean(), abs=1e-4)
    top = res.top_heads[0]
    assert top["score"] == pytest.approx(res.scores.max())
    assert json.dumps(res.to_json())


def test_the_sequence(loaded):
    from lmdemo.lab.next_token import start_id

    ids = ind.repeated_sequence(loaded, 12, seed=5)
    n = 12
    assert len(ids) == 2 * n + 1 and ids[0] == start_id(loaded)
    assert ids[1:n + 1] == ids[n + 1:]
    assert len(set(ids[1:n + 1])) == n  # no repeats inside one copy
    special = set(loaded.tokenizer.all_special_ids)
    assert not special & set(ids[1:])
    texts = loaded.tokenizer.batch_decode([[i] for i in ids[1:]])
    assert all(t.strip() for t in texts)
    assert ind.repeated_sequence(loaded, 12, seed=5) == ids  # seeded
    assert ind.repeated_sequence(loaded, 12, seed=6) != ids


def test_scores_on_a_hand_made_attention_pattern():
    n = 4
    t = 2 * n + 1
    attn = np.zeros((1, 3, t, t))
    for q in range(t):
        attn[0, 0, q, 0] = 1.0  # head 0: everything on the start token
        attn[0, 1, q, max(q - 1, 0)] = 1.0  # head 1: the previous token
        attn[0, 2, q, : q + 1] = 1.0 / (q + 1)  # head 2: uniform
    for q in range(n + 1, t):  # make head 0 a perfect induction head on the second copy
        attn[0, 0, q] = 0.0
        attn[0, 0, q, q - n + 1] = 1.0
    scores = ind.induction_scores(attn, n)
    uniform = np.mean([1.0 / (q + 1) for q in range(n + 1, t)])
    np.testing.assert_allclose(scores, [[1.0, 0.0, uniform]])
    half = attn.copy()
    half[0, 0, n + 1:] *= 0.5  # half the weight on the right token
    assert ind.induction_scores(half, n)[0, 0] == pytest.approx(0.5)
    with pytest.raises(ValueError):
        ind.induction_scores(attn, n + 1)


@pytest.mark.parametrize("length", [1, 0, -3, 128, 10_000, "abc", 2.5, None])
def test_bad_lengths_are_refused(length):
    from lmdemo.core.models import load

    with pytest.raises(UserError, match="length"):
        ind.induction_of(load("tiny-gpt"), length)  # tiny-gpt reads 256 tokens: length <= 127


@pytest.mark.parametrize("model", ["tiny-gru", "tiny-lstm", "minilm"])
def test_recurrent_and_encoder_models_are_refused(model):
    with pytest.raises(UserError):
        ind.induction(model, 10)


def test_a_vocabulary_too_small_is_refused():
    loaded = tiny_llama_loaded(n_positions=512)  # 94 ordinary tokens
    with pytest.raises(UserError, match="ordinary tokens"):
        ind.induction_of(loaded, 150)


def test_cli_induction(capsys):
    from lmdemo.cli import main

    assert main(["induction", "--model", "tiny-gpt", "--length", "10", "--seed", "2",
                 "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert np.array(data["scores"]).shape == (4, 4)
    assert len(data["losses"]) == 20 and data["length"] == 10 and data["seed"] == 2
    assert isinstance(data["loss_first"], float) and isinstance(data["loss_second"], float)
    assert main(["induction", "--model", "tiny-gru", "--length", "10"]) == 2
    assert main(["induction", "--model", "tiny-gpt", "--length", "1"]) == 2


def test_smollm2_has_induction_heads():
    require_smollm2()
    from lmdemo.core.models import load

    res = ind.induction_of(load("smollm2", device="cpu"), 50, 0)
    assert res.scores.shape == (30, 9)
    assert res.loss_second < res.loss_first / 3  # the second copy is learnt in context
    assert res.top_heads[0]["score"] > 0.5
