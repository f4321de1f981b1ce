"""Inside-the-model benchmark: the batched head-importance map against one forward per head.

Prints one JSON line for one causal model (`--model`, default: smollm2 when fetched, else
tiny-gpt), on a text the model reads as 16 tokens (the start token included):
- `importance_speedup_vs_loop` (goal >= 3): the baseline — one forward pass per head, each with
  that head alone zeroed (`lmdemo.lab.head_ablation.ablated_logits(loaded, ids, [[(l, h)]])` for
  every (layer, head)) — divided by `head_ablation.importance_map` (heads batched, each costing only
  the layers from its own onwards). Both run in every round, in alternating order; the ratio is the
  median over rounds with its spread (10th and 90th percentile of the per-round ratio), and the two
  maps are checked equal (`same_numbers_max_abs`).
- `latency_ms`: the median wall time of each service as a page calls it — head ablation (two
  heads), the importance map, induction (a 50-token sequence read twice, and an 8-token one: 17
  tokens), and the logit lens and activation patching when `lmdemo.lab.lens` / `.patching` exist
  (null otherwise, or when the service refuses the texts on this model: `latency_skipped` says
  why; patching uses the same text and a corrupted copy naming the other person).
Run: `HF_HUB_OFFLINE=1 python bench/inside.py [--model smollm2] [--runs 5]`.
"""

from __future__ import annotations

import importlib.util
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import parser, ratio, set_threads  # noqa: E402

TEXT = "When Mary and John went to the shop yesterday, John gave a drink to"  # 16 tokens on smollm2
CORRUPT = "When Mary and John went to the shop yesterday, Mary gave a drink to"
TARGET = " Mary"
HEADS = [(0, 0), (1, 1)]  # ablated together for the head-ablation latency
INDUCTION_LENGTHS = (50, 8)




def _median_ms(fn, runs: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return round(statistics.median(times) * 1e3, 2)


def _exists(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def main() -> None:
    args = parser(__doc__, 5, "rounds of the speedup (each runs the loop over every head once) "
                  "and repeats of each latency").parse_args()

    import numpy as np
    import torch

    set_threads(args.threads)

    from lmdemo.core.errors import UserError
    from lmdemo.core.models import load
    from lmdemo.core.registry import default_lm
    from lmdemo.lab import head_ablation as ha
    from lmdemo.lab.anatomy import anatomy
    from lmdemo.lab.induction import induction

    model_id = args.model or default_lm()
    loaded = load(model_id, kinds=("causal-lm",))
    an = anatomy(loaded.model)
    ids = ha.prompt_ids(loaded, TEXT)
    target = ha.target_id(loaded.tokenizer, TARGET)

    def batched():
        return ha.importance_map(loaded, ids, target)

    def loop():  # baseline: one forward per head
        base = ha.ablated_logits(loaded, ids, [[]])[0]
        base_lp = torch.log_softmax(torch.from_numpy(base).double(), -1)[target]
        out = np.zeros((an.n_layers, an.n_heads))
        for layer in range(an.n_layers):
            for head in range(an.n_heads):
                z = torch.from_numpy(ha.ablated_logits(loaded, ids, [[(layer, head)]])[0])
                out[layer, head] = float(base_lp - torch.log_softmax(z.double(), -1)[target])
        return float(base_lp), out

    base_b, map_b = batched()
    base_l, map_l = loop()
    same = float(max(abs(base_b - base_l), np.abs(map_b - map_l).max()))
    assert same < 1e-3, f"the batched map differs from the loop by {same}"
    times = {"batched": [], "loop": []}
    for r in range(args.runs):
        for name, fn in ((("batched", batched), ("loop", loop)) if r % 2 == 0
                         else (("loop", loop), ("batched", batched))):
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)

    latency = {
        "head_ablation": _median_ms(lambda: ha.head_ablation(model_id, TEXT, HEADS), args.runs),
        "importance_map": _median_ms(lambda: ha.importance(model_id, TEXT, TARGET), args.runs),
    }
    for n in INDUCTION_LENGTHS:
        latency[f"induction_length_{n}"] = _median_ms(
            lambda n=n: induction(model_id, n, 0), args.runs)
    latency["lens"] = latency["patching"] = None
    skipped = {}  # service -> why it has no latency
    if _exists("lmdemo.lab.lens"):
        from lmdemo.lab.lens import lens

        latency["lens"] = _median_ms(lambda: lens(model_id, TEXT), args.runs)
    if _exists("lmdemo.lab.patching"):
        from lmdemo.lab.patching import patch

        try:
            latency["patching"] = _median_ms(lambda: patch(model_id, TEXT, CORRUPT, TARGET,
                                                           " John"), args.runs)
        except UserError as exc:  # e.g. tiny-gpt does not tell Mary from John here
            skipped["patching"] = str(exc)
    top = np.argsort(-map_b, axis=None)[:5]
    print(json.dumps({
        "model": model_id,
        "baselines": {"importance_speedup_vs_loop": "one forward per head: "
                      "ablated_logits(ids, [[(layer, head)]]) for every head, plus the intact run"},
        "importance_speedup_vs_loop": ratio(times["loop"], times["batched"]),
        "goal": {"importance_speedup_vs_loop": ">= 3"},
        "same_numbers_max_abs": same,
        "median_ms": {k: round(statistics.median(v) * 1e3, 2) for k, v in times.items()},
        "latency_ms": latency, "latency_skipped": skipped,
        "text": TEXT, "text_tokens": len(ids), "target": TARGET, "base_logprob": base_b,
        "top_heads": [[int(i // an.n_heads), int(i % an.n_heads), round(float(map_b.flat[i]), 4)]
                      for i in top],
        "layers": an.n_layers, "heads": an.n_heads, "runs": args.runs,
        "torch_threads": torch.get_num_threads(), "device": loaded.device,
        "dtype": str(loaded.dtype).replace("torch.", ""),
    }))


if __name__ == "__main__":
    main()
