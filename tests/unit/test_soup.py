"""LoRA soups: the souped adapter equals the plain average of the runs' merged weights (computed
independently with peft's merge), loads as a model, and refuses what cannot be souped."""

import json

import pytest

from lmdemo.core.errors import UserError
from lmdemo.training import soup
from tests import helpers
from tests.helpers import TINY_ID, train_tiny_run


def _merged_state(adapter):
    from peft import PeftModel

    from lmdemo.core.models import fresh_classifier

    base, _ = fresh_classifier(TINY_ID)
    merged = PeftModel.from_pretrained(base, str(adapter)).merge_and_unload()
    return {k: v.detach().clone() for k, v in merged.state_dict().items()}


def test_soup_is_the_average_of_the_merged_runs(tiny_env, tmp_path):
    import torch

    from lmdemo.training import sentiment

    a = train_tiny_run("soup-a", method="lora", epochs=1, seed=0) / "model"
    b = train_tiny_run("soup-b", method="lora", epochs=1, seed=1, lora_r=4, lora_alpha=16) / "model"
    run = tmp_path / "soup-run"  # a run folder: config.json names the base, model/ the adapter
    config = soup.soup([a, b], run / "model")
    (run / "config.json").write_text(json.dumps({"base": TINY_ID}))
    assert config["r"] == 12 and config["lora_alpha"] == 12  # ranks 8 + 4, scale folded into B
    states = [_merged_state(a), _merged_state(b)]
    expected = {k: (states[0][k].float() + states[1][k].float()) / 2 for k in states[0]}
    got = _merged_state(run / "model")
    assert set(got) == set(expected)
    worst = max(float((got[k] - expected[k]).abs().max()) for k in got)
    assert worst < 1e-5, worst
    assert any(float((states[0][k] - states[1][k]).abs().max()) > 1e-3 for k in got)  # runs differ

    from lmdemo.core.models import fresh_classifier

    model, tok = fresh_classifier(TINY_ID)
    model.load_state_dict(expected)
    enc = tok(["A lovely film.", "A dull mess."], return_tensors="pt", padding=True)
    with torch.inference_mode():
        want = torch.softmax(model.eval()(**enc).logits, -1)[:, 1]
    preds = sentiment.classify(["A lovely film.", "A dull mess."], str(run), allow_path=True)
    assert [p.probs["positive"] for p in preds] == pytest.approx(want.tolist(), abs=1e-5)


def test_what_cannot_be_souped_is_refused(tiny_env, tmp_path):
    a = train_tiny_run("soup-c", method="lora", epochs=1) / "model"
    with pytest.raises(UserError, match="at least two"):
        soup.soup([a], tmp_path / "one")
    with pytest.raises(UserError, match="not a LoRA adapter folder"):
        soup.soup([a, tmp_path], tmp_path / "x")
    other = tmp_path / "other"
    other.mkdir()
    for name in (soup.CONFIG, soup.WEIGHTS):
        (other / name).write_bytes((a / name).read_bytes())
    config = json.loads((other / soup.CONFIG).read_text())
    (other / soup.CONFIG).write_text(json.dumps(dict(config, target_modules=["query"])))
    with pytest.raises(UserError, match="target_modules"):
        soup.soup([a, other], tmp_path / "y")


def test_soup_command_makes_a_finished_run_that_is_a_model(tiny_env, monkeypatch, capsys):
    from lmdemo.cli import main
    from lmdemo.core import registry
    from lmdemo.training import jobs, reviews, sentiment

    for name, seed in (("mix-a", 0), ("mix-b", 1)):
        train_tiny_run(name, method="lora", epochs=1, seed=seed)
    # score on a small stand-in for the shipped validation split (the runs' data is marked so)
    small = reviews.read_path(helpers.write_reviews(tiny_env.parent / "val.csv", repeat=1))
    monkeypatch.setattr(reviews, "shipped", lambda split=None: small)
    for name in ("mix-a", "mix-b"):
        folder = jobs.run_dir(name)
        config = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps(dict(config, data="shipped")))
    assert main(["soup", "mix-a", "mix-b", "--name", "mix", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["model"] == "run:mix" and out["soup_of"] == ["mix-a", "mix-b"]
    info = jobs.get_run("mix")
    assert info.state == "done" and info.config["name"] == "mix"
    ev = sentiment.evaluate(small, "run:mix")
    assert info.status["best_val_accuracy"] == pytest.approx(ev.metrics.accuracy)
    assert "run:mix" in [s.id for s in registry.run_specs()]
    assert [r.name for r in jobs.list_runs()].count("mix") == 1  # never scheduled as training
    # an existing name is never overwritten; unfinished, full and unknown runs are refused
    before = (jobs.run_dir("mix") / "model" / soup.WEIGHTS).read_bytes()
    assert main(["soup", "mix-a", "mix-b", "--name", "mix"]) == 2
    assert (jobs.run_dir("mix") / "model" / soup.WEIGHTS).read_bytes() == before
    train_tiny_run("full-run", method="full", epochs=1)
    assert main(["soup", "mix-a", "full-run", "--name", "mix2"]) == 2
    assert main(["soup", "mix-a", "nope", "--name", "mix3"]) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and "not a LoRA run" in err and "No run is called" in err
    assert not any(p.name.startswith(".soup-") for p in jobs.runs_root().iterdir())


def test_a_name_taken_while_the_soup_is_built_is_refused_and_cleaned_up(tiny_env, monkeypatch):
    """Another creator takes the soup's name while it is being built: a clear UserError, that
    run untouched, and no hidden `.soup-*` folder left behind."""
    from lmdemo.training import jobs

    for name in ("ing-a", "ing-b"):  # finished LoRA runs (their adapters are never read here)
        folder = jobs.create_run(name, {"base": TINY_ID, "method": "lora", "data": "upload"})
        jobs.update_status(folder, state="done")

    def meanwhile(folders, out):
        jobs.create_run("taken", {"base": TINY_ID, "who": "other"})
        out.mkdir(parents=True)
        (out / soup.WEIGHTS).write_bytes(b"")
        return {}

    monkeypatch.setattr(soup, "soup", meanwhile)
    with pytest.raises(UserError, match="'taken' already exists"):
        soup.soup_run(["ing-a", "ing-b"], "taken")
    assert jobs.get_run("taken").config["who"] == "other"
    assert not (jobs.run_dir("taken") / "model").exists()
    assert not any(p.name.startswith(".soup-") for p in jobs.runs_root().iterdir())
