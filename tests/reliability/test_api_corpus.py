"""The HTTP API's abuse corpus: every bad argument an HTTP caller can send to an `lmdemo.api`
endpoint is a `UserError` with a message that names the problem (never a generic "could not be
computed: TypeError"), the Gradio wrapper answers the same message as `gr.Error`, and no run
folder is created. Plus the response-size bounds, run details behind the training token, server
paths kept out of messages, and formula cells neutralised in CSV exports.
"""

from __future__ import annotations

import json

import pytest

from lmdemo import api
from lmdemo.core.errors import UserError
from tests.helpers import CLS, LM

BAD = "a\udcffb"  # a JSON string with a lone surrogate escape ("a\\udcffb") decodes to this
UTF8 = "is not valid UTF-8 text: character 2"

# (endpoint, args, words the message must hold)
CORPUS = [
    ("next_token", (BAD, LM), f"The text {UTF8}"),
    ("next_token", ({"a": 1}, LM), "The text must be text, not dict"),
    ("next_token", (["x"], LM), "The text must be text, not list"),
    ("next_token", ("x" * 20_001, LM), "at most 20,000 are accepted"),
    ("next_token", ("hi", ["x"]), "The model id must be text, not list"),
    ("next_token", ("hi", BAD), f"The model id {UTF8}"),
    ("next_token", ("hi", LM, "nan"), "show must be a whole number from 1 to 50"),
    ("next_token", ("hi", LM, 0), "show must be a whole number from 1 to 50"),
    ("next_token", ("hi", LM, 5, {"t": 1}), "temperature must be a number"),
    ("next_token", ("hi", LM, 5, "inf"), "temperature must be a finite number"),
    ("next_token", ("hi", LM, 5, 1.0, -1), "top_k"),
    ("next_token", ("hi", LM, 5, 1.0, 0, 7), "top_p"),
    ("next_token", ("hi", "/etc/passwd"), "is not a valid Hugging Face Hub id"),
    ("score", ([BAD], LM), f"The sentence {UTF8}"),
    ("score", ({"a": 1}, LM), "Give the sentences as a list of strings"),
    ("score", ([{"a": 1}], LM), "Sentence 1 must be text, not dict"),
    ("score", (["ok", None], LM), "Sentence 2 must be text, not NoneType"),
    ("score", ([["x"]], LM), "Sentence 1 must be text, not list"),
    ("score", ("", LM), "Give at least one sentence"),
    ("score", (["x"] * 65, LM), "That is 65 sentences; one call takes at most 64"),
    ("score", (["y" * 20_000] * 8, LM), "one call scores at most 150,000"),
    ("attention", (BAD,), f"The text {UTF8}"),
    ("attention", (None,), "The text must be text, not NoneType"),
    ("attention", ("",), "The text is empty"),
    ("attention", ("hi", "minilm", -5), "layer must be a whole number of at least 0"),
    ("attention", ("hi", "minilm", "x"), "layer must be a whole number of at least 0"),
    ("attention", ("hi", "minilm", None, 2.5), "head must be a whole number of at least 0"),
    ("positional", ("sinusoidal", 2048, 1024), "one call returns at most 2 MB"),
    ("positional", ("bogus", 8, 8), "kind must be one of 'sinusoidal', 'sine-only'"),
    ("positional", ("sinusoidal", -1, 8), "length must be a whole number from 1 to 2048"),
    ("positional", ("sinusoidal", 8, "nan"), "d_model must be a whole number from 2 to 1024"),
    ("positional", ({"k": 1}, 8, 8), "kind must be one of"),
    ("classify", ([BAD], CLS), f"The review {UTF8}"),
    ("classify", (123, CLS), "Give the reviews as a list of strings"),
    ("classify", (["ok"], BAD), f"The model id {UTF8}"),
    ("classify", (["ok"], "run:nope"), "No finished fine-tuning run is called 'nope'"),
    ("finetune_launch", (BAD,), f"The run name {UTF8}"),
    ("finetune_launch", (None,), "The run name must be text, not NoneType"),
    ("finetune_launch", ("",), "The run name is empty"),
    ("finetune_launch", ("../x",), "is not a valid run name"),
    ("finetune_launch", ("r1", "minilm", "lora", "nan"), "Epochs must be a whole number"),
    ("finetune_launch", ("r2", "minilm", "bogus"), "Method must be one of 'lora', 'full'"),
    ("finetune_launch", ("r3", "minilm", "lora", 1, "fast"), "Learning rate must be a number"),
    ("finetune_launch", ("r4", "minilm", "lora", 1, None, 0), "Batch size must be a whole"),
    ("finetune_launch", ("r5", "minilm", "lora", 1, None, 16, 128, -1),
     "limit must be a whole number from 1 to 1000000 (got -1)"),
    ("finetune_launch", ("r6", "minilm", "lora", 1, None, 16, 1), "Max length must be a whole"),
    ("finetune_status", (BAD,), f"The run name {UTF8}"),
    ("finetune_status", ({"a": 1},), "The run name must be text, not dict"),
    ("finetune_status", ("../etc",), "is not a valid run name"),
    ("finetune_status", ("never-made",), "No run is called 'never-made'"),
    ("lens", (BAD, LM), f"The text {UTF8}"),
    ("lens", ("abc", LM, BAD), f"The pinned token {UTF8}"),
    ("lens", ("x" * 2_001, LM), "at most 2,000 are accepted"),
    ("heads", ("hi", LM, BAD), f"The target token {UTF8}"),
    ("heads", ("hi", LM, ""), "Give a target token"),
    ("heads", ("hi", LM, "a", {"x": 1}), "Give the heads as text like"),
    ("heads", ("hi", LM, "a", "", "bogus"), "bogus"),
    ("patch", (BAD, "b", LM), f"The clean prompt {UTF8}"),
    ("patch", ("a", "", LM), "Give both a clean and a corrupted prompt"),
    ("induction", (LM, -1), "length must be a whole number from 2 to 200"),
    ("induction", (LM, 10, -1), "seed must be a whole number from 0 to 4294967295"),
    ("induction", (LM, "x"), "length must be a whole number"),
]


