"""`lmdemo finetune`: fine-tune an encoder into a sentiment classifier, in the foreground.

`--out DIR` trains here and leaves DIR as a run folder (config.json, status.json, metrics.jsonl,
model/), which `classify --model DIR` and `evaluate --model DIR` accept. `--run-dir DIR` is how the
app's job runner starts a queued run in its own process. Under `accelerate launch --multi_gpu
--num_processes N -m lmdemo finetune ...` (torchrun underneath; on a machine without GPUs the
processes train on CPU over gloo) the same command trains data-parallel; only the first process
writes the run folder and prints. (`accelerate launch --cpu --num_processes N` starts a single
process unless an MPI hostfile is given: that is accelerate's simple launcher.)
"""

from __future__ import annotations

import sys
from pathlib import Path

from lmdemo.cli import add_json_flag
from lmdemo.core import validate
from lmdemo.core.config import launch_settings
from lmdemo.core.errors import UserError
from lmdemo.training.reviews import NAMED


def register(sub) -> None:
    p = sub.add_parser("finetune", help="fine-tune a sentiment classifier (full or LoRA)")
    p.add_argument("--base", default="minilm", help="encoder to fine-tune (default minilm)")
    p.add_argument("--data", default="shipped",
                   help="'shipped', 'rotten-tomatoes', 'rotten-tomatoes+shipped', 'imdb' or a "
                   "CSV/TSV/JSONL file with text and label columns")
    p.add_argument("--text-column", help="name of the text column (default: guessed)")
    p.add_argument("--label-column", help="name of the label column (default: guessed)")
    p.add_argument("--out", help="new folder for the run (config, metrics, status, model/)")
    p.add_argument("--run-dir", help=argparse_hidden())
    p.add_argument("--method", default="lora",
                   help="lora (an adapter and the head) or full (every weight)")
    p.add_argument("--epochs", type=float, default=3)
    p.add_argument("--lr", "--learning-rate", dest="learning_rate", type=float)
    p.add_argument("--batch-size", type=float, default=16)
    p.add_argument("--max-length", type=float, default=256)
    p.add_argument("--warmup", type=float, default=0.1, help="fraction of steps warming up")
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lora-r", type=float, default=8)
    p.add_argument("--token-dropout", type=float, default=0.0,
                   help="share of word tokens masked in training batches (regulariser)")
    p.add_argument("--no-mixed-precision", action="store_true", help="fp32 even on a GPU")
    p.add_argument("--val-fraction", type=float, default=0.1,
                   help="share of a data file held out for validation (shipped has its own)")
    p.add_argument("--limit", type=int, help="train on at most this many reviews")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    add_json_flag(p)
    p.set_defaults(func=run)


def argparse_hidden():
    import argparse

    return argparse.SUPPRESS


def config_from_args(args) -> dict:
    from lmdemo.training.finetune import TrainConfig

    cfg = {"base": args.base, "method": args.method, "epochs": args.epochs,
           "batch_size": args.batch_size, "max_length": args.max_length, "warmup": args.warmup,
           "weight_decay": args.weight_decay, "seed": args.seed, "lora_r": args.lora_r,
           "token_dropout": args.token_dropout,
           "mixed_precision": not args.no_mixed_precision}
    cfg["learning_rate"] = args.learning_rate if args.learning_rate is not None else (
        5e-4 if args.method == "lora" else 5e-5)
    cfg = TrainConfig.from_json(cfg).to_json()  # every value checked before anything starts
    data = args.data
    if data not in NAMED:
        from lmdemo.training.reviews import read_path

        read_path(data, args.text_column, args.label_column)  # bad files fail here, early
        data = str(Path(data).resolve())
    val_fraction = validate.real(args.val_fraction, "--val-fraction", 0, 1, lo_open=True,
                                 hi_open=True)
    limit = validate.optional_whole(args.limit, "--limit", 1)
    return dict(cfg, data=data, val_fraction=val_fraction, limit=limit)


def run(args):
    from lmdemo.core import quiet
    from lmdemo.training import jobs

    quiet.install()  # a job's log holds its own lines and errors, not the libraries' notices
    threads = validate.optional_whole(args.threads, "--threads", 1, 1024)
    if not args.run_dir:  # every value checked before anything is created or started
        if not args.out:
            raise UserError("Give --out DIR: a new folder for the run (or use the app's Jobs "
                            "tab).")
        if launch_settings().is_main:  # the other processes of a launch find it made
            validate.new_folder(args.out, "--out")
        config = config_from_args(args)
    if threads:
        import torch

        torch.set_num_threads(threads)
    if args.run_dir:  # a job: what it prints goes to log.txt, which visitors may read
        return jobs.without_private(jobs.run_worker(Path(args.run_dir)))
    data_jsonl = None
    if config["data"] not in NAMED:
        from lmdemo.training.reviews import read_path

        data_jsonl = read_path(config["data"], args.text_column, args.label_column).to_jsonl()
    folder = Path(args.out)
    if launch_settings().distributed:
        from accelerate import PartialState

        from lmdemo.core.device import pick_device

        state = PartialState(cpu=pick_device() == "cpu")
        if state.is_main_process:
            jobs.init_folder(folder, config, data_jsonl)
        state.wait_for_everyone()
    else:
        jobs.init_folder(folder, config, data_jsonl)
    with _progress_bar() as bar:
        result = jobs.run_worker(folder, on_step=bar)
    return result if jobs.is_main_process() else None  # one JSON line, from the first process


class _progress_bar:
    """A tqdm bar on stderr fed by the trainer's progress events (stdout stays clean JSON)."""

    def __enter__(self):
        from tqdm import tqdm

        self.bar = tqdm(total=None, unit="step", file=sys.stderr, dynamic_ncols=True)
        return self

    def __call__(self, event: dict) -> None:
        if event.get("total_steps") and self.bar.total != event["total_steps"]:
            self.bar.total = event["total_steps"]
        if event.get("event") == "step":
            self.bar.update(event["step"] - self.bar.n)
            self.bar.set_postfix(epoch=event["epoch"], loss=f"{event['loss']:.3f}")
        elif "val_accuracy" in event:
            self.bar.write(f"epoch {event['epoch']}: validation accuracy "
                           f"{event['val_accuracy']:.3f}", file=sys.stderr)

    def __exit__(self, *exc) -> None:
        self.bar.close()
