"""`lmdemo positional` and `lmdemo position-ablation`: positional encodings from a shell.

`positional --kind sinusoidal|sine-only|rotary --d-model D --length N` prints the encoding matrix
(rows = positions; for rotary the cos/sin rotation table); `--kind learned --model M` prints a
model's learned position table. `position-ablation --model tiny-gpt --text ... --mode zeros`
compares the next-token distribution with normal and broken position ids.
"""

from __future__ import annotations

from lmdemo.cli import add_json_flag

KINDS = ("sinusoidal", "sine-only", "rotary", "learned")


def register(sub) -> None:
    p = sub.add_parser("positional", help="print a positional encoding matrix (rows = positions)")
    p.add_argument("--kind", choices=KINDS, default="sinusoidal", help="which encoding")
    p.add_argument("--d-model", type=int, default=64, help="width (sinusoidal, sine-only, rotary)")
    p.add_argument("--length", type=int, default=None,
                   help="positions (default 50; for learned: the whole table)")
    p.add_argument("--model", default="minilm", help="model id for --kind learned")
    add_json_flag(p)
    p.set_defaults(func=run)

    a = sub.add_parser("position-ablation",
                       help="break a causal LM's position ids and compare its predictions")
    a.add_argument("--model", default="tiny-gpt", help="a causal LM id")
    a.add_argument("--text", required=True, help="the context")
    a.add_argument("--mode", default="zeros", help="zeros, shuffle or reverse")
    a.add_argument("--layer", type=int, default=0)
    a.add_argument("--head", type=int, default=0)
    a.add_argument("--seed", type=int, default=0, help="seed of the shuffle")
    add_json_flag(a)
    a.set_defaults(func=run_ablation)


def run(args) -> dict:
    from lmdemo import positional, rotary

    if args.kind == "learned":
        lt = positional.learned_table(args.model, args.length)
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


def run_ablation(args) -> dict:
    from lmdemo.position_ablation import ablate

    r = ablate(args.model, args.text, args.mode, args.layer, args.head, args.seed)
    return {"model": r.model_id, "mode": r.mode, "tokens": r.tokens,
            "position_ids": r.position_ids, "kl_last": r.kl,
            "kl_per_position": r.kl_per_position,
            "top_before": [{"token": t, "p": p} for t, p in r.top_before],
            "top_after": [{"token": t, "p": p} for t, p in r.top_after],
            "layer": r.layer, "head": r.head,
            "attention_before": r.attention_before.tolist(),
            "attention_after": r.attention_after.tolist()}
