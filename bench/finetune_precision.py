"""Benchmark of bf16 autocast against fp32 in lmdemo's fine-tuning trainer, on a CUDA GPU.

Baseline: `lmdemo.training.finetune.train` with `mixed_precision=False` (fp32). Measured: the same call with
`mixed_precision=True` (bf16 autocast through Accelerate, on GPUs that support it). Both train the
same fresh classifier (`minilm` by default) with the same LoRA or full recipe, data (the shipped
training reviews), batch size, epochs and seed in this process, one after the other, after a
short warm-up run; both are scored on the shipped validation split. Prints ONE JSON line:
  throughput_ratio_bf16_vs_fp32   training samples/s, bf16 / fp32
  samples_per_s_bf16, samples_per_s_fp32, val_accuracy_bf16, val_accuracy_fp32,
  peak_memory_mb_bf16, peak_memory_mb_fp32, device, n_train, epochs, batch_size, method
Without CUDA (or without bf16 support) there is nothing to compare: it prints one JSON line with
"skipped" and the reason, and exits 0.
Run: HF_HUB_OFFLINE=1 python bench/finetune_precision.py [--method full] [--epochs 2] [--batch-size 32]
"""

from __future__ import annotations

import argparse
import json


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="minilm")
    ap.add_argument("--method", default="full", choices=["full", "lora"])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import torch

    if not torch.cuda.is_available():
        print(json.dumps({"skipped": "no CUDA GPU here: bf16 autocast is only used on CUDA"}))
        return
    if not torch.cuda.is_bf16_supported():
        print(json.dumps({"skipped": f"{torch.cuda.get_device_name()} has no bf16 support"}))
        return

    from lmdemo.training import reviews
    from lmdemo.training.finetune import TrainConfig, train

    train_data, val_data = reviews.shipped("train"), reviews.shipped("validation")
    lr = 5e-5 if args.method == "full" else 1e-3

    def run(bf16: bool, epochs: int) -> dict:
        cfg = TrainConfig(base=args.base, method=args.method, epochs=epochs, learning_rate=lr,
                          batch_size=args.batch_size, max_length=args.max_length,
                          seed=args.seed, mixed_precision=bf16)
        torch.cuda.reset_peak_memory_stats()
        result = train(cfg, train_data, val_data, device="cuda")
        assert result.mixed_precision == ("bf16" if bf16 else "no"), result.mixed_precision
        return {"samples_per_s": result.train_samples_per_s,
                "val_accuracy": result.best_val_accuracy,
                "peak_memory_mb": torch.cuda.max_memory_allocated() / 2**20}

    run(True, 1)  # warm-up: CUDA context, kernels, caches
    fp32 = run(False, args.epochs)
    bf16 = run(True, args.epochs)
    print(json.dumps({
        "throughput_ratio_bf16_vs_fp32": round(bf16["samples_per_s"] / fp32["samples_per_s"], 3),
        **{f"{k}_bf16": round(v, 4) for k, v in bf16.items()},
        **{f"{k}_fp32": round(v, 4) for k, v in fp32.items()},
        "device": torch.cuda.get_device_name(), "n_train": len(train_data),
        "epochs": args.epochs, "batch_size": args.batch_size, "method": args.method}))


if __name__ == "__main__":
    main()
