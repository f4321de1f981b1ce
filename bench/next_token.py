"""Next-token benchmark: the service and the cached step against named baselines, same process.

Prints one JSON line for one causal model (`--model`, default: smollm2 when fetched, else
tiny-gpt); each ratio is a median over interleaved runs (the order alternates every round) with
its spread (the 10th and 90th percentile of the per-round ratio):
- `overhead_vs_forward_last` (goal ≤ 1.15): `lmdemo.lab.next_token.next_token` on a 32-token prompt
  (the start token included), each call on a prompt it has never seen (so the memo never answers),
  divided by the baseline: one bare forward of the same model on the same ids that keeps the last
  position's logits only (`logits_to_keep=1`), as the service does;
- `speedup_vs_generate_cold` (goal ≥ 1.0): the baseline `model.generate(max_new_tokens=1,
  output_scores=True, return_dict_in_generate=True)` — transformers' documented way to get the next
  token's scores — on the same new prompt, divided by the service;
- `speedup_step_cached` (goal ≥ 3): appending one token to a 256-token context — the baseline is
  one uncached forward over the whole context with `logits_to_keep=1` — divided by
  `Generation.force` (one token fed with the prefix's cached keys and values) plus `undo`.
Run: `HF_HUB_OFFLINE=1 python bench/next_token.py [--model smollm2] [--runs 60]`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROMPT_TOKENS = 32
LONG_CONTEXT = 256
SAMPLING = {"top_k": 50, "temperature": 0.8, "top_p": 0.95}  # sliders as a talk would set them

def _interleaved(fns: dict, runs: int) -> dict[str, list[float]]:
    """Seconds of each function per round; the functions run in turn, in alternating order, so
    drift and warm caches hit all alike."""
    for fn in fns.values():
        for _ in range(3):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for r in range(runs):
        for name in (names if r % 2 == 0 else names[::-1]):
            t0 = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - t0)
    return times


def _ratio(num: list[float], den: list[float]) -> dict:
    """Median of num/den over rounds, with the 10th-90th percentile spread."""
    r = sorted(a / b for a, b in zip(num, den, strict=True))
    q = statistics.quantiles(r, n=10)
    return {"median": round(statistics.median(r), 3), "p10": round(q[0], 3),
            "p90": round(q[-1], 3)}


def _texts_of_length(tokenizer, n: int, count: int) -> list[str]:
    """`count` different texts that each encode to exactly n − 1 tokens (the service adds the
    start token): windows at different offsets of the held-out everyday sentences."""
    words = (ROOT / "tests" / "data" / "heldout_sentences.txt").read_text().split()
    out = []
    for offset in range(0, 10 * count):
        if len(out) == count:
            break
        ids = tokenizer(" ".join(words[offset:offset + n]), add_special_tokens=False)[
            "input_ids"][: n - 1]
        text = tokenizer.decode(ids)
        if len(tokenizer(text, add_special_tokens=False)["input_ids"]) == n - 1 \
                and text not in out:
            out.append(text)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="a causal-lm id (default: smollm2 when "
                        "fetched, else tiny-gpt)")
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1 keeps shared, busy CPUs from adding noise)")
    args = parser.parse_args()

    import numpy as np
    import torch

    torch.set_num_threads(max(1, args.threads))

    from lmdemo.core.models import load
    from lmdemo.core.registry import default_lm
    from lmdemo.lab.generation import Generation, context_limit
    from lmdemo.lab.next_token import next_token, start_id

    model_id = args.model or default_lm()
    loaded = load(model_id, kinds=("causal-lm",))
    model, tok = loaded.model, loaded.tokenizer
    first = start_id(loaded)
    texts = _texts_of_length(tok, PROMPT_TOKENS, args.runs + 8)
    it = {"service": iter(texts), "generate": iter(texts), "forward": iter(texts)}

    def ids_of(text):
        return torch.tensor([[first] + tok(text, add_special_tokens=False)["input_ids"]],
                            device=loaded.device)  # (1, 32)

    check = next_token(model_id, texts[0], **SAMPLING)
    assert check.context_tokens == PROMPT_TOKENS, check.context_tokens

    def forward_last():  # baseline: the bare model, the LM head on the last position only
        with torch.inference_mode():
            return model(ids_of(next(it["forward"])), logits_to_keep=1).logits  # (1, 1, V)

    def service():  # a prompt never seen before: a real forward every call
        return next_token(model_id, next(it["service"]), **SAMPLING)

    def generate():  # baseline: transformers' generate for one token with its scores
        x = ids_of(next(it["generate"]))
        with torch.inference_mode():
            return model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=1,
                                  output_scores=True, return_dict_in_generate=True,
                                  do_sample=False, pad_token_id=first)

    def rewind():  # each function restarts its own stream of prompts before the timed rounds
        for k in it:
            it[k] = iter(texts)

    rewind()
    for _ in range(3):  # warm-up with the first prompts, then every timed call gets a new one
        forward_last(), service(), generate()
    short = _interleaved({"forward_last": forward_last, "service": service,
                          "generate": generate}, args.runs - 4)

    n_long = min(LONG_CONTEXT, context_limit(loaded) - 1)
    long_text = _texts_of_length(tok, n_long, 1)[0]
    gen = Generation.start(loaded, long_text)
    new_token = int(gen.logits.argmax())
    full = torch.tensor([gen.ids + [new_token]], device=loaded.device)  # (1, n_long + 1)

    def recompute():
        with torch.inference_mode():
            return model(full, use_cache=False, logits_to_keep=1).logits  # (1, 1, V)

    def cached_step():
        gen.force(new_token)
        gen.undo()

    step = _interleaved({"recompute": recompute, "cached": cached_step}, args.runs)
    gen.force(new_token)
    same = float(np.abs(gen.logits - recompute()[0, -1].float().cpu().numpy()).max())
    med = {k: statistics.median(v) * 1e3 for k, v in {**short, **step}.items()}
    print(json.dumps({
        "model": model_id,
        "baselines": {"overhead_vs_forward_last": "model(ids, logits_to_keep=1)",
                      "speedup_vs_generate_cold": "model.generate(max_new_tokens=1, "
                                                  "output_scores=True)",
                      "speedup_step_cached": "model(context, use_cache=False, "
                                             "logits_to_keep=1)"},
        "overhead_vs_forward_last": _ratio(short["service"], short["forward_last"]),
        "speedup_vs_generate_cold": _ratio(short["generate"], short["service"]),
        "speedup_step_cached": _ratio(step["recompute"], step["cached"]),
        "median_ms": {k: round(v, 2) for k, v in med.items()},
        "prompt_tokens": PROMPT_TOKENS, "long_context_tokens": len(gen.ids) - 1,
        "cached_minus_recompute_max_abs": same, "sampling": SAMPLING, "runs": args.runs,
        "torch_threads": torch.get_num_threads(), "device": loaded.device,
        "dtype": str(loaded.dtype).replace("torch.", ""),
    }))


if __name__ == "__main__":
    main()
