"""Fine-tuning jobs: each run is a folder under the runs folder, trained by its own processes.

A run folder (`<LMDEMO_HOME>/runs/<name>/`) holds `config.json` (base, hyperparameters, data),
`data.jsonl` (the training reviews, written from memory), `status.json` (state queued | running |
done | failed | cancelled, pid, progress, ETA, error), `metrics.jsonl` (one line per step / epoch),
`log.txt` (the job's output) and `model/` (the best epoch).

Names: a run name is claimed exactly once, across threads and processes: `config.json` is created
with O_CREAT|O_EXCL (the claim) before anything else is written, and in the runs folder the claim
also holds the runs lock (`runs/.lock`, `fcntl.flock`), which a soup's publication (a rename into
place) takes too. A name that is taken, or a folder that is not empty, is a UserError; a run is
never overwritten, and a claim whose later writes fail is removed again.

Queue: at most `LMDEMO_MAX_JOBS` run at once, at most `LMDEMO_MAX_QUEUED` wait; `submit` counts
the waiting runs and creates its run under the runs lock, so concurrent submits cannot pass the
limit. `schedule()` (under the same lock) marks dead jobs failed and starts queued runs, oldest
first, in free slots. It is called on submit and cancel, by the API and pages when they list
runs — and by every job itself when its worker ends, so the queue advances with nobody polling.

A job is two processes. `schedule` starts the supervisor `python -m lmdemo.training.jobs <folder>`
in a new session (so a crash or a closed server cannot take it down, and it outlives the server);
its pid and start time go into status.json. The supervisor runs the worker (`python -m lmdemo
finetune --run-dir <folder>`, or `LMDEMO_JOB_COMMAND`) in its process group, waits for it at most
`LMDEMO_JOB_TIMEOUT_S` seconds (then stops it: status failed, saying the time limit ended it),
marks the run failed if the worker died without a final state (killed, e.g. by the OOM killer:
the error names the signal), and then calls `schedule()` to start the next queued run. Cancel
ends the whole process group. Only if the supervisor itself is killed does the next run wait for
the next `schedule()` call (a submit, a cancel, a listing).

Liveness: a job counts as running while a process with its pid exists, is not a zombie, and was
created when the job started (psutil's create_time, recorded beside the pid), so a pid reused by
another process (after a reboot, say) reads as dead. Everything is on disk, so runs survive a
server restart; status.json is updated under a per-run lock (`.status.lock`) and replaced
atomically, so concurrent writers (worker, supervisor, cancel) never lose each other's fields and
a final state (done, failed, cancelled) is never left.

Disclosure: pids and folders (PRIVATE) stay in status.json for the supervisor and operators; a
job's own output (log.txt, which a page may show) and what visitors are shown go through
`without_private`, and known library notices are filtered at the source (`lmdemo.core.quiet`,
installed by the supervisor, the worker and before every fork that starts a job).
"""

from __future__ import annotations

import contextlib
import fcntl
import hmac
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from lmdemo.core.config import launch_settings, settings
from lmdemo.core.errors import UserError
from lmdemo.core.registry import RUN_NAME

STATES = ("queued", "running", "done", "failed", "cancelled")
FINAL = ("done", "failed", "cancelled")
PRIVATE = ("pid", "pid_started", "worker_pid", "worker_started", "folder")  # server details: never
#                                                   in a job's log or shown to a visitor


@dataclass
class RunInfo:
    """One run as the page shows it."""

    name: str
    state: str
    status: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"name": self.name, "state": self.state, "status": self.status,
                "config": self.config}


def runs_root() -> Path:
    root = settings().runs_dir
    root.mkdir(parents=True, exist_ok=True)
    return root


def run_dir(name: str) -> Path:
    """The folder of run `name`, after checking the name cannot escape the runs folder."""
    if not isinstance(name, str) or not RUN_NAME.fullmatch(name) or ".." in name:
        raise UserError(f"{str(name)[:80]!r} is not a valid run name: use letters, digits, '.', "
                        "'_' and '-' (up to 64 characters, starting with a letter or digit).")
    root = runs_root().resolve()
    path = (root / name).resolve()
    if path.parent != root:
        raise UserError(f"{name!r} is not a valid run name.")
    return path


def _read_json(path: Path, default=None):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return default


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(f".tmp{os.getpid()}-{threading.get_ident()}")
    tmp.write_text(json.dumps(data, allow_nan=False, default=str), encoding="utf-8")
    os.replace(tmp, path)  # atomic: a reader never sees half a file


