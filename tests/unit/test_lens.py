"""The logit lens (lmdemo.lab.lens) on a tiny Llama, a tiny GPT-2, a tiny recurrent LM and, when
fetched, SmolLM2.

Every row is checked against a computation that does not use the lens's hooks: transformers'
own `output_hidden_states` (whose entries 0..L-1 are the inputs of the blocks, the residual
stream before each layer) pushed through the final norm and the unembedding by hand, and the
last row against the model's own logits.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from lmdemo.core.errors import UserError
from lmdemo.lab.lens import lens, lens_of, residual_stream
from lmdemo.lab.next_token import encode
from tests.helpers import save_tiny_gpt2, tiny_llama_loaded, tiny_recurrent
from tests.unit.test_smollm2 import require_smollm2

TEXT = "abc de!"


def _tiny_gpt2(folder):
    from transformers import AutoTokenizer

    from lmdemo.core.models import Loaded
    from lmdemo.core.registry import get_spec

    model = save_tiny_gpt2(folder)
    spec = dataclasses.replace(get_spec("tiny-gpt"), location=str(folder))
    return Loaded(spec, model.eval(), AutoTokenizer.from_pretrained(folder), "cpu", torch.float32)


@pytest.fixture(params=["llama", "gpt2"])
def tiny(request, tmp_path):
    return tiny_llama_loaded() if request.param == "llama" else _tiny_gpt2(tmp_path / "g")


def _reference(loaded, ids):
    """(L+1, T, V) probabilities from transformers' hidden states and logits, no lens code."""
    model = loaded.model
    with torch.no_grad():
        out = model(torch.tensor([ids]), output_hidden_states=True, use_cache=False)
        inner = model.transformer if hasattr(model, "transformer") else model.model
        norm = inner.ln_f if hasattr(inner, "ln_f") else inner.norm
        rows = [model.lm_head(norm(h[0])) for h in out.hidden_states[:-1]]  # blocks' inputs
        rows.append(out.logits[0])  # the model's own prediction
    return torch.softmax(torch.stack(rows).double(), dim=-1).numpy()  # (L+1, T, V)


def test_every_row_matches_the_hidden_states_and_the_last_row_the_model(tiny):
    res = lens_of(tiny, TEXT)
    ids = encode(tiny, TEXT).ids
    ref = _reference(tiny, ids)  # (L+1, T, V)
    n_layers = tiny.model.config.num_hidden_layers
    assert res.top_ids.shape == res.top_probs.shape == (n_layers + 1, len(ids))
    assert res.depths == ["embedding"] + [f"layer {i + 1}" for i in range(n_layers)]
    assert res.tokens[0] == "<|endoftext|>" and res.token_ids == ids
    np.testing.assert_array_equal(res.top_ids, ref.argmax(-1))
    np.testing.assert_allclose(res.top_probs, ref.max(-1), atol=1e-5)
    with torch.no_grad():
        final = torch.softmax(tiny.model(torch.tensor([ids])).logits[0].double(), -1).numpy()
    np.testing.assert_allclose(res.top_probs[-1], final.max(-1), atol=1e-6)
    assert res.top_tokens[-1] == [tiny.tokenizer.decode([i]) for i in final.argmax(-1)]


def test_the_stream_is_the_blocks_inputs_and_the_last_output_before_the_norm(tiny):
    ids = encode(tiny, TEXT).ids
    states = residual_stream(tiny, ids)  # (L+1, T, d)
    with torch.no_grad():
        hs = tiny.model(torch.tensor([ids]), output_hidden_states=True).hidden_states
    for depth in range(len(hs) - 1):
        torch.testing.assert_close(states[depth], hs[depth][0], rtol=0, atol=1e-6)
    inner = tiny.model.transformer if hasattr(tiny.model, "transformer") else tiny.model.model
    norm = inner.ln_f if hasattr(inner, "ln_f") else inner.norm
    with torch.inference_mode():
        normed = norm(states[-1])
    torch.testing.assert_close(normed, hs[-1][0], rtol=0, atol=1e-6)  # HF's last one is normed
    assert not torch.allclose(states[-1], hs[-1][0])  # ... which is why the lens hooks blocks


def test_a_pinned_token_is_followed_through_the_depths(tiny):
    pin = "d"
    pin_id = tiny.tokenizer(pin, add_special_tokens=False)["input_ids"][0]
    res = lens_of(tiny, TEXT, pin=pin)
    ref = _reference(tiny, encode(tiny, TEXT).ids)  # (L+1, T, V)
    np.testing.assert_allclose(res.pinned.probs, ref[..., pin_id], atol=1e-6)
    np.testing.assert_allclose(res.pinned_curve(), ref[:, -1, pin_id], atol=1e-6)
    np.testing.assert_allclose(res.pinned_curve(2), ref[:, 2, pin_id], atol=1e-6)
    ranks = (ref > ref[..., pin_id:pin_id + 1]).sum(-1)
    np.testing.assert_array_equal(res.pinned.ranks, ranks)
    data = json.loads(json.dumps(res.to_json()))
    assert data["pin"]["id"] == pin_id and len(data["pin"]["probs"]) == len(res.depths)
    assert len(data["top"]) == len(res.depths) and len(data["top"][0]) == len(res.tokens)
    assert set(data["top"][0][0]) == {"token", "id", "prob"}
    with pytest.raises(UserError, match=f"Position {len(res.tokens)} does not exist"):
        res.pinned_curve(len(res.tokens))


