"""Assemble the lmdemo sentiment review set from hand-written source chunks.

Every ``src/*.txt`` file holds one review per line, prefixed by ``+ `` (positive)
or ``- `` (negative); blank lines and lines starting with ``#`` are ignored. The
script reads the chunks in file-name order, normalises whitespace, drops exact
duplicates (case-insensitive, first occurrence wins, a text seen with both labels
is an error, and so is a label imbalance), then assigns a fixed 70/15/15
train/validation/test split stratified by label using ``random.Random(SEED)``, and
writes ``reviews.csv`` (columns ``text,label,split``, quoted by the ``csv`` module)
grouped by split with labels shuffled together, so that rerunning it always
produces the same file.
"""

from __future__ import annotations

import csv
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE / "src"
OUT = HERE / "reviews.csv"
SEED = 20240611
FRACTIONS = (("train", 0.70), ("validation", 0.15), ("test", 0.15))
LABELS = {"+": "positive", "-": "negative"}


def read_chunks(src: Path) -> list[tuple[str, str]]:
    """Return ``(text, label)`` pairs from all chunk files, deduplicated."""
    seen: dict[str, str] = {}
    rows: list[tuple[str, str]] = []
    for path in sorted(src.glob("*.txt")):
        for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            mark, _, text = line.partition(" ")
            if mark not in LABELS or not text.strip():
                raise ValueError(f"{path.name}:{lineno}: expected '+ ' or '- ' prefix")
            text = " ".join(text.split())
            label = LABELS[mark]
            key = text.casefold()
            if key in seen:
                if seen[key] != label:
                    raise ValueError(f"{path.name}:{lineno}: conflicting label for {text!r}")
                continue
            seen[key] = label
            rows.append((text, label))
    n_pos = sum(label == "positive" for _, label in rows)
    if 2 * n_pos != len(rows):
        raise ValueError(f"unbalanced labels: {n_pos} positive of {len(rows)}")
    return rows


def split_rows(rows: list[tuple[str, str]], seed: int = SEED) -> list[tuple[str, str, str]]:
    """Shuffle each label's reviews with ``seed`` and cut them 70/15/15."""
    rng = random.Random(seed)
    out: list[tuple[str, str, str]] = []
    for label in sorted(LABELS.values()):
        texts = [t for t, lab in rows if lab == label]
        rng.shuffle(texts)
        n = len(texts)
        n_val = round(n * FRACTIONS[1][1])
        n_test = round(n * FRACTIONS[2][1])
        n_train = n - n_val - n_test
        bounds = (("train", 0, n_train), ("validation", n_train, n_train + n_val))
        bounds += (("test", n_train + n_val, n),)
        for split, lo, hi in bounds:
            out.extend((t, label, split) for t in texts[lo:hi])
    ordered: list[tuple[str, str, str]] = []
    for name, _ in FRACTIONS:
        part = [r for r in out if r[2] == name]
        rng.shuffle(part)
        ordered.extend(part)
    return ordered


def main() -> int:
    rows = split_rows(read_chunks(SRC))
    with OUT.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["text", "label", "split"])
        writer.writerows(rows)
    counts: dict[tuple[str, str], int] = {}
    for _, label, split in rows:
        counts[split, label] = counts.get((split, label), 0) + 1
    for (split, label), n in sorted(counts.items()):
        print(f"{split:<10} {label:<8} {n}")
    print(f"total      {len(rows)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