def read_status(folder: Path) -> dict:
    return _read_json(folder / "status.json", {}) or {}


def update_status(folder: Path, _unless_final: bool = False, **fields) -> dict:
    """Merge fields into status.json (under the run's lock, so concurrent writers never lose each
    other's fields); a final state (done, failed, cancelled) is never left (and with
    `_unless_final`, a run in a final state is not changed at all)."""
    folder = Path(folder)
    with _flock(folder / ".status.lock"):
        status = read_status(folder)
        final = status.get("state") in FINAL
        if final and (_unless_final or fields.get("state", status["state"]) != status["state"]):
            return status
        status.update(fields, updated=time.time())
        _write_json(folder / "status.json", status)
    return status


@contextlib.contextmanager
def _flock(path: Path):
    """An exclusive lock on a file, across processes and threads (each call opens its own file
    description); released when the block ends or the process dies."""
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _lock():
    """The runs lock: name claims, queue counts and scheduling hold it."""
    return _flock(runs_root() / ".lock")


def check_token(token: str | None) -> None:
    """When LMDEMO_TRAIN_TOKEN is set, training needs that token."""
    expected = settings().train_token
    if expected and not hmac.compare_digest(str(token or ""), expected):
        raise UserError("Fine-tuning on this server needs the training token "
                        "(LMDEMO_TRAIN_TOKEN); the one given is missing or wrong.")


def create_run(name: str, config: dict, data_jsonl: str | None = None) -> Path:
    """Make a new run folder with config.json (and data.jsonl); a name is taken exactly once."""
    folder = run_dir(name)
    with _lock():
        return init_folder(folder, config, data_jsonl)


def _taken(folder: Path) -> UserError:
    return UserError(f"A run called {folder.name!r} already exists (or its folder is not empty); "
                     "a run is never overwritten — choose another name.")


def init_folder(folder: Path, config: dict, data_jsonl: str | None = None) -> Path:
    """Create a run folder (which must not exist yet, or be empty) with config and status. The
    claim is creating config.json with O_EXCL: of any number of threads or processes creating the
    same folder, exactly one succeeds; the others get a UserError and change nothing."""
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise _taken(folder)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"Cannot create the folder of run {folder.name!r} there: "
                        f"{exc.strerror or type(exc).__name__}.") from exc
    try:
        try:
            os.mkdir(folder)
            made = True
        except FileExistsError:
            made = False  # an empty folder (or another creator's, which the claim settles)
        fd = os.open(folder / "config.json", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except (FileExistsError, NotADirectoryError) as exc:
        raise _taken(folder) from exc
    except OSError as exc:
        raise UserError(f"Cannot create the run folder {folder.name!r}: "
                        f"{exc.strerror or type(exc).__name__}.") from exc
    try:  # the name is ours from here on; status.json comes last, so nothing schedules it early
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(dict(config, name=folder.name, created=time.time()),
                                allow_nan=False, default=str))
        if data_jsonl is not None:
            (folder / "data.jsonl").write_text(data_jsonl, encoding="utf-8")
        (folder / "metrics.jsonl").touch()
        _write_json(folder / "status.json", {"state": "queued", "progress": 0.0,
                                             "created": time.time(), "updated": time.time()})
    except BaseException:
        if made:
            shutil.rmtree(folder, ignore_errors=True)
        else:
            for child in folder.iterdir():
                if child.is_dir():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)
        raise
    return folder


def publish_run(building: Path, name: str) -> Path:
    """Move a finished run folder built aside (inside the runs folder, under a name that is not
    a run name) into place as run `name`, atomically: under the runs lock, if `name` is taken
    meanwhile, the aside folder is removed and a UserError says so."""
    target = run_dir(name)
    building = Path(building)
    with _lock():
        if os.path.lexists(target):
            shutil.rmtree(building, ignore_errors=True)
            raise _taken(target)
        try:
            os.rename(building, target)  # same folder: atomic; fails on a non-empty target
        except OSError as exc:
            shutil.rmtree(building, ignore_errors=True)
            raise _taken(target) from exc
    return target


