"""Runs under concurrency, tried hundreds of times across processes and threads: a run name is
taken exactly once, the queue limit holds under concurrent submits, a queued run starts within
2 s of the previous one ending with nobody polling (also after a killed worker and at the
wall-clock limit), a reused pid reads as dead, and a soup's publication races cleanly.

Racers are forked processes (or threads) that meet at a barrier before every trial, so each
trial is a real race. Jobs run a quick stand-in worker (`LMDEMO_JOB_COMMAND`) through the real
supervisor, so the queue is exercised end to end without training anything. Each test prints
its measurement (`pytest -s` shows it).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from lmdemo.core.errors import UserError
from lmdemo.training import finetune, jobs  # noqa: F401  (imported before forking)

FORK = mp.get_context("fork")
BARRIER_S = 60

# The stand-in worker: records its pid, sleeps `fake_seconds` (from config.json), then finishes
# as "done" unless `fake_end` says otherwise (a worker that ends without a final state).
FAKE_WORKER = """
import os, sys, time
from pathlib import Path
from lmdemo.training import jobs
folder = Path(sys.argv[1])
cfg = jobs._read_json(folder / "config.json", {})
jobs.update_status(folder, worker_pid=os.getpid(), worker_started=jobs._created(os.getpid()))
time.sleep(float(cfg.get("fake_seconds", 0.2)))
if cfg.get("fake_end", "done") == "done":
    jobs.update_status(folder, state="done", progress=1.0, finished=time.time())
