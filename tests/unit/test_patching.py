"""Activation patching (lmdemo.lab.patching) on a tiny Llama, a tiny GPT-2 and, when fetched,
SmolLM2.

Exact facts checked: patching the whole stream at any depth gives the clean logits; patching the
only differing token at the embedding makes the corrupted prompt the clean one; patching where
the two streams are equal changes nothing; and the batched, cached grid equals patched runs made
one at a time with a hook written here, on the full prompt.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from lmdemo.core.errors import UserError
from lmdemo.lab.next_token import encode
from lmdemo.lab.patching import LIMITS, PRESETS, patch, patch_logits, patch_of
from tests.unit.test_lens import _tiny_gpt2
from tests.unit.test_smollm2 import require_smollm2

CLEAN, CORRUPT = "xyzabcd", "xyzqbcd"  # one character (one token) differs, at position 4


@pytest.fixture(params=["llama", "gpt2"])
def tiny(request, tmp_path):
    from tests.helpers import tiny_llama_loaded

    return tiny_llama_loaded() if request.param == "llama" else _tiny_gpt2(tmp_path / "g")


def _logits(loaded, ids):
    with torch.no_grad():
        return loaded.model(torch.tensor([ids])).logits[0, -1].double().numpy()  # (V,)


def _answers(loaded):
    """Two single-character answers whose logit difference moves most between the prompts (a
    random model's top tokens may coincide)."""
    gap = _logits(loaded, encode(loaded, CLEAN).ids) - _logits(loaded, encode(loaded, CORRUPT).ids)
    gap[:3] = np.nan  # special tokens
    good, bad = int(np.nanargmax(gap)), int(np.nanargmin(gap))
    return loaded.tokenizer.decode([good]), loaded.tokenizer.decode([bad])


def _patched_by_hand(loaded, clean_ids, corrupt_ids, depth, position):
    """Last-position logits of the corrupted prompt with the clean stream copied in at one
    (depth, position): the full prompt, batch 1, a hook of this test's own on the HF modules."""
    model = loaded.model
    with torch.no_grad():
        clean_hs = model(torch.tensor([clean_ids]), output_hidden_states=True).hidden_states
    inner = model.transformer if hasattr(model, "transformer") else model.model
    blocks = inner.h if hasattr(inner, "h") else inner.layers
    if depth == 0:
        def pre(module, args, kwargs):
            h = args[0].clone()
            h[0, position] = clean_hs[0][0, position]
            return (h,) + args[1:], kwargs
        handle = blocks[0].register_forward_pre_hook(pre, with_kwargs=True)
    else:
        def post(module, args, out):
            h = (out[0] if isinstance(out, tuple) else out).clone()
            h[0, position] = clean_hs[depth][0, position]  # block `depth`'s output (not the last)
            return (h,) + tuple(out[1:]) if isinstance(out, tuple) else h
        handle = blocks[depth - 1].register_forward_hook(post)
    try:
        return _logits(loaded, corrupt_ids)
    finally:
        handle.remove()


def test_patching_everything_at_any_depth_gives_the_clean_logits(tiny):
    clean_ids, corrupt_ids = encode(tiny, CLEAN).ids, encode(tiny, CORRUPT).ids
    n_layers = tiny.model.config.num_hidden_layers
    everything = tuple(range(len(clean_ids)))
    got = patch_logits(tiny, clean_ids, corrupt_ids, [(d, everything) for d in
                                                      range(n_layers + 1)])  # (L+1, V)
    clean = _logits(tiny, clean_ids)
    for row in got:
        np.testing.assert_allclose(row, clean, atol=1e-5)
    assert np.abs(_logits(tiny, corrupt_ids) - clean).max() > 1e-3  # the patch did something


def test_the_embedding_patch_of_the_differing_token_makes_the_clean_prompt(tiny):
    clean_ids, corrupt_ids = encode(tiny, CLEAN).ids, encode(tiny, CORRUPT).ids
    differ = [p for p, (a, b) in enumerate(zip(clean_ids, corrupt_ids, strict=True)) if a != b]
    assert differ == [4]
    got = patch_logits(tiny, clean_ids, corrupt_ids, [(0, (4,)), (0, (2,)), (0, (6,))])
    np.testing.assert_allclose(got[0], _logits(tiny, clean_ids), atol=1e-5)
    corrupt = _logits(tiny, corrupt_ids)
    np.testing.assert_allclose(got[1], corrupt, atol=1e-5)  # equal tokens: nothing changes
    np.testing.assert_allclose(got[2], corrupt, atol=1e-5)
    assert np.abs(got[0] - corrupt).max() > 1e-3  # mutation: the wrong position is not a no-op


def test_the_grid_equals_patched_runs_made_one_at_a_time(tiny):
    good, bad = _answers(tiny)
    res = patch_of(tiny, CLEAN, CORRUPT, good, bad)
    clean_ids, corrupt_ids = encode(tiny, CLEAN).ids, encode(tiny, CORRUPT).ids
    n_layers = tiny.model.config.num_hidden_layers
    assert res.recovered.shape == (n_layers + 1, len(clean_ids))
    assert res.depths == ["embedding"] + [f"layer {i + 1}" for i in range(n_layers)]
    g, b = res.clean_answer_id, res.corrupt_answer_id
    clean, corrupt = _logits(tiny, clean_ids), _logits(tiny, corrupt_ids)
    assert res.clean_diff == pytest.approx(clean[g] - clean[b], abs=1e-5)
    assert res.corrupt_diff == pytest.approx(corrupt[g] - corrupt[b], abs=1e-5)
    for depth in range(n_layers):  # the last depth is filled in without a run; checked below
        for position in range(len(clean_ids)):
            ref = _patched_by_hand(tiny, clean_ids, corrupt_ids, depth, position)
            assert res.patched_diff[depth, position] == pytest.approx(ref[g] - ref[b], abs=1e-4)
    last = patch_logits(tiny, clean_ids, corrupt_ids,
                        [(n_layers, (p,)) for p in range(len(clean_ids))])
    np.testing.assert_allclose(res.patched_diff[-1], last[:, g] - last[:, b], atol=1e-5)
    np.testing.assert_allclose(res.recovered[:, :4], 0, atol=1e-6)  # before the change
    assert res.recovered[0, 4] == pytest.approx(1, abs=1e-5)  # the changed token itself
    np.testing.assert_allclose(res.recovered[0, 5:], 0, atol=1e-6)  # after it, at the embedding
    assert res.recovered[-1, -1] == 1 and (res.recovered[-1, :-1] == 0).all()
    assert res.differs == [p == 4 for p in range(len(clean_ids))]


def test_the_json_is_plain(tiny):
    good, bad = _answers(tiny)
    data = json.loads(json.dumps(patch_of(tiny, CLEAN, CORRUPT, good, bad).to_json()))
    assert len(data["recovered"]) == tiny.model.config.num_hidden_layers + 1
    assert len(data["recovered"][0]) == len(data["tokens"]) == len(data["corrupt_tokens"])
    assert data["clean_answer"]["token"] == good


def test_progress_is_reported_and_batches_are_bounded(tiny, monkeypatch):
    import lmdemo.lab.patching as patching

    monkeypatch.setattr(patching, "LIMITS", dataclasses.replace(LIMITS, batch_tokens=4))
    good, bad = _answers(tiny)
    seen = []
    small = patch_of(tiny, CLEAN, CORRUPT, good, bad, progress=lambda d, t: seen.append((d, t)))
    assert seen and seen[-1][0] == seen[-1][1] and len(seen) > 1
    monkeypatch.setattr(patching, "LIMITS", LIMITS)
    np.testing.assert_allclose(small.recovered, patch_of(tiny, CLEAN, CORRUPT, good,
                                                         bad).recovered, atol=1e-5)


def test_bad_inputs_are_refused_with_what_to_change(tiny):
    with pytest.raises(UserError, match="same length.*Clean:.*corrupted:"):
        patch_of(tiny, "abc", "abcd")
    with pytest.raises(UserError, match="same tokens"):
        patch_of(tiny, "abc", "abc")
    with pytest.raises(UserError, match="same answer"):
        patch_of(tiny, CLEAN, CORRUPT, "a", "a")
    good, bad = _answers(tiny)
    with pytest.raises(UserError, match="nothing to recover"):
        patch_of(tiny, CLEAN, CORRUPT, bad, good)  # the answers swapped
    with pytest.raises(UserError, match="exactly one token"):
        patch_of(tiny, CLEAN, CORRUPT, "ab", bad)
    with pytest.raises(UserError, match="outside the grid"):
        patch_logits(tiny, encode(tiny, CLEAN).ids, encode(tiny, CORRUPT).ids, [(99, (0,))])


def test_recurrent_models_and_encoders_are_refused():
    with pytest.raises(UserError, match="'tiny-lstm' is a recurrent model.*smollm2 or tiny-gpt"):
        patch("tiny-lstm", "a", "b")
    with pytest.raises(UserError, match="'minilm' is an encoder"):
        patch("minilm", "a", "b")


def test_the_cli_prints_the_grid(capsys):
    from lmdemo.cli import main

    clean, corrupt = PRESETS[-1]  # one of the pairs tiny-gpt answers differently
    assert main(["patch", "--model", "tiny-gpt", "--clean", clean, "--corrupt", corrupt,
                 "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["recovered"]) == len(data["depths"]) == 5  # tiny-gpt: 4 layers
    assert len(data["recovered"][0]) == len(data["tokens"])
    assert data["recovered"][-1][-1] == 1
    assert main(["patch", "--model", "tiny-gpt", "--clean", "The Eiffel Tower is in",
                 "--corrupt", "The Colosseum is in"]) == 2
    assert "same length" in capsys.readouterr().err
    assert main(["patch", "--model", "tiny-gru", "--json"]) == 2


@pytest.mark.slow
def test_smollm2_presets_are_equal_length_and_answer_differently():
    require_smollm2()
    from lmdemo.core.models import load

    smol = load("smollm2", device="cpu")
    clean, corrupt = PRESETS[0]
    res = patch_of(smol, clean, corrupt)
    assert (res.clean_answer, res.corrupt_answer) == (" Paris", " Rome")
    france = res.tokens.index(" France")
    assert res.corrupt_tokens[france] == " Italy" and res.differs.count(True) == 1
    early, late = res.recovered[: len(res.depths) // 3], res.recovered[-3:]
    assert early[:, france].min() > 0.8  # early on, the fact sits on the country's token
    assert late[:, -1].min() > 0.6 and late[:, france].max() < 0.2  # later it has moved to the end
    for clean, corrupt in PRESETS[1:]:
        ids_a, ids_b = encode(smol, clean).ids, encode(smol, corrupt).ids
        assert len(ids_a) == len(ids_b)
        assert int(np.argmax(_logits(smol, ids_a))) != int(np.argmax(_logits(smol, ids_b)))