def submit(name: str, config: dict, data_jsonl: str | None = None,
           token: str | None = None, start: bool = True) -> RunInfo:
    """Validate and queue a fine-tuning run; start it now if a slot is free."""
    from lmdemo.training.finetune import TrainConfig

    check_token(token)
    run_dir(name)  # name check before anything else
    cfg = TrainConfig.from_json(config)  # hyperparameter check: nothing starts on bad values
    data = config.get("data", "shipped")
    from lmdemo.training import reviews

    if data_jsonl is None and data not in reviews.NAMED:
        raise UserError("Choose the data: the shipped reviews, Rotten Tomatoes, IMDB or an "
                        "uploaded file.")
    full = dict(config, **cfg.to_json(), data="upload" if data_jsonl is not None else data)
    folder = run_dir(name)
    with _lock():  # count and enqueue as one step: concurrent submits cannot pass the limit
        waiting = [r for r in list_runs(refresh=False) if r.state == "queued"]
        if len(waiting) >= settings().max_queued:
            raise UserError(f"{len(waiting)} runs are already waiting; try again when one has "
                            "started (or cancel one).")
        init_folder(folder, full, data_jsonl)
        if start:
            _schedule_locked()
    return get_run(folder.name)


def reviews_jsonl(data: bytes, filename: str, text_col: str | None = None,
                  label_col: str | None = None) -> str:
    """Validate uploaded bytes and return them as the data.jsonl of a new run."""
    from lmdemo.training.reviews import parse

    return parse(data, filename, text_col, label_col).to_jsonl()


def _created(pid: int) -> float | None:
    """When process `pid` started (seconds since the epoch), or None if there is none."""
    import psutil

    try:
        return psutil.Process(int(pid)).create_time()
    except (psutil.Error, ValueError, OverflowError):
        return None


def _is_process(pid, started, not_after=None) -> bool:
    """Whether `pid` is a live (non-zombie) process that started at `started` (within 2 s), or,
    with no start time recorded, no later than `not_after`: a reused pid reads as dead."""
    import psutil

    if not pid:
        return False
    with contextlib.suppress(ChildProcessError, OSError, ValueError, OverflowError):
        os.waitpid(int(pid), os.WNOHANG)  # reap our own finished children
    try:
        proc = psutil.Process(int(pid))
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        created = proc.create_time()
    except (psutil.Error, ValueError, OverflowError):
        return False
    if started is not None:
        return abs(created - float(started)) < 2.0
    return not_after is None or created <= float(not_after) + 2.0


def _alive(status: dict) -> bool:
    """Whether the job process recorded in a status is still running."""
    return _is_process(status.get("pid"), status.get("pid_started"),
                       status.get("started") or status.get("updated"))


def _stop_orphan(status: dict) -> None:
    """Kill a worker left behind by a dead supervisor (only if it is still the same process)."""
    pid = status.get("worker_pid")
    if pid and _is_process(pid, status.get("worker_started")):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(int(pid), signal.SIGKILL)


def without_private(data: dict) -> dict:
    """A run's status or summary without process ids and server folders (PRIVATE)."""
    return {k: v for k, v in data.items() if k not in PRIVATE}


def _start(folder: Path) -> None:
    """Start the job's supervisor in a new session and mark the run running (runs lock held)."""
    from lmdemo.core import quiet

    quiet.install()  # before the fork: no tokenizers fork warning in the server's log
    log = open(folder / "log.txt", "ab")  # noqa: SIM115 (the child keeps it open)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    now = time.time()
    proc = subprocess.Popen([sys.executable, "-m", "lmdemo.training.jobs", str(folder)],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True, env=env, cwd=str(Path.cwd()))
    log.close()
    update_status(folder, state="running", pid=proc.pid, pid_started=_created(proc.pid),
                  started=now)


def schedule() -> list[str]:
    """Mark dead jobs failed and start queued runs while fewer than max_jobs run."""
    with _lock():
        return _schedule_locked()


def _schedule_locked() -> list[str]:
    started = []
    root = runs_root()
    folders = [p for p in sorted(root.iterdir()) if p.is_dir() and RUN_NAME.fullmatch(p.name)]
    running, queued = 0, []
    for folder in folders:
        status = read_status(folder)
        state = status.get("state")
        if state == "running":
            if _alive(status):
                running += 1
            else:
                _stop_orphan(status)
                update_status(folder, True, state="failed",
                              error=status.get("error") or "The training process stopped "
                              "unexpectedly (killed or crashed); see log.txt.")
        elif state == "queued":
            queued.append((status.get("created", 0), folder))
    for _, folder in sorted(queued, key=lambda x: x[0]):
        if running >= settings().max_jobs:
            break
        _start(folder)
        started.append(folder.name)
        running += 1
    return started


