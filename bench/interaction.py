"""Interaction benchmark: how long a click takes to show its result in a real browser, for the
working tree against a named baseline tree, same process.

Two servers run side by side (`streamlit run app.py`, headless, offline, each on a free port with
its own temporary LMDEMO_HOME; smollm2 from ~/.lmdemo/assets): one on the working tree, one on the
baseline — `--baseline-ref` (default 07d4d83, the last commit where every click re-ran the whole
page), checked out once with `git worktree add --detach /tmp/lmdemo-baseline-<hash>` and reused.
Chromium (/usr/bin/chromium, driven by playwright) measures both in alternating rounds (the order
flips every round) after warm-up; each measure reports seconds per tree (median, 10th-90th
percentile), the ratio baseline/current (median of per-round ratios, with its spread), its goal and
whether the working tree meets it:
- `next_word_tiny_gpt_s` (goal ≤ 0.5 s): Next word on `?model=tiny-gpt`, a click on the first
  token button (force the likeliest token) until the distribution chart is redrawn for the longer
  text (its key or title changed, its SVG drawn, nothing stale);
- `next_word_smollm2_s` (goal ≤ 1 s): the same on smollm2 (the default model);
- `sentiment_query_s` (goal ≤ 1 s): Sentiment's Query tab, a review never asked before typed in
  and submitted (Ctrl+Enter) until its label is shown (the label's metric, marked stale by the
  submit, is current again); once the run is over, the coloured words are checked to be the
  review's;
- `first_chart_s.<page>` (goal ≤ 2 s each): a click on the page's link in the sidebar until its
  first chart is drawn (a page without a chart, the home page: its tour links), every page opened
  once before (a warm server), in tour order from the home page.
Between two interactions the benchmark waits for the server's "script finished" message (read from
the websocket) and for every chart to be drawn. A failed interaction is reported with its error
(and a screenshot in artifacts/screenshots/interaction-<tree>-<measure>-error.png), never hidden.
Run: `python bench/interaction.py [--quick] [--rounds 7] [--baseline-ref 07d4d83]` (about 15 min;
--quick about 5).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import free_port, ratio, stop  # noqa: E402

BASELINE_REF = "07d4d83"  # the commit before panels became fragments
GOALS_S = {"next_word_tiny_gpt_s": 0.5, "next_word_smollm2_s": 1.0, "sentiment_query_s": 1.0,
           "first_chart_s": 2.0}
SHOTS = ROOT / "artifacts" / "screenshots"
MAIN = '[data-testid="stMainBlockContainer"]'
TOKEN_BUTTONS = (".st-key-tok_0 button", ".st-key-greedy button")  # force a token, or greedy
REVIEW_BOX = ".st-key-review textarea"
BUSY = '[data-testid="stSpinner"], [data-testid="stSkeleton"], [data-stale="true"]'

# The distribution chart: the one keyed dist_* (else the first chart); its key and title.
CHART_SIGNATURE = r"""() => {
  const main = document.querySelector('@MAIN@');
  const charts = main ? [...main.querySelectorAll('[data-testid="stPlotlyChart"]')] : [];
  const c = charts.find(e => e.closest('[class*="st-key-dist"]')) || charts[0];
  if (!c) return null;
  const keyed = c.closest('[class*="st-key-"]');
  const key = keyed ? (keyed.className.match(/st-key-\S+/) || [''])[0] : '';
  const title = c.querySelector('.gtitle');
  return key + '|' + (title ? title.textContent : '');
}""".replace("@MAIN@", MAIN)
CHART_CHANGED = """(before) => {
  const now = (@SIGNATURE@)();
  if (now === null || now === before) return false;
  const main = document.querySelector('@MAIN@');
  const charts = [...main.querySelectorAll('[data-testid="stPlotlyChart"]')];
  const c = charts.find(e => e.closest('[class*="st-key-dist"]')) || charts[0];
  return !!c.querySelector('.main-svg') && !c.closest('[data-stale="true"]');
}""".replace("@SIGNATURE@", CHART_SIGNATURE).replace("@MAIN@", MAIN)
# The Query tab's label: the column of its metric (label, probability). Shown for the new review
# once the metric, marked stale by the submit, is current again (or its text changed).
LABEL = """() => {
  const m = document.querySelector('@MAIN@ [data-testid="stMetric"]');
  if (!m) return null;
  const col = m.closest('[data-testid="stColumn"]') || m.parentElement;
  return {text: col.textContent, stale: !!m.closest('[data-stale="true"]')};
}""".replace("@MAIN@", MAIN)
LABEL_SHOWN = """(before) => {
  const now = (@LABEL@)();
  if (now === null) return false;
  if (now.stale) { window.__lmdemoSeenStale = true; return false; }
  return now.text !== '' && (window.__lmdemoSeenStale === true || now.text !== before);
}""".replace("@LABEL@", LABEL)
# A page's first chart drawn and current (or, with no chart, its page links), under its title.
FIRST_DRAWN = r"""([path, chart]) => {
  const here = location.pathname.replace(/\/+$/, '');
  if (!(path === '' ? here === '' : here.endsWith('/' + path))) return false;
  const main = document.querySelector('@MAIN@');
  if (!main) return false;
  const title = main.querySelector('h1');
  if (!title || title.closest('[data-stale="true"]')) return false;
  const sel = chart ? '[data-testid="stPlotlyChart"] .main-svg, ' +
      '[data-testid="stVegaLiteChart"] canvas, [data-testid="stVegaLiteChart"] svg'
    : '[data-testid="stPageLink"]';
  return [...main.querySelectorAll(sel)].some(e => !e.closest('[data-stale="true"]'));
}""".replace("@MAIN@", MAIN)


class Tab:
    """One browser tab (one Streamlit session) and the script runs its server reported finished,
    read from the websocket's messages (each one a ForwardMsg)."""

    def __init__(self, browser, base: str):
        self.page = browser.new_page(viewport={"width": 1400, "height": 1600})
        self.base = base
        self.finished = 0  # runs (and fragment runs) that ended, reruns excluded
        self.page.on("websocket", lambda ws: ws.on("framereceived", self._frame))

    def _frame(self, payload) -> None:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        if not isinstance(payload, bytes):
            return
        with contextlib.suppress(Exception):
            msg = ForwardMsg.FromString(payload)
            if msg.WhichOneof("type") == "script_finished" and \
                    msg.script_finished != ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                self.finished += 1

    def settle(self, since: int, timeout_s: float) -> None:
        """Until a run that began after `since` finished runs ended, its charts are drawn and no
        spinner or stale element is left."""
        deadline, calm = time.monotonic() + timeout_s, 0
        while calm < 2:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no finished run within {timeout_s:.0f} s")
            done = self.finished > since
            charts = self.page.locator('[data-testid="stPlotlyChart"]').count()
            drawn = self.page.locator('[data-testid="stPlotlyChart"] .main-svg').count()
            busy = self.page.locator(BUSY).count() > 0 or drawn < charts
            calm = calm + 1 if done and not busy else 0
            self.page.wait_for_timeout(100)

    def open(self, path: str, timeout_s: float) -> Tab:
        since = self.finished
        self.page.goto(self.base + path)
        self.page.wait_for_selector(f"{MAIN} h1", timeout=timeout_s * 1000)
        self.settle(since, timeout_s)
        return self