def test_first_top_finds_the_depth_from_which_a_token_stays_on_top(tiny):
    res = lens_of(tiny, TEXT)
    last = int(res.top_ids[-1, -1])
    first = res.first_top(last)
    assert first is not None and (res.top_ids[first:, -1] == last).all()
    assert first == 0 or res.top_ids[first - 1, -1] != last
    assert res.first_top(-5) is None


def test_a_pin_must_be_one_token_and_says_how_it_splits(tiny):
    with pytest.raises(UserError, match="exactly one token.*'a' \\+ 'b'"):
        lens_of(tiny, "abc", pin="ab")
    assert lens_of(tiny, "abc", pin="").pinned is None
    with pytest.raises(UserError, match="No token is pinned"):
        lens_of(tiny, "abc").pinned_curve()


def test_an_empty_text_reads_the_start_token_alone(tiny):
    res = lens_of(tiny, "")
    assert res.top_ids.shape == (tiny.model.config.num_hidden_layers + 1, 1)


def test_a_recurrent_model_gives_one_row_its_prediction():
    from lmdemo.core.models import Loaded
    from lmdemo.core.registry import get_spec

    llama = tiny_llama_loaded()
    model = tiny_recurrent("lstm", vocab_size=len(llama.tokenizer))
    loaded = Loaded(get_spec("tiny-lstm"), model, llama.tokenizer, "cpu", torch.float32)
    res = lens_of(loaded, TEXT, pin="d")
    ids = encode(loaded, TEXT).ids
    with torch.no_grad():
        probs = torch.softmax(model(torch.tensor([ids])).logits[0].double(), -1).numpy()
    assert res.kind == "recurrent" and res.depths == ["output"]
    np.testing.assert_array_equal(res.top_ids[0], probs.argmax(-1))
    np.testing.assert_allclose(res.top_probs[0], probs.max(-1), atol=1e-6)
    pin_id = llama.tokenizer("d", add_special_tokens=False)["input_ids"][0]
    np.testing.assert_allclose(res.pinned_curve(), [probs[-1, pin_id]], atol=1e-6)


def test_an_encoder_is_refused_with_what_to_pick():
    with pytest.raises(UserError, match="'minilm' is an encoder.*smollm2 or tiny-gpt"):
        lens("minilm", "hello")
    enc = dataclasses.replace(tiny_llama_loaded(), spec=dataclasses.replace(
        tiny_llama_loaded().spec, kind="encoder"))
    with pytest.raises(UserError, match="is an encoder"):
        lens_of(enc, "hello")


def test_too_long_a_text_is_refused_or_cut_as_the_engine_cuts_it(tiny):
    from lmdemo.lab.lens import read_ids

    with pytest.raises(UserError, match="at most 4"):
        read_ids(tiny, "abcdefgh", 4)
    res = lens_of(tiny, "a" * 200)  # past the tiny models' 64-token context: the end is read
    assert len(res.tokens) == 64 and "only the last 64" in res.message


def test_the_cli_prints_the_grid_and_the_pin(capsys):
    from lmdemo.cli import main

    assert main(["lens", "--model", "tiny-gpt", "--text", "The capital of France is",
                 "--pin", " Paris", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["tokens"][0] == "<|endoftext|>" and len(data["tokens"]) == 6
    assert len(data["top"]) == len(data["depths"]) and len(data["top"][-1]) == 6
    assert data["pin"]["token"] == " Paris" and len(data["pin"]["probs"]) == len(data["depths"])
    assert main(["lens", "--model", "tiny-gpt", "--text", "x", "--pin", " Parisian"]) == 2
    assert "exactly one token" in capsys.readouterr().err
    assert main(["lens", "--model", "minilm", "--text", "x"]) == 2


@pytest.mark.slow
def test_smollm2_finds_paris_in_its_late_layers():
    require_smollm2()
    from lmdemo.core.models import load

    smol = load("smollm2", device="cpu")
    res = lens_of(smol, "The capital of France is", pin=" Paris")
    ids = encode(smol, "The capital of France is").ids
    with torch.no_grad():
        final = torch.softmax(smol.model(torch.tensor([ids])).logits[0].double(), -1).numpy()
    np.testing.assert_array_equal(res.top_ids[-1], final.argmax(-1))
    np.testing.assert_allclose(res.top_probs[-1], final.max(-1), atol=1e-4)
    assert res.top_tokens[-1][-1] == " Paris"
    curve = res.pinned_curve()
    first = res.first_top(res.pinned.id)
    assert first is not None and first >= len(res.depths) // 2  # a late-layer answer
    assert curve[-1] > 0.5 and curve[: len(curve) // 2].max() < 0.01
