"""Quality of the embedded language models: do they prefer real sentences to shuffled words?

For every sentence of `tests/data/heldout_sentences.txt` (everyday English written for the project,
not in the training corpus) the words are shuffled with a fixed seed; a pair counts as won when the
model gives the real sentence a lower perplexity than its shuffle. Prints one JSON line with, per
model, the share of pairs won and the validation perplexity from the model's card.json; `--valid`
re-measures it for every model on the same 128-token windows of the held-out split (the corpus
must be built: `python -m lmdemo build-corpus`). `--samples` adds greedy and sampled continuations.

    python bench/lm_quality.py [--models tiny-gpt,tiny-lstm,tiny-gru,tiny-rnn] [--valid] [--samples]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SENTENCES = ROOT / "tests" / "data" / "heldout_sentences.txt"
MODELS = ("tiny-gpt", "tiny-lstm", "tiny-gru", "tiny-rnn")
PROMPTS = ("The weather today is", "I went to the store to buy", "My favorite food is",
           "She opened the door and")
SEED = 0


def shuffled(sentence: str, rng: random.Random) -> str:
    words = sentence.split()
    for _ in range(20):
        out = words[:]
        rng.shuffle(out)
        if out != words:
            return " ".join(out)
    return " ".join(reversed(words))


def pairs() -> list[tuple[str, str]]:
    rng = random.Random(SEED)
    lines = [s.strip() for s in SENTENCES.read_text(encoding="utf-8").splitlines() if s.strip()]
    return [(s, shuffled(s, rng)) for s in lines]


def continue_text(model_id: str, prompt: str, n: int, temperature: float, seed: int) -> str:
    """Extend `prompt` by `n` tokens (temperature 0 = greedy), re-reading the prompt each step."""
    import numpy as np

    from lmdemo.lab.next_token import next_token

    rng = np.random.default_rng(seed)
    text = prompt
    for _ in range(n):
        res = next_token(model_id, text, temperature=temperature, top_k=40 if temperature else 0,
                         show=40)
        probs = np.array([e.sampling_prob for e in res.entries])  # (40,)
        pick = 0 if temperature == 0 else int(rng.choice(len(probs), p=probs / probs.sum()))
        token = res.entries[pick].token
        if token == "<|endoftext|>":
            break
        text += token
    return text


def valid_perplexity(model_id: str, block: int = 128) -> float:
    """Perplexity on non-overlapping `block`-token windows of the corpus's validation split."""
    import math

    from lmdemo.core.models import load
    from lmdemo.training import corpus
    from lmdemo.training.train_lm import evaluate, token_stream

    loaded = load(model_id, kinds=("causal-lm", "recurrent-lm"), device="cpu")
    stream = token_stream(loaded.tokenizer, corpus.read_split("valid"))  # (N,)
    nll, _ = evaluate(loaded.model, stream, block)
    return round(math.exp(nll), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--samples", action="store_true", help="add prompt continuations")
    parser.add_argument("--valid", action="store_true",
                        help="re-measure validation perplexity on 128-token windows")
    args = parser.parse_args()

    import torch

    from lmdemo.core.registry import get_spec
    from lmdemo.lab.next_token import score

    torch.set_num_threads(2)
    data = pairs()
    report = {"bench": "lm_quality", "pairs": len(data), "seed": SEED, "models": {}}
    for model_id in [m.strip() for m in args.models.split(",") if m.strip()]:
        won = sum(score(model_id, real).perplexity < score(model_id, fake).perplexity
                  for real, fake in data)
        card_file = Path(get_spec(model_id).location) / "card.json"
        card = json.loads(card_file.read_text()) if card_file.exists() else {}
        entry = {"grammatical_preferred": round(won / len(data), 4), "won": int(won),
                 "valid_perplexity": card.get("valid_perplexity")}
        if args.valid:
            entry["valid_perplexity_128"] = valid_perplexity(model_id)
        if args.samples:
            entry["samples"] = {p: {"greedy": continue_text(model_id, p, 12, 0.0, 0),
                                    "sampled_t0.8_k40": continue_text(model_id, p, 12, 0.8, 0)}
                                for p in PROMPTS}
        report["models"][model_id] = entry
    print(json.dumps(report, ensure_ascii=False))


if __name__ == "__main__":
    main()
