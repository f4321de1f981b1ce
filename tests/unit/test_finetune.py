"""The trainer: hyperparameter checks, length-grouped batches, learning (measured on held-out
reviews), saving and reloading."""

import json
import math
import os
from pathlib import Path

import pytest

from lmdemo.core.errors import UserError
from lmdemo.training import finetune, reviews
from lmdemo.training.finetune import LengthGroupedBatches, TrainConfig
from tests import helpers
from tests.helpers import TINY_ID, train_tiny_run, write_reviews


@pytest.mark.parametrize("field,value,message", [
    ("learning_rate", float("nan"), "Learning rate must be a finite number, not nan."),
    ("learning_rate", 0.0, "Learning rate must be greater than 0 and at most 1, not 0."),
    ("learning_rate", -1e-4, "Learning rate must be greater than 0 and at most 1, not -0.0001."),
    ("learning_rate", "fast", "Learning rate must be a number, not 'fast'."),
    ("learning_rate", True, "Learning rate must be a number, not True."),
    ("epochs", 0, "Epochs must be a whole number from 1 to 100 (got 0)."),
    ("epochs", 2.5, "Epochs must be a whole number from 1 to 100 (got 2.5)."),
    ("batch_size", -4, "Batch size must be a whole number from 1 to 1024 (got -4)."),
    ("max_length", float("inf"), "Max length must be a whole number from 2 to 4096 (got inf)."),
    ("warmup", 1.5, "Warm-up must be at least 0 and below 1, not 1.5."),
    ("warmup", float("nan"), "Warm-up must be a finite number, not nan."),
    ("weight_decay", -0.1, "Weight decay must be at least 0 and below 10, not -0.1."),
    ("method", "qlora", "Method must be one of 'lora', 'full' (got 'qlora')."),
    ("seed", -1, "Seed must be a whole number from 0 to 4294967295 (got -1)."),
    ("base", "  ", "Choose a base encoder to fine-tune (e.g. minilm)."),
])
def test_bad_hyperparameters_are_refused(field, value, message):
    with pytest.raises(UserError) as info:
        TrainConfig.from_json({field: value})
    assert str(info.value) == message


def test_config_round_trip_and_coercion():
    cfg = TrainConfig.from_json({"epochs": 2.0, "batch_size": "8", "learning_rate": "1e-3",
                                 "mixed_precision": "false", "lora_alpha": 32.0, "unknown": 1})
    assert (cfg.epochs, cfg.batch_size, cfg.learning_rate, cfg.lora_alpha) == (2, 8, 1e-3, 32)
    assert [type(v) for v in (cfg.epochs, cfg.batch_size, cfg.learning_rate, cfg.lora_alpha)] \
        == [int, int, float, int]
    assert cfg.mixed_precision is False
    assert TrainConfig.from_json(cfg.to_json()) == cfg
    assert TrainConfig().validated() == TrainConfig()  # the defaults are valid as they are


def test_length_grouped_batches_cover_everything_and_cut_padding():
    import random

    rng = random.Random(0)
    lengths = [rng.randint(5, 300) for _ in range(1000)]
    sampler = LengthGroupedBatches(lengths, 16, seed=1)
    first, second = list(sampler), list(sampler)
    assert sorted(i for b in first for i in b) == list(range(1000)) and len(first) == len(sampler)
    assert first != second  # a new order each epoch
    assert list(LengthGroupedBatches(lengths, 16, seed=1)) == first  # but seeded

    def padded(batches):
        return sum(max(lengths[i] for i in b) * len(b) for b in batches)

    plain = list(LengthGroupedBatches(lengths, 16, seed=1, group=False))
    assert padded(first) < 0.7 * padded(plain)