def get_run(name: str) -> RunInfo:
    folder = run_dir(name)
    if not folder.is_dir():
        raise UserError(f"No run is called {name!r}.")
    status = read_status(folder)
    return RunInfo(name, status.get("state", "unknown"), status,
                   _read_json(folder / "config.json", {}) or {})


def list_runs(refresh: bool = True) -> list[RunInfo]:
    """Every run, newest first (refreshing states and starting queued runs first)."""
    if refresh:
        schedule()
    root = runs_root()
    runs = [get_run(p.name) for p in root.iterdir() if p.is_dir() and RUN_NAME.fullmatch(p.name)]
    return sorted(runs, key=lambda r: -float(r.config.get("created", 0) or 0))


def metrics(name: str) -> list[dict]:
    """The metrics log of a run: step and epoch records."""
    path = run_dir(name) / "metrics.jsonl"
    out = []
    try:
        for line in path.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
    except OSError:
        pass
    return out


def cancel(name: str, token: str | None = None) -> RunInfo:
    """Stop a queued or running run; it is marked cancelled and its process group ended."""
    check_token(token)
    folder = run_dir(name)
    with _lock():
        status = read_status(folder)
        if status.get("state") not in ("queued", "running"):
            raise UserError(f"Run {name!r} is {status.get('state', 'unknown')}; only queued or "
                            "running runs can be cancelled.")
        update_status(folder, state="cancelled", error="Cancelled by the user.")
        if status.get("state") == "running" and _alive(status):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(int(status["pid"]), signal.SIGTERM)  # supervisor and worker
        _schedule_locked()
    return get_run(name)


def log_tail(name: str, chars: int = 3000) -> str:
    try:
        return (run_dir(name) / "log.txt").read_text(encoding="utf-8", errors="replace")[-chars:]
    except OSError:
        return ""


