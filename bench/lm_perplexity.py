"""Perplexity of the language models on the same held-out everyday sentences.

Every sentence of `tests/data/heldout_sentences.txt` (110 everyday English sentences written for
the project, in no model's training corpus) is scored by `lmdemo.lab.next_token.score` after the
model's start token. The models' tokenizers differ (SmolLM2 49,152 tokens, the tiny models their
own), so besides the per-token perplexity the line reports measures that do not depend on the
tokenizer: the per-word perplexity exp(total NLL / words) and bits per character. The baseline is
`tiny-gpt`, the shipped GPT-2-architecture model; `word_ppl_ratio_vs_tiny_gpt` divides each
model's per-word perplexity by it (lower is better).

    python bench/lm_perplexity.py [--models smollm2,tiny-gpt,tiny-lstm,tiny-gru,tiny-rnn]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SENTENCES = ROOT / "tests" / "data" / "heldout_sentences.txt"
MODELS = "smollm2,tiny-gpt,tiny-lstm,tiny-gru,tiny-rnn"
BASELINE = "tiny-gpt"


def measure(model_id: str, sentences: list[str]) -> dict:
    from lmdemo.lab.next_token import score

    nll = tokens = 0.0
    for s in sentences:
        res = score(model_id, s)
        nll -= res.total_log_prob
        tokens += len(res.log_probs)
    words = sum(len(s.split()) for s in sentences)
    chars = sum(len(s) for s in sentences)
    return {"token_ppl": round(math.exp(nll / tokens), 2), "word_ppl": round(math.exp(nll / words), 2),
            "bits_per_char": round(nll / chars / math.log(2), 4), "tokens": int(tokens),
            "words": words}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=MODELS)
    args = parser.parse_args()
    sentences = [s.strip() for s in SENTENCES.read_text(encoding="utf-8").splitlines() if s.strip()]
    results = {m: measure(m, sentences) for m in args.models.split(",") if m}
    base = results.get(BASELINE)
    if base:
        for r in results.values():
            r["word_ppl_ratio_vs_tiny_gpt"] = round(r["word_ppl"] / base["word_ppl"], 4)
    print(json.dumps({"bench": "lm_perplexity", "sentences": len(sentences),
                      "baseline": BASELINE, "models": results}))


if __name__ == "__main__":
    main()