@pytest.fixture
def env(tiny_env, tiny_mirror):
    return tiny_env


def _runs(home):
    runs = home / "runs"
    return sorted(p.name for p in runs.iterdir() if p.is_dir()) if runs.is_dir() else []


@pytest.mark.parametrize(("endpoint", "args", "words"), CORPUS,
                         ids=[f"{e}-{i}" for i, (e, _, _) in enumerate(CORPUS)])
def test_bad_argument_is_a_user_error_with_its_message(env, endpoint, args, words):
    import gradio as gr

    from gradio_views import guarded

    before = _runs(env)
    with pytest.raises(UserError) as info:  # any other exception fails the test
        getattr(api, endpoint)(*args)
    message = str(info.value)
    assert words in message
    assert "could not be computed" not in message and "\n" not in message
    with pytest.raises(gr.Error) as wrapped:  # what an HTTP caller gets: the same words
        guarded(getattr(api, endpoint))(*args)
    assert wrapped.value.message == api.public_message(message)
    assert _runs(env) == before, "a refused call created a run folder"


def test_the_corpus_covers_every_endpoint():
    import gradio_app

    endpoints = {e for e, _, _ in CORPUS}
    assert len(CORPUS) >= 60
    assert endpoints >= {"next_token", "score", "attention", "positional", "classify", "lens",
                         "heads", "patch", "induction", "finetune_launch", "finetune_status"}
    assert gradio_app  # the module that names them imports


# ----------------------------------------------------------------------------- size bounds

def test_attention_response_is_capped_before_it_is_built(env, monkeypatch):
    import json

    from tests.helpers import TINY_ID

    full = api.attention("one two three four five six", TINY_ID)
    size = len(json.dumps(full["attentions"]))
    cells = sum(1 for _ in _flat(full["attentions"]))
    assert api._json_bytes(cells, api.ATTENTION_DIGITS) >= size  # the estimate is not below
    monkeypatch.setattr(api, "MAX_RESPONSE_BYTES", size - 1)
    with pytest.raises(UserError, match="Ask for one layer .layer=L., one head .head=H. or "
                                        "both, or send a shorter text"):
        api.attention("one two three four five six", TINY_ID)
    one = api.attention("one two three four five six", TINY_ID, layer=0, head=0)
    assert one["layers"] == [0] and one["heads"] == [0]


