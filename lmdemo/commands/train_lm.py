"""`lmdemo train-lm`: train one embedded language model (gpt, lstm, gru or rnn) from scratch."""

from __future__ import annotations

from lmdemo.cli import add_json_flag
from lmdemo.core import validate


def register(sub) -> None:
    p = sub.add_parser("train-lm", help="train a tiny language model on the built corpus")
    p.add_argument("--arch", required=True,
                   help="gpt, lstm, gru or rnn (checked by LMTrainConfig.validated)")
    p.add_argument("--steps", type=int, default=2000, help="optimizer steps")
    p.add_argument("--out", required=True, help="folder for weights, tokenizer and card.json")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--block-size", type=int, default=128, help="tokens per training window")
    p.add_argument("--lr", type=float, default=0.0, help="peak learning rate (0 = arch default)")
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--dropout", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--eval-every", type=int, default=500, help="steps between quick evals")
    p.add_argument("--max-minutes", type=float, default=0.0, help="stop early after this long")
    p.add_argument("--corpus-dir", default="", help="corpus folder (default ~/.lmdemo/cache/lm)")
    p.add_argument("--id", default="", help="model id for the card (default tiny-<arch>)")
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args):
    import sys
    from pathlib import Path

    from tqdm import tqdm

    from lmdemo.training.train_lm import LMTrainConfig, train

    cfg = LMTrainConfig(arch=args.arch, out=args.out, steps=args.steps,
                        batch_size=args.batch_size, block_size=args.block_size, lr=args.lr,
                        warmup=args.warmup, dropout=args.dropout, seed=args.seed,
                        threads=args.threads, eval_every=args.eval_every,
                        max_minutes=args.max_minutes, corpus_dir=args.corpus_dir,
                        model_id=args.id).validated()  # bad values exit 2 before any work
    if not Path(cfg.out).is_dir():  # an existing folder is written over (retraining)
        validate.new_folder(cfg.out, "--out")
    bar = tqdm(total=cfg.steps, desc=f"train {cfg.arch}", file=sys.stderr, mininterval=10)

    def progress(step: int, total: int, loss: float) -> None:
        bar.update(step - bar.n)
        bar.set_postfix(loss=f"{loss:.3f}", refresh=False)

    try:
        card = train(cfg, progress=progress, log=lambda msg: bar.write(msg, file=sys.stderr))
    finally:
        bar.close()
    card.pop("history", None)
    return card