def test_training_learns_saves_and_reports(tiny_env, tmp_path):
    """Learning is measured on held-out reviews (other sentences with the same words): the random
    model starts near chance on them and the trained one classifies them well."""
    import numpy as np

    train_data = helpers.template_reviews(helpers.TRAIN_TEMPLATES)
    held_out = helpers.template_reviews(helpers.HELD_OUT_TEMPLATES)
    assert set(train_data.texts).isdisjoint(held_out.texts)
    events = []
    cfg = TrainConfig(base=TINY_ID, method="full", epochs=6, batch_size=4, learning_rate=3e-3,
                      warmup=0.1)
    result = finetune.train(cfg, train_data, held_out, tmp_path / "model", on_step=events.append)
    steps = [e for e in events if e["event"] == "step"]
    per_epoch = math.ceil(len(train_data) / 4)
    assert len(steps) == result.steps == 6 * per_epoch
    assert steps[-1]["progress"] == pytest.approx(1.0)
    assert steps[-1]["eta_s"] > 0  # the last evaluation is still to come ...
    assert [e for e in events if e["event"] == "epoch"][-1]["eta_s"] == 0  # ... then nothing
    assert all(math.isfinite(e["loss"]) for e in steps)
    # throughput is what was trained over the time it took, not just "some positive number"
    assert result.train_samples_per_s == pytest.approx(
        6 * len(train_data) / result.train_seconds, rel=1e-6)
    from transformers import AutoTokenizer

    from lmdemo.core.hub import resolve

    tok = AutoTokenizer.from_pretrained(resolve(TINY_ID))
    tokens = sum(len(ids) for ids in tok(train_data.texts)["input_ids"])  # no padding counted
    assert result.train_tokens_per_s == pytest.approx(6 * tokens / result.train_seconds, rel=1e-6)
    assert result.eval_tokens_per_s > 0
    assert result.best_val_accuracy >= 0.9, result.history
    assert result.history[result.best_epoch - 1]["val_accuracy"] == result.best_val_accuracy
    assert (tmp_path / "model" / "model.safetensors").exists()
    assert (tmp_path / "model" / "tokenizer.json").exists()

    # the saved model's own predictions on the held-out reviews give the reported accuracy
    from lmdemo.training import sentiment

    (tmp_path / "config.json").write_text(json.dumps({"base": TINY_ID}))
    preds = sentiment.classify(held_out.texts, str(tmp_path), allow_path=True)
    accuracy = np.mean([int(p.probs["positive"] >= 0.5) == y
                        for p, y in zip(preds, held_out.labels, strict=True)])
    assert accuracy == pytest.approx(result.best_val_accuracy)


def test_lora_run_loads_back_as_a_model_everywhere(tiny_env):
    from lmdemo.core import registry
    from lmdemo.training import sentiment

    folder = train_tiny_run("lora-a", method="lora", epochs=1)
    assert (folder / "model" / "adapter_config.json").exists()
    ids = [s.id for s in registry.run_specs()]
    assert "run:lora-a" in ids
    pred = sentiment.classify(["A lovely film."], "run:lora-a")[0]
    assert pred.probs["negative"] + pred.probs["positive"] == pytest.approx(1.0)
    by_path = sentiment.classify(["A lovely film."], str(folder), allow_path=True)[0]
    assert by_path.probs["positive"] == pytest.approx(pred.probs["positive"], abs=1e-5)


