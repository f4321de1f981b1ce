"""Quality of the language models: do they prefer a sentence to its minimal ungrammatical twin?

Minimal pairs (in the manner of BLiMP, Warstadt et al., 2020) are built by rule from every sentence
of `tests/data/heldout_sentences.txt` (everyday English written for the project, not in the training
corpus), lower-cased and stripped of punctuation (apostrophes kept), so neither capitals nor a final
full stop can give the answer away. Each bad twin differs by one edit:
  swap       two adjacent words exchanged (seeded position; adverbs, which move freely, and equal
             words are never chosen)
  agreement  one auxiliary put in the wrong number (is/are, was/were, has/have, does/do,
             isn't/aren't, wasn't/weren't, doesn't/don't) — only in sentences that have one
  wrong_word one function word replaced by one of the wrong class (a determiner by "of", a
             preposition by "the") — seeded choice among the sentence's candidates
A pair is won when the model gives the good sentence the higher total log-probability (the sum over
its tokens, after the start token; the BLiMP criterion). Prints one JSON line with, per model and
per kind, the share of pairs won; the validation perplexity from the model's card.json; `--valid`
re-measures it on 128-token windows of the held-out split (the corpus must be built:
`python -m lmdemo build-corpus`). `--samples` adds greedy and sampled continuations.
Chance is 0.5; the pairs are printed with `--show-pairs`.

    python bench/lm_quality.py [--models tiny-gpt,tiny-lstm,tiny-gru,tiny-rnn,smollm2] [--valid]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SENTENCES = ROOT / "tests" / "data" / "heldout_sentences.txt"
MODELS = ("tiny-gpt", "tiny-lstm", "tiny-gru", "tiny-rnn", "smollm2")
PROMPTS = ("The weather today is", "I went to the store to buy", "My favorite food is",
           "She opened the door and")
SEED = 0
KINDS = ("swap", "agreement", "wrong_word")
ADVERBS = {"now", "always", "often", "never", "also", "just", "still", "really", "usually",
           "sometimes", "then", "too", "very", "soon", "already", "again", "together", "here",
           "there", "today", "tonight", "tomorrow", "yesterday", "later", "early", "quickly",
           "slowly", "even", "only", "almost", "probably", "finally", "maybe", "not", "home",
           "away", "back", "out", "up", "down", "off", "first", "well", "so", "all", "ever",
           "quietly", "carefully", "easily", "rarely", "once", "twice", "instead", "anymore"}
AGREEMENT = {"is": "are", "are": "is", "was": "were", "were": "was", "has": "have",
             "have": "has", "does": "do", "do": "does", "isn't": "aren't", "aren't": "isn't",
             "wasn't": "weren't", "weren't": "wasn't", "doesn't": "don't", "don't": "doesn't"}
DETERMINERS = {"the", "a", "an", "my", "our", "his", "their", "your", "its", "some", "every",
               "this", "these", "those", "each"}
PREPOSITIONS = {"in", "on", "at", "for", "with", "from", "into", "under", "after", "before",
                "during", "about", "behind", "near", "through", "across", "of"}


def normalise(sentence: str) -> list[str]:
    """Lower-cased words, punctuation other than apostrophes removed."""
    text = re.sub(r"[^\w\s']", " ", sentence.lower().replace("\u2019", "'"))
    return text.split()


def minimal_pairs(sentence: str, rng: random.Random) -> dict[str, tuple[str, str]]:
    """The good sentence and its bad twin, per kind (a kind is missing where no rule applies)."""
    words = normalise(sentence)
    good, out = " ".join(words), {}
    swaps = [i for i in range(len(words) - 1) if words[i] != words[i + 1]
             and words[i] not in ADVERBS and words[i + 1] not in ADVERBS]
    if swaps:
        i = rng.choice(swaps)
        bad = words[:i] + [words[i + 1], words[i]] + words[i + 2:]
        out["swap"] = (good, " ".join(bad))
    agree = [i for i, w in enumerate(words) if w in AGREEMENT
             and not (w == "were" and i > 0 and words[i - 1] in ("i", "if"))]  # "if i were"
    if agree:
        i = rng.choice(agree)
        out["agreement"] = (good, " ".join(words[:i] + [AGREEMENT[words[i]]] + words[i + 1:]))
    def wrong_for(w: str) -> str | None:
        return "of" if w in DETERMINERS else "the" if w in PREPOSITIONS - {"of"} else None

    wrong = [i for i, w in enumerate(words) if i > 0 and wrong_for(w)
             and wrong_for(w) not in words[i - 1:i] + words[i + 1:i + 2]]  # no "of of"
    if wrong:
        i = rng.choice(wrong)
        out["wrong_word"] = (good, " ".join(words[:i] + [wrong_for(words[i])] + words[i + 1:]))
    return out


def pairs() -> list[tuple[str, str, str]]:
    """(kind, good, bad) for every sentence and kind that applies, seeded."""
    rng = random.Random(SEED)
    lines = [s.strip() for s in SENTENCES.read_text(encoding="utf-8").splitlines() if s.strip()]
    return [(kind, good, bad) for line in lines
            for kind, (good, bad) in minimal_pairs(line, rng).items()]


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
    parser.add_argument("--show-pairs", action="store_true", help="print the pairs and stop")
    args = parser.parse_args()

    data = pairs()
    if args.show_pairs:
        for kind, good, bad in data:
            print(f"{kind:10s} {good}  |  {bad}")
        return

    import torch

    from lmdemo.core.assets import is_fetched
    from lmdemo.core.registry import get_spec
    from lmdemo.lab.next_token import score

    torch.set_num_threads(2)
    counts = {k: sum(1 for kind, _, _ in data if kind == k) for k in KINDS}
    report = {"bench": "lm_quality", "criterion": "total log-prob, good > bad",
              "pairs": len(data), "pairs_per_kind": counts, "seed": SEED, "chance": 0.5,
              "models": {}}
    for model_id in [m.strip() for m in args.models.split(",") if m.strip()]:
        if model_id == "smollm2" and not is_fetched("smollm2"):
            report["models"][model_id] = {"skipped": "run `python -m lmdemo fetch smollm2`"}
            continue
        won = {k: 0 for k in KINDS}
        for kind, good, bad in data:
            won[kind] += score(model_id, good).total_log_prob > score(model_id, bad).total_log_prob
        spec = get_spec(model_id)
        card_file = Path(spec.location) / "card.json" if spec.location else None
        card = json.loads(card_file.read_text()) if card_file and card_file.exists() else {}
        entry = {"minimal_pairs_accuracy": round(sum(won.values()) / len(data), 4),
                 "won": int(sum(won.values())),
                 **{k: round(won[k] / counts[k], 4) for k in KINDS if counts[k]},
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
