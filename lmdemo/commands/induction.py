"""`lmdemo induction`: a random token sequence read twice — in-context learning and induction heads.

Prints `loss_first` / `loss_second` (mean loss in nats over each copy; the second copy is
predictable from the first), `losses` per token, and `scores` [layer][head]: each head's mean
attention from a token of the second copy to the token after its earlier occurrence. `top_heads`
lists the highest. The sequence is seeded (`--seed`) and `--length` tokens long per copy.
"""

from __future__ import annotations

from lmdemo.cli import add_json_flag, add_lm_flag, lm_of


def register(sub) -> None:
    p = sub.add_parser("induction", help="induction heads on a repeated random sequence")
    add_lm_flag(p)
    p.add_argument("--length", default="50", help="tokens in one copy (2..200)")
    p.add_argument("--seed", default="0", help="seed of the random sequence")
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args):
    from lmdemo.lab.induction import induction

    return induction(lm_of(args), args.length, args.seed).to_json()
