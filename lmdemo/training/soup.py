"""A uniform "model soup" of LoRA runs, written as one ordinary LoRA adapter.

Model soups (Wortsman et al., 2022) average the weights of several fine-tuned runs of one
pretrained model; the average is one model, as fast as each ingredient, and often more accurate.
For LoRA runs the average is exact as another LoRA adapter: run k changes a weight by
s_k·B_k·A_k (s_k = alpha_k / r_k), so the mean change (1/K)·Σ s_k·B_k·A_k equals B'·A' with
A' = [A_1; …; A_K] stacked by rows (rank Σ r_k) and B' = [s_1·B_1/K, …, s_K·B_K/K] side by side,
with alpha' = r' (scale 1). Fully trained modules (`modules_to_save`: the pooler and the
classifier head) are averaged. The result loads through peft like any adapter.
`soup_run` makes such an average of finished runs a new run of the app (`lmdemo soup`): built in
a hidden folder beside the runs and renamed into place under the runs lock, so a name taken
meanwhile gives a UserError and leaves nothing behind.
"""

from __future__ import annotations

import json
from pathlib import Path

from lmdemo.core.errors import UserError

CONFIG = "adapter_config.json"
WEIGHTS = "adapter_model.safetensors"


def _read(folder: Path) -> tuple[dict, dict]:
    from safetensors.torch import load_file

    if not (folder / CONFIG).is_file() or not (folder / WEIGHTS).is_file():
        raise UserError(f"{folder} is not a LoRA adapter folder ({CONFIG} + {WEIGHTS}).")
    config = json.loads((folder / CONFIG).read_text())
    if config.get("peft_type") != "LORA" or config.get("use_rslora") or config.get("use_dora"):
        raise UserError(f"{folder} is not a plain LoRA adapter.")
    if config.get("rank_pattern") or config.get("alpha_pattern"):
        raise UserError(f"{folder} has per-module ranks, which this soup does not handle.")
    return config, load_file(str(folder / WEIGHTS))


def _comparable(value):
    return sorted(map(str, value)) if isinstance(value, (list, tuple, set)) else value


def soup(folders: list[str | Path], out: str | Path) -> dict:
    """Average the LoRA adapters in `folders` into one adapter written to `out`; returns its
    config. The adapters must share the base model, target modules and saved modules."""
    import torch
    from safetensors.torch import save_file

    if len(folders) < 2:
        raise UserError("A soup needs at least two runs.")
    read = [_read(Path(f)) for f in folders]
    first = read[0][0]
    same = ("base_model_name_or_path", "task_type", "target_modules", "bias")
    for config, _ in read[1:]:
        for key in same:
            if _comparable(config.get(key)) != _comparable(first.get(key)):
                raise UserError(f"The runs differ in {key}: they cannot be souped.")
    keys = set(read[0][1])
    if any(set(w) != keys for _, w in read[1:]):
        raise UserError("The runs do not hold the same modules: they cannot be souped.")
    k = len(read)
    weights: dict[str, torch.Tensor] = {}
    for name in sorted(keys):
        if ".lora_A." in name:
            weights[name] = torch.cat([w[name] for _, w in read], dim=0)  # (sum r, in)
        elif ".lora_B." in name:
            weights[name] = torch.cat([w[name] * (c["lora_alpha"] / c["r"]) / k
                                       for c, w in read], dim=1)  # (out, sum r)
        else:  # a fully trained module (pooler, classifier): the plain average
            weights[name] = sum(w[name].float() for _, w in read) / k
    rank = sum(int(c["r"]) for c, _ in read)
    config = dict(first, r=rank, lora_alpha=rank, lora_dropout=0.0, inference_mode=True)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    save_file({n: t.contiguous() for n, t in weights.items()}, str(out / WEIGHTS),
              metadata={"format": "pt"})
    (out / CONFIG).write_text(json.dumps(config, indent=2, sort_keys=True))
    return config


def soup_run(names: list[str], name: str) -> Path:
    """Average the finished LoRA runs `names` into a new finished run `name` in the app's runs
    folder, so the soup is a model everywhere (query, attention, compare). When every run was
    trained on the shipped reviews, the soup is scored on their validation split, as runs are."""
    import shutil
    import tempfile
    import time

    from lmdemo.training import jobs

    target = jobs.run_dir(name)
    if target.exists():
        raise UserError(f"A run called {name!r} already exists; choose another name.")
    runs = [jobs.get_run(n) for n in dict.fromkeys(names)]
    for run in runs:
        if run.state != "done":
            raise UserError(f"Run {run.name!r} is {run.state}; only finished runs can be souped.")
        if run.config.get("method") != "lora":
            raise UserError(f"Run {run.name!r} is not a LoRA run; only LoRA runs can be souped.")
    bases = {run.config.get("base") for run in runs}
    if len(bases) > 1:
        raise UserError(f"The runs have different base models ({', '.join(map(str, bases))}).")
    first = runs[0].config
    config = {k: first.get(k) for k in ("base", "method", "batch_size", "max_length")}
    data = {run.config.get("data") for run in runs}
    config.update(data=data.pop() if len(data) == 1 else "mixed", soup_of=[r.name for r in runs],
                  epochs=max(int(r.config.get("epochs") or 0) for r in runs),
                  learning_rate=first.get("learning_rate"))
    # built aside under a name that is not a run name (never scheduled), then renamed into place
    building = Path(tempfile.mkdtemp(prefix=f".soup-{name}-", dir=jobs.runs_root()))
    try:
        jobs.init_folder(building, config)
        saved = json.loads((building / "config.json").read_text())
        (building / "config.json").write_text(json.dumps(dict(saved, name=name), indent=1))
        soup([jobs.run_dir(r.name) / "model" for r in runs], building / "model")
        fields = {"state": "done", "progress": 1.0, "finished": time.time()}
        if config["data"] == "shipped":
            from lmdemo.training import reviews
            from lmdemo.training.sentiment import evaluate

            fields["best_val_accuracy"] = evaluate(reviews.shipped("validation"), str(building),
                                                   allow_path=True).metrics.accuracy
        jobs.update_status(building, **fields)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)  # no half-built soup is left behind
        raise
    return jobs.publish_run(building, name)  # a name taken meanwhile: UserError, aside removed