def test_finetune_cli_on_imdb_from_a_mirror(tiny_env, tmp_path, monkeypatch, capsys):
    """`--data imdb` reads stanfordnlp/imdb through `datasets` (here from a mirror in the hub's
    layout), holds out a validation share and trains; the run folder records the data."""
    import json

    from lmdemo.cli import main

    helpers.make_imdb_mirror(Path(os.environ["LMDEMO_HUB_MIRROR"]))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "imdb-run"
    code = main(["finetune", "--base", TINY_ID, "--data", "imdb", "--epochs", "1",
                 "--batch-size", "4", "--val-fraction", "0.25", "--out", str(out), "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["state"] == "done" and result["steps"] == 5  # 24 reviews: 18 train, batches of 4
    assert json.loads((out / "config.json").read_text())["data"] == "imdb"


def test_no_training_data_is_refused(tiny_env):
    with pytest.raises(UserError):
        finetune.train(TrainConfig(base=TINY_ID), reviews.Reviews([], []))


@pytest.mark.slow
def test_accelerate_launch_two_cpu_processes(tiny_env, tmp_path):
    """`accelerate launch` with two processes trains data-parallel on CPU (gloo): each process
    takes half the batches, only the first writes the run folder and prints one JSON line."""
    import json
    import os
    import subprocess
    import sys

    data = write_reviews(tmp_path / "r.csv")
    out = tmp_path / "ddp-run"
    env = dict(os.environ, LMDEMO_DEVICE="cpu", OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes",
           "2", "--main_process_port", "29533", "-m", "lmdemo", "finetune", "--base", TINY_ID,
           "--data", str(data), "--epochs", "2", "--batch-size", "4", "--out", str(out), "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert result["processes"] == 2 and result["state"] == "done"
    # 36 reviews - 4 held out = 32: 8 batches of 4, half per process, 2 epochs
    assert result["steps"] == 8
    assert (out / "model" / "adapter_config.json").exists()
    assert json.loads((out / "status.json").read_text())["state"] == "done"


def test_collate_pads_dynamically_and_token_dropout_spares_special_tokens():
    items = [([101, 5, 6, 7, 102], 1), ([101, 8, 102], 0)]
    batch = finetune._collate(0)(items)
    assert batch["input_ids"].shape == (2, 5)  # padded to the longest in the batch only
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]
    assert batch["labels"].tolist() == [1, 0]
    long = [([101] + list(range(1000, 1200)) + [102], 1)] * 4
    dropped = finetune._collate(0, drop=0.5, mask_id=103, seed=0)(long)["input_ids"]
    share = (dropped == 103).float().mean().item()
    assert 0.4 < share < 0.6
    assert (dropped[:, 0] == 101).all() and (dropped[:, -1] == 102).all()


def test_adamw_uses_the_fused_kernel_on_cpu_with_the_same_update():
    """The trainer's AdamW takes PyTorch's fused kernel on CPU (as Trainer's default optimizer
    does); a few steps of it match the default implementation."""
    import torch

    assert finetune._adamw_kernel(torch.device("cpu")) == {"fused": True}
    assert finetune._adamw_kernel(torch.device("meta")) == {}
    torch.manual_seed(0)
    start = [torch.randn(7, 5), torch.randn(5)]
    grads = [[torch.randn_like(p) for p in start] for _ in range(3)]
    finals = []
    for kernel in ({}, finetune._adamw_kernel(torch.device("cpu"))):
        params = [torch.nn.Parameter(p.clone()) for p in start]
        opt = torch.optim.AdamW([{"params": params[:1], "weight_decay": 0.01},
                                 {"params": params[1:], "weight_decay": 0.0}], lr=1e-2, **kernel)
        for step in grads:
            for p, g in zip(params, step, strict=True):
                p.grad = g.clone()
            opt.step()
        finals.append([p.detach() for p in params])
    for a, b in zip(*finals, strict=True):
        assert torch.allclose(a, b, atol=1e-6)


def test_one_process_can_train_in_one_precision_then_another():
    """Accelerate refuses a second Accelerator with another precision in the same process; the
    trainer resets the single-process state, so a bench can time bf16 after fp32."""
    from accelerate import Accelerator

    Accelerator(cpu=True, mixed_precision="no")
    with pytest.raises(ValueError, match="already been initialized"):
        Accelerator(cpu=True, mixed_precision="bf16")
    assert finetune._accelerator(cpu=True, mixed_precision="bf16").mixed_precision == "bf16"
    assert finetune._accelerator(cpu=True, mixed_precision="no").mixed_precision == "no"


# ----------------------------------------------------------------------------- duration

def _simulated_run(seed: int = 0, burst=range(80, 90)):
    """A length-grouped run on a simulated clock: 200 steps whose time grows with their tokens,
    a slow stretch (other work on the machine) and a 3 s evaluation at the end. Returns the
    (true seconds left, value shown) after each step and the seconds the evaluation took."""
    import random

    from lmdemo.training.duration import RemainingTime

    rng = random.Random(seed)
    tokens = [16 * rng.choice([10, 20, 30, 60, 120, 250]) for _ in range(200)]
    seconds = [(0.05 + t / 1500) * (4 if i in burst else 1) * rng.uniform(0.8, 1.2)
               for i, t in enumerate(tokens)]
    total = sum(seconds) + 3.0
    left = RemainingTime(sum(tokens), len(tokens), val_tokens=9000, evaluations=1)
    now, out = 0.0, []
    for t, sec in zip(tokens, seconds, strict=True):
        now += sec
        out.append((total - now, left.trained(t, sec, now), now))
    return out, left, now


def test_the_time_left_is_smooth_and_close():
    """The complaint was 50 s -> 166 s -> 1 s for a 209 s run. On a calm machine the value shown
    stays close to the truth once a few steps are timed; when other work slows a stretch of
    steps down, it never moves by more than a fifth of the time left between two steps (beyond
    counting down); at the last step it still counts the evaluation, and then nothing."""
    for seed in range(3):
        calm, left, now = _simulated_run(seed, burst=())
        assert all(shown is None for _, shown, _ in calm[:4])  # warm-up steps: no guess yet
        assert all(shown is not None for _, shown, _ in calm[5:])
        errors = [abs(s - true) / true for true, s, _ in calm[20:190]]
        assert max(errors) < 0.15 and sum(errors) / len(errors) < 0.06, seed
        true_last, shown_last, _ = calm[-1]
        assert true_last == pytest.approx(3.0) and 1.0 < shown_last < 6.0  # the evaluation
        assert left.evaluated(3.0, now + 3.0) == 0
        slowed, _, _ = _simulated_run(seed)
        for (true, s, t), (_, prev, t_prev) in zip(slowed[5:190], slowed[4:189], strict=True):
            assert abs(s - (prev - (t - t_prev))) < 0.2 * true, (seed, prev, s, true)


def test_a_run_is_estimated_before_it_starts():
    from types import SimpleNamespace

    from lmdemo.training import duration

    lengths, val = [30] * 320, [30] * 40  # 20 steps of 16 per epoch
    typical = duration.estimate("minilm", "lora", "cpu", 2, 16, lengths, val)
    rates = duration.KNOWN_RATES[("minilm", "lora", "cpu")]
    want = duration.STARTUP_S + 2 * ((9600 / rates.tokens_per_s + 20 / rates.steps_per_s) / 2
                                     + 1200 / rates.eval_tokens_per_s)
    assert typical.source == "typical" and typical.seconds == pytest.approx(want)
    assert (typical.train_tokens, typical.steps, typical.val_tokens) == (9600, 20, 1200)
    run = SimpleNamespace(name="old", state="done", config={"base": "minilm", "method": "lora"},
                          status={"device": "cpu", "train_tokens_per_s": 960.0, "steps": 40,
                                  "train_seconds": 10.0, "eval_tokens_per_s": 1200.0})
    measured = duration.estimate("minilm", "lora", "cpu", 2, 16, lengths, val, [run])
    assert measured.source == "run:old"  # this server's own speed wins over the typical one
    assert measured.seconds == pytest.approx(duration.STARTUP_S + 2 * ((10 + 5) / 2 + 1))
    for other in (("minilm", "full", "cpu"), ("minilm", "lora", "cuda")):
        assert duration.estimate(*other, 2, 16, lengths, val, [run]).source != "run:old"
    unknown = duration.estimate("my/encoder", "lora", "cuda:0", 2, 16, lengths, val, [run])
    assert unknown.seconds is None and unknown.source == "" and unknown.train_tokens == 9600
