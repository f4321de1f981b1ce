"""Reaching the Hugging Face Hub: allow-list, reachability check, local mirror.

The hub is optional. It is off when `HF_HUB_OFFLINE=1` or `LMDEMO_HUB=0`; a public deployment can
restrict it to an allow-list (`LMDEMO_HUB_ALLOW=gpt2,distilgpt2`). An operator (never a user) can
point `LMDEMO_HUB_MIRROR` at a local folder laid out as `<mirror>/<org>/<name>` with the same files
the hub serves (models and datasets alike); the loaders then read from there through the same code
path. The reachability check
answers within `LMDEMO_HUB_TIMEOUT` seconds, so an unreachable hub gives a clear message, not a hang.
Every one of these variables is read by `lmdemo.core.config.hub_settings()`.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

from lmdemo.core.config import hub_settings
from lmdemo.core.errors import UserError

_HUB_HOST = ("huggingface.co", 443)
_CHECK_TTL_S = 60.0
_last_check: dict[str, tuple[float, bool]] = {}  # a tiny TTL cache of the reachability probe


def mirror_dir() -> Path | None:
    """The operator's local mirror folder (LMDEMO_HUB_MIRROR), or None."""
    return hub_settings().mirror


def hub_disabled_reason() -> str | None:
    """Why hub models cannot be used at all, or None."""
    hub = hub_settings()
    if not hub.enabled and hub.on_space and not hub.allow:
        return ("The Hugging Face Hub is off on this Space: its operator can allow-list models "
                "(LMDEMO_HUB_ALLOW) or turn it on (LMDEMO_HUB=1).")
    if not hub.enabled:
        return "The Hugging Face Hub is turned off on this server (LMDEMO_HUB=0)."
    if hub.offline and hub.mirror is None:
        return "The Hugging Face Hub is offline here (HF_HUB_OFFLINE=1)."
    return None


def check_allowed(model_id: str) -> None:
    allow = hub_settings().allow
    if allow and model_id not in allow:
        raise UserError(f"Hub model {model_id!r} is not allowed on this server. Allowed: "
                        + ", ".join(allow))


def _probe() -> bool:
    now = time.monotonic()
    cached = _last_check.get("hub")
    if cached and now - cached[0] < _CHECK_TTL_S:
        return cached[1]
    try:
        with socket.create_connection(_HUB_HOST, timeout=hub_settings().timeout_s):
            ok = True
    except OSError:
        ok = False
    _last_check["hub"] = (now, ok)
    return ok


def hub_reachable(model_id: str | None = None) -> bool:
    """Whether a hub model can be loaded now (allow-list, offline flags, mirror, network)."""
    if hub_disabled_reason():
        return False
    if model_id is not None:
        try:
            check_allowed(model_id)
        except UserError:
            return False
    mirror = mirror_dir()
    if mirror is not None:
        return model_id is None or (mirror / model_id / "config.json").exists()
    return _probe()


def _locate(repo_id: str, label: str, in_mirror, advice: str, allowed=None) -> str:
    """A hub repo's location (its mirror folder, or the id when the hub is reachable), or a
    UserError that says why not; `label` names it in messages ("'gpt2'", "the dataset 'x'")."""
    reason = hub_disabled_reason()
    if reason:
        raise UserError(f"Cannot load {label}: {reason} {advice}")
    if allowed:
        allowed(repo_id)
    mirror = mirror_dir()
    if mirror is not None:
        path = mirror / repo_id
        if not in_mirror(path):
            raise UserError(f"{label[0].upper()}{label[1:]} is not in this server's mirror.")
        return str(path)
    if not _probe():
        raise UserError(f"Cannot load {label}: the Hugging Face Hub is not reachable from this "
                        f"server. {advice}")
    return repo_id


def resolve(model_id: str) -> str:
    """The location to hand to from_pretrained for a hub id, or a UserError saying why not."""
    return _locate(model_id, f"hub model {model_id!r}", lambda p: (p / "config.json").exists(),
                   "Use an embedded model such as tiny-gpt or minilm.", check_allowed)


def dataset_location(dataset_id: str) -> str:
    """The location to hand to `datasets.load_dataset` for a hub dataset id: its mirror folder
    (the hub's own file layout, e.g. `plain_text/train-00000-of-00001.parquet`) or the id itself
    when the hub is reachable; otherwise a UserError saying why not."""
    return _locate(dataset_id, f"the dataset {dataset_id!r}", Path.is_dir,
                   "Use the shipped reviews or upload a file.")


def dataset_available(dataset_id: str) -> bool:
    """Whether `dataset_location` would succeed now (pages offer the dataset only then)."""
    try:
        dataset_location(dataset_id)
    except UserError:
        return False
    return True
