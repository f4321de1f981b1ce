"""The embedded language-model zoo: tiny-gpt, tiny-lstm, tiny-gru and tiny-rnn load through the
registry, are deterministic, share one tokenizer, ship small safetensors files, and the recurrent
models return per-step hidden states and a state that continues stepping exactly."""

from __future__ import annotations

import json
import math

import pytest

from lmdemo.core.registry import LM_KINDS, get_spec
from tests.helpers import tiny_recurrent

ZOO = ("tiny-gpt", "tiny-lstm", "tiny-gru", "tiny-rnn")
RECURRENT = ("tiny-lstm", "tiny-gru", "tiny-rnn")
TEXT = "The children played in the garden until it got dark."


def _load(model_id):
    from lmdemo.core.models import load

    return load(model_id, kinds=LM_KINDS, device="cpu")


@pytest.mark.parametrize("model_id", ZOO)
def test_loads_through_the_registry_and_is_deterministic(model_id):
    import torch

    loaded = _load(model_id)
    assert loaded.spec.source == "embedded"
    assert not loaded.model.training
    ids = loaded.tokenizer(TEXT, return_tensors="pt")["input_ids"]  # (1, T)
    with torch.inference_mode():
        a = loaded.model(ids).logits  # (1, T, V)
        b = loaded.model(ids).logits
    assert a.shape == (1, ids.shape[1], len(loaded.tokenizer))
    assert torch.equal(a, b)
    assert torch.isfinite(a).all()


@pytest.mark.parametrize("model_id", ZOO)
def test_files_are_safetensors_under_10_mb_with_a_card(model_id):
    folder = get_spec(model_id).location
    from pathlib import Path

    folder = Path(folder)
    weights = folder / "model.safetensors"
    assert weights.exists() and weights.stat().st_size < 10_000_000
    assert not list(folder.glob("*.bin")) and not list(folder.glob("*.pt"))
    card = json.loads((folder / "card.json").read_text())
    model = _load(model_id).model
    assert card["parameters"] == sum(p.numel() for p in model.parameters())
    assert card["steps"] == card["config"]["steps"] or card["train_seconds"] >= 60 * card[
        "config"]["max_minutes"] * 0.99  # every step ran, or the time budget ended the run
    assert card["valid_perplexity"] == pytest.approx(math.exp(card["valid_loss"]), rel=1e-3)
    # trained: far better than guessing uniformly over the 8192-token vocabulary
    assert 1 < card["valid_perplexity"] < card["vocab_size"] / 10


def test_all_four_share_one_tokenizer():
    from pathlib import Path

    files = [(Path(get_spec(m).location) / "tokenizer.json").read_bytes() for m in ZOO]
    assert all(f == files[0] for f in files)
    ids = [_load(m).tokenizer(TEXT)["input_ids"] for m in ZOO]
    assert all(i == ids[0] for i in ids)
    tok = _load("tiny-gpt").tokenizer
    assert tok.bos_token == tok.eos_token == "<|endoftext|>"
    assert len(tok) == 8192


@pytest.mark.parametrize("model_id", RECURRENT)
def test_recurrent_hidden_states_and_stepping(model_id):
    import torch

    loaded = _load(model_id)
    cfg = loaded.model.config
    ids = loaded.tokenizer(TEXT, return_tensors="pt")["input_ids"]  # (1, T)
    T = ids.shape[1]
    with torch.inference_mode():
        full = loaded.model(ids, return_hidden_states=True)
        assert full.hidden_states.shape == (1, T, cfg.n_hidden)
        assert loaded.model(ids).hidden_states is None
        first = loaded.model(ids[:, :5])
        rest = loaded.model(ids[:, 5:], hidden=first.hidden)
    stepped = torch.cat([first.logits, rest.logits], dim=1)  # (1, T, V)
    torch.testing.assert_close(stepped, full.logits, rtol=1e-4, atol=1e-4)
    assert cfg.arch == model_id.split("-")[1]


