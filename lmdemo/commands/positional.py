"""`lmdemo positional` and `lmdemo position-ablation`: positional encodings from a shell.

`positional --kind sinusoidal|sine-only|rotary --d-model D --length N` prints the encoding matrix
(rows = positions; for rotary the cos/sin rotation table); `--kind learned --model M` prints a
model's learned position table. `--kind rotary-model --model smollm2 --text T --layer L --head H`
measures RoPE on a real model's own q and k (its θ, the wavelengths of its pairs, q·k at every
(m, n), the spread per offset, and the check against the model's own attention weights).
`position-ablation --model smollm2 --text ... --mode zeros` compares the next-token distribution
with normal and broken position ids (default model: smollm2 when fetched, else tiny-gpt).
"""

from __future__ import annotations

from lmdemo.cli import add_json_flag
from lmdemo.core import validate

KINDS = ("sinusoidal", "sine-only", "rotary", "learned", "rotary-model")
EXAMPLE = "The capital of France is Paris. The capital of Italy is"


def register(sub) -> None:
    p = sub.add_parser("positional", help="print a positional encoding matrix (rows = positions), "
                       "or measure RoPE on a real model (--kind rotary-model)")
    p.add_argument("--kind", choices=KINDS, default="sinusoidal",
                   help="which encoding; rotary-model: RoPE measured on a real model's q and k")
    p.add_argument("--d-model", type=int, default=64, help="width (sinusoidal, sine-only, rotary)")
    p.add_argument("--length", type=int, default=None,
                   help="positions (default 50; for learned: the whole table; for rotary-model: "
                   "the m, n grid, default 64)")
    p.add_argument("--model", default=None,
                   help="model id: for learned (default minilm), for rotary-model (default "
                   "smollm2)")
    p.add_argument("--text", default=EXAMPLE, help="rotary-model: the text read (after the "
                   "model's start token)")
    p.add_argument("--layer", type=int, default=0, help="rotary-model: the layer")
    p.add_argument("--head", type=int, default=0, help="rotary-model: the query head")
    p.add_argument("--query", type=int, default=-1, help="rotary-model: the token whose query "
                   "is used (index with the start token as 0; negative from the end)")
    p.add_argument("--key", type=int, default=1, help="rotary-model: the token whose key is used")
    add_json_flag(p)
    p.set_defaults(func=run)

    a = sub.add_parser("position-ablation",
                       help="break a causal LM's position ids and compare its predictions")
    a.add_argument("--model", default=None,
                   help="a causal LM id (default: smollm2 when fetched, else tiny-gpt)")
    a.add_argument("--text", required=True, help="the context")
    a.add_argument("--mode", default="zeros", choices=("zeros", "shuffle", "reverse"),
                   help="zeros, shuffle or reverse")
    a.add_argument("--layer", type=int, default=0)
    a.add_argument("--head", type=int, default=0)
    a.add_argument("--seed", type=int, default=0, help="seed of the shuffle")
    add_json_flag(a)
    a.set_defaults(func=run_ablation)


MAX_SEED = 2**32 - 1  # numpy's seeds: 0 to this


def _check_model_args(args) -> None:
    """--text, --layer and --head checked before a model loads (their upper bounds after)."""
    from lmdemo.core.config import settings

    validate.text(args.text, "text", settings().max_text_chars)
    args.layer = validate.whole(args.layer, "--layer", 0)
    args.head = validate.whole(args.head, "--head", 0)


def run(args) -> dict:
    from lmdemo.lab import positional, rotary

    if args.kind == "rotary-model":
        return run_rotary_model(args)
    if args.length is not None:
        args.length = validate.whole(args.length, "--length", 1, positional.LIMITS.max_length)
    args.d_model = validate.whole(args.d_model, "--d-model", 2, positional.LIMITS.max_d_model)
    if args.kind == "learned":
        lt = positional.learned_table(args.model or "minilm", args.length)
        return {"kind": "learned", "model": lt.model_id, "module": lt.name,
                "total_positions": lt.total_positions, "matrix": lt.table.tolist()}
    length = 50 if args.length is None else args.length
    if args.kind == "rotary":
        rc = rotary.relative_check(length, args.d_model)
        return {"kind": "rotary", "d_model": args.d_model, "length": length,
                "columns": "cos(pos*theta_i), sin(pos*theta_i) interleaved",
                "relative_max_deviation": rc.max_deviation,
                "matrix": rotary.table(length, args.d_model).tolist()}
    matrix = positional.encoding(args.kind, length, args.d_model)
    return {"kind": args.kind, "d_model": args.d_model, "length": length,
            "matrix": matrix.tolist()}


def run_rotary_model(args) -> dict:
    from lmdemo.lab import rotary

    _check_model_args(args)
    if args.length is not None:
        args.length = validate.whole(args.length, "--length", 2, rotary.LIMITS.max_grid)

    r = rotary.measure(args.model or rotary.REAL_MODEL, args.text, args.layer, args.head,
                       args.query, args.key, rotary.LIMITS.grid if args.length is None
                       else args.length)
    summary = {"kind": "rotary-model", "model": r.model_id, "layer": r.layer, "head": r.head,
               "kv_head": r.kv_head, "theta": r.theta, "head_dim": r.head_dim,
               "query_token": f"{r.query_index}:{r.tokens[r.query_index]}",
               "key_token": f"{r.key_index}:{r.tokens[r.key_index]}",
               "positions": int(r.scores.shape[0]),
               "max_deviation": r.max_deviation, "relative_deviation": r.relative_deviation,
               "additive_max_deviation": r.max_additive_deviation,
               "additive_relative_deviation": r.relative_additive_deviation,
               "model_attention_max_diff": r.model_max_diff,
               "shortest_wavelength": float(r.wavelengths[0]),
               "longest_wavelength": float(r.wavelengths[-1])}
    return {**r.to_json(), **summary} if args.json else summary


def run_ablation(args) -> dict:
    from lmdemo.lab.position_ablation import ablate, default_model

    _check_model_args(args)
    args.seed = validate.whole(args.seed, "--seed", 0, MAX_SEED)

    r = ablate(args.model or default_model(), args.text, args.mode, args.layer, args.head,
               args.seed)
    return {"model": r.model_id, "mode": r.mode, "tokens": r.tokens,
            "position_ids": r.position_ids, "kl_last": r.kl,
            "kl_per_position": r.kl_per_position,
            "top_before": [{"token": t, "p": p} for t, p in r.top_before],
            "top_after": [{"token": t, "p": p} for t, p in r.top_after],
            "layer": r.layer, "head": r.head,
            "attention_before": r.attention_before.tolist(),
            "attention_after": r.attention_after.tolist()}