"""


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A fresh LMDEMO_HOME; jobs run the stand-in worker; no token or queue settings."""
    monkeypatch.setenv("LMDEMO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LMDEMO_JOB_COMMAND",
                       f"{shlex.quote(sys.executable)} -c {shlex.quote(FAKE_WORKER)}")
    for name in ("LMDEMO_TRAIN_TOKEN", "LMDEMO_MAX_JOBS", "LMDEMO_MAX_QUEUED",
                 "LMDEMO_JOB_TIMEOUT_S"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "home"


def _attempt(fn, trial, racer):
    try:
        return ("ok", fn(trial, racer))
    except UserError as exc:
        return ("refused", str(exc))
    except Exception as exc:  # noqa: BLE001 - reported to the test
        return ("error", repr(exc))


def race_processes(fn, racers: int, trials: int) -> list[list[tuple]]:
    """Run fn(trial, racer) in `racers` forked processes, all released together for each trial;
    returns outcomes[trial][racer] = ("ok", value) | ("refused", message) | ("error", repr)."""
    barrier, results = FORK.Barrier(racers), FORK.Queue()

    def body(racer):
        out = []
        for trial in range(trials):
            barrier.wait(BARRIER_S)
            out.append(_attempt(fn, trial, racer))
        results.put((racer, out))

    procs = [FORK.Process(target=body, args=(r,)) for r in range(racers)]
    for p in procs:
        p.start()
    got = dict(results.get(timeout=300) for _ in procs)
    for p in procs:
        p.join(30)
    return [[got[r][t] for r in range(racers)] for t in range(trials)]


def race_threads(fn, racers: int, trials: int) -> list[list[tuple]]:
    """`race_processes` with threads of this process."""
    barrier = threading.Barrier(racers)
    got: dict[int, list] = {}

    def body(racer):
        out = []
        for trial in range(trials):
            barrier.wait(BARRIER_S)
            out.append(_attempt(fn, trial, racer))
        got[racer] = out

    threads = [threading.Thread(target=body, args=(r,)) for r in range(racers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    return [[got[r][t] for r in range(racers)] for t in range(trials)]


def _winners(outcomes: list[list[tuple]]) -> list[list[int]]:
    errors = [o for trial in outcomes for o in trial if o[0] == "error"]
    assert not errors, errors[:3]
    return [[r for r, o in enumerate(trial) if o[0] == "ok"] for trial in outcomes]


def _create(trial, racer):
    jobs.create_run(f"r{trial}", {"who": racer})
    return racer


@pytest.mark.parametrize("race", [race_processes, race_threads], ids=["processes", "threads"])
def test_a_run_name_is_created_exactly_once(home, race):
    trials = 300
    winners = _winners(race(_create, 4, trials))
    doubles = sum(len(w) > 1 for w in winners)
    print(f"\n{race.__name__}: {doubles} double-created runs in {trials} races of 4")
    assert doubles == 0 and all(len(w) == 1 for w in winners)
    for trial, (who,) in enumerate(winners):  # the winner's config, never rewritten by a loser
        folder = jobs.run_dir(f"r{trial}")
        assert json.loads((folder / "config.json").read_text())["who"] == who
        assert jobs.read_status(folder)["state"] == "queued"


def test_a_folder_outside_the_runs_is_claimed_exactly_once(tmp_path):
    """`init_folder` without the runs lock (`finetune --out`): the O_EXCL claim alone."""
    def claim(trial, racer):
        jobs.init_folder(tmp_path / f"out{trial}", {"who": racer})
        return racer

    winners = _winners(race_processes(claim, 4, 100))
    assert all(len(w) == 1 for w in winners)
    for trial, (who,) in enumerate(winners):
        config = json.loads((tmp_path / f"out{trial}" / "config.json").read_text())
        assert config["who"] == who and config["name"] == f"out{trial}"


def test_concurrent_submits_never_pass_the_queue_limit(home, monkeypatch):
    monkeypatch.setenv("LMDEMO_MAX_QUEUED", "2")
    trials, racers = 100, 6

    def submit(trial, racer):
        os.environ["LMDEMO_HOME"] = str(home / f"t{trial}")  # this racer process only
        config = {"base": "minilm", "method": "lora", "epochs": 1, "data": "shipped"}
        return jobs.submit(f"q{racer}", config, start=False).state

    outcomes = race_processes(submit, racers, trials)
    winners = _winners(outcomes)
    queued = [sum(jobs.read_status(p).get("state") == "queued"
                  for p in (home / f"t{t}" / "runs").iterdir() if p.is_dir())
              for t in range(trials)]
    violations = sum(q > 2 for q in queued)
    print(f"\nqueue limit 2, {racers} concurrent submits: {violations} violations in {trials} "
          f"trials (queued per trial: {min(queued)}..{max(queued)})")
    assert violations == 0
    assert all(len(w) == 2 for w in winners) and set(queued) == {2}
    refused = [o[1] for trial in outcomes for o in trial if o[0] == "refused"]
    assert len(refused) == trials * (racers - 2)
    assert all("already waiting" in m for m in refused)


def _submit_and_leave(names: list[str], extra: dict) -> None:
    """Submit runs from a process that exits at once (a server that went away)."""
    def body():
        for name in names:
            jobs.submit(name, {"base": "minilm", "data": "shipped", **extra.get(name, {})})
    proc = FORK.Process(target=body)
    proc.start()
    proc.join(60)
    assert proc.exitcode == 0


def _statuses(names: list[str]) -> dict[str, dict]:
    """Read status.json directly: nothing here schedules or reaps."""
    return {n: jobs.read_status(jobs.runs_root() / n) for n in names}


def _wait_final(names: list[str], timeout: float = 60.0) -> dict[str, dict]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        statuses = _statuses(names)
        if all(s.get("state") in jobs.FINAL and "exited" in s for s in statuses.values()
               if s.get("state") != "cancelled"):
            return statuses
        time.sleep(0.05)
    raise AssertionError(f"not all final: {_statuses(names)}")


def test_the_queue_advances_with_nobody_polling(home, monkeypatch):
    monkeypatch.setenv("LMDEMO_MAX_JOBS", "1")
    names = ["a1", "a2", "a3", "a4"]
    _submit_and_leave(names, {})
    statuses = _wait_final(names)
    assert [statuses[n]["state"] for n in names] == ["done"] * 4, statuses
    pairs = list(zip(names, names[1:], strict=False))
    gaps = [statuses[b]["started"] - statuses[a]["exited"] for a, b in pairs]
    overlaps = [statuses[b]["started"] < statuses[a]["finished"] for a, b in pairs]
    print(f"\nseconds from a run's worker exiting to the next run starting: "
          f"{', '.join(f'{g:.3f}' for g in gaps)}")
    assert all(0 <= g < 2.0 for g in gaps), gaps
    assert not any(overlaps)  # one at a time (LMDEMO_MAX_JOBS=1)


def test_a_killed_worker_and_the_time_limit_free_the_slot(home, monkeypatch):
    monkeypatch.setenv("LMDEMO_MAX_JOBS", "1")
    monkeypatch.setenv("LMDEMO_JOB_TIMEOUT_S", "2")
    names = ["killed", "slow", "after"]
    _submit_and_leave(names, {"killed": {"fake_seconds": 60}, "slow": {"fake_seconds": 60}})
    end = time.monotonic() + 30
    while not (pid := _statuses(["killed"])["killed"].get("worker_pid")):
        assert time.monotonic() < end, _statuses(names)
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)  # as the OOM killer would
    statuses = _wait_final(names)
    killed, slow, after = (statuses[n] for n in names)
    assert killed["state"] == "failed" and "killed by signal 9" in killed["error"], killed
    assert slow["state"] == "failed" and "wall-clock limit of 2 s" in slow["error"], slow
    assert slow["exited"] - slow["started"] < 2 + 10  # stopped, not left to sleep 60 s
    assert after["state"] == "done", after
    gaps = [slow["started"] - killed["exited"], after["started"] - slow["exited"]]
    print(f"\nkilled worker -> next start {gaps[0]:.3f} s; time limit -> next start "
          f"{gaps[1]:.3f} s")
    assert all(0 <= g < 2.0 for g in gaps), gaps


def test_a_reused_pid_reads_as_dead(home):
    import psutil

    me = psutil.Process()

    def running(name, **status):
        folder = jobs.create_run(name, {"base": "minilm"})
        jobs.update_status(folder, state="running", **status)
        return folder

    # the pid is alive but belongs to a process that started at another time
    running("reused", pid=os.getpid(), pid_started=me.create_time() - 1000, started=time.time())
    # an old status without a start time: a process younger than the run is not its worker
    young = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        running("legacy", pid=young.pid, started=time.time() - 3600)
        # a pid nobody has, and a child that has exited (a zombie until reaped)
        gone = subprocess.Popen([sys.executable, "-c", "pass"])
        gone_pid = gone.pid
        while psutil.Process(gone_pid).status() != psutil.STATUS_ZOMBIE:
            time.sleep(0.02)
        running("zombie", pid=gone_pid, pid_started=psutil.Process(gone_pid).create_time())
        # the real thing stays running
        running("mine", pid=os.getpid(), pid_started=me.create_time(), started=time.time())
        jobs.create_run("next", {"base": "minilm", "fake_seconds": 0})
        assert jobs.schedule() == []  # "mine" holds the only slot
        states = {n: jobs.read_status(jobs.run_dir(n))["state"]
                  for n in ("reused", "legacy", "zombie", "mine", "next")}
        assert states == {"reused": "failed", "legacy": "failed", "zombie": "failed",
                          "mine": "running", "next": "queued"}, states
        assert young.poll() is None  # a stranger's process is never signalled
        jobs.update_status(jobs.run_dir("mine"), state="done")
        assert jobs.schedule() == ["next"]
    finally:
        young.kill()
        young.wait()


def _publish_or_create(trial, racer):
    """Racers 0 and 1 publish a soup built aside, racers 2 and 3 create a plain run."""
    name = f"s{trial}"
    if racer >= 2:
        jobs.create_run(name, {"who": racer})
        return racer
    aside = Path(tempfile.mkdtemp(prefix=f".soup-{name}-", dir=jobs.runs_root()))
    jobs.init_folder(aside, {"who": racer})
    (aside / "model").mkdir()
    jobs.publish_run(aside, name)
    return racer


def test_a_soup_publication_races_cleanly(home):
    trials = 100
    outcomes = race_processes(_publish_or_create, 4, trials)
    winners = _winners(outcomes)
    assert all(len(w) == 1 for w in winners), [w for w in winners if len(w) != 1][:5]
    for trial, (who,) in enumerate(winners):
        folder = jobs.run_dir(f"s{trial}")
        assert json.loads((folder / "config.json").read_text())["who"] == who
        assert (folder / "model").is_dir() == (who < 2)
    refused = [o[1] for trial in outcomes for o in trial if o[0] == "refused"]
    assert all("already exists" in m for m in refused)
    assert not [p.name for p in jobs.runs_root().iterdir() if p.name.startswith(".soup-")]
    print(f"\nsoup publication vs run creation: {sum(len(w) != 1 for w in winners)} "
          f"double or missing runs in {trials} races of 4; no aside folder left")
