"""A real Streamlit server and a real Chromium for the browser tests.

The server is `streamlit run app.py` on a free port, offline, with a private LMDEMO_HOME. Chromium
is Debian's /usr/bin/chromium driven by the playwright package (never a downloaded browser).
Where Chromium is missing the tests skip with the reason, unless LMDEMO_REQUIRE_BROWSER=1 (set by
.ci/run), which turns the skip into a failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = os.environ.get("LMDEMO_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _require_chromium() -> None:
    if Path(CHROMIUM).exists() and shutil.which(CHROMIUM):
        return
    reason = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
    if os.environ.get("LMDEMO_REQUIRE_BROWSER") == "1":
        pytest.fail(reason + " and LMDEMO_REQUIRE_BROWSER=1")
    pytest.skip(reason)


def start_server(env_extra: dict | None = None):
    """Start `streamlit run app.py`; returns (process, base_url, seconds until healthy)."""
    port = _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env_extra or {})}
    env.setdefault("LMDEMO_HOME", tempfile.mkdtemp(prefix="lmdemo-browser-"))
    start = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = start + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(base + "/_stcore/health", timeout=1) as r:
                if r.status == 200:
                    return proc, base, time.monotonic() - start
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("streamlit did not become healthy within 60 s")


@pytest.fixture(scope="session")
def server():
    proc, base, _ = start_server()
    yield base
    stop_server(proc)


def stop_server(proc) -> None:
    """Stop a server started for a test: terminate, then kill after 10 s."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def browser():
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


BUSY = '[data-testid="stSpinner"], [data-testid="stSkeleton"], [data-stale="true"]'


def wait_for_app(page, timeout_s: float = 180) -> None:
    """Wait until Streamlit has finished running the page's script: a title is drawn and no
    spinner, skeleton or stale element has been seen for three polls in a row."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout_s * 1000)
    deadline = time.monotonic() + timeout_s
    idle = 0
    while time.monotonic() < deadline and idle < 3:
        has_title = page.locator('[data-testid="stMainBlockContainer"] h1').count() > 0
        charts = page.locator('[data-testid="stPlotlyChart"]').count()
        drawn = page.locator('[data-testid="stPlotlyChart"] .main-svg').count()
        busy = page.locator(BUSY).count() > 0 or drawn < charts
        idle = idle + 1 if has_title and not busy else 0
        page.wait_for_timeout(400)
    page.wait_for_timeout(300)


def shot(page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
