"""Build the shipped `sentiment-minilm` classifier from Rotten Tomatoes critic snippets: the LoRA
runs below on `minilm` (each keeps its best epoch by validation accuracy), the candidates built
from them (each run alone, and the uniform soup of the runs: `lmdemo.training.soup`), the one
with the best accuracy on the Rotten Tomatoes **validation** split exported here, then measured
(metrics.json): validation for every candidate; the Rotten Tomatoes **test** split with 95 %
intervals; and as challenge sets, the shipped reviews' test split and the independently written
reviews in tests/data/independent_reviews.csv. Nothing but the validation split chooses anything.

    python -m lmdemo fetch rotten-tomatoes
    HF_HUB_OFFLINE=1 python lmdemo/assets/sentiment-minilm/build.py --runs DIR [--threads 2]

`--runs DIR` keeps the run folders in DIR (a finished run there is reused, so an interrupted
build resumes). Each run takes 25-40 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(ROOT))  # run as a script from a checkout
INDEPENDENT = ROOT / "tests" / "data" / "independent_reviews.csv"
FILES = ("adapter_config.json", "adapter_model.safetensors")
COMMON = {"base": "minilm", "method": "lora", "batch_size": 16, "max_length": 128,
          "warmup": 0.1, "weight_decay": 0.01, "learning_rate": 1e-3, "epochs": 3,
          "lora_r": 16, "lora_alpha": 32}
# Rotten Tomatoes' train split alone, and with the project's own 2,158 training reviews added
# (validation stays Rotten Tomatoes' in both).
RECIPES = {
    "rt-s0": {"data": "rotten-tomatoes", "seed": 0},
    "mix-s0": {"data": "rotten-tomatoes+shipped", "seed": 0},
}
CANDIDATES = {"rt-s0": ["rt-s0"], "mix-s0": ["mix-s0"], "soup": ["rt-s0", "mix-s0"]}


def train_runs(runs_dir: Path) -> dict[str, Path]:
    from lmdemo.training import jobs

    folders = {}
    for name, recipe in RECIPES.items():
        folder = runs_dir / name
        status = folder / "status.json"
        if not (status.exists() and json.loads(status.read_text()).get("state") == "done"):
            if folder.exists():
                shutil.rmtree(folder)  # an unfinished run of this build: start it again
            jobs.init_folder(folder, {**COMMON, **recipe})
            jobs.run_worker(folder)
        folders[name] = folder
    return folders


def _ingredient(run: Path) -> dict:
    status = json.loads((run / "status.json").read_text())
    config = json.loads((run / "config.json").read_text())
    history = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
               if '"event": "epoch"' in line]
    keys = (*COMMON, "data", "seed")
    return {"name": run.name, "config": {k: config.get(k) for k in keys},
            "best_epoch": status.get("best_epoch"),
            "best_val_accuracy": status.get("best_val_accuracy"),
            "train_samples_per_s": status.get("train_samples_per_s"),
            "val_accuracy_by_epoch": [round(h.get("val_accuracy", 0), 4) for h in history]}


def _build(names: list[str], runs: dict[str, Path], out: Path) -> None:
    """A candidate's adapter in `out`: one run's adapter, or the soup of several."""
    from lmdemo.training import soup

    out.mkdir(parents=True)
    if len(names) == 1:
        for name in FILES:
            shutil.copy(runs[names[0]] / "model" / name, out / name)
    else:
        soup.soup([runs[n] / "model" for n in names], out)


def choose(runs: dict[str, Path], tmp: Path) -> tuple[str, dict]:
    """Every candidate's validation metrics, and the name of the best by accuracy."""
    from lmdemo.training import reviews
    from lmdemo.training.sentiment import evaluate

    val = reviews.rotten_tomatoes("validation")
    scores = {}
    for name, parts in CANDIDATES.items():
        _build(parts, runs, tmp / name)
        scores[name] = evaluate(val, str(tmp / name), allow_path=True).metrics.to_json()
    best = max(scores, key=lambda n: scores[n]["accuracy"])
    return best, scores


def export(runs: dict[str, Path]) -> dict:
    from lmdemo.training import reviews
    from lmdemo.training.metrics import Metrics, intervals
    from lmdemo.training.sentiment import evaluate

    with tempfile.TemporaryDirectory() as tmp:
        best, scores = choose(runs, Path(tmp))
        for name in FILES:
            shutil.copy(Path(tmp) / best / name, HERE / name)
    config = json.loads((HERE / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = "sentence-transformers/all-MiniLM-L6-v2"  # not a path
    (HERE / "adapter_config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
    out = {"recipe": f"candidate {best!r} ({' + '.join(CANDIDATES[best])}), chosen by Rotten "
                     "Tomatoes validation accuracy", "rank": config["r"],
           "candidates_validation": scores,
           "ingredients": [_ingredient(runs[n]) for n in RECIPES]}
    for name, data in (("validation", reviews.rotten_tomatoes("validation")),
                       ("test", reviews.rotten_tomatoes("test")),
                       ("challenge_shipped_test", reviews.shipped("test")),
                       ("challenge_independent", reviews.read_path(INDEPENDENT))):
        metrics = evaluate(data, str(HERE), allow_path=True).metrics
        out[name] = {**metrics.to_json(), "intervals": intervals(Metrics(**metrics.to_json()))}
    (HERE / "metrics.json").write_text(json.dumps(out, indent=1))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", required=True, help="folder of the training runs (made if missing)")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    runs_dir = Path(args.runs)
    runs_dir.mkdir(parents=True, exist_ok=True)
    result = export(train_runs(runs_dir))
    print(json.dumps({k: result[k] for k in ("recipe", "validation", "test",
                                             "challenge_shipped_test", "challenge_independent")}))


if __name__ == "__main__":
    main()
