"""The model layer's ground rules: light import, registry, hub access, caching, CLI errors."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from lmdemo.core import models, registry
from lmdemo.core.errors import UserError
from tests.helpers import save_tiny_bert, save_tiny_gpt2

HEAVY = ("torch", "transformers", "streamlit", "gradio")


def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "lmdemo", *args], capture_output=True,
                          text=True, timeout=120, env=env)


def test_import_is_light():
    code = ("import sys, lmdemo, lmdemo.core.config, lmdemo.core.registry, lmdemo.cli; "
            f"print([m for m in {HEAVY!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_models_json_lists_every_kind():
    proc = _cli("models", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    ids = {m["id"]: m for m in data}
    for m in data:
        assert {"id", "kind", "source", "available"} <= m.keys()
        assert isinstance(m["available"], bool)
        assert m["kind"] in registry.KINDS
    assert ids["minilm"]["available"] is True and ids["minilm"]["source"] == "embedded"
    assert ids["distilgpt2"]["source"] == "hub" and ids["distilgpt2"]["available"] is False
    assert {"tiny-gpt", "tiny-lstm", "tiny-gru", "tiny-rnn"} <= ids.keys()


def test_cli_unknown_model_exits_2_without_traceback(monkeypatch):
    proc = _cli("info", "--model", "no/such-model", "--json")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stderr.startswith("error:")


@pytest.mark.parametrize("bad", ["", "../etc/passwd", "run:../../x", "a b", "x" * 300])
def test_bad_ids_are_user_errors(bad):
    with pytest.raises(UserError):
        models.load(bad)


def test_wrong_kind_is_a_user_error():
    with pytest.raises(UserError, match="encoder"):
        models.load("minilm", kinds=("causal-lm",))


def test_unreachable_hub_answers_fast(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("LMDEMO_HUB_MIRROR", raising=False)
    start = time.monotonic()
    with pytest.raises(UserError, match="offline|not reachable"):
        models.load("distilgpt2")
    assert time.monotonic() - start < 5


def test_hub_switch_and_allow_list(monkeypatch, tmp_path):
    save_tiny_gpt2(tmp_path / "org" / "tiny-gpt2")
    monkeypatch.setenv("LMDEMO_HUB_MIRROR", str(tmp_path))
    monkeypatch.setenv("LMDEMO_HUB_ALLOW", "gpt2")
    with pytest.raises(UserError, match="not allowed"):
        models.load("org/tiny-gpt2")
    monkeypatch.delenv("LMDEMO_HUB_ALLOW")
    monkeypatch.setenv("LMDEMO_HUB", "0")
    with pytest.raises(UserError, match="turned off"):
        models.load("org/tiny-gpt2")


def test_hub_models_load_from_a_mirror_and_are_cached(monkeypatch, tmp_path):
    import torch

    gpt = save_tiny_gpt2(tmp_path / "org" / "tiny-gpt2")
    save_tiny_bert(tmp_path / "org" / "tiny-bert")
    monkeypatch.setenv("LMDEMO_HUB_MIRROR", str(tmp_path))
    models.clear_cache()
    first = models.load("org/tiny-gpt2", kinds=("causal-lm",))
    assert first.spec.kind == "causal-lm" and first.spec.source == "hub"
    assert models.load("org/tiny-gpt2") is first  # one cached copy per process
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.inference_mode():
        ours = first.model(ids, output_attentions=True)
        ref = gpt(ids, output_attentions=True)
    assert len(ours.attentions) == 2  # eager attention returns weights
    torch.testing.assert_close(ours.logits, ref.logits)
    bert = models.load("org/tiny-bert")
    assert bert.spec.kind == "encoder"
    with pytest.raises(UserError):
        models.load("org/tiny-bert", kinds=("causal-lm",))
    models.clear_cache()


def test_minilm_loads_from_the_package():
    loaded = models.load("minilm", kinds=("encoder",))
    assert loaded.model.config.num_hidden_layers == 6
    assert loaded.model.config._attn_implementation == "eager"
    assert loaded.tokenizer("hello world")["input_ids"][0] == loaded.tokenizer.cls_token_id


def test_device_choice(monkeypatch):
    from lmdemo.core.device import pick_device

    monkeypatch.setenv("LMDEMO_DEVICE", "cpu")
    assert pick_device() == "cpu"
    monkeypatch.setenv("LMDEMO_DEVICE", "tpu9")
    with pytest.raises(UserError):
        pick_device()


def test_runs_with_unsafe_names_are_never_listed(monkeypatch, tmp_path):
    monkeypatch.setenv("LMDEMO_HOME", str(tmp_path))
    run = tmp_path / "runs" / "good-run"
    (run / "model").mkdir(parents=True)
    (run / "status.json").write_text('{"state": "done"}')
    (run / "config.json").write_text('{"base": "minilm"}')
    assert [s.id for s in registry.run_specs()] == ["run:good-run"]
    (run / "status.json").write_text('{"state": "running"}')
    assert registry.run_specs() == []