def _flat(x):
    if isinstance(x, list):
        for y in x:
            yield from _flat(y)
    else:
        yield x


def test_positional_response_is_capped():
    import json

    ok = api.positional("sinusoidal", 200, 512)
    assert len(json.dumps(ok)) <= api.MAX_RESPONSE_BYTES
    with pytest.raises(UserError, match="Ask for fewer positions or a smaller d_model"):
        api.positional("sinusoidal", 2048, 1024)


# ----------------------------------------------------------------------------- disclosure

def test_run_details_need_the_training_token(env, monkeypatch):
    from lmdemo.training import jobs

    folder = jobs.create_run("secret-run", {"base": "minilm", "data": "/srv/data/x.csv"})
    jobs.update_status(folder, state="failed", progress=0.5, pid=4242,
                       error=f"boom in {folder}/model")
    (folder / "log.txt").write_text("a log line\n")
    full = api.finetune_status("secret-run")  # no token on this server: all but pids and paths
    assert full["config"]["data"] == "…/x.csv" and full["config"]["base"] == "minilm"
    assert "log_tail" in full and "/srv" not in json.dumps(full) and "4242" not in json.dumps(full)
    monkeypatch.setenv("LMDEMO_TRAIN_TOKEN", "s3cret")
    for shown in (api.finetune_status("secret-run"), api.finetune_status("secret-run", "no"),
                  api.finetune_status("")["runs"][0]):
        assert shown["name"] == "secret-run" and shown["state"] == "failed"
        assert shown["status"] == {"progress": 0.5, **{k: v for k, v in shown["status"].items()
                                                        if k != "progress"}}
        text = str(shown)
        assert "config" not in shown and "log_tail" not in shown
        assert "4242" not in text and "/srv" not in text and str(folder) not in text
    assert api.finetune_status("secret-run", "s3cret")["log_tail"] == "a log line\n"


@pytest.mark.parametrize(("message", "shown"), [
    ("Could not load '/root/.lmdemo/runs/abc/model': missing",
     "Could not load '…/model': missing"),
    ("/home/u/.lmdemo/runs/my-run is not a LoRA adapter folder",
     "…/my-run is not a LoRA adapter folder"),
    ("Use top-k/top-p, 1/2 of it, https://huggingface.co/org/name",
     "Use top-k/top-p, 1/2 of it, https://huggingface.co/org/name"),
    ("No run is called 'x'.", "No run is called 'x'."),
])
def test_public_messages_carry_no_server_paths(message, shown):
    assert api.public_message(message) == shown


def test_an_unexpected_error_with_a_path_is_redacted():
    import gradio as gr

    from gradio_views import guarded

    @guarded
    def broken():
        raise FileNotFoundError("[Errno 2] No such file: '/srv/app/.lmdemo/runs/x/config.json'")

    with pytest.raises(gr.Error) as info:
        broken()
    assert "/srv" not in info.value.message and "…/config.json" in info.value.message


# ----------------------------------------------------------------------------- CSV export

@pytest.mark.parametrize(("cell", "written"), [
    ("=HYPERLINK(\"http://x\",\"y\")", "'=HYPERLINK"), ("+cmd|' /C calc'!A0", "'+cmd"),
    ("-2+3", "'-2+3"), ("@SUM(A1)", "'@SUM"), ("\tx", "'\tx"), ("\rx", "'\rx"),
    ("plain", "plain"), ("-0.5", "-0.5"), ("1e-5", "1e-5"),
])
def test_csv_cells_are_neutralised(cell, written):
    import csv
    import io

    from lmdemo.core.export import csv_text

    text = csv_text([{"text": cell, "p": -0.25}])
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == ["text", "p"] and rows[1][0].startswith(written) and rows[1][1] == "-0.25"


def test_csv_header_and_frames():
    import pandas as pd

    from lmdemo.core.export import csv_text

    assert csv_text(pd.DataFrame({"=x": ["=1+1"]})).splitlines() == ["'=x", "'=1+1"]
    assert csv_text({"a": [1, 2]}).splitlines() == ["a", "1", "2"]
