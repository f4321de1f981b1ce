"""Load benchmark of the Gradio HTTP API: many clients at once on the next-token endpoint.

Starts `python gradio_app.py` on a free port of 127.0.0.1 (nothing else is contacted), then
`--clients` threads (default 20), each with its own `gradio_client.Client`, send `--requests`
(default 50) calls each to `/next_token` on `tiny-gpt` — or, only when tiny-gpt is not installed,
on a tiny random GPT-2 served through a temporary `LMDEMO_HUB_MIRROR` (the output says so).
Every request, in every phase, sends a distinct prompt (a numbered variant of one sentence, the same
length in tokens give or take one), so no answer can come from the service's memo: each one runs
the model. Prints ONE JSON line: `errors` (goal 0), `p50_ms`, `p95_ms`, `rps` under load; the named baselines
`direct_p50_ms` (the same `lmdemo.api.next_token` call in this process, no HTTP) and
`one_client_p50_ms` (one client, one request at a time), and the ratios
`p50_ratio_vs_direct_call` and `p50_ratio_vs_one_client`; `server_cpu_ms_per_request` is
the server process's CPU time under load divided by the requests answered, and
`client_cpu_ms_per_request` the same for the 20 clients of this process (they share the CPUs). Every loop is bounded and each request
has a timeout; the server is stopped at the end.
Run: `python bench/load.py [--clients 20] [--requests 50]`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import free_port, stop  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

PROMPT = "The little dog ran across the garden because it wanted to find the ball that the"
_SERIAL = itertools.count()  # next() on it is atomic under the GIL: one number per request


def prompt() -> str:
    """A prompt never sent before in this run (the memo cannot answer it)."""
    return f"Note {next(_SERIAL):06d}. {PROMPT}"
SHOW = 10  # tokens each next-token request lists
FALLBACK_ID = "bench/tiny-random-gpt2"
REQUEST_TIMEOUT_S = 120.0
START_TIMEOUT_S = 180.0


def pick_model(tmp: Path) -> tuple[str, str]:
    """tiny-gpt when installed; otherwise a tiny random GPT-2 in a temporary mirror."""
    from lmdemo.core.registry import embedded_available, get_spec

    if embedded_available(get_spec("tiny-gpt")):
        return "tiny-gpt", ""
    from tests.helpers import save_tiny_gpt2

    save_tiny_gpt2(tmp / FALLBACK_ID, n_positions=128)
    os.environ["LMDEMO_HUB_MIRROR"] = str(tmp)
    return FALLBACK_ID, ("tiny-gpt is not installed (lmdemo/assets/lm/tiny-gpt): measured on a "
                         "tiny random GPT-2 from a temporary hub mirror instead")


def start_server(port: int) -> subprocess.Popen:
    env = dict(os.environ, LMDEMO_GRADIO_PORT=str(port), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, str(ROOT / "gradio_app.py"), "--host", "127.0.0.1",
                             "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gradio_app.py exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=2):
                return proc
        except OSError:
            time.sleep(0.5)
    proc.terminate()
    raise RuntimeError("the Gradio server did not answer in time")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def call(client, model: str) -> float:
    t = time.perf_counter()
    out = client.submit(prompt(), model, SHOW, api_name="/next_token").result(REQUEST_TIMEOUT_S)
    if len(out["entries"]) != SHOW:
        raise RuntimeError("wrong answer")
    return (time.perf_counter() - t) * 1000


def direct_p50(model: str, n: int = 50) -> float:
    """The baseline: the same JSON adapter called in this process, no HTTP, no queue, with the
    torch thread count the server uses per request."""
    import torch

    import gradio_app
    from lmdemo import api

    torch.set_num_threads(gradio_app.ServerSettings.from_env().threads())

    api.next_token(prompt(), model, SHOW)  # load once
    times = []
    for _ in range(n):
        text = prompt()
        t = time.perf_counter()
        api.next_token(text, model, SHOW)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def load(url: str, model: str, clients: int, requests: int) -> dict:
    from gradio_client import Client

    pool = [Client(url, verbose=False) for _ in range(clients)]
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    gate = threading.Barrier(clients)

    def worker(client) -> None:
        gate.wait(timeout=60)
        for _ in range(requests):
            try:
                ms = call(client, model)
                with lock:
                    latencies.append(ms)
            except Exception as exc:  # counted, not fatal: the point is to see them
                with lock:
                    errors.append(f"{type(exc).__name__}: {str(exc)[:120]}")

    threads = [threading.Thread(target=worker, args=(c,), daemon=True) for c in pool]
    t0 = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=REQUEST_TIMEOUT_S * requests)
    wall = time.perf_counter() - t0
    for c in pool:
        c.close()
    return {"latencies": latencies, "errors": errors, "wall_s": wall}


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) the server process has used so far."""
    import psutil

    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=50, help="per client")
    args = parser.parse_args()
    from gradio_client import Client

    with tempfile.TemporaryDirectory(prefix="lmdemo-load-") as tmp:
        model, note = pick_model(Path(tmp))
        port = free_port()
        server = start_server(port)
        try:
            url = f"http://127.0.0.1:{port}"
            one = Client(url, verbose=False)
            call(one, model)  # the server loads the model on this first request
            single = [call(one, model) for _ in range(30)]
            one.close()
            base = direct_p50(model)
            cpu0, own0 = _cpu_s(server.pid), _cpu_s(os.getpid())
            run = load(url, model, args.clients, args.requests)
            server_cpu, client_cpu = _cpu_s(server.pid) - cpu0, _cpu_s(os.getpid()) - own0
        finally:
            stop(server)
    lat = run["latencies"]
    p50 = statistics.median(lat) if lat else float("nan")
    one_p50 = statistics.median(single)
    result = {
        "model": model, "fallback": bool(note), **({"note": note} if note else {}),
        "clients": args.clients, "requests_per_client": args.requests,
        "requests": args.clients * args.requests, "errors": len(run["errors"]),
        "p50_ms": round(p50, 1), "p95_ms": round(percentile(lat, 0.95), 1) if lat else None,
        "rps": round(len(lat) / run["wall_s"], 1),
        "direct_p50_ms": round(base, 2), "p50_ratio_vs_direct_call": round(p50 / base, 2),
        "one_client_p50_ms": round(one_p50, 1),
        "p50_ratio_vs_one_client": round(p50 / one_p50, 2),
        "server_cpu_ms_per_request": round(1000 * server_cpu / max(1, len(lat)), 1),
        "client_cpu_ms_per_request": round(1000 * client_cpu / max(1, len(lat)), 1),
        "server_concurrency": int(os.environ.get("LMDEMO_GRADIO_CONCURRENCY", "2") or 2),
        "cpus": os.cpu_count(), "distinct_prompts": next(_SERIAL),
    }
    if run["errors"]:
        result["first_errors"] = sorted(set(run["errors"]))[:3]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
