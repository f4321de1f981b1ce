"""Fine-tuning jobs: each run is a folder under the runs folder, trained by its own process.

A run folder (`<LMDEMO_HOME>/runs/<name>/`) holds `config.json` (base, hyperparameters, data),
`data.jsonl` (the training reviews, written from memory), `status.json` (state queued | running |
done | failed | cancelled, pid, progress, ETA, error), `metrics.jsonl` (one line per step / epoch),
`log.txt` (the worker's output) and `model/` (the best epoch). A job is the separate process
`python -m lmdemo finetune --run-dir <folder>` started with `start_new_session`, so a crash cannot
take the server down. At most `LMDEMO_MAX_JOBS` run at once; the rest wait as "queued" and are
started by `schedule()` — called on submit, when a worker finishes and whenever runs are listed —
under a file lock. A "running" run whose process is gone is marked failed. Everything is on disk,
so runs survive a server restart; run names are checked so they cannot leave the runs folder, and
an existing run is never overwritten.
"""

from __future__ import annotations

import contextlib
import fcntl
import hmac
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from lmdemo.core.config import launch_settings, settings
from lmdemo.core.errors import UserError
from lmdemo.core.registry import RUN_NAME

STATES = ("queued", "running", "done", "failed", "cancelled")
FINAL = ("done", "failed", "cancelled")


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
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, allow_nan=False, default=str), encoding="utf-8")
    os.replace(tmp, path)  # atomic: a reader never sees half a file


def read_status(folder: Path) -> dict:
    return _read_json(folder / "status.json", {}) or {}


def update_status(folder: Path, **fields) -> dict:
    """Merge fields into status.json; a final state (done, failed, cancelled) is never left."""
    status = read_status(folder)
    if status.get("state") in FINAL and fields.get("state") != status.get("state"):
        return status
    status.update(fields, updated=time.time())
    _write_json(folder / "status.json", status)
    return status


@contextlib.contextmanager
def _lock():
    with open(runs_root() / ".lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def check_token(token: str | None) -> None:
    """When LMDEMO_TRAIN_TOKEN is set, training needs that token."""
    expected = settings().train_token
    if expected and not hmac.compare_digest(str(token or ""), expected):
        raise UserError("Fine-tuning on this server needs the training token "
                        "(LMDEMO_TRAIN_TOKEN); the one given is missing or wrong.")


def create_run(name: str, config: dict, data_jsonl: str | None = None) -> Path:
    """Make a new run folder with config.json (and data.jsonl); never reuses an existing name."""
    return init_folder(run_dir(name), config, data_jsonl)


def init_folder(folder: Path, config: dict, data_jsonl: str | None = None) -> Path:
    """Create a run folder (which must not exist yet, or be empty) with config and status."""
    folder = Path(folder)
    name = folder.name
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise UserError(f"{str(folder)!r} already exists and is not empty; a run is never "
                        "overwritten — choose another name.")
    try:
        folder.mkdir(parents=True, exist_ok=folder.is_dir())
    except FileExistsError as exc:
        raise UserError(f"A run called {name!r} already exists; choose another name.") from exc
    if data_jsonl is not None:
        (folder / "data.jsonl").write_text(data_jsonl, encoding="utf-8")
    _write_json(folder / "config.json", dict(config, name=name, created=time.time()))
    _write_json(folder / "status.json", {"state": "queued", "progress": 0.0,
                                         "created": time.time(), "updated": time.time()})
    (folder / "metrics.jsonl").touch()
    return folder


def submit(name: str, config: dict, data_jsonl: str | None = None,
           token: str | None = None, start: bool = True) -> RunInfo:
    """Validate and queue a fine-tuning run; start it now if a slot is free."""
    from lmdemo.training.finetune import TrainConfig

    check_token(token)
    run_dir(name)  # name check before anything else
    cfg = TrainConfig.from_json(config)  # hyperparameter check: nothing starts on bad values
    data = config.get("data", "shipped")
    if data_jsonl is None and data not in ("shipped", "imdb"):
        raise UserError("Choose the data: the shipped reviews, IMDB or an uploaded file.")
    waiting = [r for r in list_runs(refresh=False) if r.state == "queued"]
    if len(waiting) >= settings().max_queued:
        raise UserError(f"{len(waiting)} runs are already waiting; try again when one has "
                        "started (or cancel one).")
    full = dict(config, **cfg.to_json(), data="upload" if data_jsonl is not None else data)
    folder = create_run(name, full, data_jsonl)
    if start:
        schedule()
    return get_run(folder.name)


def reviews_jsonl(data: bytes, filename: str, text_col: str | None = None,
                  label_col: str | None = None) -> str:
    """Validate uploaded bytes and return them as the data.jsonl of a new run."""
    from lmdemo.training.reviews import parse

    return parse(data, filename, text_col, label_col).to_jsonl()


def _alive(status: dict) -> bool:
    """Whether the worker process recorded in a status is still running (not a zombie)."""
    import psutil

    pid = status.get("pid")
    if not pid:
        return False
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(int(pid), os.WNOHANG)  # reap our own finished children
    try:
        proc = psutil.Process(int(pid))
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        started = status.get("pid_started")
        return started is None or abs(proc.create_time() - float(started)) < 2.0
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return False


def _start(folder: Path) -> None:
    import psutil

    log = open(folder / "log.txt", "ab")  # noqa: SIM115 (the child keeps it open)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "lmdemo", "finetune", "--run-dir", str(folder)],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True, env=env, cwd=str(Path.cwd()))
    log.close()
    try:
        created = psutil.Process(proc.pid).create_time()
    except psutil.NoSuchProcess:
        created = None
    update_status(folder, state="running", pid=proc.pid, pid_started=created,
                  started=time.time())


def schedule() -> list[str]:
    """Mark dead workers failed and start queued runs while fewer than max_jobs run."""
    started = []
    with _lock():
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
                    update_status(folder, state="failed",
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
                os.killpg(int(status["pid"]), signal.SIGTERM)
    schedule()
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
    set_status(folder, state="running", pid=os.getpid(), started=time.time())
    try:
        cfg = TrainConfig.from_json(config)
        data = config.get("data", "shipped")
        val_fraction = float(config.get("val_fraction", 0.1))
        limit = config.get("limit")
        if data == "shipped":
            train_data, val_data = reviews.shipped("train"), reviews.shipped("validation")
        else:
            if data == "upload" or (folder / "data.jsonl").exists():
                all_data = reviews.read_path(folder / "data.jsonl")
            elif data == "imdb":
                all_data = reviews.imdb("train", limit or 2000, cfg.seed)
            else:
                all_data = reviews.read_path(data)
            train_data, val_data = reviews.split_off(all_data, val_fraction, cfg.seed)
        if limit:
            train_data = train_data.head(int(limit))
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
