"""`lmdemo info --model M`: load one model and describe it (kind, device, sizes, parameters)."""

from __future__ import annotations

from lmdemo.cli import add_json_flag


def register(sub) -> None:
    p = sub.add_parser("info", help="load a model and describe it")
    p.add_argument("--model", required=True, help="a model id (see `lmdemo models`)")
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args):
    from lmdemo.core.device import dtype_name
    from lmdemo.core.models import load

    loaded = load(args.model)
    params = sum(p.numel() for p in loaded.model.parameters())
    return {**loaded.spec.to_json(), "device": loaded.device, "dtype": dtype_name(loaded.dtype),
            "parameters": params, "max_positions": loaded.max_positions,
            "vocab_size": len(loaded.tokenizer)}
