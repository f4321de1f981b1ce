"""`lmdemo attention`: a transformer's attention weights for a text, as JSON.

`attentions` is always indexed [layer][head][query][key]. `--layer L` keeps only layer L and
`--head H` only head H, but the nesting stays four deep (a one-element list where narrowed), and
`layers`/`heads` say which ones are present. `--step Q` instead recomputes head H of layer L by
hand for query token Q (Q, K, V, scores, softmax, check against the model); for Llama-style models
(smollm2) it adds the RoPE angles, q and K before rotation, and which query heads share each
key/value head (`kv_groups`). smollm2 reads every text after its start token <|endoftext|>, which
is token 0 of `tokens`.
"""

from __future__ import annotations

from lmdemo.cli import add_json_flag
from lmdemo.core import validate

MAX_DIGITS = 10  # decimals: float64 carries no more that mean anything
MAX_TOKENS = 4096  # the longest --max-tokens accepted


def register(sub) -> None:
    p = sub.add_parser("attention", help="attention weights of a transformer for a text")
    p.add_argument("--model", default="minilm", help="model id (default: minilm)")
    p.add_argument("--text", required=True, help="the text")
    p.add_argument("--layer", type=int, help="only this layer (0-based)")
    p.add_argument("--head", type=int, help="only this head (0-based)")
    p.add_argument("--max-tokens", type=int, default=None, help="cut the text to this many tokens")
    p.add_argument("--step", type=int, metavar="QUERY",
                   help="recompute --layer/--head by hand for this query token index")
    p.add_argument("--digits", type=int, default=6, help="decimals kept (default 6)")
    add_json_flag(p)
    p.set_defaults(func=run)


def check(args):
    """Every argument checked before the model loads (layer and head against the model after)."""
    from lmdemo.core.config import settings
    from lmdemo.lab import attention as svc

    validate.text(args.text, "text", settings().max_text_chars)
    args.digits = validate.whole(args.digits, "--digits", 0, MAX_DIGITS)
    args.max_tokens = validate.whole(svc.DEFAULT_MAX_TOKENS if args.max_tokens is None
                                     else args.max_tokens, "--max-tokens", 1, MAX_TOKENS)
    args.layer = validate.optional_whole(args.layer, "--layer", 0)
    args.head = validate.optional_whole(args.head, "--head", 0)
    args.step = validate.optional_whole(args.step, "--step", 0)
    return args


def run(args):
    from lmdemo.lab import attention as svc

    check(args)
    max_tokens = args.max_tokens
    if args.step is not None:
        return svc.step_by_step(args.model, args.text, args.layer or 0, args.head or 0,
                                args.step, max_tokens).to_json(args.digits)
    res = svc.attention(args.model, args.text, max_tokens)
    return {"text": args.text, **res.to_json(args.layer, args.head, digits=args.digits)}
