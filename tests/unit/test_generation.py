"""Step-by-step generation: the cached step equals a full recompute, undo restores the previous
state, force appends exactly the token asked for, and the sampling transform behaves at its edges.
Tiny random models (a GPT-2, a Llama with grouped-query attention, a vanilla RNN / LSTM) built from
configs; no weights needed."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from lmdemo.core.errors import UserError
from lmdemo.lab.generation import Generation, full_recompute_logits, reshape
from lmdemo.lab.sampling import SamplingParams as Sampling
from tests.helpers import save_tiny_gpt2


def tiny_loaded(kind: str, tmp_path, n_positions: int = 64):
    """A `Loaded` bundle around a tiny random model with the tiny GPT-2 test tokenizer."""
    import torch
    from transformers import AutoTokenizer

    from lmdemo.core.models import Loaded
    from lmdemo.core.recurrent import RecurrentConfig, RecurrentLM
    from lmdemo.core.registry import get_spec

    if kind == "llama":  # RoPE and grouped-query attention: the architecture of smollm2
        from tests.helpers import tiny_llama_loaded

        return tiny_llama_loaded(n_positions)
    folder = tmp_path / f"gpt-{n_positions}"
    gpt = save_tiny_gpt2(folder, n_positions=n_positions)
    tok = AutoTokenizer.from_pretrained(folder)
    if kind == "gpt":
        spec = dataclasses.replace(get_spec("tiny-gpt"), location=str(folder))
        model = gpt
    else:
        torch.manual_seed(1)
        model = RecurrentLM(RecurrentConfig(arch=kind, vocab_size=gpt.config.vocab_size,
                                            n_embd=16, n_hidden=24, max_len=n_positions)).eval()
        spec = dataclasses.replace(get_spec(f"tiny-{kind}"), location=str(folder))
    return Loaded(spec=spec, model=model.eval(), tokenizer=tok, device="cpu", dtype=torch.float32)


@pytest.fixture(params=["gpt", "llama", "lstm", "rnn"])
def loaded(request, tmp_path):
    return tiny_loaded(request.param, tmp_path)


def test_cached_steps_equal_full_recompute(loaded):
    gen = Generation.start(loaded, "the cat sat")
    for token in (5, 17, 42, 3, 60):
        gen.force(token)
        np.testing.assert_allclose(gen.logits, full_recompute_logits(loaded, gen.ids),
                                   rtol=1e-4, atol=1e-5)


def test_force_appends_exactly_that_token_and_records_its_probability(loaded):
    gen = Generation.start(loaded, "hello")
    before = list(gen.ids)
    raw = np.exp(gen.logits - gen.logits.max())
    raw /= raw.sum()
    step = gen.force(33)
    assert gen.ids == before + [33]
    assert step.id == 33 and step.how == "forced"
    assert step.p_raw == pytest.approx(raw[33], rel=1e-5)


def test_undo_restores_the_previous_state(loaded):
    gen = Generation.start(loaded, "a b c")
    gen.force(10)
    ids, logits = list(gen.ids), gen.logits.copy()
    dist = gen.distribution(Sampling(0.7, 5, 0.9), top=5)
    gen.force(11)
    gen.greedy()
    assert gen.undo().how == "greedy"
    assert gen.undo().id == 11
    assert gen.ids == ids
    np.testing.assert_array_equal(gen.logits, logits)
    again = gen.distribution(Sampling(0.7, 5, 0.9), top=5)
    assert again.ids == dist.ids
    np.testing.assert_array_equal(again.shaped, dist.shaped)
    # the cache was cropped correctly: the next cached step still matches a full recompute
    gen.force(12)
    np.testing.assert_allclose(gen.logits, full_recompute_logits(loaded, gen.ids),
                               rtol=1e-4, atol=1e-5)
    gen.undo()
    gen.undo()
    assert gen.undo() is None and gen.ids == gen.prompt_ids


def test_greedy_and_seeded_sampling(loaded):
    gen = Generation.start(loaded, "x")
    before = full_recompute_logits(loaded, gen.ids)  # an independent pass, no cache
    top = int(np.argmax(before))
    assert gen.greedy().id == top
    gen.undo()
    draws = set()
    for seed in range(40):
        a = gen.sample(Sampling(1.0, 5, 1.0), seed=seed).id
        gen.undo()
        assert gen.sample(Sampling(1.0, 5, 1.0), seed=seed).id == a  # the same seed, the same draw
        gen.undo()
        draws.add(a)
    assert draws <= set(np.argsort(-before)[:5].tolist())  # top-k 5 never picks outside the top 5
    assert len(draws) > 1  # and it does sample: 40 seeds do not all draw the same token


@pytest.mark.parametrize("kind,start", [("gpt", 0), ("llama", 0)])
def test_empty_prompt_starts_from_the_start_token(tmp_path, kind, start):
    loaded = tiny_loaded(kind, tmp_path)  # GPT-2's <|endoftext|>; the Llama's spec names its own
    gen = Generation.start(loaded, "")
    assert gen.prompt_ids == [start]
    want = np.exp(full_recompute_logits(loaded, [start]).astype(np.float64))
    want /= want.sum()
    dist = gen.distribution(top=5)
    np.testing.assert_allclose(dist.raw, want[dist.ids], rtol=1e-4)


def test_act_and_replay_rebuild_the_same_generation(loaded):
    gen = Generation.start(loaded, "ab")
    gen.act("force", token=7)
    gen.act("greedy", times=2)
    gen.act("sample", Sampling(0.9, 10, 1.0), times=2, seed=5)
    gen.act("undo")
    ids = [s.id for s in gen.steps]
    assert len(ids) == 4 and ids[0] == 7
    again = Generation.start(loaded, "ab")
    again.replay(ids + [10**9, 3])  # a link with a bad id stops there
    assert [s.id for s in again.steps] == ids
    np.testing.assert_allclose(again.logits, full_recompute_logits(loaded, again.ids),
                               rtol=1e-4, atol=1e-5)
    gen.act("reset")
    assert gen.steps == [] and gen.ids == gen.prompt_ids
    with pytest.raises(UserError, match="Unknown action"):
        gen.act("jump")


@pytest.mark.parametrize("kind", ["gpt", "llama"])
def test_long_prompt_keeps_the_end_and_window_slides(tmp_path, kind):
    loaded = tiny_loaded(kind, tmp_path, n_positions=16)
    gen = Generation.start(loaded, "abcdefghijklmnopqrstuvwxyz")
    assert len(gen.prompt_ids) == 16 and "only the last 16" in gen.message
    gen.force(7)  # the context is full: the window slides, and the logits stay right
    np.testing.assert_allclose(gen.logits, full_recompute_logits(loaded, gen.ids),
                               rtol=1e-4, atol=1e-5)
    assert "context is full" in gen.message
    gen.undo()
    gen.force(9)
    np.testing.assert_allclose(gen.logits, full_recompute_logits(loaded, gen.ids),
                               rtol=1e-4, atol=1e-5)


def test_reshape_edges():
    logits = np.array([2.0, 1.0, 0.5, -1.0])
    raw = reshape(logits, Sampling())
    np.testing.assert_allclose(raw, np.exp(logits) / np.exp(logits).sum())
    np.testing.assert_array_equal(reshape(logits, Sampling(temperature=0)), [1, 0, 0, 0])
    np.testing.assert_array_equal(reshape(logits, Sampling(top_p=1e-9)), [1, 0, 0, 0])
    k2 = reshape(logits, Sampling(top_k=2))
    assert (k2[2:] == 0).all() and k2.sum() == pytest.approx(1)
    # top-p keeps the smallest head whose mass reaches p
    p = raw[0] + 0.01
    assert (reshape(logits, Sampling(top_p=p)) > 0).sum() == 2
    hot = reshape(logits, Sampling(temperature=5))
    assert hot.max() < raw.max()  # a high temperature flattens the distribution


@pytest.mark.parametrize("bad", [Sampling(temperature=math.nan), Sampling(temperature=-1),
                                 Sampling(top_p=0), Sampling(top_p=1.5), Sampling(top_k=-2),
                                 Sampling(top_p=math.inf), Sampling(top_k=1.5)])
def test_bad_sampling_values_give_a_user_error(bad):
    with pytest.raises(UserError):
        reshape(np.zeros(4), bad)


def test_force_refuses_a_token_outside_the_vocabulary(tmp_path):
    gen = Generation.start(tiny_loaded("gpt", tmp_path), "hi")
    with pytest.raises(UserError):
        gen.force(10_000)


def test_next_word_figures_and_html_escape_tokens():
    from lmdemo.plots import next_word as plots

    fig = plots.distribution_bars([" the", "a", " the"], [0.5, 0.3, 0.2], [0.7, 0.3, 0.0])
    assert [t.name for t in fig.data] == ["raw (softmax of the logits)",
                                          "after temperature / top-k / top-p"]
    assert len(set(fig.data[0].x)) == 3 and fig.data[0].x[0] == "␣the"  # repeats stay distinct
    html = plots.surprisal_html(["<b>", " x"], [1.0, 20.0])
    assert "&lt;b&gt;" in html and "<b>" not in html.split("<div")[1]
    assert "p = 0.5" in html
    gen = plots.generated_html("Hi <", [{"token": " there", "p_raw": 0.25, "p_shaped": 0.5,
                                         "how": "forced"}])
    assert "Hi &lt;" in gen and "p = 0.2500 raw" in gen
    bars = plots.sentence_bars(["a b", "c d"], [-3.0, -1.0])
    assert list(bars.data[0].x) == [-1.0, -3.0]  # best first
    from lmdemo.lab.next_token import NextTokenEntry, NextTokenResult

    results = [NextTokenResult("m", "", 1, 0, 1, [NextTokenEntry("x", 1, 1.0, 1.0)]),
               NextTokenResult("n", "", 1, 0, 1, [NextTokenEntry("y", 2, 0.5, 0.5)])]
    fig = plots.side_by_side(results)
    assert [t.y.tolist() for t in fig.data] == [[1.0], [0.5]]
    assert [a.text for a in fig.layout.annotations] == ["m", "n"]
