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


def run(args):
    from lmdemo.lab import attention as svc

    max_tokens = args.max_tokens or svc.DEFAULT_MAX_TOKENS
    if args.step is not None:
        return svc.step_by_step(args.model, args.text, args.layer or 0, args.head or 0,
                                args.step, max_tokens).to_json(args.digits)
    res = svc.attention(args.model, args.text, max_tokens)
    return {"text": args.text, **res.to_json(args.layer, args.head, digits=args.digits)}
