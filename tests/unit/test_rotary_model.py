"""RoPE on real q and k: the relative-position property measured on a Llama-style model's own
pre-rotation query and key, the rotation checked against the model's attention weights (and a
wrong θ or the wrong pair layout caught), position ablation on a rotary model, the clear error for
rotary models in the learned-table helpers, and the CLI. Tiny random Llama always; SmolLM2-135M
when it has been fetched (LMDEMO_REQUIRE_SMOLLM2=1 turns its absence into a failure)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from lmdemo.core.errors import UserError
from lmdemo.lab import positional as pos
from lmdemo.lab import rotary
from tests.helpers import tiny_llama, tiny_llama_loaded

TEXT = "the cat sat on the mat"


@pytest.fixture(scope="module")
def llama():
    return tiny_llama()


def test_rotate_half_layout_matches_transformers():
    import torch
    from transformers.models.llama.modeling_llama import rotate_half

    d, theta = 8, 500.0
    x = np.random.default_rng(1).standard_normal((5, d))
    inv = 1.0 / theta ** (np.arange(0, d, 2) / d)  # (d/2,)
    ang = np.arange(5)[:, None] * np.concatenate([inv, inv])  # (T, d) as transformers builds it
    t = torch.tensor(x)
    want = t * torch.tensor(np.cos(ang)) + rotate_half(t) * torch.tensor(np.sin(ang))
    np.testing.assert_allclose(rotary.rotate(x, np.arange(5), theta, "half"), want.numpy(),
                               atol=1e-12)
    # the interleaved layout is a different map (same angles, other pairs)
    assert np.abs(rotary.rotate(x, np.arange(5), theta) - want.numpy()).max() > 0.1


def test_relative_property_on_real_q_and_k(llama):
    model, tok = llama
    r = rotary.measure_model(model, tok, TEXT, layer=1, head=3, start=0, length=40)
    assert r.theta == 10_000.0 and r.head_dim == 8 and r.kv_head == 1  # 4 q heads on 2 kv heads
    assert r.tokens[0] == "<|endoftext|>" and r.query_index == len(r.tokens) - 1
    assert r.scores.shape == (40, 40) and r.deviation.shape == (79,)
    assert r.relative_deviation < 1e-4 and r.max_deviation < 1e-12
    assert r.relative_additive_deviation > 1e-2
    np.testing.assert_allclose(r.wavelengths, 2 * np.pi * 10_000.0 ** (np.arange(4) / 4))
    # the scores are the dot products of the vectors the model's q_proj/k_proj produced
    np.testing.assert_allclose(r.scores[0, 0], r.q @ r.k / np.sqrt(8), rtol=1e-12)
    np.testing.assert_allclose(r.by_offset[39], r.q @ r.k / np.sqrt(8), rtol=1e-12)


def test_rotation_reproduces_the_models_own_attention(llama):
    model, tok = llama
    r = rotary.measure_model(model, tok, TEXT, layer=0, head=0, start=0)
    assert r.model_attention.shape == r.recomputed_attention.shape == (len(r.tokens),) * 2
    assert r.model_max_diff < 1e-5
    assert np.triu(r.recomputed_attention, 1).max() == 0  # causal, as the model
    for mutation in ({"theta": 100_000.0}, {"layout": "interleaved"}):
        bad = rotary.measure_model(model, tok, TEXT, layer=0, head=0, start=0, **mutation)
        assert bad.model_max_diff > 20 * max(r.model_max_diff, 1e-7), mutation
        assert bad.relative_deviation < 1e-4  # a wrong rotation is still a rotation


def test_measure_loaded_reads_after_the_start_token():
    r = rotary.measure_loaded(tiny_llama_loaded(), "abc", layer=1, head=2, key=0)
    assert r.tokens == ["<|endoftext|>", "a", "b", "c"] and r.key_index == 0
    assert r.model_id == "tiny-llama" and r.model_max_diff < 1e-5


@pytest.mark.parametrize(("kw", "word"), [({"layer": 2}, "Layer"), ({"head": 4}, "head"),
                                          ({"query": 99}, "query"), ({"length": 1}, "Positions"),
                                          ({"layout": "twisted"}, "layout"),
                                          ({"text": ""}, "at least")])
def test_bad_input_is_a_user_error(llama, kw, word):
    model, tok = llama
    args = {"text": TEXT, "start": 0, **kw}
    with pytest.raises(UserError, match=word):
        rotary.measure_model(model, tok, **args)


def test_models_without_rope_are_refused(tmp_path):
    from transformers import AutoTokenizer

    from tests.helpers import save_tiny_gpt2

    model = save_tiny_gpt2(tmp_path / "m")
    tok = AutoTokenizer.from_pretrained(tmp_path / "m")
    with pytest.raises(UserError, match="rotary"):
        rotary.measure_model(model, tok, "abcdef")
    with pytest.raises(UserError, match="learned position table"):
        rotary.measure("tiny-gpt", "abcdef")
    with pytest.raises(UserError, match="not a causal"):
        rotary.measure("minilm", "abcdef")


def test_ablation_changes_a_rotary_models_distribution():
    import torch

    from lmdemo.lab.position_ablation import ablate_loaded, ablate_model

    model, tok = tiny_llama()
    with torch.no_grad():  # sharper attention than random init, so positions matter visibly
        for layer in model.model.layers:
            layer.self_attn.q_proj.weight.mul_(20)
            layer.self_attn.k_proj.weight.mul_(20)
    r = ablate_model(model, tok, TEXT, "zeros", layer=1, head=3, start=0)
    assert r.tokens[0] == "<|endoftext|>" and r.position_ids == [0] * len(r.tokens)
    ids = torch.tensor([[0] + tok(TEXT, add_special_tokens=False)["input_ids"]])
    with torch.inference_mode():
        p = torch.softmax(model(ids).logits[0, -1].double(), -1)
        q = torch.softmax(model(ids, position_ids=torch.zeros_like(ids)).logits[0, -1].double(),
                          -1)
    assert r.kl == pytest.approx(float((p * (p / q).log()).sum()), rel=1e-3)
    assert r.kl > 1e-3  # measured: 2.5e-3 nats
    assert r.kl_per_position[0] == pytest.approx(0, abs=1e-6)  # position 0 is 0 either way
    assert np.abs(r.attention_after - r.attention_before).max() > 1e-2
    r = ablate_loaded(tiny_llama_loaded(), "abcd", "reverse")
    assert r.tokens == ["<|endoftext|>", "a", "b", "c", "d"] and r.position_ids == [4, 3, 2, 1, 0]
    assert np.abs(r.attention_after - r.attention_before).max() > 0  # the angles changed


def test_the_pages_charts_of_a_measurement_and_an_ablation(llama):
    from lmdemo.lab.position_ablation import ablate_model
    from lmdemo.plots import positional as plots

    model, tok = llama
    r = rotary.measure_model(model, tok, TEXT, layer=1, head=2, start=0, length=12,
                             model_id="tiny")
    charts = plots.rotary_model_charts(r)
    assert [c.name for c in charts] == ["rope-wavelengths-tiny", "rope-deviation-tiny-L1H2",
                                        "rope-scores-tiny-L1H2"]
    assert all(c.step == 1 and c.data for c in charts)
    a = ablate_model(model, tok, TEXT, "reverse", layer=1, head=0, start=0)
    assert [c.name for c in plots.ablation_charts(a)] == [
        "ablation-top-reverse", "ablation-kl-reverse", "ablation-attention-reverse"]


def test_learned_table_on_a_rotary_model_is_a_user_error(llama):
    with pytest.raises(UserError, match="rotary"):
        pos.position_table(llama[0])
    with pytest.raises(UserError, match="rotary position embeddings"):
        pos.learned_table("smollm2")  # refused from the registry entry, nothing loaded


def test_cli_rotary_model_bad_input_exits_2(capsys):
    from lmdemo.cli import main

    for argv in (["--model", "tiny-gpt"], ["--model", "nope"], ["--model", "minilm"]):
        code = main(["positional", "--kind", "rotary-model", *argv, "--json"])
        out = capsys.readouterr()
        assert code == 2 and out.out == "" and out.err.startswith("error: ")
        assert "Traceback" not in out.err


# ------------------------------------------------------------------------- SmolLM2-135M

def smollm2_or_skip():
    from lmdemo.core.assets import is_fetched

    if not is_fetched("smollm2"):
        if os.environ.get("LMDEMO_REQUIRE_SMOLLM2") == "1":
            pytest.fail("LMDEMO_REQUIRE_SMOLLM2=1 but smollm2 is not fetched "
                        "(python -m lmdemo fetch smollm2)")
        pytest.skip("smollm2 is not fetched (python -m lmdemo fetch smollm2)")


def test_smollm2_rope_measured_on_its_own_q_and_k():
    smollm2_or_skip()
    r = rotary.measure("smollm2", "The capital of France is Paris. The capital of Italy is",
                       layer=10, head=4)
    assert r.theta == 100_000.0 and r.head_dim == 64 and r.kv_head == 1
    assert (r.n_layers, r.n_heads, r.n_kv_heads) == (30, 9, 3)
    assert r.relative_deviation < 1e-6 and r.relative_additive_deviation > 0.05
    assert r.model_max_diff < 1e-3
    assert r.wavelengths[0] == pytest.approx(2 * np.pi)
    assert r.wavelengths[-1] == pytest.approx(2 * np.pi * 100_000 ** (62 / 64))
    from lmdemo.core.models import load

    bad = rotary.measure_loaded(load("smollm2"), "The capital of France is", layer=10, head=4,
                                theta=10_000.0)
    assert bad.model_max_diff > 1e-2


def test_smollm2_forgets_paris_without_positions():
    from lmdemo.lab.position_ablation import ablate

    smollm2_or_skip()
    r = ablate("smollm2", "The capital of France is", "zeros", top_k=100)
    assert r.tokens[0] == "<|endoftext|>"
    assert r.top_before[0][0] == " Paris" and r.top_before[0][1] > 0.5  # measured: 0.81
    assert r.top_after[0][0] != " Paris"
    assert dict(r.top_after).get(" Paris", 0.0) < 0.05  # measured: 0.008, 14th
    assert r.kl > 1.0  # measured: 3.65 nats


def test_smollm2_cli(capsys):
    from lmdemo.cli import main

    smollm2_or_skip()
    code = main(["positional", "--kind", "rotary-model", "--model", "smollm2", "--text",
                 "The capital of France is", "--layer", "3", "--head", "5", "--length", "16",
                 "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["theta"] == 100_000.0 and data["kv_head"] == 1
    assert np.asarray(data["scores"]).shape == (16, 16) and len(data["wavelengths"]) == 32
    assert data["relative_deviation"] < 1e-6 and data["model_attention_max_diff"] < 1e-3
    code = main(["positional", "--kind", "rotary-model", "--head", "9", "--json"])
    assert code == 2 and "head" in capsys.readouterr().err
