"""Benchmark of the Attention page's head view against a bare forward pass, on `minilm`.

Baseline: one forward pass of the loaded model with `output_attentions=True` on a 128-token
input (no tokenizing, no copying). Measured: the service `attention()` plus building the head
view's figure and serializing it as Streamlit does (`plotly.io.to_json`). Medians over several
runs after a warm-up, the two interleaved, torch on one thread. Prints ONE JSON line:
  overhead_vs_forward  (service + head figure) / bare forward   goal <= 1.5
  head_view_bytes      bytes of the one-head figure sent to the browser (it must not carry
                       every layer and head)
  all_heads_bytes_estimate  for comparison: every layer × head as base64 float32
Run: HF_HUB_OFFLINE=1 python bench/attention.py
"""

from __future__ import annotations

import json
import statistics
import time

RUNS = 15
TOKENS = 128


def _median_s(fn, runs: int = RUNS) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    import plotly.io as pio
    import torch

    from lmdemo.core.models import load
    from lmdemo.lab import attention as svc
    from lmdemo.plots import attention as plots

    torch.set_num_threads(1)  # the machine is shared: one thread gives steadier timings
    loaded = load("minilm")
    words = ("the quick brown fox jumps over the lazy dog while it rains " * 40).split()
    tok = loaded.tokenizer
    text = " ".join(words)
    ids = tok(text, truncation=True, max_length=TOKENS, return_tensors="pt")["input_ids"]
    text = tok.decode(ids[0, 1:-1])  # exactly TOKENS tokens with [CLS] and [SEP]
    mask = torch.ones_like(ids)

    def bare():
        with torch.inference_mode():
            loaded.model(input_ids=ids, attention_mask=mask, output_attentions=True)

    state = {}

    def head_view():
        res = svc.attention("minilm", text, max_tokens=TOKENS)
        fig = plots.head_heatmap(res.tokens, res.attentions[3, 1], "layer 3, head 1")
        state["json"] = pio.to_json(fig, validate=False)
        state["res"] = res

    for _ in range(3):  # warm-up
        bare()
        head_view()
    assert len(state["res"].tokens) == TOKENS, len(state["res"].tokens)
    # interleave the two so both see the same machine load
    base, view = [], []
    for _ in range(RUNS):
        base.append(_median_s(bare, 1))
        view.append(_median_s(head_view, 1))
    t_base, t_view = statistics.median(base), statistics.median(view)
    att = state["res"].attentions
    print(json.dumps({
        "bench": "attention", "model": "minilm", "tokens": TOKENS, "runs": RUNS,
        "baseline": "bare forward with output_attentions=True",
        "forward_ms": round(t_base * 1e3, 2), "head_view_ms": round(t_view * 1e3, 2),
        "overhead_vs_forward": round(t_view / t_base, 3), "goal_overhead": 1.5,
        "head_view_bytes": len(state["json"].encode("utf-8")),
        "all_heads_bytes_estimate": att.astype("float32").nbytes * 4 // 3,  # base64 float32
    }))


if __name__ == "__main__":
    main()