class Tree:
    """One source tree with its server and one browser tab per measure."""

    def __init__(self, name: str, path: Path):
        self.name, self.path = name, path
        self.home = Path(tempfile.mkdtemp(prefix=f"lmdemo-interaction-{name}-"))
        self.proc = None
        self.base = ""
        self.tabs: dict[str, Tab] = {}
        self.times: dict[str, list[float | None]] = {}
        self.errors: dict[str, str] = {}
        self.exceptions: int | None = None  # exception boxes left on its pages at the end

    def start(self, timeout_s: float = 120) -> None:
        port = free_port()
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "LMDEMO_HOME": str(self.home),
               "LMDEMO_ASSETS_DIR": str(Path("~/.lmdemo/assets").expanduser()),
               "PYTHONPATH": str(self.path)}
        log = open(self.home / "server.log", "w")  # noqa: SIM115 - kept open while it runs
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
             "--server.address", "127.0.0.1", "--server.headless", "true",
             "--browser.gatherUsageStats", "false"],
            cwd=self.path, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.base + "/_stcore/health", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"{self.name} server not healthy in {timeout_s:.0f} s "
                           f"(log: {self.home / 'server.log'})")

    def record(self, measure: str, fn, tab: Tab, *args) -> None:
        """Time one interaction; a failure is kept (its first message) and counted as missing."""
        try:
            value = fn(tab, *args)
        except Exception as exc:  # a broken page is a result to report, not a crash
            value = None
            self.errors.setdefault(measure, f"{type(exc).__name__}: {str(exc)[:300]}")
            with contextlib.suppress(Exception):
                _shot(tab.page, f"interaction-{self.name}-{measure}-error")
        self.times.setdefault(measure, []).append(value)


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def baseline_tree(ref: str) -> Path:
    """The baseline checkout: a detached worktree of `ref` under /tmp, made once and reused."""
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--verify", f"{ref}^{{commit}}"],
                            capture_output=True, text=True, check=True).stdout.strip()
    path = Path(f"/tmp/lmdemo-baseline-{commit[:7]}")
    if not (path / "app.py").exists():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), commit],
                       capture_output=True, text=True, check=True)
    return path


