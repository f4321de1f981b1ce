"""`lmdemo patch`: activation patching — which layer and position carry what decides the answer.

`python -m lmdemo patch --model smollm2 --clean "The capital of France is the city of" --corrupt
"The capital of Italy is the city of" --json` prints the tokens, the row labels (`depths`:
embedding, layer 1, ..., layer L) and `recovered[depth][position]`: the share of the clean
answer's logit lead over the corrupted answer that copying the clean residual stream at that
cell into the corrupted run brings back (1 = all of it, 0 = none). Without --clean/--corrupt it
runs the first preset.
"""

from __future__ import annotations

from lmdemo.cli import add_json_flag, add_lm_flag, lm_of


def register(sub) -> None:
    p = sub.add_parser("patch", help="activation patching: which layer and position matter")
    add_lm_flag(p)
    p.add_argument("--clean", default=None, help="the clean prompt (default: the first preset)")
    p.add_argument("--corrupt", default=None,
                   help="the corrupted prompt: the same number of tokens, one word changed")
    p.add_argument("--clean-answer", default=None,
                   help="one token (default: the clean run's top next token)")
    p.add_argument("--corrupt-answer", default=None,
                   help="one token (default: the corrupted run's top next token)")
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args) -> dict:
    from lmdemo.core.errors import UserError
    from lmdemo.lab.patching import PRESETS, patch

    if (args.clean is None) != (args.corrupt is None):
        raise UserError("Give both --clean and --corrupt, or neither for the preset.")
    clean, corrupt = (args.clean, args.corrupt) if args.clean is not None else PRESETS[0]
    return patch(lm_of(args), clean, corrupt, clean_answer=args.clean_answer or None,
                 corrupt_answer=args.corrupt_answer or None).to_json()
