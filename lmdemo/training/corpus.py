"""The training corpus of the embedded language models, rebuilt from Debian packages.

`build()` reads license-clean English text that installs offline with `apt-get install
wordnet-base fortunes fortunes-min gnome-user-docs`: WordNet 3.0 definitions turned into plain
sentences plus its example sentences (WordNet 3.0 license), the fortune-cookie files of `fortunes`
and `fortunes-min` (quotes, jokes, riddles, short poems; BSD-licensed collection, offensive files are
a separate package and are not used), the GNOME desktop help (CC-BY-SA 3.0) and a short set of
everyday English paragraphs written for this project (`assets/lm/everyday.txt`, Apache-2.0). Each
document is one line; documents are shuffled with a fixed seed and split into train/validation by
a hash of their text, so a rebuild gives the same files. The text stays out of git (it lives under
`~/.lmdemo/cache/lm/` by default); `assets/lm/CORPUS.md` records sources, licenses and counts.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from lmdemo.core.config import ASSETS, settings
from lmdemo.core.errors import UserError

WORDNET_DIR = Path("/usr/share/wordnet")
FORTUNE_DIR = Path("/usr/share/games/fortunes")
GNOME_HELP_DIR = Path("/usr/share/help/C")
EVERYDAY_FILE = ASSETS / "lm" / "everyday.txt"
APT_HINT = "apt-get install wordnet-base fortunes fortunes-min gnome-user-docs"
SKIP_FORTUNES = {"ascii-art"}  # pictures, not prose
VALID_EVERY = 50  # one document in 50 (by text hash) goes to the validation split
SEED = 1234


@dataclass(frozen=True)
class Source:
    """One source of the corpus, as recorded in CORPUS.md."""

    name: str  # short id
    package: str  # where it comes from (Debian package or this repo)
    license: str  # its license
    documents: int = 0  # documents (lines) taken
    words: int = 0  # whitespace-separated words taken


def default_dir() -> Path:
    return settings().cache_dir / "lm"


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _article(word: str) -> str:
    return "An" if word[:1].lower() in "aeiou" else "A"


def _wordnet_docs() -> Iterator[str]:
    """One line per synset: its definition as a sentence, then its example sentences."""
    for pos in ("noun", "verb", "adj", "adv"):
        path = WORDNET_DIR / f"data.{pos}"
        if not path.exists():
            raise UserError(f"WordNet is missing ({path}); run: {APT_HINT}")
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("  ") or " | " not in line:
                continue  # the license header
            head, gloss = line.split(" | ", 1)
            fields = head.split()
            word = re.sub(r"\(.*\)$", "", fields[4]).replace("_", " ")
            parts = [p.strip() for p in gloss.split(";") if p.strip()]
            defs = [p for p in parts if not p.startswith('"')]
            examples = [p.strip('"').strip() for p in parts if p.startswith('"')]
            sentences = []
            if defs:
                d = defs[0].rstrip(".")
                if pos == "noun" and re.match(r"(a|an|the|any|one|someone|something) ", d):
                    sentences.append(f"{_article(word)} {word} is {d}.")
                elif pos == "verb" and re.match(r"[a-z]", d):
                    sentences.append(f"To {word} is to {d}.")
                else:
                    sentences.append(f"{word[:1].upper() + word[1:]}: {d}.")
            for ex in examples:
                ex = ex.strip('"').strip()
                if len(ex.split()) >= 3:
                    ex = ex[:1].upper() + ex[1:]
                    sentences.append(ex if ex[-1:] in ".!?" else ex + ".")
            if sentences:
                yield _clean(" ".join(sentences))


def _fortune_docs() -> Iterator[str]:
    if not FORTUNE_DIR.is_dir():
        raise UserError(f"The fortune files are missing ({FORTUNE_DIR}); run: {APT_HINT}")
    for path in sorted(FORTUNE_DIR.iterdir()):
        if path.suffix or path.name in SKIP_FORTUNES or not path.is_file():
            continue  # .dat indexes, .u8 links, pictures
        text = path.read_text(encoding="utf-8", errors="replace")
        for cookie in re.split(r"\n%\n", text):
            cookie = _clean(cookie.replace("\t", " "))
            letters = sum(c.isalpha() for c in cookie)
            if len(cookie.split()) >= 4 and letters > 0.6 * len(cookie):
                yield cookie


def _gnome_docs() -> Iterator[str]:
    pages = sorted(GNOME_HELP_DIR.glob("*/*.page"))
    if not pages:
        raise UserError(f"The GNOME help is missing ({GNOME_HELP_DIR}); run: {APT_HINT}")
    for page in pages:
        try:
            root = ET.parse(page).getroot()
        except ET.ParseError:
            continue
        paras = []
        for el in root.iter():
            tag = el.tag.rsplit("}", 1)[-1]
            if tag in ("title", "p") and tag != "info":
                text = _clean("".join(el.itertext()))
                if len(text.split()) >= 3:
                    paras.append(text if text[-1:] in ".!?:" else text + ".")
        if paras:
            yield " ".join(paras)


def _everyday_docs() -> Iterator[str]:
    if EVERYDAY_FILE.exists():
        for para in EVERYDAY_FILE.read_text(encoding="utf-8").split("\n\n"):
            para = _clean(para)
            if para and not para.startswith("#"):
                yield para


SOURCES = (
    (Source("wordnet", "Debian wordnet-base 3.0", "WordNet 3.0 license (Princeton, permissive)"),
     _wordnet_docs),
    (Source("fortunes", "Debian fortunes, fortunes-min", "BSD (fortune-mod collection)"),
     _fortune_docs),
    (Source("gnome-help", "Debian gnome-user-docs 43", "CC-BY-SA 3.0"), _gnome_docs),
    (Source("everyday", "lmdemo assets/lm/everyday.txt", "Apache-2.0 (written for lmdemo)"),
     _everyday_docs),
)


def _is_valid(doc: str) -> bool:
    return int(hashlib.md5(doc.encode("utf-8")).hexdigest(), 16) % VALID_EVERY == 0


def build(out_dir: Path | None = None) -> dict:
    """Write train.txt and valid.txt (one document per line) and stats.json; return the stats."""
    out = Path(out_dir or default_dir())
    out.mkdir(parents=True, exist_ok=True)
    docs, sources = [], []
    seen = set()
    for source, reader in SOURCES:
        n_docs = n_words = 0
        for doc in reader():
            if doc in seen:
                continue
            seen.add(doc)
            docs.append(doc)
            n_docs += 1
            n_words += len(doc.split())
        sources.append(Source(source.name, source.package, source.license, n_docs, n_words))
    random.Random(SEED).shuffle(docs)
    train = [d for d in docs if not _is_valid(d)]
    valid = [d for d in docs if _is_valid(d)]
    (out / "train.txt").write_text("\n".join(train) + "\n", encoding="utf-8")
    (out / "valid.txt").write_text("\n".join(valid) + "\n", encoding="utf-8")
    stats = {
        "dir": str(out),
        "sources": [asdict(s) for s in sources],
        "train": {"documents": len(train), "words": sum(len(d.split()) for d in train)},
        "valid": {"documents": len(valid), "words": sum(len(d.split()) for d in valid)},
    }
    (out / "stats.json").write_text(json.dumps(stats, indent=2))
    return stats


def read_split(split: str, corpus_dir: Path | None = None) -> list[str]:
    """The documents of one split ("train" or "valid"), building the corpus first if needed."""
    folder = Path(corpus_dir or default_dir())
    path = folder / f"{split}.txt"
    if not path.exists():
        build(folder)
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
