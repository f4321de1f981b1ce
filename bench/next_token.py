"""Next-token benchmark: the service and the cached step against named baselines, same process.

Prints one JSON line:
- `overhead_vs_forward` (goal ≤ 1.25): `lmdemo.next_token.next_token` on a 32-token prompt (the
  bos token included), with its prompt memo cleared before every call so each call runs the
  model, divided by one bare forward pass of the same model on the same input ids;
- `speedup_vs_generate` (goal ≥ 1.5): `model.generate(max_new_tokens=1, output_scores=True,
  return_dict_in_generate=True)` on the same ids divided by the service as the page uses it
  (the same prompt asked again, as when a slider moves: the memo answers without a forward);
  `speedup_vs_generate_cold` divides by the memo-cleared service instead;
- `speedup_step_cached` (goal ≥ 3): appending one token to a long context (256 tokens, or the
  model's context minus one) — one uncached forward over the whole context divided by
  `Generation.force`, which feeds only the new token with the prefix's cached keys and values.
Timings are medians of many interleaved runs after a warm-up. Runs on the embedded `tiny-gpt`;
when its weights are missing, on a tiny random GPT-2 (the `model` field says which).
Run: `HF_HUB_OFFLINE=1 python bench/next_token.py [--runs 200]`.
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

PROMPT_TOKENS = 32
LONG_CONTEXT = 256
SAMPLING = {"top_k": 50, "temperature": 0.8, "top_p": 0.95}  # sliders as a talk would set them
TEXT = ("The weather today is warm and sunny, so we decided to walk to the park after lunch and "
        "sit by the lake for a while. Children were playing football on the grass, an old man was "
        "feeding the ducks, and a woman on a bench was reading a thick book about the history of "
        "the city. ")


def _model_id() -> tuple[str, str]:
    """The model to time: tiny-gpt if installed, else a tiny random GPT-2 served as a hub id."""
    import os

    from lmdemo.registry import get_spec, is_available

    if is_available(get_spec("tiny-gpt")):
        return "tiny-gpt", "tiny-gpt"
    from tests.helpers import save_tiny_gpt2

    mirror = Path(tempfile.mkdtemp(prefix="bench-mirror-"))
    save_tiny_gpt2(mirror / "bench" / "tiny-random-gpt2", n_positions=512)
    os.environ["LMDEMO_HUB_MIRROR"] = str(mirror)
    return "bench/tiny-random-gpt2", "tiny random GPT-2 (tiny-gpt weights missing)"


def _interleaved(fns: dict, runs: int) -> dict[str, float]:
    """Median seconds of each function, the functions run in turn so drift hits all alike."""
    for fn in fns.values():
        for _ in range(5):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(runs):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(v) for name, v in times.items()}


def _ids_of_length(tokenizer, n: int) -> tuple[str, list[int]]:
    """A text whose encoding is exactly n − 1 tokens (the service adds the bos token)."""
    ids = tokenizer(TEXT * (1 + 4 * n // 40), add_special_tokens=False)["input_ids"][: n - 1]
    text = tokenizer.decode(ids)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"][: n - 1]
    return tokenizer.decode(ids), ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1 keeps shared, busy CPUs from adding noise)")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(max(1, args.threads))

    from lmdemo.generation import Generation, context_limit
    from lmdemo.models import load
    from lmdemo.next_token import clear_memo, next_token

    model_id, label = _model_id()
    loaded = load(model_id, kinds=("causal-lm",))
    model, tok = loaded.model, loaded.tokenizer
    bos = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id

    text, ids = _ids_of_length(tok, PROMPT_TOKENS)
    x = torch.tensor([[bos] + ids], device=loaded.device)  # (1, 32)
    mask = torch.ones_like(x)
    check = next_token(model_id, text, **SAMPLING)
    assert check.context_tokens == x.shape[1], (check.context_tokens, x.shape)

    def forward():
        with torch.inference_mode():
            return model(x).logits  # (1, 32, V)

    def service():
        return next_token(model_id, text, **SAMPLING)

    def service_cold():
        clear_memo()
        return next_token(model_id, text, **SAMPLING)

    def generate():
        with torch.inference_mode():
            return model.generate(x, attention_mask=mask, max_new_tokens=1, output_scores=True,
                                  return_dict_in_generate=True, do_sample=False,
                                  pad_token_id=bos)

    def forward_last():  # what generate's first step does: the LM head on the last position only
        with torch.inference_mode():
            return model(x, logits_to_keep=1).logits  # (1, 1, V)

    import numpy as np

    from lmdemo.sampling import check_params, entropy, softmax, transform

    params = check_params(**SAMPLING)
    last = forward()[0, -1].float().numpy()  # (V,)

    def postprocess():  # the service's work over the vocabulary after its forward pass
        raw = softmax(last)
        shaped = transform(last, params)
        np.argsort(-raw, kind="stable")
        return entropy(raw), entropy(shaped)

    short = _interleaved({"forward": forward, "service": service, "service_cold": service_cold,
                          "generate": generate,
                          "forward_last": forward_last, "postprocess": postprocess}, args.runs)

    n_long = min(LONG_CONTEXT, context_limit(loaded) - 1)
    long_text, _ = _ids_of_length(tok, n_long)
    gen = Generation.start(loaded, long_text)
    new_token = int(gen.logits.argmax())
    full = torch.tensor([gen.ids + [new_token]], device=loaded.device)  # (1, n_long + 1)

    def recompute():
        with torch.inference_mode():
            return model(full, use_cache=False).logits  # (1, n_long + 1, V)

    def cached_step():
        gen.force(new_token)
        gen.undo()

    step = _interleaved({"recompute": recompute, "cached": cached_step}, args.runs)
    gen.force(new_token)
    same = bool(np.allclose(gen.logits, recompute()[0, -1].float().cpu().numpy(), atol=1e-4))
    print(json.dumps({
        "model": label,
        "overhead_vs_forward": round(short["service_cold"] / short["forward"], 3),
        "speedup_vs_generate": round(short["generate"] / short["service"], 3),
        "speedup_vs_generate_cold": round(short["generate"] / short["service_cold"], 3),
        "speedup_step_cached": round(step["recompute"] / step["cached"], 3),
        "forward_ms": round(short["forward"] * 1e3, 3),
        "service_ms": round(short["service"] * 1e3, 3),
        "service_cold_ms": round(short["service_cold"] * 1e3, 3),
        "generate_ms": round(short["generate"] * 1e3, 3),
        "forward_last_logits_only_ms": round(short["forward_last"] * 1e3, 3),
        "service_postprocess_ms": round(short["postprocess"] * 1e3, 3),
        "recompute_ms": round(step["recompute"] * 1e3, 3),
        "cached_step_ms": round(step["cached"] * 1e3, 3),
        "prompt_tokens": int(x.shape[1]), "long_context_tokens": len(gen.ids) - 1,
        "cached_equals_recompute": same, "sampling": SAMPLING, "runs": args.runs,
        "torch_threads": torch.get_num_threads(), "device": loaded.device,
    }))


if __name__ == "__main__":
    main()
