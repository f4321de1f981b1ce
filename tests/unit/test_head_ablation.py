"""Head ablation (lmdemo.lab.head_ablation) on a tiny random Llama and the shipped tiny-gpt (GPT-2).

Every ablation is checked against hooks written here, independently of the service: zeroing (or
mean-ablating) columns h * head_dim .. (h + 1) * head_dim of the head mixer's input by hand, one
forward per head. The batched importance map must equal that loop, and a service that ablates the
wrong slice must be caught.
"""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
import torch

from lmdemo.core.errors import UserError
from lmdemo.lab import head_ablation as ha
from tests.helpers import tiny_llama_loaded
from tests.unit.test_smollm2 import require_smollm2

TEXT = "The capital of France is"


@pytest.fixture(scope="module", params=["llama", "gpt2"])
def loaded(request):
    if request.param == "llama":
        return tiny_llama_loaded()
    from lmdemo.core.models import load

    return load("tiny-gpt", device="cpu")


def mixers(model):
    """Per layer, the module whose input is the heads' outputs side by side (found here, not via
    lmdemo.lab.anatomy)."""
    if hasattr(model, "transformer"):
        return [b.attn.c_proj for b in model.transformer.h], model.config.n_head
    return [b.self_attn.o_proj for b in model.model.layers], model.config.num_attention_heads


def by_hand(loaded, ids, heads, mode="zero"):
    """Last-position log-probs (V,) with `heads` ablated by hooks written here."""
    mods, n_heads = mixers(loaded.model)
    handles = []
    for layer, head in heads:
        def pre(_m, args, head=head):
            x = args[0].clone()  # (1, T, H * D)
            d = x.shape[-1] // n_heads
            cols = x[..., head * d:(head + 1) * d]
            x[..., head * d:(head + 1) * d] = 0 if mode == "zero" else cols.mean(1, keepdim=True)
            return (x,)
        handles.append(mods[layer].register_forward_pre_hook(pre))
    try:
        with torch.no_grad():
            logits = loaded.model(torch.tensor([ids])).logits[0, -1].double()
    finally:
        for h in handles:
            h.remove()
    return torch.log_softmax(logits, -1).numpy()


def slow_map(loaded, ids, target, mode="zero"):
    mods, n_heads = mixers(loaded.model)
    base = by_hand(loaded, ids, [], mode)[target]
    return base, np.array([[base - by_hand(loaded, ids, [(lay, h)], mode)[target]
                            for h in range(n_heads)] for lay in range(len(mods))])


def ids_of(loaded, text=TEXT):
    return ha.prompt_ids(loaded, text)


def log_softmax(z):
    return torch.log_softmax(torch.tensor(z, dtype=torch.float64), -1).numpy()


def test_ablating_no_head_changes_nothing(loaded):
    ids = ids_of(loaded)
    got = ha.ablated_logits(loaded, ids, [[]])[0]
    np.testing.assert_allclose(log_softmax(got), by_hand(loaded, ids, []), atol=1e-5)
    res = ha.head_ablation_of(loaded, TEXT, [], show=5)
    assert res.kl == 0.0 and res.before == res.after and res.heads == []


@pytest.mark.parametrize("mode", ["zero", "mean"])
def test_ablating_heads_equals_changing_their_slice_by_hand(loaded, mode):
    ids = ids_of(loaded)
    heads = [(0, 1), (1, 3)]
    got = ha.ablated_logits(loaded, ids, [heads, [(1, 0)], []], mode)  # three rows, one forward
    np.testing.assert_allclose(log_softmax(got[0]), by_hand(loaded, ids, heads, mode), atol=1e-5)
    np.testing.assert_allclose(log_softmax(got[1]), by_hand(loaded, ids, [(1, 0)], mode),
                               atol=1e-5)
    np.testing.assert_allclose(log_softmax(got[2]), by_hand(loaded, ids, [], mode), atol=1e-5)
    assert np.abs(log_softmax(got[0]) - log_softmax(got[2])).max() > 1e-4  # it did something


