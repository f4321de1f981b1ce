"""The RNN lab's numbers: the hand-computed step equals the model's hidden state, the gradient
norms equal an independent autograd computation, and the timings are measured for every length."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lmdemo.core.errors import UserError
from lmdemo.lab import rnn as rnn_lab
from tests.unit.test_generation import tiny_loaded


@pytest.fixture
def rnn(tmp_path):
    return tiny_loaded("rnn", tmp_path)


def test_one_step_arithmetic_reproduces_the_models_hidden_state(rnn):
    res = rnn_lab.recurrence_of(rnn, "hello there", step=3)
    assert res.hidden.shape == (len(res.tokens), rnn.model.config.n_hidden)
    np.testing.assert_allclose(res.pre, res.wx + res.uh + res.b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(res.h_manual, np.tanh(res.pre), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(res.h_manual, res.h_model, atol=1e-5)
    np.testing.assert_array_equal(res.h_model, res.hidden[3])
    np.testing.assert_array_equal(res.h_prev, res.hidden[2])
    assert res.step_error < 1e-5 and res.run_error < 1e-5
    # W·x is really the model's W times the token's embedding
    emb = rnn.model.embed.weight[rnn.tokenizer("hello there", add_special_tokens=False)
                                 ["input_ids"][2]].detach().numpy()
    np.testing.assert_allclose(res.x, emb, atol=1e-6)
    np.testing.assert_allclose(res.wx, rnn.model.rnn.weight_ih_l0.detach().numpy() @ emb,
                               rtol=1e-4, atol=1e-6)


def test_step_zero_starts_from_a_zero_state_and_bad_steps_are_refused(rnn):
    res = rnn_lab.recurrence_of(rnn, "abc", step=0)
    assert not res.h_prev.any() and res.step_error < 1e-5
    with pytest.raises(UserError):
        rnn_lab.recurrence_of(rnn, "abc", step=99)
    with pytest.raises(UserError):
        rnn_lab.recurrence_of(rnn, "", step=None)


def test_every_step_at_once_equals_each_step_alone(rnn):
    steps = rnn_lab.steps_of(rnn, "hello there friend")
    T = len(steps.tokens)
    assert steps.wx.shape == steps.h_manual.shape == steps.hidden.shape
    for t in range(T):
        one = steps.at(t)
        w = rnn.model.rnn.weight_ih_l0.detach().numpy()
        np.testing.assert_allclose(one.wx, w @ one.x, rtol=1e-4, atol=1e-6)
        np.testing.assert_array_equal(one.h_model, steps.hidden[t])
        assert one.step == t and one.reproduced
    assert steps.at(None).step == T - 1
    table = steps.at(1).step_table(4)
    assert tuple(table) == rnn_lab.STEP_PARTS and all(len(v) == 4 for v in table.values())
    with pytest.raises(UserError):
        steps.at(T)


def test_result_summaries():
    grads = rnn_lab.GradientResult(["a", "b"], ["rnn", "gru"], ["x", "y", "z"],
                                   np.array([[1e-4, 1e-2], [1.0, 0.0]]), np.array([1, 0]),
                                   [1.0, 2.0])
    assert grads.decay()[0] == pytest.approx(1e-2) and np.isnan(grads.decay()[1])
    timing = rnn_lab.TimingResult("m", [4, 8], [2.0, 4.0], [1.0, 1.0], [1.0, 8.0], 16, 3)
    assert timing.speedups() == [2.0, 0.5]
    assert timing.attention_slower_at() == [8]
    assert timing.rnn_steps == [4, 8] and timing.attention_steps == [1, 1]  # counted, not timed
    # W·x_t and U·h_{t−1}: T·H·(E + H); Q, K, V then QKᵀ and ·V: 3·T·E·H + 2·T²·H
    assert timing.rnn_work == [4 * 16 * 32, 8 * 16 * 32]
    assert timing.attention_work == [3 * 4 * 16 * 16 + 2 * 16 * 16, 3 * 8 * 256 + 2 * 64 * 16]
    row = timing.rows()[1]
    assert (row["sequential_steps"], row["parallel_steps"]) == (8, 1)
    assert row["attention_multiply_adds"] > row["rnn_multiply_adds"]
    path = rnn_lab.PathResult(5)
    assert path.distances == [1, 2, 3, 4] and path.rows()[-1] == {
        "distance": 4, "rnn_steps": 4, "attention_steps": 1}
    assert rnn_lab.PathResult(1).distances == [1]


def test_recurrence_refuses_an_lstm(tmp_path):
    with pytest.raises(UserError):
        rnn_lab.recurrence_of(tiny_loaded("lstm", tmp_path), "abc")


def _independent_grad_norms(loaded, ids):
    """For each t: restart the model from a detached copy of h_t (and c_t) and differentiate the
    last token's loss with respect to that copy, through model.forward."""
    model = loaded.model
    x = torch.tensor([ids])
    with torch.no_grad():
        states = []
        hidden = None
        for t in range(len(ids) - 1):
            _, hidden = model.rnn(model.embed(x[:, t:t + 1]), hidden)
            states.append(hidden)
    norms = []
    for t, state in enumerate(states):
        if isinstance(state, tuple):
            h = state[0].clone().requires_grad_(True)
            start = (h, state[1])
        else:
            h = start = state.clone().requires_grad_(True)
        with torch.enable_grad():
            rest = x[:, t + 1:-1]
            if rest.shape[1]:
                out = model(rest, hidden=start)
                top = out.hidden[0][-1] if isinstance(out.hidden, tuple) else out.hidden[-1]
            else:
                top = h[-1]
            logp = torch.log_softmax(model.head(model.proj(top)), -1)[0, ids[-1]]
            (g,) = torch.autograd.grad(-logp, h)
        norms.append(float(g.norm()))
    return np.array(norms)


