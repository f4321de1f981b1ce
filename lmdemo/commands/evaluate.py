"""`lmdemo evaluate`: accuracy, precision, recall, F1 and confusion matrix of a classifier on a
labelled data file (CSV/TSV/JSONL with text and label columns), 'shipped' or 'rotten-tomatoes'
(a split, test by default) or 'imdb' (its test split, when the hub is reachable), with 95 %
intervals of each figure (`lmdemo.training.metrics.intervals`)."""

from __future__ import annotations

from lmdemo.cli import add_json_flag
from lmdemo.commands.classify import finished_run_folder
from lmdemo.core import validate


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="score a sentiment classifier on labelled reviews")
    p.add_argument("--model", default="sentiment-minilm", help="classifier id or run folder")
    p.add_argument("--data", default="shipped",
                   help="a CSV/TSV/JSONL file, 'shipped', 'rotten-tomatoes' or 'imdb'")
    p.add_argument("--split", default="test",
                   help="split of the shipped or Rotten Tomatoes set (default test)")
    p.add_argument("--text-column", help="name of the text column (default: guessed)")
    p.add_argument("--label-column", help="name of the label column (default: guessed)")
    p.add_argument("--limit", type=int, help="evaluate on at most this many reviews")
    p.add_argument("--misclassified", action="store_true", help="list the wrong predictions")
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args):
    from lmdemo.core import quiet
    from lmdemo.training.reviews import load_spec
    from lmdemo.training.sentiment import evaluate

    quiet.install()  # stderr shows our errors, not the libraries' notices
    finished_run_folder(args.model)
    limit = validate.optional_whole(args.limit, "--limit", 1)
    data = load_spec(args.data, args.split, args.text_column, args.label_column, limit)
    from lmdemo.training.metrics import intervals

    ev = evaluate(data, args.model, allow_path=True)
    result = ev.to_json()
    if not args.misclassified:
        result.pop("misclassified")
    return {"model": args.model, "data": args.data, **result, "intervals": intervals(ev.metrics)}