def test_the_ablation_result_reports_the_hand_made_numbers(loaded):
    ids = ids_of(loaded)
    target = ha.target_id(loaded.tokenizer, "e")
    res = ha.head_ablation_of(loaded, TEXT, "0.2, 1.1", mode="zero", show=4, target="e")
    before, after = by_hand(loaded, ids, []), by_hand(loaded, ids, [(0, 2), (1, 1)])
    assert res.heads == [(0, 2), (1, 1)]
    assert res.target_logprob_before == pytest.approx(before[target], abs=1e-5)
    assert res.target_logprob_after == pytest.approx(after[target], abs=1e-5)
    kl = float((np.exp(before) * (before - after)).sum())
    assert res.kl == pytest.approx(kl, abs=1e-5)
    assert [e.id for e in res.after] == list(np.argsort(-after, kind="stable")[:4])
    assert res.after[0].prob == pytest.approx(np.exp(after.max()), abs=1e-6)
    assert json.dumps(res.to_json())


@pytest.mark.parametrize("mode", ["zero", "mean"])
def test_the_batched_importance_map_equals_one_forward_per_head(loaded, mode):
    ids = ids_of(loaded)
    target = ha.target_id(loaded.tokenizer, "e")
    base, slow = slow_map(loaded, ids, target, mode)
    for batch_tokens in (ha.LIMITS.batch_tokens, len(ids) * 3):  # one forward; one per layer
        got_base, got = ha.importance_map(loaded, ids, target, mode, batch_tokens=batch_tokens)
        assert got.shape == slow.shape
        assert got_base == pytest.approx(base, abs=1e-5)
        np.testing.assert_allclose(got, slow, atol=2e-5)
    assert np.abs(slow).max() > 1e-4  # the heads matter, so the comparison means something


def test_a_wrong_slice_is_caught(loaded, monkeypatch):
    ids = ids_of(loaded)
    target = ha.target_id(loaded.tokenizer, "e")
    _, slow = slow_map(loaded, ids, target)
    from lmdemo.lab.anatomy import Anatomy

    right = Anatomy.head_slice
    monkeypatch.setattr(Anatomy, "head_slice",  # the mutation: the next head's columns
                        lambda self, h: right(self, (h + 1) % self.n_heads))
    _, wrong = ha.importance_map(loaded, ids, target)
    assert not np.allclose(wrong, slow, atol=2e-5)
    mutated = ha.ablated_logits(loaded, ids, [[(0, 0)]])[0]
    assert not np.allclose(log_softmax(mutated), by_hand(loaded, ids, [(0, 0)]), atol=1e-5)


def test_the_importance_service(loaded):
    res = ha.importance_of(loaded, TEXT, "e")
    assert res.importance.shape == (len(mixers(loaded.model)[0]), mixers(loaded.model)[1])
    top = res.top_heads[0]
    assert top["drop"] == pytest.approx(res.importance.max())
    assert res.importance[top["layer"], top["head"]] == res.importance.max()
    np.testing.assert_allclose(res.ablated_logprob, res.base_logprob - res.importance)
    data = json.loads(json.dumps(res.to_json()))
    assert np.array(data["importance"]).shape == res.importance.shape
    assert data["base_logprob"] == res.base_logprob


def test_hooks_leave_other_threads_alone(loaded):
    """The shared cached model serves other users while one of them ablates heads."""
    ids = ids_of(loaded)
    clean = by_hand(loaded, ids, [])
    seen = {}
    entered, done = threading.Event(), threading.Event()

    def other_user():
        entered.wait(10)
        seen["lp"] = by_hand(loaded, ids, [])
        done.set()

    thread = threading.Thread(target=other_user)
    thread.start()
    an = ha._check_model(loaded)
    mask = ha._mask([[0, 1, 2, 3]], an, "cpu")
    with ha.thread_hooks((an.head_mixers[0], "pre",
                          lambda _m, a: (ha._ablate(a[0], mask, "zero"),), False)):
        entered.set()
        done.wait(30)
        assert not np.allclose(log_softmax(ha.ablated_logits(loaded, ids, [[]])[0]), clean,
                               atol=1e-4)  # this thread does see its hook
    thread.join()
    np.testing.assert_allclose(seen["lp"], clean, atol=1e-6)


@pytest.mark.parametrize("target, n", [(" Paris city", 2), ("", 0)])
def test_a_target_must_be_one_token(target, n):
    from lmdemo.core.models import load

    with pytest.raises(UserError, match=f"is {n} tokens; pick a single token such as ' Paris'"):
        ha.importance_of(load("tiny-gpt"), TEXT, target)


