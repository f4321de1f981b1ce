"""The attention service on the Llama architecture (SmolLM2): parity with transformers' own
attentions, the step-by-step reconstruction of every head with RoPE recomputed independently and
grouped-query attention made visible, checks that can fail (no RoPE, a wrong θ), the start token
<|endoftext|> read before every text (and not for GPT-2), and the same on the real `smollm2` when
it has been fetched (`python -m lmdemo fetch smollm2`; LMDEMO_REQUIRE_SMOLLM2=1 makes a missing
model a failure instead of a skip).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time

import numpy as np
import pytest
import torch

from lmdemo.core.models import Loaded
from lmdemo.core.registry import ModelSpec
from lmdemo.lab import attention as svc
from tests.helpers import save_tiny_gpt2, tiny_llama, tiny_llama_loaded

TEXT = "The animal didn't cross the street because it was too tired"
SHORT = "a cat sat on it"


def _sharpen(loaded: Loaded, factor: float = 6.0) -> Loaded:
    """Scale W_Q and W_K so the random model's attention is peaked: then RoPE changes the weights
    by far more than rounding, and a reconstruction without it cannot pass by accident."""
    with torch.no_grad():
        for block in loaded.model.model.layers:
            block.self_attn.q_proj.weight.mul_(factor)
            block.self_attn.k_proj.weight.mul_(factor)
    return loaded


@pytest.fixture(scope="module")
def llama() -> Loaded:
    return _sharpen(tiny_llama_loaded())


@pytest.fixture(scope="module")
def plain_llama() -> Loaded:
    return tiny_llama_loaded()


def _ids(loaded, text):
    return [0] + loaded.tokenizer(text, add_special_tokens=False)["input_ids"]


def _hf_attentions(loaded, ids):
    with torch.no_grad():
        out = loaded.model(input_ids=torch.tensor([ids]), output_attentions=True)
    return torch.stack([a[0] for a in out.attentions]).float().numpy()  # (layers, heads, T, T)


@pytest.mark.parametrize("name", ["llama", "plain_llama"])
def test_attentions_match_transformers(name, request):
    loaded = request.getfixturevalue(name)
    assert loaded.model.config._attn_implementation == "eager"
    res = svc.attention_of(loaded, SHORT)
    expected = _hf_attentions(loaded, _ids(loaded, SHORT))
    assert res.attentions.shape == expected.shape == (2, 4, len(res.tokens), len(res.tokens))
    np.testing.assert_allclose(res.attentions, expected, atol=1e-6)
    np.testing.assert_allclose(res.attentions.sum(-1), 1.0, atol=1e-5)
    upper = np.triu(np.ones(expected.shape[-2:], dtype=bool), k=1)
    assert res.causal and np.all(res.attentions[..., upper] == 0)


def _rotate_numpy(x: np.ndarray, positions: np.ndarray, theta: float) -> np.ndarray:
    """RoPE written a second time, in float64 numpy: pair (i, i + d/2) turns by p·θ^(-2i/d)."""
    d = x.shape[-1]
    ang = positions[:, None] * theta ** (-np.arange(0, d, 2) / d)[None, :]  # (T, d/2)
    x1, x2 = x[..., : d // 2], x[..., d // 2:]
    return np.concatenate([x1 * np.cos(ang) - x2 * np.sin(ang),
                           x2 * np.cos(ang) + x1 * np.sin(ang)], axis=-1)


def test_step_by_step_every_head_every_layer(llama):
    cfg = llama.model.config
    n_h, n_kv = cfg.num_attention_heads, cfg.num_key_value_heads
    group = n_h // n_kv
    res = svc.attention_of(llama, SHORT)
    t = len(res.tokens)
    query = t - 2
    for layer in range(cfg.num_hidden_layers):
        attn = llama.model.model.layers[layer].self_attn
        kv_by_group = {}
        for head in range(n_h):
            s = svc.step_by_step_of(llama, SHORT, layer, head, query)
            assert s.max_abs_diff < 1e-5 and s.head_max_abs_diff < 1e-5, (layer, head)
            assert s.mha_max_abs_diff < 1e-5, (layer, head)
            np.testing.assert_allclose(s.weights, res.attentions[layer, head, query], atol=1e-5)
            # grouped-query attention: which key/value head this query head reads
            assert (s.n_heads, s.n_kv_heads) == (n_h, n_kv) == (4, 2)
            assert s.kv_head == head // group
            assert s.kv_groups == [[0, 1], [2, 3]] and head in s.sharing
            # q, k before RoPE are x·W_Q, x·W_K of the right slices (no bias in Llama)
            d = s.d_k
            w_q = attn.q_proj.weight.detach().numpy()[head * d:(head + 1) * d]  # (d_k, d_model)
            w_k = attn.k_proj.weight.detach().numpy()[s.kv_head * d:(s.kv_head + 1) * d]
            np.testing.assert_allclose(s.q_before_rope, s.x[query] @ w_q.T, atol=1e-5)
            np.testing.assert_allclose(s.k_before_rope, s.x @ w_k.T, atol=1e-5)
            # RoPE, recomputed a third time here: q turned by its position, every k by its own
            assert s.rope and s.rope_theta == 10_000.0 and s.rope_angles.shape == (t, d // 2)
            np.testing.assert_allclose(s.rope_inv_freq, 10_000.0 ** (-np.arange(0, d, 2) / d),
                                       rtol=1e-6)
            np.testing.assert_allclose(s.q, _rotate_numpy(s.q_before_rope[None],
                                                          np.array([query]), 1e4)[0], atol=1e-5)
            np.testing.assert_allclose(s.k, _rotate_numpy(s.k_before_rope, np.arange(t), 1e4),
                                       atol=1e-5)
            # scores and weighted sum from those vectors, causal
            scores = s.k[: query + 1] @ s.q * s.scaling
            np.testing.assert_allclose(s.scores[: query + 1], scores, atol=1e-5)
            assert np.isneginf(s.scores[query + 1:]).all() and not s.allowed[query + 1:].any()
            np.testing.assert_allclose(s.output, s.weights @ s.v, atol=1e-5)
            # heads of one group read the very same keys and values
            if s.kv_head in kv_by_group:
                k, v = kv_by_group[s.kv_head]
                np.testing.assert_array_equal(s.k, k)
                np.testing.assert_array_equal(s.v, v)
            kv_by_group[s.kv_head] = (s.k, s.v)
        assert len(kv_by_group) == n_kv


def test_without_rope_the_check_fails(llama, monkeypatch):
    """The reconstruction must be able to fail: skip the rotation, or use a wrong θ."""
    good = svc.step_by_step_of(llama, TEXT, 1, 2, 12)
    assert good.head_max_abs_diff < 1e-5
    # the same q and k unrotated give other scores, and other weights
    finite = np.isfinite(good.scores)
    raw = good.scores_without_rope[finite]
    unrotated = np.exp(raw - raw.max()) / np.exp(raw - raw.max()).sum()
    assert np.abs(unrotated - good.weights[finite]).max() > 1e-2

    monkeypatch.setattr(svc, "rotate", lambda x, angles: x)
    bad = svc.step_by_step_of(llama, TEXT, 1, 2, 12)
    assert bad.head_max_abs_diff > 1e-2 and bad.mha_max_abs_diff > 1e-3
    np.testing.assert_allclose(bad.weights[finite], unrotated, atol=1e-5)
    monkeypatch.undo()

    orig = svc._rope_config
    monkeypatch.setattr(svc, "_rope_config", lambda cfg: (orig(cfg)[0] * 10, "default"))
    assert svc.step_by_step_of(llama, TEXT, 1, 2, 12).head_max_abs_diff > 1e-3


def test_rope_theta_comes_from_the_config():
    model, tok = tiny_llama(rope_theta=500.0)
    spec = ModelSpec("tiny-llama-500", "causal-lm", "embedded", "tiny llama", "hf-causal",
                     attentions=True, causal=True, start_token="<|endoftext|>")
    loaded = _sharpen(Loaded(spec, model, tok, "cpu", torch.float32))
    assert svc._rope_config(model.config) == (500.0, "default")  # rope_parameters (transformers 5)
    s = svc.step_by_step_of(loaded, TEXT, 0, 3, 10)
    assert s.rope_theta == 500.0 and s.head_max_abs_diff < 1e-5 and s.mha_max_abs_diff < 1e-5
    old_style = type("Cfg", (), {"rope_theta": 1234.0})()  # before rope_parameters existed
    assert svc._rope_config(old_style) == (1234.0, "default")


def test_start_token_is_read_first(llama):
    from lmdemo.lab.next_token import encode

    res = svc.attention_of(llama, SHORT)
    assert res.tokens[0] == "<|endoftext|>" and res.special_mask[0]
    assert not res.special_mask[1:].any()
    ids = svc._encode(llama, SHORT, svc.DEFAULT_MAX_TOKENS)[0][0].tolist()
    assert ids == encode(llama, SHORT).ids == _ids(llama, SHORT)  # what next-word reads
    # the start token counts towards the limit
    cut = svc.attention_of(llama, TEXT, max_tokens=8)
    assert cut.truncated and len(cut.tokens) == 8 and cut.tokens[0] == "<|endoftext|>"
    assert f"The text has {len(_ids(llama, TEXT))} tokens" in cut.message
    # a spec without start_token reads the text as the tokenizer gives it
    bare = dataclasses.replace(llama, spec=dataclasses.replace(llama.spec, start_token=""))
    assert svc.attention_of(bare, SHORT).tokens[0] == "a"


def test_gpt2_gets_no_start_token(tmp_path):
    """GPT-2 (no start_token in its spec) reads the text as before, though its tokenizer has an
    <|endoftext|> bos token; it has no RoPE and one key/value head per query head."""
    from transformers import AutoTokenizer, GPT2LMHeadModel

    save_tiny_gpt2(tmp_path / "g")
    model = GPT2LMHeadModel.from_pretrained(tmp_path / "g", attn_implementation="eager").eval()
    spec = ModelSpec("tiny-gpt2", "causal-lm", "embedded", "gpt2", "hf-causal",
                     attentions=True, causal=True)
    loaded = Loaded(spec, model, AutoTokenizer.from_pretrained(tmp_path / "g"), "cpu",
                    torch.float32)
    res = svc.attention_of(loaded, "abc")
    assert res.tokens == ["a", "b", "c"] and not res.special_mask.any()
    s = svc.step_by_step_of(loaded, "abcdef", 1, 3, 4)
    assert s.head_max_abs_diff < 1e-5 and s.mha_max_abs_diff < 1e-5
    assert (s.n_kv_heads, s.kv_head, s.kv_groups) == (4, 3, [[0], [1], [2], [3]])
    assert not s.rope and s.q_before_rope is None
    data = s.to_json()
    assert data["rope"] is False and "q_before_rope" not in data and data["kv_head"] == 3


def test_to_json_carries_rope_and_groups(llama):
    s = svc.step_by_step_of(llama, SHORT, 0, 1, 4)
    data = json.loads(json.dumps(s.to_json(), allow_nan=False))
    t = len(s.tokens)
    assert data["n_kv_heads"] == 2 and data["kv_head"] == 0 and data["kv_groups"] == [[0, 1],
                                                                                      [2, 3]]
    assert data["rope"] and data["rope_theta"] == 10_000.0
    assert np.array(data["rope_angles"]).shape == (t, s.d_k // 2)
    assert np.array(data["k_before_rope"]).shape == (t, s.d_k)
    assert len(data["q_before_rope"]) == s.d_k and len(data["scores_without_rope"]) == t
    assert data["scores_without_rope"][-1] is None  # masked key (after the query)


def test_grid_of_30_by_9_heads_is_quick_and_clickable():
    from lmdemo.plots.attention import grid_figure

    att = np.random.default_rng(0).random((30, 9, 40, 40)).astype(np.float32)
    start = time.perf_counter()
    fig = grid_figure(att, (5, 4))
    assert time.perf_counter() - start < 2.0
    markers = fig.data[1]
    assert len(markers.x) == 270
    # point k is layer k // 9, head k % 9, as the page decodes a click
    assert [tuple(c) for c in markers.customdata[[0, 8, 9, 269]]] == [(0, 0), (0, 8), (1, 0),
                                                                       (29, 8)]
    assert fig.layout.xaxis.ticktext[0] == "L0" and len(fig.layout.xaxis.ticktext) == 30
    assert fig.layout.height <= 400  # layers run across: fits a screen


# ----------------------------------------------------------------------------- the real SmolLM2

def _smollm2_fetched() -> bool:
    from lmdemo.core.assets import is_fetched

    return is_fetched("smollm2")


REQUIRE = os.environ.get("LMDEMO_REQUIRE_SMOLLM2") == "1"
needs_smollm2 = pytest.mark.skipif(not REQUIRE and not _smollm2_fetched(),
                                   reason="smollm2 not fetched (python -m lmdemo fetch smollm2)")


@pytest.fixture(scope="module")
def smollm2() -> Loaded:
    from lmdemo.core.models import load

    if not _smollm2_fetched():
        pytest.fail("LMDEMO_REQUIRE_SMOLLM2=1 but smollm2 is not fetched")
    return load("smollm2")


@needs_smollm2
def test_smollm2_attentions_match_transformers(smollm2):
    res = svc.attention("smollm2", TEXT)
    assert res.tokens[:3] == ["<|endoftext|>", "The", "␣animal"]
    expected = _hf_attentions(smollm2, _ids(smollm2, TEXT))
    assert res.attentions.shape == expected.shape == (30, 9, len(res.tokens), len(res.tokens))
    np.testing.assert_allclose(res.attentions, expected, atol=1e-5)


@needs_smollm2
def test_smollm2_step_by_step(smollm2):
    query = svc.attention_of(smollm2, TEXT).tokens.index("␣it")
    s = svc.step_by_step("smollm2", TEXT, 5, 4, query)
    assert s.max_abs_diff < 1e-4 and s.head_max_abs_diff < 1e-4 and s.mha_max_abs_diff < 1e-4
    assert (s.n_heads, s.n_kv_heads, s.d_k, s.d_model) == (9, 3, 64, 576)
    assert s.kv_head == 1 and s.sharing == [3, 4, 5]
    assert s.kv_groups == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    assert s.rope_theta == 100_000.0
    np.testing.assert_allclose(s.q, _rotate_numpy(s.q_before_rope[None], np.array([query]),
                                                  1e5)[0], atol=1e-4)


@needs_smollm2
def test_smollm2_cli(capsys, smollm2):
    from lmdemo.cli import main

    code = main(["attention", "--model", "smollm2", "--text", TEXT, "--layer", "0", "--head", "0",
                 "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["tokens"][0] == "<|endoftext|>" and data["special"][0]
    t = len(data["tokens"])
    att = np.array(data["attentions"])
    assert att.shape == (1, 1, t, t) and data["layers"] == [0] and data["heads"] == [0]
    np.testing.assert_allclose(att.sum(-1), 1.0, atol=1e-4)
    code = main(["attention", "--model", "smollm2", "--text", TEXT, "--layer", "5", "--head",
                 "4", "--step", "9", "--json"])
    step = json.loads(capsys.readouterr().out)
    assert code == 0 and step["kv_groups"] == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    assert step["kv_head"] == 1 and step["rope_theta"] == 100_000.0
    assert step["max_abs_diff"] < 1e-4 and step["mha_max_abs_diff"] < 1e-4
