"""`lmdemo lens`: the logit lens — the top next token at every layer and position of a text.

`python -m lmdemo lens --model smollm2 --text "The capital of France is" --pin " Paris" --json`
prints the tokens, the row labels (`depths`: embedding, layer 1, ..., layer L; one row "output"
for a recurrent model), `top[depth][position]` = {token, id, prob}, and with --pin the pinned
token's probability and rank at every depth at the last position.
"""

from __future__ import annotations

from lmdemo.cli import add_json_flag, add_lm_flag, lm_of


def register(sub) -> None:
    p = sub.add_parser("lens", help="logit lens: the top next token after every layer")
    add_lm_flag(p)
    p.add_argument("--text", required=True, help="the text read (after the model's start token)")
    p.add_argument("--pin", default=None,
                   help="one token to follow through the layers, e.g. ' Paris' (with its space)")
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args) -> dict:
    from lmdemo.lab.lens import lens

    return lens(lm_of(args), args.text, pin=args.pin or None).to_json()
