"""The Gradio app's handlers and JSON adapters, called directly (no server).

Tiny random models served through a local hub mirror stand in for the embedded ones: a GPT-2 for
next word and scoring, a BERT classifier for sentiment; attention uses the embedded `minilm`.
Bad input must come back as `gr.Error` carrying the service's message, never another exception.
"""

from __future__ import annotations

import math

import gradio as gr
import plotly.graph_objects as go
import pytest

import gradio_app
from lmdemo import api
from lmdemo.core import models
from lmdemo.core.errors import UserError
from tests.helpers import CLS, LM, reference_distribution


@pytest.fixture
def env(tiny_env, tiny_mirror):
    """The shared tiny mirror as the hub, a fresh home; returns the mirror folder."""
    return tiny_mirror


def error_of(fn, *args) -> str:
    """Call a handler that must fail; the message of the gr.Error it raised."""
    with pytest.raises(gr.Error) as info:
        fn(*args)
    return str(info.value.message)


# ----------------------------------------------------------------------------- the Blocks

def test_build_loads_no_model_and_names_the_endpoints(env):
    models.clear_cache()
    demo = gradio_app.build(gradio_app.GradioSettings("127.0.0.1", 7860, 3, 17))
    assert not models._CACHE, "building the app must not load weights"
    names = {fn.api_name for fn in demo.fns.values()}
    for name in ("next_token", "score", "attention", "classify", "positional",
                 "finetune_launch", "finetune_status"):
        assert name in names
    public = demo.get_api_info()["named_endpoints"]
    assert {"/next_token", "/score", "/attention", "/classify"} <= set(public)
    assert not any(k.endswith("_view") for k in public), "UI handlers stay off the API page"
    assert demo._queue.max_size == 17
    assert demo._queue.default_concurrency_limit == 3


def test_server_settings_from_env_and_flags(monkeypatch):
    from lmdemo.core.config import gradio_settings

    monkeypatch.setenv("LMDEMO_GRADIO_PORT", "7999")
    monkeypatch.setenv("LMDEMO_GRADIO_CONCURRENCY", "0")
    monkeypatch.setenv("LMDEMO_GRADIO_QUEUE", "nonsense")
    monkeypatch.setenv("LMDEMO_TORCH_THREADS", "3")
    monkeypatch.delenv("LMDEMO_GRADIO_HOST", raising=False)
    monkeypatch.delenv("GRADIO_SERVER_NAME", raising=False)
    s = gradio_settings()
    assert (s.host, s.port, s.concurrency, s.queue_size, s.threads()) == (
        "127.0.0.1", 7999, 1, 64, 3)
    # Spaces sets GRADIO_SERVER_*; LMDEMO_GRADIO_* wins over them
    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")
    monkeypatch.setenv("GRADIO_SERVER_PORT", "8001")
    monkeypatch.delenv("LMDEMO_GRADIO_PORT")
    assert (gradio_settings().host, gradio_settings().port) == ("0.0.0.0", 8001)
    monkeypatch.setenv("LMDEMO_GRADIO_HOST", "127.0.0.2")
    assert gradio_settings().host == "127.0.0.2"
    assert gradio_app.ServerSettings.from_env() == gradio_settings()  # the old name still works


# ----------------------------------------------------------------------------- next word

def test_next_word_view(env):
    fig, rows, summary = gradio_app.next_word_view("The cat", LM, 5, 0.7, 0, 0.9)
    assert isinstance(fig, go.Figure)
    assert len(rows) == 5 and all(len(r) == 4 for r in rows)
    assert "bits" in summary


