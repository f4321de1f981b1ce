"""Test settings shared by every layer: offline, and a private LMDEMO_HOME per test session.

Nothing in the tests reaches the network: HF_HUB_OFFLINE is set, hub models come from a local
mirror folder made by the test that needs one.
"""

import os
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("LMDEMO_HOME", tempfile.mkdtemp(prefix="lmdemo-test-home-"))


def pytest_configure(config):
    """AppTest shows exception messages in full (the app itself redacts them for visitors)."""
    from streamlit import config as st_config

    st_config.set_option("client.showErrorDetails", "full")
