"""`lmdemo models`: list every model with its kind, source, capabilities and availability."""

from __future__ import annotations

from lmdemo.cli import add_json_flag
from lmdemo.core.registry import KINDS


def register(sub) -> None:
    p = sub.add_parser("models", help="list the models the app can use")
    p.add_argument("--kind", choices=KINDS, help="only models of this kind")
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args):
    from lmdemo.core.hub import hub_reachable
    from lmdemo.core.registry import all_specs, is_available

    return [spec.to_json(available=is_available(spec, hub_reachable))
            for spec in all_specs() if not args.kind or spec.kind == args.kind]
