"""A uniform "model soup" of LoRA runs, written as one ordinary LoRA adapter.

Model soups (Wortsman et al., 2022) average the weights of several fine-tuned runs of one
pretrained model; the average is one model, as fast as each ingredient, and often more accurate.
For LoRA runs the average is exact as another LoRA adapter: run k changes a weight by
s_k·B_k·A_k (s_k = alpha_k / r_k), so the mean change (1/K)·Σ s_k·B_k·A_k equals B'·A' with
A' = [A_1; …; A_K] stacked by rows (rank Σ r_k) and B' = [s_1·B_1/K, …, s_K·B_K/K] side by side,
with alpha' = r' (scale 1). Fully trained modules (`modules_to_save`: the pooler and the
classifier head) are averaged. The result loads through peft like any adapter.
"""

from __future__ import annotations

import json
from pathlib import Path

from lmdemo.errors import UserError

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
