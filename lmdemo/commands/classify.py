"""`lmdemo classify`: label and probabilities of reviews with a sentiment classifier.

One `--text` prints one object `{"label": ..., "probs": {"negative": p, "positive": q}, ...}`;
several `--text` or `--file PATH` (one review per line) print a list in input order. Each answer
also says how much of the review the model read (`tokens_read` of `tokens_total`, at most
`max_length`; `truncated` when only its beginning was read) and whether most of it was unknown
to the model (`unsure`, `unknown_share`: Chinese or emoji for MiniLM's English vocabulary, whose
label is then a guess); `warnings` says both in words. `--model` is a classifier id
(`sentiment-minilm`, `run:<name>`) or, on the command line only, a run folder.
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


def finished_run_folder(model: str) -> None:
    """A run folder given as --model must be a finished run: a failed or queued run's folder
    holds the run's config.json, which must not be read as a model's."""
    from pathlib import Path

    from lmdemo.core.errors import UserError

    folder = Path(model)
    if not (("/" in model or model.startswith(".")) and folder.is_dir()):
        return
    for status_file in (folder / "status.json", folder.parent / "status.json"):
        if status_file.is_file():
            try:
                import json

                state = json.loads(status_file.read_text(encoding="utf-8")).get("state")
            except (OSError, ValueError, AttributeError):
                state = "unreadable"
            if state != "done":
                raise UserError(f"{model!r} is not a finished run (its state is {state}); "
                                "give a run that is done.")
            return


def run(args):
    from lmdemo.core import quiet
    from lmdemo.training.sentiment import classify

    quiet.install()  # stderr shows our errors, not the libraries' notices
    finished_run_folder(args.model)
    texts, as_list = read_texts(args, "review")
    preds = [p.to_json() for p in classify(texts, args.model, allow_path=True)]
    return preds if as_list else preds[0]
