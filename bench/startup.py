"""Start-up benchmark: import cost, time to a rendered home page, and server memory.

Prints one JSON line:
- `import_lmdemo_s` (goal ≤ 0.3 s) and `import_ratio_vs_torch`: `import lmdemo` against the named
  baseline `import torch`, each in a fresh interpreter, medians of 5; `heavy_imported`: which of
  torch/transformers/streamlit/gradio `import lmdemo` pulled in (goal: none);
- `health_s` and `home_rendered_s` (goal ≤ 5 s): from `streamlit run app.py` to its health
  endpoint answering, and to the home page's title drawn in Chromium;
- `rss_mb_after_all_pages` (goal ≤ 1536): the server's resident memory after every page in the
  catalog has been opened once with its default models (smollm2 in fp32 on the CPU when fetched:
  `default_lm` says which); `rss_ratio_vs_bare_streamlit` divides it by the same server's memory
  right after its health endpoint first answers, before any page was opened;
- `warm_load_s`: loading the default language model (already fetched and converted) in a fresh
  interpreter, against the baseline `tiny_gpt_load_s` (the shipped 2 M-parameter model), medians
  of 3.
Run: `python bench/startup.py`.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HEAVY = ("torch", "transformers", "streamlit", "gradio")


def _import_time(module: str) -> float:
    code = (f"import time; t = time.perf_counter(); import {module}; "
            "print(time.perf_counter() - t)")
    runs = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                 check=True, cwd=ROOT).stdout) for _ in range(5)]
    return statistics.median(runs)


def _heavy_after_import() -> list[str]:
    code = f"import sys, lmdemo; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return [m for m in out.stdout.strip().split(",") if m]


def _load_time(model_id: str) -> float:
    code = ("import sys, time; from lmdemo.core.models import load; t = time.perf_counter(); "
            "load(sys.argv[1]); print(time.perf_counter() - t)")
    runs = [float(subprocess.run([sys.executable, "-c", code, model_id], capture_output=True,
                                 text=True, check=True, cwd=ROOT).stdout) for _ in range(3)]
    return statistics.median(runs)


def _rss_mb(pid: int) -> float:
    import psutil

    proc = psutil.Process(pid)
    procs = [proc, *proc.children(recursive=True)]
    return sum(p.memory_info().rss for p in procs) / 2**20


def main() -> None:
    from playwright.sync_api import sync_playwright

    from pages.catalog import PAGES
    from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, start_server, wait_for_app

    result = {"import_lmdemo_s": round(_import_time("lmdemo"), 4)}
    torch_s = _import_time("torch")
    result["import_ratio_vs_torch"] = round(result["import_lmdemo_s"] / torch_s, 4)
    result["heavy_imported"] = _heavy_after_import()
    from lmdemo.core.registry import default_lm

    result["default_lm"] = default_lm()
    result["warm_load_s"] = round(_load_time(result["default_lm"]), 3)
    result["tiny_gpt_load_s"] = round(_load_time("tiny-gpt"), 3)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        t0 = time.monotonic()
        proc, base, health_s = start_server()
        try:
            bare = _rss_mb(proc.pid)
            page = browser.new_page()
            page.goto(base + "/")
            page.wait_for_selector("h1", timeout=60_000)
            result["health_s"] = round(health_s, 3)
            result["home_rendered_s"] = round(time.monotonic() - t0, 3)
            for info in PAGES:
                page.goto(f"{base}/{info.url_path}")
                wait_for_app(page, timeout_s=300)
            rss = _rss_mb(proc.pid)
            result["rss_mb_bare"] = round(bare, 1)
            result["rss_mb_after_all_pages"] = round(rss, 1)
            result["rss_ratio_vs_bare_streamlit"] = round(rss / bare, 3)
            result["pages"] = len(PAGES)
        finally:
            proc.terminate()
            browser.close()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