def test_next_token_json_matches_transformers(env):
    """The endpoint's numbers against a distribution computed here from transformers: the same
    top tokens and probabilities, the entropy, and what temperature 0 and top-k do to it."""
    p, tok = reference_distribution(env / LM, "The cat")
    order = sorted(range(len(p)), key=lambda i: (-p[i], i))
    entropy = -sum(float(q) * math.log(q) for q in p if q > 0)

    data = api.next_token("The cat", LM, show=5, temperature=1.0)
    assert [e["id"] for e in data["entries"]] == order[:5]
    assert [e["prob"] for e in data["entries"]] == pytest.approx([p[i] for i in order[:5]],
                                                                 abs=1e-5)
    assert [e["token"] for e in data["entries"]] == [tok.decode([i]) for i in order[:5]]
    assert data["entropy"] == pytest.approx(entropy, abs=1e-4)
    assert data["vocab_size"] == len(p) and data["kept"] == len(p)

    greedy = api.next_token("The cat", LM, show=3, temperature=0)
    assert [e["sampling_prob"] for e in greedy["entries"]] == [1.0, 0.0, 0.0]
    assert greedy["entries"][0]["id"] == order[0] and greedy["sampling_entropy"] == 0

    top2 = api.next_token("The cat", LM, show=3, top_k=2)
    mass = p[order[0]] + p[order[1]]
    assert [e["sampling_prob"] for e in top2["entries"]] == pytest.approx(
        [p[order[0]] / mass, p[order[1]] / mass, 0.0], abs=1e-5)
    assert top2["kept"] == 2


@pytest.mark.parametrize(("args", "words"), [
    (("x", LM, 5, -1, 0, 1), "temperature must be between"),
    (("x", LM, 5, 1, -3, 1), "top_k must be a whole number"),
    (("x", LM, 5, 1, 0, 0), "top_p must be greater than 0"),
    (("x", LM, 500, 1, 0, 1), "show must be a whole number from 1 to 50"),
    (("x", "tiny-lstm-nope!", 5, 1, 0, 1), "not a valid Hugging Face Hub id"),
    (("x", "minilm", 5, 1, 0, 1), "needs a causal-lm or recurrent-lm"),
])
def test_next_word_bad_input_is_a_gr_error(env, args, words):
    assert words in error_of(gradio_app.next_word_view, *args)


def test_score_view_ranks_sentences(env):
    fig, table = gradio_app.score_view("The cat sat.\nsat cat The.\n", LM)
    assert isinstance(fig, go.Figure) and len(table) == 2
    assert table[0][1] >= table[1][1]


def test_score_bad_input(env):
    assert "at least one sentence" in error_of(gradio_app.score_view, "  \n ", LM)
    assert "at most 64" in error_of(gradio_app.score_view, "a\n" * 65, LM)


# ----------------------------------------------------------------------------- attention

def test_attention_view_and_json():
    heat, grid, info = gradio_app.attention_view("The movie was good", "minilm", 3, 1, "head")
    assert isinstance(heat, go.Figure) and isinstance(grid, go.Figure)
    assert "6 layers × 12 heads" in info
    for view in ("mean", "rollout"):
        assert isinstance(gradio_app.attention_view("The movie", "minilm", 0, 0, view)[0],
                          go.Figure)
    data = api.attention("The movie was good", "minilm", layer=2, head=5)
    assert data["layers"] == [2] and data["heads"] == [5]
    t = len(data["tokens"])
    assert len(data["attentions"]) == 1 and len(data["attentions"][0]) == 1
    assert len(data["attentions"][0][0]) == t
    assert abs(sum(data["attentions"][0][0][0]) - 1) < 1e-3
    assert data["n_layers"] == 6 and data["n_heads"] == 12


def test_attention_bad_input():
    assert "layer must be a whole number from 0 to 5" in error_of(
        gradio_app.attention_view, "The movie", "minilm", 9, 0, "head")
    assert "head must be a whole number from 0 to 11" in error_of(
        gradio_app.attention_view, "The movie", "minilm", 0, 1.5, "head")
    assert "text is empty" in error_of(gradio_app.attention_view, "  ", "minilm", 0, 0, "head")
    with pytest.raises(UserError, match="layer must be"):
        api.attention("The movie", "minilm", layer=-3)


# ----------------------------------------------------------------------------- positional

def test_positional_view_and_json():
    enc, sim, diag, text = gradio_app.positional_view("sinusoidal", 50, 16, "cosine")
    assert all(isinstance(f, go.Figure) for f in (enc, sim, diag))
    assert "spread" in text
    data = api.positional("sine-only", 4, 6)
    assert len(data["encoding"]) == 4 and len(data["encoding"][0]) == 6


