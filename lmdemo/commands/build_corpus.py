"""`lmdemo build-corpus`: rebuild the language-model corpus from Debian packages (see corpus.py)."""

from __future__ import annotations

from lmdemo.cli import add_json_flag


def register(sub) -> None:
    p = sub.add_parser("build-corpus", help="rebuild the LM training corpus and its tokenizer")
    p.add_argument("--out", default="", help="folder (default ~/.lmdemo/cache/lm)")
    p.add_argument("--no-tokenizer", action="store_true", help="skip training the BPE tokenizer")
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args):
    from pathlib import Path

    from lmdemo.training import corpus

    out = Path(args.out) if args.out else corpus.default_dir()
    stats = corpus.build(out)
    if not args.no_tokenizer:
        from lmdemo.training.train_lm import tokenizer_dir, train_tokenizer

        for stale in ("train_ids.npy", "valid_ids.npy"):
            (out / stale).unlink(missing_ok=True)
        tok = train_tokenizer(corpus.read_split("train", out), tokenizer_dir(out))
        stats["tokenizer"] = {"dir": str(tokenizer_dir(out)), "vocab_size": len(tok)}
    return stats