@pytest.mark.parametrize("arch", ["rnn", "lstm", "gru"])
def test_gradient_norms_equal_an_independent_autograd_computation(arch, tmp_path):
    loaded = tiny_loaded(arch, tmp_path)
    ids = loaded.tokenizer("the quick brown fox", add_special_tokens=False)["input_ids"]
    norms, loss = rnn_lab.grad_norms_of(loaded, ids)
    assert norms.shape == (len(ids) - 1,)
    np.testing.assert_allclose(norms, _independent_grad_norms(loaded, ids), rtol=1e-4,
                               atol=1e-9)
    with torch.inference_mode():  # the loss: the model's own log-probability of the last token
        logits = loaded.model(torch.tensor([ids[:-1]])).logits[0, -1]  # (V,)
    assert loss == pytest.approx(-float(torch.log_softmax(logits.double(), -1)[ids[-1]]),
                                 rel=1e-5)


def test_timing_measures_every_length(rnn):
    res = rnn_lab.timing_of(rnn, "hello there", lengths=(8, 32), repeats=3, budget_s=0.05)
    assert res.lengths[0] == len(rnn.tokenizer("hello there")["input_ids"]) + 1
    assert set(res.lengths) >= {8, 32}
    assert all(t > 0 for t in res.loop_s + res.kernel_s + res.attention_s)
    assert res.rows()[0]["parallel_steps"] == 1
    assert res.device == "cpu" and res.device_name == "CPU" and res.threads >= 1
    assert res.input_size == rnn.model.embed.weight.shape[1]


def test_rnn_figures():
    from lmdemo.plots import rnn as plots
    from lmdemo.plots.common import category_labels, show_token

    assert show_token(" a\n") == "␣a⏎" and show_token("") == "∅"
    assert category_labels(["a", "a", " b"]) == ["a", "a\u200b", "␣b"]

    fig = plots.gradient_lines(["tiny-rnn", "tiny-lstm"], ["rnn", "lstm"], np.array([2, 1, 0]),
                               np.array([[1e-6, 1e-3, 1e-1], [1e-2, 5e-2, 1e-1]]))
    assert fig.layout.yaxis.type == "log" and len(fig.data) == 2
    heat = plots.hidden_heatmap(["a", "b"], np.zeros((2, 300)), step=1)
    assert heat.data[0].z.shape == (2, 128) and heat.layout.shapes
    assert len(plots.path_lengths(5).data) == 2
    assert plots.timing_bars([4, 8], [1e-3, 2e-3], [1e-3, 2e-3], [5e-4, 6e-4]).layout.yaxis.type \
        == "log"
    fig = plots.counted_steps([4, 8], [4, 8], [1, 1], [10, 20], [30, 90])
    assert [list(t.y) for t in fig.data] == [[4, 8], [1, 1], [10, 20], [30, 90]]
    assert fig.layout.yaxis.type == fig.layout.yaxis2.type == "log"


def test_rnn_chart_words_follow_the_language():
    import threading

    from lmdemo.plots import rnn as plots
    from lmdemo.plots.common import set_language

    out = {}

    def draw():
        set_language("zh")
        out["fig"] = plots.timing_bars([4], [1e-3], [1e-3], [5e-4], "CPU")

    t = threading.Thread(target=draw)
    t.start()
    t.join()
    fig = out["fig"]
    assert fig.layout.title.text == "在 CPU 上实测" and fig.data[2].name.startswith("注意力")