def test_positional_bad_input():
    assert "even" in error_of(gradio_app.positional_view, "sinusoidal", 10, 7, "dot")
    with pytest.raises(UserError, match="kind must be one of"):
        api.positional("cosine-only", 4, 6)


# ----------------------------------------------------------------------------- sentiment

def test_classify_view(env):
    """Probabilities against the classifier run here straight from transformers."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    texts = ["a good film", "a bad film"]
    tok = AutoTokenizer.from_pretrained(env / CLS)
    ref = AutoModelForSequenceClassification.from_pretrained(env / CLS).eval()
    with torch.no_grad():
        want = [float(torch.softmax(ref(**tok(t, return_tensors="pt")).logits[0], -1)[1])
                for t in texts]  # P(positive) of each review

    fig, rows = gradio_app.classify_view("\n".join(texts), CLS)
    assert isinstance(fig, go.Figure)
    assert [r[0] for r in rows] == texts
    assert [r[2] for r in rows] == pytest.approx(want, abs=1e-4)
    preds = api.classify(texts, CLS)
    assert [p["probs"]["positive"] for p in preds] == pytest.approx(want, abs=1e-5)
    assert [p["label"] for p in preds] == ["positive" if w >= 0.5 else "negative" for w in want]
    assert api.classify("a good film", CLS)[0] == preds[0]  # one string is one review


def test_classify_bad_input(env):
    assert "at least one review" in error_of(gradio_app.classify_view, "", CLS)
    assert "needs a classifier" in error_of(gradio_app.classify_view, "good", "minilm")


def test_finetune_launch_refuses_bad_values_and_status_lists_runs(env):
    args = ["ok-name", "minilm", "lora", 1, 0, 16, 128, 0, ""]
    bad_name = ["../escape"] + args[1:]
    assert "not a valid run name" in error_of(gradio_app.launch_view, *bad_name)
    bad_epochs = args[:3] + [-1] + args[4:]
    assert "Epochs must be a whole number from 1 to 100 (got -1)" in error_of(
        gradio_app.launch_view, *bad_epochs)
    bad_method = args[:2] + ["half"] + args[3:]
    assert "Method must be one of 'lora', 'full' (got 'half')" in error_of(
        gradio_app.launch_view, *bad_method)
    bad_rate = args[:4] + ["fast"] + args[5:]
    assert "Learning rate must be a number, not 'fast'" in error_of(gradio_app.launch_view,
                                                                    *bad_rate)
    status, fig = gradio_app.status_view("")
    assert status == {"runs": []} and fig is None
    assert "No run is called" in error_of(gradio_app.status_view, "never-made")


def test_status_view_draws_the_curves_of_a_run(env, tmp_path):
    import json

    from lmdemo.training import jobs

    folder = jobs.create_run("curves", {"base": "minilm"})
    records = [{"event": "step", "step": i, "loss": 1 / (i + 1), "progress": i / 4}
               for i in range(4)]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    jobs.update_status(folder, state="done", progress=1.0)
    status, fig = gradio_app.status_view("curves")
    assert status["state"] == "done" and len(status["metrics"]) == 4
    assert isinstance(fig, go.Figure)
    assert gradio_app.status_view("")[0]["runs"][0]["name"] == "curves"


def test_finetune_token_is_checked(env, monkeypatch):
    monkeypatch.setenv("LMDEMO_TRAIN_TOKEN", "s3cret")
    args = ["tok-run", "minilm", "lora", 1, 0, 16, 128, 0, "wrong"]
    assert "training token" in error_of(gradio_app.launch_view, *args)


# ----------------------------------------------------------------------------- error mapping

def test_unexpected_errors_become_short_gr_errors():
    @gradio_app.guarded
    def broken(x: int) -> int:
        raise RuntimeError("boom " * 200)

    message = error_of(broken, 1)
    assert message.startswith("broken could not be computed: RuntimeError: boom")
    assert len(message) < 400
