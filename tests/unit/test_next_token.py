"""Scoring and next-token services: scores equal an independent log-softmax of the model's own
logits, the sampling transform matches a plain numpy reference, bad knobs are refused with a
message, long prompts are cut from the left and say so, the CLI prints JSON in input order and
exits 2 on bad input, and a hub model served from a local mirror goes through the same code."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from lmdemo.cli import main
from lmdemo.core.errors import UserError
from lmdemo.lab.next_token import next_token, score
from lmdemo.lab.sampling import SamplingParams, check_params, transform
from tests.helpers import save_tiny_gpt2

# ----------------------------------------------------------------------------- sampling transform

def reference(logits, temperature, top_k, top_p):
    """Temperature, top-k, top-p written out the slow, obvious way."""
    logits = np.asarray(logits, dtype=np.float64)
    if temperature == 0:
        out = np.zeros(len(logits))
        out[np.argmax(logits)] = 1.0
        return out
    p = np.exp(logits / temperature - np.max(logits / temperature))
    p /= p.sum()
    ranked = sorted(range(len(p)), key=lambda i: -p[i])
    kept = ranked[:top_k] if top_k else ranked
    mass = sum(p[i] for i in kept)
    if top_p < 1:
        prefix, acc = [], 0.0
        for i in kept:
            prefix.append(i)
            acc += p[i] / mass
            if acc >= top_p - 1e-12:
                break
        kept = prefix
    out = np.zeros(len(p))
    for i in kept:
        out[i] = p[i]
    return out / out.sum()


@pytest.mark.parametrize("temperature,top_k,top_p", [
    (1.0, 0, 1.0), (0.5, 0, 1.0), (2.0, 5, 1.0), (1.0, 0, 0.9), (0.7, 10, 0.5), (1.3, 3, 0.99),
    (1.0, 1, 1.0), (1.0, 0, 0.01)])
def test_transform_matches_the_reference(temperature, top_k, top_p):
    rng = np.random.default_rng(7)
    for _ in range(5):
        logits = rng.normal(size=50) * 3
        got = transform(logits, SamplingParams(temperature, top_k, top_p))
        np.testing.assert_allclose(got, reference(logits, temperature, top_k, top_p), atol=1e-12)
        assert math.isclose(got.sum(), 1.0, abs_tol=1e-12)
        if top_k:
            assert (got > 0).sum() <= top_k


def test_top_k_keeps_exactly_k_and_top_p_the_smallest_prefix():
    logits = np.log(np.array([0.4, 0.3, 0.2, 0.1]))
    assert (transform(logits, SamplingParams(1.0, 2, 1.0)) > 0).sum() == 2
    # mass 0.4 + 0.3 = 0.7 >= 0.7: two tokens; 0.71 needs three
    assert (transform(logits, SamplingParams(1.0, 0, 0.7)) > 0).sum() == 2
    assert (transform(logits, SamplingParams(1.0, 0, 0.71)) > 0).sum() == 3
    greedy = transform(logits, SamplingParams(0.0, 0, 1.0))
    assert greedy.tolist() == [1.0, 0.0, 0.0, 0.0]


@pytest.mark.parametrize("kw,needle", [
    ({"temperature": float("nan")}, "temperature"), ({"temperature": -1}, "temperature"),
    ({"temperature": "hot"}, "temperature"), ({"top_k": -3}, "top_k"), ({"top_k": 2.5}, "top_k"),
    ({"top_p": 0}, "top_p"), ({"top_p": 1.5}, "top_p"), ({"top_p": float("inf")}, "top_p")])
def test_bad_knobs_are_refused_with_a_message(kw, needle):
    with pytest.raises(UserError, match=needle):
        check_params(**kw)


# ----------------------------------------------------------------------------- services

def _independent_log_probs(model_id, text):
    import torch

    from lmdemo.core.models import load

    loaded = load(model_id, kinds=("causal-lm", "recurrent-lm"), device="cpu")
    tok = loaded.tokenizer
    ids = [tok.bos_token_id] + tok(text, add_special_tokens=False)["input_ids"]
    with torch.inference_mode():
        logits = loaded.model(torch.tensor([ids])).logits[0].double()  # (T, V)
    logp = torch.log_softmax(logits, dim=-1)[:-1]  # (T-1, V)
    return logp[torch.arange(len(ids) - 1), torch.tensor(ids[1:])].tolist(), ids[1:]


@pytest.mark.parametrize("model_id", ["tiny-gpt", "tiny-lstm", "tiny-gru", "tiny-rnn"])
def test_score_equals_an_independent_log_softmax(model_id):
    text = "We walked to the shop and bought some bread."
    result = score(model_id, text)
    expected, ids = _independent_log_probs(model_id, text)
    assert result.token_ids == ids
    np.testing.assert_allclose(result.log_probs, expected, atol=1e-4)
    assert math.isclose(result.total_log_prob, sum(expected), abs_tol=1e-3)
    assert math.isclose(result.perplexity, math.exp(-sum(expected) / len(ids)), rel_tol=1e-4)
    assert "".join(result.tokens) == text
    assert score(model_id, text).log_probs == result.log_probs  # deterministic


def test_next_token_distribution_shapes_and_greedy():
    res = next_token("tiny-gpt", "I would like a cup of", top_k=5, temperature=0.8, show=10)
    probs = [e.prob for e in res.entries]
    assert probs == sorted(probs, reverse=True) and len(res.entries) == 10
    assert res.kept == 5
    assert math.isclose(sum(e.sampling_prob for e in res.entries), 1.0, abs_tol=1e-9)
    assert all(e.sampling_prob == 0 for e in res.entries[5:])
    assert res.entropy > res.sampling_entropy >= 0
    greedy = next_token("tiny-gpt", "I would like a cup of", temperature=0)
    assert greedy.entries[0].sampling_prob == 1.0 and greedy.kept == 1
    assert greedy.sampling_entropy == 0.0
    empty = next_token("tiny-lstm", "")
    assert empty.context_tokens == 1 and not empty.truncated


def test_long_prompt_keeps_the_end_and_says_so():
    text = "the cat sat on the mat " * 100
    res = next_token("tiny-gpt", text)
    assert res.truncated and "context" in res.message and res.context_tokens == 256
    scored = score("tiny-gpt", text)
    assert scored.truncated and len(scored.log_probs) == 255


def test_services_refuse_bad_input():
    with pytest.raises(UserError, match="temperature"):
        next_token("tiny-gpt", "hi", temperature=float("nan"))
    with pytest.raises(UserError, match="non-empty"):
        score("tiny-gpt", "   ")
    with pytest.raises(UserError, match="encoder"):
        next_token("minilm", "hello")


# ----------------------------------------------------------------------------- CLI

def _cli_json(capsys, *argv):
    code = main(list(argv) + ["--json"])
    out = capsys.readouterr()
    return code, (json.loads(out.out) if out.out.strip() else None), out.err


def test_cli_score_and_next_token_json(capsys, tmp_path):
    code, data, _ = _cli_json(capsys, "score", "--model", "tiny-gru", "--text", "Good morning.")
    assert code == 0 and data["model"] == "tiny-gru" and len(data["log_probs"]) == len(data["tokens"])
    texts = ["One two three.", "The sun is hot.", "Hello there."]
    code, data, _ = _cli_json(capsys, "score", "--model", "tiny-gpt", *sum(
        (["--text", t] for t in texts), []))
    assert code == 0 and [d["text"] for d in data] == texts
    f = tmp_path / "prompts.txt"
    f.write_text("The dog\nA cup of\n")
    code, data, _ = _cli_json(capsys, "next-token", "--model", "tiny-rnn", "--file", str(f),
                              "--top-k", "3", "--temperature", "0.5", "--top-p", "0.9")
    assert code == 0 and [d["text"] for d in data] == ["The dog", "A cup of"]
    assert all(d["kept"] <= 3 for d in data)
    code, data, _ = _cli_json(capsys, "next-token", "--model", "tiny-gpt", "--text", "Hi")
    assert code == 0 and isinstance(data, dict) and data["entries"][0]["token"]


@pytest.mark.parametrize("argv,needle", [
    (["next-token", "--model", "no-such/model", "--text", "hi"], "no-such/model"),
    (["next-token", "--model", "tiny-gpt", "--text", "hi", "--temperature", "nan"], "temperature"),
    (["score", "--model", "tiny-gpt"], "--text"),
    (["next-token", "--model", "tiny-gpt", "--text", "hi", "--top-p", "2"], "top_p")])
def test_cli_bad_input_exits_2_with_a_message(capsys, argv, needle):
    code, data, err = _cli_json(capsys, *argv)
    assert code == 2 and data is None
    assert err.startswith("error:") and needle in err and "Traceback" not in err


# ----------------------------------------------------------------------------- hub mirror

def test_hub_model_from_a_local_mirror(tmp_path, monkeypatch):
    import torch

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("LMDEMO_HUB_MIRROR", str(tmp_path))
    model = save_tiny_gpt2(tmp_path / "testorg" / "tiny-gpt2", n_positions=32)
    res = score("testorg/tiny-gpt2", "abc")
    ids = [0] + res.token_ids[:-1]
    with torch.inference_mode():
        logits = model(torch.tensor([ids])).logits[0].double()  # (T, V)
    expected = torch.log_softmax(logits, -1)[torch.arange(len(ids)), torch.tensor(res.token_ids)]
    np.testing.assert_allclose(res.log_probs, expected.tolist(), atol=1e-4)
    nt = next_token("testorg/tiny-gpt2", "x" * 100, top_p=0.5)
    assert nt.truncated and nt.context_tokens == 32 and nt.vocab_size == model.config.vocab_size