class Recorder:
    """The worker's on_step callback: appends metrics.jsonl and updates status.json (throttled)."""

    def __init__(self, folder: Path, every_s: float = 1.0):
        self.folder, self.every_s, self.last = folder, every_s, 0.0

    def __call__(self, event: dict) -> None:
        with open(self.folder / "metrics.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(event, default=float) + "\n")
        now = time.monotonic()
        if event.get("event") == "epoch" or now - self.last >= self.every_s:
            self.last = now
            fields = {k: event[k] for k in ("progress", "eta_s", "epoch", "step", "total_steps")
                      if k in event}
            if "loss" in event:
                fields["loss"] = event["loss"]
            if "val_accuracy" in event:
                fields["val_accuracy"] = event["val_accuracy"]
            update_status(self.folder, **fields)


def is_main_process() -> bool:
    """False in the extra processes of `accelerate launch` (only rank 0 writes the run folder)."""
    return launch_settings().is_main


def run_worker(folder: Path, on_step=None) -> dict:
    """Train the run in `folder` in this process (the job process, or `finetune --out`);
    `on_step` also receives every progress event (the command line draws a bar with it)."""
    from lmdemo.training import reviews
    from lmdemo.training.finetune import TrainConfig, train

    folder = Path(folder)
    config = _read_json(folder / "config.json")
    if not config:
        raise UserError(f"{folder} has no readable config.json.")
    status = read_status(folder)
    if status.get("state") in FINAL:
        raise UserError(f"Run {folder.name} is already {status['state']}.")
    main = is_main_process()
    set_status = update_status if main else (lambda *_a, **_k: {})
    me = {"worker_pid": os.getpid(), "worker_started": _created(os.getpid())}
    if not status.get("pid"):  # trained in the foreground (`finetune --out`): no supervisor
        me.update(pid=os.getpid(), pid_started=me["worker_started"], started=time.time())
    set_status(folder, state="running", **me)
    try:
        cfg = TrainConfig.from_json(config)
        data = config.get("data", "shipped")
        uploaded = None
        if data not in reviews.SPLIT_SETS and (data == "upload"
                                               or (folder / "data.jsonl").exists()):
            uploaded = reviews.read_path(folder / "data.jsonl")
        train_data, val_data = reviews.for_run(config, cfg.seed, uploaded)
        recorder = Recorder(folder)

        def report(event: dict) -> None:
            recorder(event)
            if on_step is not None:
                on_step(event)

        result = train(cfg, train_data, val_data, folder / "model", on_step=report)
    except KeyboardInterrupt:
        set_status(folder, state="cancelled", error="Interrupted.")
        raise
    except UserError as exc:
        set_status(folder, state="failed", error=str(exc))
        raise
    except Exception as exc:
        set_status(folder, state="failed", error=f"{type(exc).__name__}: {str(exc)[:500]}")
        raise
    summary = {"state": "done", "progress": 1.0, "eta_s": 0, **{
        k: v for k, v in result.to_json().items() if k != "history"}}
    final = set_status(folder, **summary)
    return {"run": folder.name, "folder": str(folder), **final, "history": result.history}


def compare_rows() -> list[dict]:
    """The shipped classifier and every finished run side by side: settings, best validation
    accuracy, speed. The shipped one's numbers come from its metrics.json: a soup of runs, so its
    settings are its first run's (epochs: the most any run had; speed: the runs' mean) and its
    validation accuracy is the soup's own."""
    from lmdemo.core.config import ASSETS

    rows = []
    shipped = _read_json(ASSETS / "sentiment-minilm" / "metrics.json")
    if shipped:
        parts = shipped.get("ingredients") or []
        speeds = [float(i.get("train_samples_per_s") or 0) for i in parts]
        c = parts[0].get("config", {}) if parts else {}
        rows.append({"model": "sentiment-minilm", "base": c.get("base"),
                     "method": f"{c.get('method')} soup of {len(parts)} runs",
                     "epochs": max((i["config"].get("epochs") or 0 for i in parts), default=None),
                     "learning_rate": c.get("learning_rate"), "batch_size": c.get("batch_size"),
                     "data": c.get("data"),
                     "val_accuracy": (shipped.get("validation") or {}).get("accuracy"),
                     "best_epoch": None,
                     "samples_per_s": round(sum(speeds) / len(speeds), 1) if speeds else None,
                     "device": "cpu"})
    for run in list_runs(refresh=False):
        if run.state != "done":
            continue
        c, s = run.config, run.status
        rows.append({"model": f"run:{run.name}", "base": c.get("base"), "method": c.get("method"),
                     "epochs": c.get("epochs"), "learning_rate": c.get("learning_rate"),
                     "batch_size": c.get("batch_size"), "data": c.get("data"),
                     "val_accuracy": s.get("best_val_accuracy"), "best_epoch": s.get("best_epoch"),
                     "samples_per_s": round(float(s.get("train_samples_per_s") or 0), 1),
                     "device": s.get("device")})
    return rows


def _exit_on_signal(signum, _frame):
    raise SystemExit(128 + signum)


def supervise(folder: Path) -> int:
    """The job's first process (`python -m lmdemo.training.jobs <folder>`, started by
    `schedule`): run the worker, stop it at the wall-clock limit, record how it ended when it
    could not, then start the next queued run. Returns the worker's exit status."""
    from lmdemo.core import quiet

    quiet.install()
    folder = Path(folder).resolve()
    limit = settings().job_timeout_s
    command = list(settings().job_command or (sys.executable, "-m", "lmdemo", "finetune",
                                              "--run-dir")) + [str(folder)]
    signal.signal(signal.SIGTERM, _exit_on_signal)  # cancel: the finally blocks still run
    rc = None
    try:
        with open(folder / "log.txt", "ab") as log:
            proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, cwd=str(Path.cwd()))
        try:
            rc = proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            update_status(folder, True, state="failed", timed_out=True, error=f"Stopped "
                          f"after the wall-clock limit of {limit} s per job "
                          "(LMDEMO_JOB_TIMEOUT_S).")
            proc.terminate()
            try:
                rc = proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                rc = proc.wait()
        finally:
            if rc is None and proc.poll() is None:  # this supervisor was stopped: so is the worker
                proc.terminate()
        exited = time.time()
        how = (f"was killed by signal {-rc}" if rc is not None and rc < 0
               else f"exited with status {rc}")
        update_status(folder, True, state="failed", error=f"The training process {how} before "
                      "finishing (killed, out of memory or crashed); see log.txt.")
        update_status(folder, exited=exited)
    finally:
        schedule()  # start the next queued run: nobody has to poll
    return rc or 0


if __name__ == "__main__":
    sys.exit(supervise(Path(sys.argv[1])) if len(sys.argv) == 2 else 2)
