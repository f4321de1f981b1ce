"""Jobs: run names stay inside the runs folder, bad settings start nothing, the queue limits
concurrent jobs, cancel works, a killed job is marked failed and the rest carry on."""

import os
import signal
import time
from pathlib import Path

import pytest

from lmdemo.core import registry
from lmdemo.core.errors import UserError
from lmdemo.training import jobs
from tests import helpers
from tests.helpers import TINY_ID, write_reviews


def _config(**extra):
    return {"base": TINY_ID, "method": "full", "epochs": 1, "batch_size": 4,
            "learning_rate": 1e-3, **extra}


def _data(home):
    return jobs.reviews_jsonl(write_reviews(home.parent / "r.csv").read_bytes(), "r.csv")


def _wait(name, states, timeout=120.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        run = jobs.list_runs()
        info = {r.name: r for r in run}[name]
        if info.state in states:
            return info
        time.sleep(0.5)
    raise AssertionError(f"{name} never reached {states}: {jobs.get_run(name).status} "
                         f"{jobs.log_tail(name)}")


@pytest.mark.parametrize("name", ["../evil", "a/b", "", ".hidden", "x" * 65, "a b", "..",
                                  "/abs", "run\n"])
def test_run_names_cannot_escape(tiny_env, name):
    with pytest.raises(UserError, match="run name"):
        jobs.run_dir(name)
    with pytest.raises(UserError):
        jobs.submit(name, _config(), "", start=False)
    assert not any(tiny_env.parent.glob("evil*"))


def test_bad_hyperparameters_start_nothing(tiny_env):
    with pytest.raises(UserError, match="Learning rate"):
        jobs.submit("r1", _config(learning_rate=float("nan")), _data(tiny_env))
    with pytest.raises(UserError, match="Epochs"):
        jobs.submit("r1", _config(epochs=-1), _data(tiny_env))
    assert jobs.list_runs() == []


def test_token_is_required_when_set(tiny_env, monkeypatch):
    monkeypatch.setenv("LMDEMO_TRAIN_TOKEN", "s3cret")
    for token in (None, "", "wrong"):
        with pytest.raises(UserError, match="token"):
            jobs.submit("r1", _config(), _data(tiny_env), token=token, start=False)
    assert jobs.submit("r1", _config(), _data(tiny_env), token="s3cret", start=False).state \
        == "queued"


def test_existing_run_is_never_overwritten(tiny_env):
    jobs.submit("same", _config(), _data(tiny_env), start=False)
    (jobs.run_dir("same") / "marker").write_text("x")
    with pytest.raises(UserError, match="already exists"):
        jobs.submit("same", _config(), _data(tiny_env), start=False)
    assert (jobs.run_dir("same") / "marker").exists()


def test_job_runs_in_its_own_process_and_becomes_a_model(tiny_env):
    info = jobs.submit("ok", _config(), _data(tiny_env))
    assert info.state == "running" and info.status["pid"] != os.getpid()
    done = _wait("ok", ("done", "failed"))
    assert done.state == "done", jobs.log_tail("ok")
    assert "run:ok" in [s.id for s in registry.run_specs()]
    assert any(m["event"] == "epoch" for m in jobs.metrics("ok"))
    # the job's log (which the Jobs tab shows) names no process and no server folder, and
    # carries no library notices (lmdemo.core.quiet)
    log = (jobs.run_dir("ok") / "log.txt").read_text()
    assert "state: done" in log and "best_val_accuracy" in log
    for private in (str(tiny_env), str(done.status["pid"]), str(done.status["worker_pid"]),
                    "pid", "folder:", "Warning", "LOAD REPORT", "huggingface/tokenizers"):
        assert private not in log, (private, log)


def test_queue_cancel_and_killed_job(tiny_env, monkeypatch):
    monkeypatch.setenv("LMDEMO_MAX_JOBS", "1")
    long = _config(epochs=100)
    first = jobs.submit("first", long, _data(tiny_env))
    second = jobs.submit("second", long, _data(tiny_env))
    assert first.state == "running" and second.state == "queued"
    # the first job is killed mid-run (as an OOM killer would): it is marked failed ...
    _wait("first", ("running",))
    while not jobs.metrics("first"):
        time.sleep(0.5)
    os.killpg(first.status["pid"], signal.SIGKILL)
    failed = _wait("first", ("failed",))
    assert "stopped unexpectedly" in failed.status["error"]
    # ... and the queued run starts in its place; cancelling it ends its process
    running = _wait("second", ("running",))
    cancelled = jobs.cancel("second")
    assert cancelled.state == "cancelled"
    pid = running.status["pid"]
    end = time.monotonic() + 30
    while time.monotonic() < end and jobs._alive(running.status):
        time.sleep(0.2)
    assert not jobs._alive(running.status), pid
    with pytest.raises(UserError, match="only queued or running"):
        jobs.cancel("second")
    # a new run can still start, and the old folders are intact
    third = jobs.submit("third", _config(), _data(tiny_env))
    assert third.state == "running"
    assert jobs.get_run("first").state == "failed" and jobs.get_run("second").state == "cancelled"
    jobs.cancel("third")


def test_the_queue_is_capped(tiny_env, monkeypatch):
    """A public server cannot be flooded with waiting runs: past LMDEMO_MAX_QUEUED, a clear
    message and nothing new on disk."""
    monkeypatch.setenv("LMDEMO_MAX_QUEUED", "2")
    for name in ("q1", "q2"):
        jobs.submit(name, _config(), _data(tiny_env), start=False)
    with pytest.raises(UserError, match="already waiting"):
        jobs.submit("q3", _config(), _data(tiny_env), start=False)
    assert sorted(r.name for r in jobs.list_runs(refresh=False)) == ["q1", "q2"]


def test_compare_rows_show_the_shipped_soup_and_finished_runs(tiny_env):
    import json

    from lmdemo.core.config import ASSETS

    helpers.train_tiny_run("cmp", method="lora", epochs=1)
    rows = {r["model"]: r for r in jobs.compare_rows()}
    shipped = json.loads((ASSETS / "sentiment-minilm" / "metrics.json").read_text())
    top = rows["sentiment-minilm"]
    assert top["val_accuracy"] == shipped["validation"]["accuracy"]
    assert top["method"] == f"lora soup of {len(shipped['ingredients'])} runs"
    speeds = [i["train_samples_per_s"] for i in shipped["ingredients"]]
    assert top["base"] == "minilm"
    assert top["samples_per_s"] == pytest.approx(sum(speeds) / len(speeds), abs=0.05)
    run = rows["run:cmp"]
    status = jobs.get_run("cmp").status
    assert run["val_accuracy"] == status["best_val_accuracy"] and run["method"] == "lora"
    assert run["samples_per_s"] == round(status["train_samples_per_s"], 1)
    # 36 reviews, 4 of each label held out: 28 trained on in one epoch, over the time it took
    assert status["train_samples_per_s"] == pytest.approx(28 / status["train_seconds"], rel=1e-6)


def test_a_batch_is_capped_by_its_tokens(tiny_env, monkeypatch):
    """Batch size × max length beyond LMDEMO_MAX_BATCH_TOKENS is refused before anything is
    created, with the numbers and how to fix it; the operator can raise the cap."""
    with pytest.raises(UserError, match=r"1024 × 4096 = 4,194,304 tokens.*LMDEMO_MAX_BATCH_TOK"):
        jobs.submit("big", _config(batch_size=1024, max_length=4096), _data(tiny_env))
    assert jobs.list_runs() == []
    monkeypatch.setenv("LMDEMO_MAX_BATCH_TOKENS", str(1024 * 4096))
    assert jobs.submit("big", _config(batch_size=1024, max_length=4096), _data(tiny_env),
                       start=False).state == "queued"


def test_cancel_needs_the_token_when_one_is_set(tiny_env, monkeypatch):
    jobs.submit("c1", _config(), _data(tiny_env), start=False)
    monkeypatch.setenv("LMDEMO_TRAIN_TOKEN", "s3cret")
    for token in (None, "", "wrong"):
        with pytest.raises(UserError, match="token"):
            jobs.cancel("c1", token=token)
    assert jobs.get_run("c1").state == "queued"
    assert jobs.cancel("c1", token="s3cret").state == "cancelled"


def test_a_failed_claim_leaves_nothing_and_a_taken_folder_is_untouched(tiny_env, monkeypatch,
                                                                          tmp_path):
    """Writes after the claim fail: the claimed folder goes again. A folder that exists is
    refused with the same message whoever made it; an empty one can be claimed once."""
    def broken(*_a, **_k):
        raise OSError("disk full")

    monkeypatch.setattr(jobs, "_write_json", broken)
    with pytest.raises(OSError, match="disk full"):
        jobs.create_run("half", _config(), "x")
    assert not jobs.run_dir("half").exists()
    monkeypatch.undo()
    empty = tmp_path / "empty"
    empty.mkdir()
    jobs.init_folder(empty, _config())
    with pytest.raises(UserError, match="already exists"):
        jobs.init_folder(empty, _config(epochs=2))
    assert jobs._read_json(empty / "config.json")["epochs"] == 1
    with pytest.raises(UserError, match="Cannot create"):
        jobs.init_folder(Path("/dev/null/x"), _config())


def test_status_updates_never_lose_each_others_fields(tiny_env):
    """Writers of one status.json in many threads (worker progress, supervisor, cancel): every
    field each one wrote is there, and a final state stays."""
    import threading

    folder = jobs.create_run("st", _config())
    threads = [threading.Thread(target=lambda i=i: [jobs.update_status(folder, **{f"k{i}_{j}": j})
                                                     for j in range(20)]) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    status = jobs.read_status(folder)
    assert all(f"k{i}_{j}" in status for i in range(8) for j in range(20))
    jobs.update_status(folder, state="cancelled")
    assert jobs.update_status(folder, state="running")["state"] == "cancelled"
    assert jobs.update_status(folder, True, state="failed", error="x").get("error") is None


def test_known_library_noise_is_filtered_and_nothing_else(monkeypatch):
    """lmdemo.core.quiet drops the notices every run triggers (library FutureWarnings, the
    tokenizers fork warning, transformers' load report) and lets errors and other warnings
    through."""
    import logging
    import warnings

    from transformers.utils import logging as hf_logging

    from lmdemo.core import quiet

    monkeypatch.delenv("TOKENIZERS_PARALLELISM", raising=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet.install()
        quiet.install()  # twice: no second filter
        for module, category in (("transformers.modeling_utils", FutureWarning),
                                 ("gradio.queueing", DeprecationWarning),
                                 ("lmdemo.training.finetune", FutureWarning),
                                 ("transformers.modeling_utils", UserWarning)):
            warnings.warn_explicit(f"{module} says", category, "x.py", 1, module=module)
    assert [str(w.message) for w in caught] == ["lmdemo.training.finetune says",
                                                "transformers.modeling_utils says"]
    assert os.environ["TOKENIZERS_PARALLELISM"] == "false"  # set before any fork
    handlers = hf_logging.get_logger().handlers
    assert handlers and all(sum(isinstance(f, quiet.NoiseFilter) for f in h.filters) == 1
                            for h in handlers)

    def passes(message, level=logging.WARNING):
        record = logging.LogRecord("transformers.modeling_utils", level, "x.py", 1, message,
                                   None, None)
        return all(f.filter(record) for h in handlers for f in h.filters)

    assert not passes("Some weights of BertForSequenceClassification were not initialized from "
                      "the model checkpoint at /srv/x and are newly initialized")
    assert not passes("BertForSequenceClassification LOAD REPORT from: /srv/models/minilm")
    assert passes("CUDA out of memory", logging.ERROR) and passes("Could not load the adapter")
