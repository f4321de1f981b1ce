"""Benchmark of lmdemo's fine-tuning trainer against transformers' `Trainer`, on the same job.

Baseline: `Trainer` set up as the Hugging Face text-classification tutorial does — tokenize with
`truncation=True`, `DataCollatorWithPadding`, `TrainingArguments` (learning rate, batch size,
epochs, weight decay, 10 % warm-up) — plus the length grouping its docs recommend for
variable-length text (`train_sampling_strategy="group_by_length"`, transformers 5.x's name for
`group_by_length=True`), with evaluation, logging and checkpoints off. Measured:
`lmdemo.training.finetune.train` (length-grouped batches, dynamic padding, Accelerate). Both fine-tune
all of `minilm` from the same fresh classifier, on the same shipped training reviews, with the same
batch size, max length, epochs, learning rate, seed, threads and device; both are scored on the
shipped validation + test reviews with the same prediction code.

Timing: two windows, the same for both. *Loop*: the training loop only — ours from its own
`train_seconds` (the epoch loops), `Trainer` from `on_train_begin` to `on_train_end` (a callback).
*End to end*: from the call that loads the fresh model to the trained model in memory (tokenizing,
set-up and loop; ours also saves the model for scoring, which counts against it). One warm-up run
of each first, then `--repeats` rounds in alternating order; the ratio is the median over rounds
with its 10th-90th percentile spread. Prints ONE JSON line:
  throughput_ratio_vs_trainer   training samples/s in the loop window, ours / Trainer's (median)
  throughput_ratio_spread       {median, p10, p90} of that ratio over rounds
  end_to_end_ratio_vs_trainer   the same over the end-to-end window
  accuracy_ours, accuracy_trainer  on the shipped validation + test reviews (median over rounds)
  baseline, samples_per_s_*, n_train, n_eval, epochs, batch_size, max_length, repeats, threads
Run: HF_HUB_OFFLINE=1 python bench/finetune.py [--n 400] [--epochs 2] [--repeats 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import ratio  # noqa: E402

LR = 1e-4
WEIGHT_DECAY = 0.01
WARMUP = 0.1
BASELINE = ("transformers.Trainer (tutorial set-up + train_sampling_strategy='group_by_length', "
            "DataCollatorWithPadding)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=400, help="training reviews")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3, help="timed rounds (alternating order)")
    ap.add_argument("--warmup-n", type=int, default=48, help="reviews in each warm-up run")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import numpy as np
    import torch
    from transformers import (
        DataCollatorWithPadding,
        Trainer,
        TrainerCallback,
        TrainingArguments,
        set_seed,
    )

    from lmdemo.core.models import fresh_classifier, quiet_transformers
    from lmdemo.training import finetune, reviews
    from lmdemo.training.metrics import binary_metrics
    from lmdemo.training.sentiment import evaluate

    quiet_transformers()
    torch.set_num_threads(args.threads)
    train_all = reviews.shipped("train")
    held = reviews.shipped("validation"), reviews.shipped("test")
    eval_data = reviews.Reviews(held[0].texts + held[1].texts, held[0].labels + held[1].labels)

    class LoopTimer(TrainerCallback):
        """Seconds from on_train_begin to on_train_end: Trainer's training loop."""

        def on_train_begin(self, *_a, **_k):
            self.t0 = time.perf_counter()

        def on_train_end(self, *_a, **_k):
            self.seconds = time.perf_counter() - self.t0

    def run_trainer(data: reviews.Reviews, epochs: int, score: bool) -> dict:
        t0 = time.perf_counter()
        set_seed(args.seed)
        model, tokenizer = fresh_classifier("minilm")
        model.set_attn_implementation("sdpa")  # from_pretrained's default, as in the tutorial
        enc = tokenizer(data.texts, truncation=True, max_length=args.max_length)
        rows = [{"input_ids": ids, "attention_mask": m, "label": y} for ids, m, y in
                zip(enc["input_ids"], enc["attention_mask"], data.labels, strict=True)]
        timer = LoopTimer()
        with tempfile.TemporaryDirectory() as tmp:
            targs = TrainingArguments(output_dir=tmp, learning_rate=LR,
                                      per_device_train_batch_size=args.batch_size,
                                      num_train_epochs=epochs, weight_decay=WEIGHT_DECAY,
                                      warmup_steps=WARMUP,
                                      train_sampling_strategy="group_by_length",
                                      eval_strategy="no", save_strategy="no", report_to="none",
                                      logging_strategy="no", seed=args.seed, use_cpu=True,
                                      disable_tqdm=True)
            trainer = Trainer(model=model, args=targs, train_dataset=rows,
                              processing_class=tokenizer, callbacks=[timer],
                              data_collator=DataCollatorWithPadding(tokenizer=tokenizer))
            trainer.train()
        total = time.perf_counter() - t0
        out = {"loop_s": timer.seconds, "total_s": total, "n": len(data) * epochs,
               "mean_tokens": float(np.mean([len(r["input_ids"]) for r in rows]))}
        if score:
            ids = tokenizer(eval_data.texts, truncation=True,
                            max_length=args.max_length)["input_ids"]
            probs = finetune.predict_encoded(trainer.model, ids, tokenizer.pad_token_id or 0,
                                             "cpu")
            out["accuracy"] = binary_metrics(eval_data.labels,
                                             (probs >= 0.5).astype(int)).accuracy
        return out

    def run_ours(data: reviews.Reviews, epochs: int, score: bool) -> dict:
        cfg = finetune.TrainConfig(base="minilm", method="full", epochs=epochs,
                                   learning_rate=LR, batch_size=args.batch_size,
                                   max_length=args.max_length, weight_decay=WEIGHT_DECAY,
                                   warmup=WARMUP, seed=args.seed)
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            result = finetune.train(cfg, data, None, tmp, device="cpu")
            total = time.perf_counter() - t0
            out = {"loop_s": result.train_seconds, "total_s": total, "n": len(data) * epochs}
            if score:
                out["accuracy"] = evaluate(eval_data, tmp, allow_path=True).metrics.accuracy
        return out

    train_data = train_all.head(args.n)
    warm = train_all.head(args.warmup_n)
    run_trainer(warm, 1, False)
    run_ours(warm, 1, False)
    runs: dict[str, list[dict]] = {"ours": [], "trainer": []}
    for r in range(args.repeats):
        order = ("trainer", "ours") if r % 2 == 0 else ("ours", "trainer")
        for name in order:
            fn = run_ours if name == "ours" else run_trainer
            runs[name].append(fn(train_data, args.epochs, True))
            print(f"round {r + 1} {name}: {runs[name][-1]}", file=sys.stderr, flush=True)

    def sps(name: str, key: str) -> list[float]:
        return [x["n"] / x[key] for x in runs[name]]

    loop = ratio(sps("ours", "loop_s"), sps("trainer", "loop_s"))
    e2e = ratio(sps("ours", "total_s"), sps("trainer", "total_s"))

    def med(values: list[float]) -> float:
        return round(statistics.median(values), 4)

    print(json.dumps({
        "throughput_ratio_vs_trainer": loop["median"], "throughput_ratio_spread": loop,
        "end_to_end_ratio_vs_trainer": e2e["median"], "end_to_end_ratio_spread": e2e,
        "accuracy_ours": med([x["accuracy"] for x in runs["ours"]]),
        "accuracy_trainer": med([x["accuracy"] for x in runs["trainer"]]),
        "baseline": BASELINE,
        "samples_per_s_ours": round(statistics.median(sps("ours", "loop_s")), 2),
        "samples_per_s_trainer": round(statistics.median(sps("trainer", "loop_s")), 2),
        "n_train": len(train_data), "n_eval": len(eval_data), "epochs": args.epochs,
        "batch_size": args.batch_size, "max_length": args.max_length, "repeats": args.repeats,
        "threads": args.threads, "model": "minilm (full fine-tuning)", "device": "cpu",
        "mean_tokens": round(runs["trainer"][0]["mean_tokens"], 1),
    }))


if __name__ == "__main__":
    main()
