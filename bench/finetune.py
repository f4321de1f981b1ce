"""Benchmark of lmdemo's fine-tuning trainer against transformers' `Trainer`, on the same job.

Baseline: `Trainer` set up as the Hugging Face text-classification tutorial does — tokenize with
`truncation=True`, `DataCollatorWithPadding`, `TrainingArguments` (learning rate, batch size,
epochs, weight decay) — with evaluation and checkpoints off so only training is timed. Measured:
`lmdemo.training.finetune.train` (length-grouped batches, dynamic padding, Accelerate). Both fine-tune
all of `minilm` from the same fresh classifier (`lmdemo.core.models.fresh_classifier`), on the same
variable-length shipped training reviews, same batch size, max length, epochs, learning rate,
seed, threads and device; both are scored on the shipped validation + test reviews with the same
prediction code. Prints ONE JSON line:
  throughput_ratio_vs_trainer   training samples/s, ours / Trainer's        goal >= 1.5
  accuracy_ours, accuracy_trainer                                         goal: within 1 point
  samples_per_s_ours, samples_per_s_trainer, n_train, n_eval, epochs, batch_size, max_length
Run: HF_HUB_OFFLINE=1 python bench/finetune.py [--n 400] [--epochs 2] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

LR = 1e-4
WEIGHT_DECAY = 0.01


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=400, help="training reviews")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import numpy as np
    import torch
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments, set_seed

    from lmdemo.core.models import fresh_classifier
    from lmdemo.training import finetune, reviews
    from lmdemo.training.metrics import binary_metrics

    torch.set_num_threads(args.threads)
    train_data = reviews.shipped("train").head(args.n)
    held = reviews.shipped("validation"), reviews.shipped("test")
    eval_data = reviews.Reviews(held[0].texts + held[1].texts, held[0].labels + held[1].labels)

    def accuracy(model, tokenizer) -> float:
        enc = tokenizer(eval_data.texts, truncation=True, max_length=args.max_length)["input_ids"]
        probs = finetune.predict_encoded(model, enc, tokenizer.pad_token_id or 0, "cpu")
        return binary_metrics(eval_data.labels, (probs >= 0.5).astype(int)).accuracy

    # --- baseline: the tutorial's Trainer ---
    set_seed(args.seed)
    model, tokenizer = fresh_classifier("minilm")
    model.set_attn_implementation("sdpa")  # from_pretrained's default, as in the tutorial
    encoded = tokenizer(train_data.texts, truncation=True, max_length=args.max_length)
    rows = [{"input_ids": ids, "attention_mask": m, "label": y} for ids, m, y in
            zip(encoded["input_ids"], encoded["attention_mask"], train_data.labels, strict=True)]
    with tempfile.TemporaryDirectory() as tmp:
        targs = TrainingArguments(output_dir=tmp, learning_rate=LR,
                                  per_device_train_batch_size=args.batch_size,
                                  num_train_epochs=args.epochs, weight_decay=WEIGHT_DECAY,
                                  eval_strategy="no", save_strategy="no", report_to="none",
                                  logging_strategy="no", seed=args.seed, use_cpu=True,
                                  disable_tqdm=True, warmup_steps=0.1)
        trainer = Trainer(model=model, args=targs, train_dataset=rows,
                          processing_class=tokenizer,
                          data_collator=DataCollatorWithPadding(tokenizer=tokenizer))
        t0 = time.perf_counter()
        trainer.train()
        trainer_s = time.perf_counter() - t0
    acc_trainer = accuracy(trainer.model, tokenizer)
    del trainer, model

    # --- ours ---
    cfg = finetune.TrainConfig(base="minilm", method="full", epochs=args.epochs,
                               learning_rate=LR, batch_size=args.batch_size,
                               max_length=args.max_length, weight_decay=WEIGHT_DECAY,
                               warmup=0.1, seed=args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        result = finetune.train(cfg, train_data, None, tmp, device="cpu")
        from lmdemo.training.sentiment import evaluate

        acc_ours = evaluate(eval_data, tmp, allow_path=True).metrics.accuracy
    n_seen = len(train_data) * args.epochs
    ours_sps, trainer_sps = result.train_samples_per_s, n_seen / trainer_s
    print(json.dumps({
        "throughput_ratio_vs_trainer": round(ours_sps / trainer_sps, 3),
        "accuracy_ours": round(acc_ours, 4), "accuracy_trainer": round(acc_trainer, 4),
        "samples_per_s_ours": round(ours_sps, 2), "samples_per_s_trainer": round(trainer_sps, 2),
        "n_train": len(train_data), "n_eval": len(eval_data), "epochs": args.epochs,
        "batch_size": args.batch_size, "max_length": args.max_length, "threads": args.threads,
        "model": "minilm (full fine-tuning)", "device": "cpu",
        "mean_tokens": round(float(np.mean([len(r["input_ids"]) for r in rows])), 1),
    }))


if __name__ == "__main__":
    main()
