"""`lmdemo next-token`: the next-token distribution after a prompt, raw and after sampling knobs."""

from __future__ import annotations

from lmdemo.cli import add_json_flag, add_lm_flag, add_text_inputs, lm_of, read_texts
from lmdemo.core import validate


def register(sub) -> None:
    p = sub.add_parser("next-token", help="probabilities of the token that comes next")
    add_lm_flag(p)
    add_text_inputs(p, what="prompt")
    p.add_argument("--top-k", default="0", help="keep the k most likely tokens (0 = all)")
    p.add_argument("--temperature", default="1.0", help="0 = greedy; <1 sharper, >1 flatter")
    p.add_argument("--top-p", default="1.0", help="keep the smallest top set with mass >= p")
    p.add_argument("--show", type=int, default=20, help="how many tokens to list")
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args):
    from lmdemo.lab.next_token import LIMITS, next_token
    from lmdemo.lab.sampling import check_params

    params = check_params(args.temperature, args.top_k, args.top_p)
    show = validate.whole(args.show, "--show", 1, LIMITS.max_show)
    if args.text is None and not args.file:
        args.text = [""]  # no prompt: the distribution after the bos token
    texts, as_list = read_texts(args, "prompt", allow_empty=True)
    results = [next_token(lm_of(args), text, top_k=params.top_k, temperature=params.temperature,
                          top_p=params.top_p, show=show).to_json() for text in texts]
    return results if as_list else results[0]
