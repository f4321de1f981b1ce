"""What the benchmarks share: the command-line options every one of them takes (the model, the
rounds, torch threads), timing functions in interleaved rounds of alternating order, a ratio
reported as its median with the 10th-90th percentile spread, and starting / stopping a server on a
free port."""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import time


def parser(doc: str, runs: int, runs_help: str = "timed rounds") -> argparse.ArgumentParser:
    """--model (default: smollm2 when fetched, else tiny-gpt), --runs, --threads."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--model", default=None, help="a causal-lm id (default: smollm2 when "
                   "fetched, else tiny-gpt)")
    p.add_argument("--runs", type=int, default=runs, help=runs_help)
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (1 keeps shared, busy CPUs from adding noise)")
    return p


def set_threads(n: int) -> None:
    import torch

    torch.set_num_threads(max(1, n))


def interleaved(fns: dict, runs: int, warm: int = 3) -> dict[str, list[float]]:
    """Seconds of each function per round; the functions run in turn, in alternating order, so
    drift and warm caches hit all alike."""
    for fn in fns.values():
        for _ in range(warm):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for r in range(runs):
        for name in (names if r % 2 == 0 else names[::-1]):
            t0 = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - t0)
    return times


def ratio(num: list[float], den: list[float]) -> dict:
    """Median of num/den over rounds, with the 10th-90th percentile spread."""
    r = sorted(a / b for a, b in zip(num, den, strict=True))
    q = statistics.quantiles(r, n=10, method="inclusive") if len(r) > 1 else [r[0]] * 9
    return {"median": round(statistics.median(r), 3), "p10": round(q[0], 3),
            "p90": round(q[-1], 3)}


def free_port() -> int:
    """A TCP port free on the loopback interface now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(server: subprocess.Popen, wait_s: float = 20) -> None:
    """Terminate a server process, killing it if it does not exit in time."""
    server.terminate()
    try:
        server.wait(timeout=wait_s)
    except subprocess.TimeoutExpired:
        server.kill()
