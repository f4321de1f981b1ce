"""The web server dies (SIGKILL to its whole process group, as a crash or a container stop would)
while a fine-tuning job it started is training: the job trains on to the end in its own session,
the queue behind it advances with no server at all, the run folders and states are intact, and a
freshly started server lists every run in its right state. No run is lost or overwritten.

Real processes over real HTTP: `python gradio_app.py` on a free loopback port, called with
`gradio_client` as the README shows, a private LMDEMO_HOME, the tiny BERT of the test mirror as
the base (1 epoch on 200 and 16 shipped reviews, 32 tokens each), so it runs in well under two
minutes on two cores.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import TINY_ID

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
NOISE = ("FutureWarning", "DeprecationWarning", "huggingface/tokenizers", "LOAD REPORT",
         "Some weights of")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(home: Path, mirror: Path, log: Path) -> tuple[subprocess.Popen, str]:
    """`python gradio_app.py` in its own process group; returns it and its URL once it answers."""
    port = _free_port()
    env = {**os.environ, "LMDEMO_HOME": str(home), "LMDEMO_HUB_MIRROR": str(mirror),
           "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False",
           "LMDEMO_TORCH_THREADS": "1", "LMDEMO_MAX_JOBS": "1"}
    for name in ("LMDEMO_TRAIN_TOKEN", "LMDEMO_JOB_COMMAND", "TOKENIZERS_PARALLELISM"):
        env.pop(name, None)
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "gradio_app.py", "--port", str(port)], cwd=ROOT,
                                env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-3000:]
        try:
            with urllib.request.urlopen(url + "/", timeout=2) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    raise AssertionError("gradio_app.py did not answer within 120 s")


def _status(home: Path, name: str) -> dict:
    try:
        return json.loads((home / "runs" / name / "status.json").read_text())
    except (OSError, ValueError):
        return {}


def _steps(home: Path, name: str) -> list[dict]:
    lines = (home / "runs" / name / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["event"] == "step"]


def _wait(what, timeout: float = 150.0, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := what():
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what.__doc__ or what}")


def test_a_killed_server_loses_no_run(tmp_path, tiny_mirror):
    from gradio_client import Client

    home, log = tmp_path / "home", tmp_path / "server.log"
    server, url = _serve(home, tiny_mirror, log)
    try:
        client = Client(url, verbose=False)
        # name, base, method, epochs, learning rate, batch size, max length, limit, token
        first = client.predict("survivor", TINY_ID, "full", 1, 0, 4, 32, 200, "",
                               api_name="/finetune_launch")
        second = client.predict("waiting", TINY_ID, "lora", 1, 0, 8, 32, 16, "",
                                api_name="/finetune_launch")
        assert (first["state"], second["state"]) == ("running", "queued")
        assert "pid" not in first["status"]  # no process id in what a visitor is shown

        def training():
            """the first run's first training steps"""
            path = home / "runs" / "survivor" / "metrics.jsonl"
            return path.exists() and path.read_text().count('"event": "step"') >= 3

        _wait(training)
        assert _status(home, "survivor")["state"] == "running"
        os.killpg(server.pid, signal.SIGKILL)  # the server and anything in its process group
        server.wait(timeout=30)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)

    # no server from here on: the job trains to the end, then its supervisor starts the next
    assert _wait(lambda: _status(home, "survivor").get("state") in ("done", "failed")) \
        and _status(home, "survivor")["state"] == "done", _status(home, "survivor")
    assert _wait(lambda: _status(home, "waiting").get("state") in ("done", "failed")) \
        and _status(home, "waiting")["state"] == "done", _status(home, "waiting")
    for name in ("survivor", "waiting"):
        folder = home / "runs" / name
        status, steps = _status(home, name), _steps(home, name)
        assert steps[-1]["step"] == steps[-1]["total_steps"] == status["steps"]  # every step
        assert [s["step"] for s in steps] == list(range(1, len(steps) + 1))  # none twice
        assert json.loads((folder / "config.json").read_text())["name"] == name
        assert (folder / "model").is_dir() and any((folder / "model").iterdir())
        assert "Traceback" not in (folder / "log.txt").read_text()

    server, url = _serve(home, tiny_mirror, log)  # a fresh server over the same runs
    try:
        client = Client(url, verbose=False)
        listed = client.predict("", "", api_name="/finetune_status")["runs"]
        assert {r["name"]: r["state"] for r in listed} == {"survivor": "done", "waiting": "done"}
        one = client.predict("survivor", "", api_name="/finetune_status")
        assert one["state"] == "done" and len(one["metrics"]) == len(_steps(home, "survivor")) + 1
        created = json.loads((home / "runs" / "survivor" / "config.json").read_text())["created"]
        from gradio_client.exceptions import AppError

        with pytest.raises(AppError, match="already exists"):
            client.predict("survivor", TINY_ID, "full", 1, api_name="/finetune_launch")
        again = json.loads((home / "runs" / "survivor" / "config.json").read_text())
        assert again["created"] == created and _status(home, "survivor")["state"] == "done"
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=30)
    text = log.read_text(errors="replace")
    assert not [n for n in NOISE if n in text], text[-3000:]