def test_vanilla_rnn_is_a_tanh_recurrence():
    import torch

    model = _load("tiny-rnn").model
    rnn = model.rnn
    assert rnn.nonlinearity == "tanh"
    ids = torch.tensor([[5, 17, 42]])
    with torch.inference_mode():
        out = model(ids, return_hidden_states=True)
        x = model.embed(ids)[0]  # (T, E)
        h = torch.zeros(rnn.hidden_size)
        for t in range(3):
            h = torch.tanh(rnn.weight_ih_l0 @ x[t] + rnn.bias_ih_l0
                           + rnn.weight_hh_l0 @ h + rnn.bias_hh_l0)  # (H,)
    torch.testing.assert_close(out.hidden_states[0, -1], h, rtol=1e-4, atol=1e-5)


def test_recurrent_save_and_reload_round_trip(tmp_path):
    import torch

    from lmdemo.core.recurrent import RecurrentConfig, RecurrentLM

    model = tiny_recurrent("gru", vocab_size=50, n_embd=8, n_hidden=12)
    model.save(tmp_path)
    again = RecurrentLM.from_folder(tmp_path).eval()
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.inference_mode():
        torch.testing.assert_close(model(ids).logits, again(ids).logits)
    assert again.head.weight is again.embed.weight
    assert set(json.loads((tmp_path / "config.json").read_text())) == set(
        RecurrentConfig.__dataclass_fields__)


@pytest.mark.parametrize("arch", ["gpt", "rnn"])
def test_train_lm_end_to_end_on_a_tiny_corpus(tmp_path, arch):
    from transformers import AutoTokenizer

    from lmdemo.training.train_lm import LMTrainConfig, train

    lines = [f"The {w} sat on the {v} and looked at the {u}." for w in ("cat", "dog", "bird")
             for v in ("mat", "chair", "wall") for u in ("sky", "door", "garden")]
    (tmp_path / "train.txt").write_text("\n".join(lines * 4) + "\n")
    (tmp_path / "valid.txt").write_text("\n".join(lines[:5]) + "\n")
    out = tmp_path / "model"
    card = train(LMTrainConfig(arch=arch, out=str(out), steps=2, batch_size=2, block_size=16,
                               eval_every=0, corpus_dir=str(tmp_path), threads=1),
                 log=lambda msg: None)
    assert card["steps"] == 2 and card["valid_perplexity"] > 1
    assert (out / "model.safetensors").exists() and (out / "card.json").exists()
    tok = AutoTokenizer.from_pretrained(out)
    assert tok.bos_token == "<|endoftext|>"
    if arch == "gpt":
        from transformers import AutoModelForCausalLM

        AutoModelForCausalLM.from_pretrained(out, attn_implementation="eager")
    else:
        from lmdemo.core.recurrent import RecurrentLM

        assert RecurrentLM.from_folder(out).config.arch == "rnn"


@pytest.mark.parametrize(("field", "value", "message"), [
    ("arch", "transformer", "arch must be one of 'gpt', 'lstm', 'gru', 'rnn' (got 'transformer')."),
    ("steps", 0, "steps must be a whole number from 1 to 10000000 (got 0)."),
    ("block_size", 1, "block size must be a whole number from 2 to 8192 (got 1)."),
    ("lr", -1.0, "learning rate must be from 0 to 1 (0 = the arch's default), not -1."),
    ("dropout", 1.0, "dropout must be at least 0 and below 1, not 1."),
    ("max_minutes", float("nan"), "max minutes must be a finite number, not nan."),
])
def test_train_lm_config_is_checked_before_any_work(tmp_path, field, value, message):
    from lmdemo.core.errors import UserError
    from lmdemo.training.train_lm import LMTrainConfig, train

    cfg = LMTrainConfig(arch="gpt", out=str(tmp_path / "out"), corpus_dir=str(tmp_path / "none"))
    assert cfg.validated() == cfg
    with pytest.raises(UserError) as info:
        train(LMTrainConfig(**{**cfg.__dict__, field: value}), log=lambda msg: None)
    assert str(info.value) == message
    assert not (tmp_path / "out").exists()
