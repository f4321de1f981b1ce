"""Build the shipped `sentiment-minilm` classifier: LoRA on `minilm`, trained on the shipped
reviews' train split, the best epoch by validation accuracy kept, then exported here (adapter +
head via peft's `save_pretrained`, each file < 10 MB) and measured on the shipped test split and
the independently written reviews in tests/data/independent_reviews.csv (metrics.json).

    HF_HUB_OFFLINE=1 python lmdemo/assets/sentiment-minilm/build.py            # train + export
    HF_HUB_OFFLINE=1 python lmdemo/assets/sentiment-minilm/build.py --from-run DIR  # export only
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
INDEPENDENT = ROOT / "tests" / "data" / "independent_reviews.csv"
FILES = ("adapter_config.json", "adapter_model.safetensors")
HYPER = {"base": "minilm", "method": "lora", "epochs": 8, "learning_rate": 1e-3,
         "batch_size": 16, "max_length": 256, "warmup": 0.1, "weight_decay": 0.01, "seed": 0,
         "lora_r": 8, "data": "shipped"}


def export(run: Path) -> dict:
    from lmdemo import reviews
    from lmdemo.sentiment import evaluate

    for name in FILES:
        shutil.copy(run / "model" / name, HERE / name)
    cfg_path = HERE / "adapter_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["base_model_name_or_path"] = "sentence-transformers/all-MiniLM-L6-v2"  # not a local path
    cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True))
    status = json.loads((run / "status.json").read_text())
    config = json.loads((run / "config.json").read_text())
    history = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
               if '"event": "epoch"' in line]
    out = {"config": {k: config.get(k) for k in HYPER},
           "best_epoch": status.get("best_epoch"),
           "best_val_accuracy": status.get("best_val_accuracy"),
           "trainable_params": status.get("trainable_params"),
           "train_samples_per_s": status.get("train_samples_per_s"), "history": history}
    for name, data in (("test", reviews.shipped("test")),
                       ("independent", reviews.read_path(INDEPENDENT))):
        m = evaluate(data, str(HERE), allow_path=True).metrics
        out[name] = m.to_json()
    (HERE / "metrics.json").write_text(json.dumps(out, indent=1))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--from-run", help="export this finished run folder instead of training")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.from_run:
        result = export(Path(args.from_run))
    else:
        from lmdemo import jobs

        with tempfile.TemporaryDirectory() as tmp:
            run = jobs.init_folder(Path(tmp) / "sentiment-minilm", HYPER)
            jobs.run_worker(run)
            result = export(run)
    print(json.dumps({k: result[k] for k in ("best_epoch", "best_val_accuracy", "test",
                                             "independent")}))


if __name__ == "__main__":
    main()
