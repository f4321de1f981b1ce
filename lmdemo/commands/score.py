"""`lmdemo score`: per-token log-probabilities and perplexity of texts under a language model."""

from __future__ import annotations

from lmdemo.cli import add_json_flag, add_lm_flag, add_text_inputs, lm_of, read_texts


def register(sub) -> None:
    p = sub.add_parser("score", help="log-probability of every token of a text, and perplexity")
    add_lm_flag(p)
    add_text_inputs(p)
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args):
    from lmdemo.lab.next_token import score

    texts, as_list = read_texts(args)
    results = [score(lm_of(args), text).to_json() for text in texts]
    return results if as_list else results[0]