def next_word_step(tab: Tab, timeout_s: float) -> float:
    """Seconds from a click on the first token button to the distribution chart redrawn."""
    page = tab.page
    button = next((page.locator(s).first for s in TOKEN_BUTTONS if page.locator(s).count()), None)
    if button is None:
        raise RuntimeError("no token button (.st-key-tok_0) nor greedy button on the page")
    before, since = page.evaluate(CHART_SIGNATURE), tab.finished
    t0 = time.perf_counter()
    button.click()
    page.wait_for_function(CHART_CHANGED, arg=before, polling="raf", timeout=timeout_s * 1000)
    took = time.perf_counter() - t0
    tab.settle(since, timeout_s)
    return took


def sentiment_query(tab: Tab, review: str, timeout_s: float) -> float:
    """Seconds from submitting a new review (Ctrl+Enter) to its label shown."""
    page = tab.page
    box = page.locator(REVIEW_BOX).first
    box.fill(review)
    before = (page.evaluate(LABEL) or {}).get("text")
    page.evaluate("window.__lmdemoSeenStale = false")
    since = tab.finished
    t0 = time.perf_counter()
    box.press("Control+Enter")
    page.wait_for_function(LABEL_SHOWN, arg=before, polling="raf", timeout=timeout_s * 1000)
    took = time.perf_counter() - t0
    tab.settle(since, timeout_s)
    words = " ".join(page.locator(f'{MAIN} [data-testid="stHtml"]').all_inner_texts()).lower()
    if not any(w in words for w in re.findall(r"[a-z]{4,}", review.lower())):
        raise RuntimeError(f"the words coloured are not those of {review!r}")
    return took


def navigate(tab: Tab, info, has_chart: bool, timeout_s: float) -> float:
    """Seconds from a click on a page's sidebar link to its first chart drawn."""
    page = tab.page
    path = _page_path(info)
    links = page.locator('[data-testid="stSidebarNav"] a')
    link = next(links.nth(i) for i in range(links.count())
                if _link_path(links.nth(i).get_attribute("href")) == path)
    since = tab.finished
    t0 = time.perf_counter()
    link.click()
    page.wait_for_function(FIRST_DRAWN, arg=[path, has_chart], polling="raf",
                           timeout=timeout_s * 1000)
    took = time.perf_counter() - t0
    tab.settle(since, timeout_s)
    return took


def _page_path(info) -> str:
    """A catalog page's address ('' for the default page, which app.py serves at /)."""
    from pages.catalog import PAGES

    return "" if info == PAGES[0] else info.url_path


def _link_path(href: str | None) -> str:
    return re.sub(r"^https?://[^/]+", "", href or "").split("?")[0].strip("/")


def _spread(values: list[float]) -> dict:
    if not values:
        return {"median": None, "p10": None, "p90": None, "n": 0}
    q = statistics.quantiles(values, n=10, method="inclusive") if len(values) > 1 \
        else [values[0]] * 9
    return {"median": round(statistics.median(values), 3), "p10": round(q[0], 3),
            "p90": round(q[-1], 3), "n": len(values)}


def summary(measure: str, goal: float, trees: list[Tree]) -> dict:
    """Each tree's spread, the per-round ratio baseline/current, the goal and whether it is met."""
    out: dict = {"goal_s": goal}
    for tree in trees:
        out[tree.name] = _spread([t for t in tree.times.get(measure, []) if t is not None])
        if measure in tree.errors:
            out[tree.name]["error"] = tree.errors[measure]
            out[tree.name]["server_log"] = str(tree.home / "server.log")
    by_name = {t.name: t.times.get(measure, []) for t in trees}
    if "baseline" in by_name:
        pairs = [(b, c) for b, c in zip(by_name["baseline"], by_name["current"], strict=False)
                 if b is not None and c is not None]
        if pairs:
            out["ratio_baseline_over_current"] = ratio(*map(list, zip(*pairs, strict=True)))
    current = out["current"]["median"]
    out["met"] = current is not None and current <= goal and "error" not in out["current"]
    return out


