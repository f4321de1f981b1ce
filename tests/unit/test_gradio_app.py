"""The Gradio app's handlers and JSON adapters, called directly (no server).

Tiny random models served through a local hub mirror stand in for the embedded ones: a GPT-2 for
next word and scoring, a BERT classifier for sentiment; attention uses the embedded `minilm`.
Bad input must come back as `gr.Error` carrying the service's message, never another exception.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import plotly.graph_objects as go
import pytest

import gradio_app
from lmdemo import api
from lmdemo.core import models
from lmdemo.core.errors import UserError
from tests.helpers import save_tiny_gpt2

LM = "test-org/tiny-gpt2"
CLS = "test-org/tiny-classifier"


def save_tiny_classifier(folder: Path) -> None:
    """A tiny random BERT sequence classifier (2 labels) with a word-piece vocab."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    torch.manual_seed(0)
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "film", "good", "bad", "not"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(words) + "\n")
    cfg = BertConfig(vocab_size=len(words), hidden_size=16, num_hidden_layers=1,
                     num_attention_heads=2, intermediate_size=32, max_position_embeddings=64,
                     num_labels=2, id2label={0: "negative", 1: "positive"},
                     label2id={"negative": 0, "positive": 1})
    BertForSequenceClassification(cfg).eval().save_pretrained(folder, safe_serialization=True)
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt")).save_pretrained(folder)


@pytest.fixture(scope="module")
def mirror(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("gradio-mirror")
    save_tiny_gpt2(root / LM)
    save_tiny_classifier(root / CLS)
    return root


@pytest.fixture
def env(mirror, monkeypatch, tmp_path):
    monkeypatch.setenv("LMDEMO_HUB_MIRROR", str(mirror))
    monkeypatch.setenv("LMDEMO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return mirror


def error_of(fn, *args) -> str:
    """Call a handler that must fail; the message of the gr.Error it raised."""
    with pytest.raises(gr.Error) as info:
        fn(*args)
    return str(info.value.message)


# ----------------------------------------------------------------------------- the Blocks

def test_build_loads_no_model_and_names_the_endpoints(env):
    models.clear_cache()
    demo = gradio_app.build(gradio_app.ServerSettings("127.0.0.1", 7860, 3, 17))
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
    monkeypatch.setenv("LMDEMO_GRADIO_PORT", "7999")
    monkeypatch.setenv("LMDEMO_GRADIO_CONCURRENCY", "0")
    monkeypatch.setenv("LMDEMO_GRADIO_QUEUE", "nonsense")
    monkeypatch.delenv("LMDEMO_GRADIO_HOST", raising=False)
    monkeypatch.delenv("GRADIO_SERVER_NAME", raising=False)
    s = gradio_app.ServerSettings.from_env()
    assert (s.host, s.port, s.concurrency, s.queue_size) == ("127.0.0.1", 7999, 1, 64)


# ----------------------------------------------------------------------------- next word

def test_next_word_view(env):
    fig, rows, summary = gradio_app.next_word_view("The cat", LM, 5, 0.7, 0, 0.9)
    assert isinstance(fig, go.Figure)
    assert len(rows) == 5 and all(len(r) == 4 for r in rows)
    assert "bits" in summary


def test_next_token_json_matches_the_service(env):
    from lmdemo.lab import next_token as svc

    data = api.next_token("The cat", LM, show=3, temperature=0)
    assert data == svc.next_token(LM, "The cat", temperature=0, show=3).to_json()
    assert data["entries"][0]["sampling_prob"] == 1.0  # temperature 0 is greedy


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
    fig, rows = gradio_app.classify_view("a good film\na bad film", CLS)
    assert isinstance(fig, go.Figure)
    assert abs(sum(fig.data[0].x) - 1) < 1e-6
    assert [r[0] for r in rows] == ["a good film", "a bad film"]
    pred = api.classify(["a good film"], CLS)[0]
    assert pred["label"] in ("negative", "positive") and rows[0][2] == round(
        api.classify("a good film", CLS)[0]["probs"]["positive"], 4)


def test_classify_bad_input(env):
    assert "at least one review" in error_of(gradio_app.classify_view, "", CLS)
    assert "needs a classifier" in error_of(gradio_app.classify_view, "good", "minilm")


def test_finetune_launch_refuses_bad_values_and_status_lists_runs(env):
    args = ["ok-name", "minilm", "lora", 1, 0, 16, 128, 0, ""]
    bad_name = ["../escape"] + args[1:]
    assert "not a valid run name" in error_of(gradio_app.launch_view, *bad_name)
    bad_epochs = args[:3] + [-1] + args[4:]
    assert "pochs must be greater than 0" in error_of(gradio_app.launch_view, *bad_epochs)
    bad_method = args[:2] + ["half"] + args[3:]
    assert "Method 'half' is unknown" in error_of(gradio_app.launch_view, *bad_method)
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


@pytest.mark.parametrize(("value", "ok"), [(3, True), (3.0, True), ("3", True), (3.5, False),
                                           (None, False), (float("nan"), False), (99, False),
                                           ("x", False)])
def test_whole(value, ok):
    if ok:
        assert api.whole(value, "n", 0, 10) == 3
    else:
        with pytest.raises(UserError, match="n must be a whole number from 0 to 10"):
            api.whole(value, "n", 0, 10)
