"""`lmdemo heads`: which attention heads matter, by switching them off.

`--target TOKEN` (exactly one token, e.g. " Paris") gives the importance map: `importance`
[layer][head] is the drop in log p(target) at the end of the text when that head alone is ablated
(positive = the head helped), `base_logprob` the intact model's, `top_heads` the largest drops.
`--ablate L.H` (repeatable, or "3.5, 10.2") ablates those heads together and adds `ablation`: the
top next tokens before and after, and KL(before || after). `--mode zero` (default) zeroes a head's
output; `--mode mean` replaces it by its mean over the text's positions.
"""

from __future__ import annotations

from lmdemo.cli import add_json_flag, add_lm_flag, lm_of
from lmdemo.core import validate
from lmdemo.core.errors import UserError


def register(sub) -> None:
    p = sub.add_parser("heads", help="attention-head ablation and a head importance map")
    add_lm_flag(p)
    p.add_argument("--text", required=True, help="the prompt")
    p.add_argument("--target", help="one token whose log-probability each head's ablation "
                   "changes (e.g. ' Paris'): the importance map")
    p.add_argument("--ablate", action="append", metavar="L.H",
                   help="a head to ablate as layer.head (repeatable, or '3.5, 10.2')")
    p.add_argument("--mode", default="zero", choices=("zero", "mean"),
                   help="zero a head's output, or replace it by its mean over positions")
    p.add_argument("--show", type=int, default=10, help="top tokens listed before/after")
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args):
    from lmdemo.lab import head_ablation as svc

    if not args.target and not args.ablate:
        raise UserError("Give --target TOKEN for the importance map, or --ablate L.H to switch "
                        "heads off (or both).")
    args.show = validate.whole(args.show, "--show", 1, svc.LIMITS.max_show)
    model = lm_of(args)
    out: dict = {}
    if args.target:
        out = svc.importance(model, args.text, args.target, args.mode).to_json()
    if args.ablate:
        heads = svc.parse_heads(", ".join(args.ablate))
        out["ablation"] = svc.head_ablation(model, args.text, heads, args.mode, args.show,
                                            args.target).to_json()
    return out
