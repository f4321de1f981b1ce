"""`lmdemo classify`: label and probabilities of reviews with a sentiment classifier.

One `--text` prints one object `{"label": ..., "probs": {"negative": p, "positive": q}}`; several
`--text` or `--file PATH` (one review per line) print a list in input order. `--model` is a
classifier id (`sentiment-minilm`, `run:<name>`) or, on the command line only, a run folder.
"""

from __future__ import annotations

from lmdemo.cli import add_json_flag, add_text_inputs, read_texts


def register(sub) -> None:
    p = sub.add_parser("classify", help="classify reviews as positive or negative")
    p.add_argument("--model", default="sentiment-minilm",
                   help="classifier id or run folder (default sentiment-minilm)")
    add_text_inputs(p, "review")
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args):
    from lmdemo.training.sentiment import classify

    texts, as_list = read_texts(args)
    preds = [p.to_json() for p in classify(texts, args.model, allow_path=True)]
    return preds if as_list else preds[0]
