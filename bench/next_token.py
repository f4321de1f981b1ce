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

import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import interleaved, parser, ratio, set_threads  # noqa: E402

PROMPT_TOKENS = 32
LONG_CONTEXT = 256
SAMPLING = {"top_k": 50, "temperature": 0.8, "top_p": 0.95}  # sliders as a talk would set them





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
    args = parser(__doc__, 60).parse_args()

    import numpy as np
    import torch

    set_threads(args.threads)

    from lmdemo.core.models import load
    from lmdemo.core.registry import default_lm
    from lmdemo.lab.generation import Generation
    from lmdemo.lab.next_token import context_limit, next_token, start_id

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
    short = interleaved({"forward_last": forward_last, "service": service,
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

    step = interleaved({"recompute": recompute, "cached": cached_step}, args.runs)
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
        "overhead_vs_forward_last": ratio(short["service"], short["forward_last"]),
        "speedup_vs_generate_cold": ratio(short["generate"], short["service"]),
        "speedup_step_cached": ratio(step["recompute"], step["cached"]),
        "median_ms": {k: round(v, 2) for k, v in med.items()},
        "prompt_tokens": PROMPT_TOKENS, "long_context_tokens": len(gen.ids) - 1,
        "cached_minus_recompute_max_abs": same, "sampling": SAMPLING, "runs": args.runs,
        "torch_threads": torch.get_num_threads(), "device": loaded.device,
        "dtype": str(loaded.dtype).replace("torch.", ""),
    }))


if __name__ == "__main__":
    main()