@pytest.mark.parametrize("heads", [[(4, 0)], [(0, 4)], [(-1, 0)], [("a", 0)], [(1,)], "3 4 5",
                                   "x"])
def test_bad_heads_are_refused(heads):
    from lmdemo.core.models import load

    with pytest.raises(UserError):
        ha.head_ablation_of(load("tiny-gpt"), TEXT, heads)


def test_bad_mode_model_and_text_are_refused():
    from lmdemo.core.models import load

    with pytest.raises(UserError, match="Unknown ablation"):
        ha.head_ablation("tiny-gpt", TEXT, [(0, 0)], mode="half")
    for model in ("tiny-gru", "minilm"):
        with pytest.raises(UserError):
            ha.importance(model, TEXT, " Paris")
    with pytest.raises(UserError, match="too long"):
        ha.importance_of(load("tiny-gpt"), "word " * 300, " Paris")
    assert ha.parse_heads("L3H5, 10.2  1:0") == [(3, 5), (10, 2), (1, 0)]


def test_cli_heads(capsys):
    from lmdemo.cli import main

    assert main(["heads", "--model", "tiny-gpt", "--text", TEXT, "--target", " Paris",
                 "--ablate", "0.1", "--ablate", "2.3", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert np.array(data["importance"]).shape == (4, 4)
    assert isinstance(data["base_logprob"], float) and data["top_heads"]
    assert data["ablation"]["heads"] == [[0, 1], [2, 3]]
    assert data["ablation"]["target_logprob_before"] == pytest.approx(data["base_logprob"],
                                                                      abs=1e-5)
    assert main(["heads", "--model", "tiny-gpt", "--text", TEXT, "--target", " Paris city"]) == 2
    assert "pick a single token" in capsys.readouterr().err


def test_smollm2_paris_heads():
    require_smollm2()
    from lmdemo.core.models import load

    smol = load("smollm2", device="cpu")
    res = ha.importance_of(smol, TEXT, " Paris")
    assert res.importance.shape == (30, 9)
    assert res.base_logprob > np.log(0.5)  # Paris is the likely next token
    ids = ids_of(smol)
    for layer, head in [(res.top_heads[0]["layer"], res.top_heads[0]["head"]), (29, 8), (5, 2)]:
        alone = by_hand(smol, ids, [(layer, head)])[res.target_id]
        assert res.importance[layer, head] == pytest.approx(res.base_logprob - alone, abs=1e-4)


def test_heads_from_a_visitor_or_a_link_are_kept_only_within_the_model():
    """Layer/head inputs are bounded by the model's own numbers: a link made for a 30×9 model
    opened on a 4×4 one keeps the heads that exist and names the rest."""
    assert ha.head_names(2, 3) == ["L0H0", "L0H1", "L0H2", "L1H0", "L1H1", "L1H2"]
    kept, dropped = ha.within_model(["L1H2, L0H0", "L47H63", "3.1", "L1H2", "nonsense"], 4, 4)
    assert kept == ["L1H2", "L0H0", "L3H1"] and dropped == ["L47H63", "nonsense"]
    assert ha.within_model("L3H3 L4H0 L0H4", 4, 4) == (["L3H3"], ["L4H0", "L0H4"])
    assert ha.within_model([], 4, 4) == ([], [])


def test_layers_and_heads_are_read_from_the_model():
    from lmdemo.lab.anatomy import layers_and_heads

    assert layers_and_heads("tiny-gpt") == (4, 4)  # the shipped tiny-gpt: 4 layers of 4 heads
    with pytest.raises(UserError, match="no attention heads"):
        layers_and_heads("tiny-rnn")


def test_inside_chart_words_follow_the_language():
    from lmdemo.plots import inside as plots
    from lmdemo.plots.common import set_language

    out = {}

    def draw():
        set_language("zh")
        out["fig"] = plots.head_map(np.zeros((2, 3)))

    t = threading.Thread(target=draw)
    t.start()
    t.join()
    assert out["fig"].layout.xaxis.title.text == "头" and out["fig"].layout.yaxis.title.text == "层"
    assert plots.head_map(np.zeros((2, 3))).layout.xaxis.title.text == "head"
