"""Memory of the Gradio API under the largest attention requests it accepts.

Starts `python gradio_app.py` on a free port, finds the longest text whose full `/attention`
response (every layer and head of `minilm`) the API still accepts under its 2 MB cap, then sends
that request 30 times, 10 at a time, through gradio_client (the HTTP `/gradio_api/call` route).
Prints one JSON line: the server's resident memory after the first call and after all 30, and the
growth (goal: within 300 MB), with how many calls succeeded.

    python bench/api_memory.py [--calls 30] [--concurrent 10]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import free_port, stop  # noqa: E402

WORDS = ("the animal did not cross the street because it was too tired and the road was long "
         "wide busy and loud so it waited").split()


def _rss_mb(pid: int) -> float:
    import psutil

    proc = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)]) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--concurrent", type=int, default=10)
    args = parser.parse_args()

    from gradio_client import Client

    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    server = subprocess.Popen([sys.executable, "gradio_app.py", "--port", str(port)], cwd=ROOT,
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        client = None
        while client is None and time.monotonic() < deadline:
            try:
                client = Client(f"http://127.0.0.1:{port}", verbose=False)
            except Exception:  # noqa: BLE001 - not up yet
                time.sleep(1)
        if client is None:
            raise SystemExit("the Gradio app did not start within 120 s")

        def call(n_words: int):
            text = " ".join((WORDS * 50)[:n_words])
            return client.predict(text, "minilm", None, None, api_name="/attention")

        n_words, text_words = 400, None
        while n_words > 4:  # the longest text the API still answers in full
            try:
                call(n_words)
                text_words = n_words
                break
            except Exception:  # noqa: BLE001 - refused above the cap: try shorter
                n_words = int(n_words * 0.85)
        if text_words is None:
            raise SystemExit("no attention request was accepted")
        first = _rss_mb(server.pid)
        with ThreadPoolExecutor(args.concurrent) as pool:
            results = list(pool.map(lambda _: _ok(call, text_words), range(args.calls)))
        time.sleep(2)
        after = _rss_mb(server.pid)
        size = len(json.dumps(call(text_words)))
        print(json.dumps({"bench": "api_memory", "endpoint": "/attention", "model": "minilm",
                          "text_words": text_words, "response_bytes": size,
                          "calls": args.calls, "concurrent": args.concurrent,
                          "succeeded": sum(results), "rss_mb_after_first": round(first, 1),
                          "rss_mb_after_all": round(after, 1),
                          "growth_mb": round(after - first, 1), "goal_growth_mb": 300}))
    finally:
        stop(server)


def _ok(call, n_words: int) -> bool:
    try:
        call(n_words)
        return True
    except Exception:  # noqa: BLE001 - counted, not raised
        return False


if __name__ == "__main__":
    main()