def reviews(n: int) -> list[str]:
    """`n` different reviews (the hand-written independent set, each asked once)."""
    with open(ROOT / "tests" / "data" / "independent_reviews.csv", newline="") as f:
        texts = [row["text"] for row in csv.DictReader(f)]
    return [texts[i % len(texts)] + ("" if i < len(texts) else f" ({i})") for i in range(n)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--baseline-ref", default=BASELINE_REF,
                   help="git ref of the baseline tree ('' to measure the working tree alone)")
    p.add_argument("--rounds", type=int, default=7, help="timed rounds per interaction")
    p.add_argument("--nav-rounds", type=int, default=3, help="timed rounds over every page")
    p.add_argument("--warm", type=int, default=2, help="untimed interactions first")
    p.add_argument("--timeout", type=float, default=45, help="seconds one interaction may take")
    p.add_argument("--quick", action="store_true", help="3 rounds, 1 over the pages, 1 warm-up")
    args = p.parse_args()
    if args.quick:
        args.rounds, args.nav_rounds, args.warm = 3, 1, 1

    from playwright.sync_api import sync_playwright

    from pages.catalog import PAGES
    from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS

    t_start = time.monotonic()
    trees = [Tree("current", ROOT)]
    if args.baseline_ref:
        trees.insert(0, Tree("baseline", baseline_tree(args.baseline_ref)))
    asked = reviews(args.rounds + args.warm)  # each server has its own cache: the same texts
    queue = {t.name: list(asked) for t in trees}
    has_chart: dict[str, bool] = {}
    try:
        for tree in trees:
            tree.start()
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                         args=CHROMIUM_ARGS)
            for tree in trees:  # warm-up: every page once (models loaded, caches filled)
                nav = tree.tabs["nav"] = Tab(browser, tree.base)
                for info in PAGES:
                    nav.open("/" + _page_path(info), 300)
                    has_chart[info.url_path] = has_chart.get(info.url_path, False) or \
                        nav.page.locator('[data-testid="stPlotlyChart"], '
                                         '[data-testid="stVegaLiteChart"]').count() > 0
                nav.open("/", 300)
                tree.tabs["tiny"] = Tab(browser, tree.base).open("/next_word?model=tiny-gpt", 300)
                tree.tabs["smollm2"] = Tab(browser, tree.base).open("/next_word?model=smollm2",
                                                                    300)
                tree.tabs["sentiment"] = Tab(browser, tree.base).open("/sentiment", 300)
            for r in range(args.warm + args.rounds):
                warm = "warm_" if r < args.warm else ""
                order = trees if r % 2 == 0 else trees[::-1]
                for measure, tab in (("next_word_tiny_gpt_s", "tiny"),
                                     ("next_word_smollm2_s", "smollm2")):
                    for tree in order:
                        tree.record(warm + measure, next_word_step, tree.tabs[tab], args.timeout)
                for tree in order:
                    tree.record(warm + "sentiment_query_s", sentiment_query,
                                tree.tabs["sentiment"], queue[tree.name].pop(0), args.timeout)
            tour = list(PAGES[1:]) + [PAGES[0]]  # from home through every page, back home
            for r in range(args.nav_rounds):
                order = trees if r % 2 == 0 else trees[::-1]
                for info in tour:
                    for tree in order:
                        tree.record(f"first_chart_s.{info.url_path}", navigate,
                                    tree.tabs["nav"], info, has_chart[info.url_path],
                                    args.timeout)
            for tree in trees:
                for name, tab in tree.tabs.items():
                    with contextlib.suppress(Exception):
                        _shot(tab.page, f"interaction-{tree.name}-{name}")
                tree.exceptions = sum(tab.page.locator('[data-testid="stException"]').count()
                                      for tab in tree.tabs.values())
            browser.close()
    finally:
        for tree in trees:
            if tree.proc is not None:
                stop(tree.proc)
            if not tree.errors:  # else its server.log stays for a look
                shutil.rmtree(tree.home, ignore_errors=True)
    measures = {m: summary(m, g, trees) for m, g in GOALS_S.items() if m != "first_chart_s"}
    first = {info.url_path: summary(f"first_chart_s.{info.url_path}", GOALS_S["first_chart_s"],
                                    trees) for info in PAGES}
    for info in PAGES:
        first[info.url_path]["waits_for"] = "chart" if has_chart.get(info.url_path) \
            else "page links (no chart)"
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain"],
                                capture_output=True, text=True).stdout.strip())
    print(json.dumps({
        "baseline": {"ref": args.baseline_ref, "tree": str(trees[0].path)}
        if args.baseline_ref else None,
        "current": {"tree": str(ROOT), "head": head, "uncommitted_changes": dirty},
        **measures, "first_chart_s": first,
        "all_goals_met": all(m["met"] for m in [*measures.values(), *first.values()]),
        "exceptions_on_pages": {t.name: t.exceptions for t in trees},
        "warm_up_errors": {t.name: {m: e for m, e in t.errors.items() if m.startswith("warm_")}
                           for t in trees},
        "rounds": args.rounds, "nav_rounds": args.nav_rounds, "warm": args.warm,
        "wall_s": round(time.monotonic() - t_start, 1),
    }, ensure_ascii=False))


if __name__ == "__main__":
    main()
