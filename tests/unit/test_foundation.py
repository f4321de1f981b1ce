"""The model layer's ground rules: light import, registry, hub access, caching, CLI errors."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from lmdemo.core import models, registry
from lmdemo.core.errors import UserError
from tests.helpers import LM, TINY_ID

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
    assert {m["kind"] for m in data} == set(registry.KINDS)


def test_models_kind_filter_and_the_kind_groups():
    proc = _cli("models", "--kind", "recurrent-lm", "--json")
    assert proc.returncode == 0, proc.stderr
    assert {m["id"] for m in json.loads(proc.stdout)} == {"tiny-lstm", "tiny-gru", "tiny-rnn"}
    assert _cli("models", "--kind", "llm").returncode == 2  # not a kind: argparse says which are
    assert set(registry.LM_KINDS) | set(registry.ATTENTION_KINDS) == set(registry.KINDS)
    assert set(registry.RECURRENT_KINDS) < set(registry.LM_KINDS)
    assert "recurrent-lm" not in registry.ATTENTION_KINDS  # RNNs have no attention to show


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


def test_hub_switch_and_allow_list(tiny_env, monkeypatch):
    monkeypatch.setenv("LMDEMO_HUB_ALLOW", "gpt2")
    with pytest.raises(UserError, match="not allowed"):
        models.load(LM)
    monkeypatch.setenv("LMDEMO_HUB_ALLOW", f"gpt2, {LM}")
    assert models.load(LM).spec.id == LM
    monkeypatch.delenv("LMDEMO_HUB_ALLOW")
    monkeypatch.setenv("LMDEMO_HUB", "0")
    with pytest.raises(UserError, match="turned off"):
        models.load("test-org/not-cached-yet")


@pytest.mark.parametrize(("env", "expected"), [
    ({}, (True, (), 5.0, None, False)),
    ({"LMDEMO_HUB": "off", "LMDEMO_HUB_ALLOW": "a, b,,", "LMDEMO_HUB_TIMEOUT": "2.5",
      "LMDEMO_HUB_MIRROR": "/srv/mirror", "HF_HUB_OFFLINE": "1"},
     (False, ("a", "b"), 2.5, "/srv/mirror", True)),
    ({"LMDEMO_HUB_TIMEOUT": "soon", "HF_HUB_OFFLINE": "TRUE", "LMDEMO_HUB_MIRROR": " "},
     (True, (), 5.0, None, True)),
    ({"LMDEMO_HUB_TIMEOUT": "-1", "HF_HUB_OFFLINE": "0"}, (True, (), 5.0, None, False)),
])
def test_hub_settings_are_read_in_config(monkeypatch, env, expected):
    from lmdemo.core import hub
    from lmdemo.core.config import hub_settings

    for name in ("LMDEMO_HUB", "LMDEMO_HUB_ALLOW", "LMDEMO_HUB_TIMEOUT", "LMDEMO_HUB_MIRROR",
                 "HF_HUB_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    s = hub_settings()
    assert (s.enabled, s.allow, s.timeout_s, s.mirror and str(s.mirror), s.offline) == expected
    assert hub.mirror_dir() == s.mirror
    if not s.enabled:
        assert "LMDEMO_HUB=0" in hub.hub_disabled_reason()
    elif s.offline and s.mirror is None:
        assert "HF_HUB_OFFLINE=1" in hub.hub_disabled_reason()


def test_launch_settings(monkeypatch):
    from lmdemo.core.config import launch_settings
    from lmdemo.training.jobs import is_main_process

    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert launch_settings() == launch_settings().__class__(rank=0, world_size=1)
    assert is_main_process() and not launch_settings().distributed
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert not is_main_process() and launch_settings().distributed


def test_no_module_reads_a_setting_from_the_environment_itself():
    """Settings are read in lmdemo/core/config.py only (the tests monkeypatch them there)."""
    import re

    from tests.helpers import ROOT

    pattern = re.compile(r"os\.environ\.get|os\.getenv|os\.environ\[")
    files = [*(ROOT / "lmdemo").rglob("*.py"), ROOT / "gradio_app.py", ROOT / "app.py"]
    offenders = [str(p.relative_to(ROOT)) for p in files
                 if p.name != "config.py" and "assets" not in p.relative_to(ROOT).parts
                 and pattern.search(p.read_text(encoding="utf-8"))]
    assert offenders == []


def test_hub_models_load_from_a_mirror_and_are_cached(tiny_env, tiny_mirror):
    import torch
    from transformers import AutoModelForCausalLM

    gpt = AutoModelForCausalLM.from_pretrained(tiny_mirror / LM).eval()
    first = models.load(LM, kinds=("causal-lm",))
    assert first.spec.kind == "causal-lm" and first.spec.source == "hub"
    assert models.load(LM) is first  # one cached copy per process
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.inference_mode():
        ours = first.model(ids, output_attentions=True)
        ref = gpt(ids, output_attentions=True)
    assert len(ours.attentions) == 2  # eager attention returns weights
    torch.testing.assert_close(ours.logits, ref.logits)
    bert = models.load(TINY_ID)
    assert bert.spec.kind == "encoder"
    with pytest.raises(UserError, match="needs a causal-lm"):
        models.load(TINY_ID, kinds=("causal-lm",))


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


def test_a_lora_adapter_loads_from_safetensors_only(tmp_path):
    """An adapter folder holding only a pickled adapter_model.bin is refused before any load."""
    import json

    from lmdemo.core.errors import UserError
    from lmdemo.core.models import _load_classifier
    from lmdemo.core.registry import ModelSpec

    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA"}))
    (folder / "adapter_model.bin").write_bytes(b"not loaded")
    spec = ModelSpec("run:x", "classifier", "run", "x", "hf-classifier", str(folder),
                     base="minilm")
    with pytest.raises(UserError, match="safetensors only"):
        _load_classifier(spec, str(folder), None)


def test_on_a_space_the_hub_is_off_unless_the_operator_opts_in(monkeypatch):
    from lmdemo.core.config import hub_settings
    from lmdemo.core.hub import hub_disabled_reason

    for name in ("LMDEMO_HUB", "LMDEMO_HUB_ALLOW", "HF_HUB_OFFLINE", "LMDEMO_HUB_MIRROR"):
        monkeypatch.delenv(name, raising=False)
    assert hub_settings().enabled and not hub_settings().on_space  # not a Space: on
    monkeypatch.setenv("SPACE_ID", "someone/lmdemo")
    assert not hub_settings().enabled
    assert "off on this Space" in hub_disabled_reason()
    monkeypatch.setenv("LMDEMO_HUB_ALLOW", "gpt2")
    assert hub_settings().enabled and hub_settings().allow == ("gpt2",)
    monkeypatch.delenv("LMDEMO_HUB_ALLOW")
    monkeypatch.setenv("LMDEMO_HUB", "1")
    assert hub_settings().enabled
