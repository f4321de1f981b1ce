"""The command line's abuse corpus: every bad input exits with status 2 and one line on stderr
that names the problem (no traceback, nothing on stdout), and creates no folder.

Each case runs in-process through `lmdemo.cli.main([...])`: the checks come before any model loads,
so the corpus is fast. A text argument with bytes that are not UTF-8 arrives in Python as a lone
surrogate (surrogateescape), which the in-process cases pass directly; `test_real_argv_bytes`
sends real bytes through a subprocess for the few commands where it matters most.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lmdemo.cli import MAX_FILE_BYTES, main

BAD = "a\udcffb"  # what `--text $'a\xffb'` becomes in sys.argv on Linux
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def work(tiny_env, tmp_path, monkeypatch):
    """A scratch folder with the data files the corpus names (cwd set to it)."""
    d = tmp_path / "work"
    d.mkdir()
    (d / "ok.csv").write_text("text,label\n" + "".join(f"review {i} words,{i % 2}\n"
                                                       for i in range(8)))
    (d / "dict.jsonl").write_text("".join(json.dumps({"text": {"a": i}, "label": i % 2}) + "\n"
                                          for i in range(6)))
    (d / "list.jsonl").write_text("".join(json.dumps({"text": ["x"], "label": i % 2}) + "\n"
                                          for i in range(6)))
    (d / "latin1.txt").write_bytes(b"caf\xe9\n")
    (d / "nul.txt").write_bytes(b"a\0b\n")
    (d / "big.txt").write_bytes(b"x\n" * (MAX_FILE_BYTES // 2 + 1))
    (d / "many.txt").write_text("word\n" * 1001)
    with (d / "huge.csv").open("wb") as fh:  # sparse: 25 MB on paper, nothing on disk
        fh.truncate(25 * 1024 * 1024)
    failed = d / "failedrun"
    failed.mkdir()
    (failed / "config.json").write_text(json.dumps({"base": "minilm", "method": "lora"}))
    (failed / "status.json").write_text(json.dumps({"state": "failed", "error": "boom"}))
    queued = d / "queuedrun"
    queued.mkdir()
    (queued / "config.json").write_text(json.dumps({"base": "minilm"}))
    (queued / "status.json").write_text(json.dumps({"state": "queued"}))
    (d / "taken").mkdir()
    (d / "taken" / "x").write_text("x")
    monkeypatch.chdir(d)
    return d


# (argv, words the one-line message must hold)
CORPUS = [
    # text that is not UTF-8, for every command that reads text
    (["next-token", "--text", BAD], "--text value is not valid UTF-8"),
    (["score", "--text", BAD], "--text value is not valid UTF-8"),
    (["attention", "--text", BAD], "--text value is not valid UTF-8"),
    (["position-ablation", "--text", BAD], "--text value is not valid UTF-8"),
    (["classify", "--text", BAD], "--text value is not valid UTF-8"),
    (["lens", "--text", BAD], "--text value is not valid UTF-8"),
    (["lens", "--text", "ok", "--pin", BAD], "--pin value is not valid UTF-8"),
    (["heads", "--text", BAD, "--target", " a"], "--text value is not valid UTF-8"),
    (["heads", "--text", "ok", "--target", BAD], "--target value is not valid UTF-8"),
    (["patch", "--clean", BAD, "--corrupt", "b"], "--clean value is not valid UTF-8"),
    (["positional", "--kind", "rotary-model", "--text", BAD], "--text value is not valid UTF-8"),
    (["soup", "a", "b", "--name", BAD], "--name value is not valid UTF-8"),
    (["next-token", "--text", "ok", "--temperature", BAD], "not valid UTF-8"),
    # --file: unreadable, not UTF-8, NUL bytes, unbounded, too many lines
    (["next-token", "--file", "/dev/zero"], "larger than 4 MB"),
    (["score", "--file", "big.txt"], "larger than 4 MB"),
    (["score", "--file", "many.txt"], "holds 1,001 texts; one call takes at most 1,000"),
    (["classify", "--file", "latin1.txt"], "is not UTF-8 text (byte 3 is invalid)"),
    (["score", "--file", "nul.txt"], "holds NUL bytes"),
    (["score", "--file", "missing.txt"], "Cannot read missing.txt"),
    (["score", "--file", "."], "Cannot read ."),
    (["score", "--text", "x" * 20_001], "at most 20,000 are accepted"),
    # attention
    (["attention", "--text", "hi", "--digits", "1000000"],
     "--digits must be a whole number from 0 to 10 (got 1000000)"),
    (["attention", "--text", "hi", "--digits", "-3"], "--digits must be a whole number from 0"),
    (["attention", "--text", "hi", "--max-tokens", "-5"],
     "--max-tokens must be a whole number from 1 to 4096 (got -5)"),
    (["attention", "--text", "hi", "--max-tokens", "0"], "--max-tokens must be a whole number"),
    (["attention", "--text", "hi", "--layer", "-1"], "--layer must be a whole number of at least"),
    (["attention", "--text", "hi", "--head", "-2"], "--head must be a whole number of at least"),
    (["attention", "--text", "hi", "--step", "-1"], "--step must be a whole number of at least"),
    (["attention", "--text", " "], "The text is empty"),
    (["attention", "--text", "hi", "--digits", "x"], "argument --digits: invalid int value"),
    # positional
    (["position-ablation", "--text", "hi there", "--seed", "-1"],
     "--seed must be a whole number from 0 to 4294967295 (got -1)"),
    (["position-ablation", "--text", "hi", "--seed", str(2**40)], "--seed must be a whole"),
    (["position-ablation", "--text", "hi", "--layer", "-1"], "--layer must be a whole number"),
    (["position-ablation", "--text", "hi", "--mode", "bogus"], "argument --mode: invalid choice"),
    (["positional", "--length", "-1"], "--length must be a whole number from 1 to 2048"),
    (["positional", "--length", "100000"], "--length must be a whole number from 1 to 2048"),
    (["positional", "--d-model", "-4"], "--d-model must be a whole number from 2 to 1024"),
    (["positional", "--kind", "rotary-model", "--length", "100000"],
     "--length must be a whole number from 2 to 512"),
    (["positional", "--kind", "bogus"], "argument --kind: invalid choice"),
    # next token, heads
    (["next-token", "--text", "hi", "--show", "0"], "--show must be a whole number from 1 to 50"),
    (["next-token", "--text", "hi", "--show", "100000"], "--show must be a whole number"),
    (["next-token", "--text", "hi", "--temperature", "nan"], "temperature"),
    (["next-token", "--text", "hi", "--top-k", "-1"], "top_k"),
    (["next-token", "--text", "hi", "--top-p", "2"], "top_p"),
    (["heads", "--text", "hi", "--target", " a", "--show", "-1"],
     "--show must be a whole number from 1 to 50"),
    (["heads", "--text", "hi"], "Give --target TOKEN"),
    (["patch", "--clean", "a"], "Give both --clean and --corrupt"),
    # finetune: every value checked before the run folder exists
    (["finetune", "--threads", "-1", "--out", "o1"],
     "--threads must be a whole number from 1 to 1024 (got -1)"),
    (["finetune", "--threads", "0", "--out", "o1"], "--threads must be a whole number"),
    (["finetune", "--val-fraction", "nan", "--out", "o1", "--data", "ok.csv"],
     "--val-fraction must be a finite number, not nan"),
    (["finetune", "--val-fraction", "1", "--out", "o1"],
     "--val-fraction must be greater than 0 and below 1, not 1"),
    (["finetune", "--val-fraction", "-0.1", "--out", "o1"], "--val-fraction must be greater"),
    (["finetune", "--out", "/dev/null/x"], "'/dev/null' is not a folder"),
    (["finetune", "--out", "taken"], "already exists and is not an empty folder"),
    (["finetune", "--out", "ok.csv"], "already exists and is not an empty folder"),
    (["finetune", "--limit", "-1", "--out", "o1"],
     "--limit must be a whole number of at least 1 (got -1)"),
    (["finetune", "--limit", "0", "--out", "o1"], "--limit must be a whole number"),
    (["finetune", "--epochs", "nan", "--out", "o1"], "Epochs"),
    (["finetune", "--batch-size", "0", "--out", "o1"], "Batch size"),
    (["finetune", "--method", "half", "--out", "o1"], "Method must be one of"),
    (["finetune", "--data", "dict.jsonl", "--out", "o1"], "is a JSON object, not text"),
    (["finetune", "--data", "list.jsonl", "--out", "o1"], "is a JSON list, not text"),
    (["finetune", "--data", "ok.csv", "--text-column", "nope", "--out", "o1"],
     "has no column 'nope' (the text column asked for); its columns are 'text', 'label'"),
    (["finetune", "--data", "missing.csv", "--out", "o1"], "No data file at 'missing.csv'"),
    (["finetune"], "Give --out DIR"),
    # train-lm
    (["train-lm", "--threads", "0", "--arch", "gpt", "--out", "o2"],
     "threads must be a whole number from 1 to 1024 (got 0)"),
    (["train-lm", "--arch", "gpt", "--out", "/dev/null/x"], "'/dev/null' is not a folder"),
    (["train-lm", "--arch", "bogus", "--out", "o2"], "arch must be one of"),
    (["train-lm", "--arch", "gpt", "--out", "o2", "--steps", "0"], "steps must be a whole"),
    # evaluate and classify
    (["evaluate", "--limit", "-1"], "--limit must be a whole number of at least 1 (got -1)"),
    (["evaluate", "--limit", "0"], "--limit must be a whole number of at least 1"),
    (["evaluate", "--data", "dict.jsonl"], "Row 2: the 'text' value is a JSON object, not text"),
    (["evaluate", "--split", "bogus"],
     "The shipped review set has no split 'bogus'; its splits are train, validation, test"),
    (["evaluate", "--data", "imdb", "--split", "validation"], "The IMDB split must be one of"),
    (["evaluate", "--data", "ok.csv", "--text-column", "nope"],
     "'ok.csv' has no column 'nope' (the text column asked for); its columns are 'text', "
     "'label'."),
    (["evaluate", "--data", "ok.csv", "--label-column", "nope"],
     "has no column 'nope' (the label column asked for)"),
    (["evaluate", "--data", "ok.csv", "--text-column", "text", "--label-column", "text"],
     "must be different columns"),
    (["evaluate", "--data", "huge.csv"], "'huge.csv' is 26.2 MB; the limit is 20 MB"),
    (["finetune", "--data", "huge.csv", "--out", "o1"], "the limit is 20 MB"),
    (["evaluate", "--model", "./failedrun"], "is not a finished run (its state is failed)"),
    (["classify", "--model", "./failedrun", "--text", "great"],
     "is not a finished run (its state is failed)"),
    (["classify", "--model", "./queuedrun", "--text", "great"],
     "is not a finished run (its state is queued)"),
    (["classify", "--text", "great", "--model", "run:nope"], "No finished fine-tuning run"),
    # models, fetch, soup, unknown flags
    (["models", "--kind", "bogus"], "argument --kind: invalid choice: 'bogus'"),
    (["fetch"], "to fetch"),
    (["fetch", "bogus"], "bogus"),
    (["soup", "a", "--name", "../x"], "not a valid run name"),
    (["score", "--bogus-flag"], "unrecognized arguments: --bogus-flag"),
    (["no-such-command"], "invalid choice: 'no-such-command'"),
]


def _folders(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_dir()}


@pytest.mark.parametrize(("argv", "words"), CORPUS, ids=[" ".join(a)[:60] for a, _ in CORPUS])
def test_bad_input_exits_2_with_one_line(work, tiny_env, argv, words, capsys):
    before = _folders(work), _folders(tiny_env) if tiny_env.exists() else set()
    rc = main(argv)  # an exception escaping here is a traceback: the test fails
    out, err = capsys.readouterr()
    assert rc == 2, f"status {rc}: {err or out}"
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    assert words in lines[0]
    after = _folders(work), _folders(tiny_env) if tiny_env.exists() else set()
    assert after == before, "a bad input created a folder"


def test_the_corpus_is_large_and_covers_every_command():
    from lmdemo.cli import build_parser

    commands = {a[0] for a, _ in CORPUS}
    parser = build_parser()
    every = set(parser._subparsers._group_actions[0].choices)  # noqa: SLF001
    assert len(CORPUS) >= 80
    assert every - commands <= {"build-corpus", "info", "induction"}, every - commands


@pytest.mark.parametrize("command", [["next-token"], ["score"], ["attention"], ["classify"],
                                     ["position-ablation"]])
def test_real_argv_bytes(command, tmp_path):
    """`--text` with a byte that is not UTF-8, as a shell passes it: exit 2, one line."""
    env = dict(os.environ, LMDEMO_HOME=str(tmp_path), PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "lmdemo", *command, "--text", b"caf\xe9"],
                          capture_output=True, env=env, timeout=120, cwd=tmp_path)
    err = proc.stderr.decode("utf-8", "replace").strip()
    assert proc.returncode == 2, err
    assert proc.stdout == b""
    assert err.splitlines() == ["error: The --text value is not valid UTF-8 text: character 4 "
                                "is an undecodable byte or a lone surrogate. Give the text in "
                                "UTF-8."]
    assert list(tmp_path.iterdir()) == []  # no home, no run, no cache written


def test_good_input_still_works(work, capsys):
    """The checks refuse only what is wrong: a plain call still prints JSON (exit 0)."""
    assert main(["positional", "--length", "3", "--d-model", "4", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["length"] == 3
    assert main(["models", "--kind", "encoder", "--json"]) == 0
    assert all(m["kind"] == "encoder" for m in json.loads(capsys.readouterr().out))
