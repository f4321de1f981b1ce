"""Shared helpers for the sentiment tests: a tiny random BERT in a hub mirror, small review files.

The tiny model reuses MiniLM's tokenizer (so real words tokenize) on a 2-layer, 32-wide random
BERT; tests point LMDEMO_HUB_MIRROR at the mirror and use the id `test-org/tiny-bert`.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

TINY_ID = "test-org/tiny-bert"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt",
                   "special_tokens_map.json")

POSITIVE = ["A wonderful, moving film.", "I loved every minute of it.", "Brilliant acting and a "
            "great story.", "Funny, warm and clever.", "Not bad at all, really good.",
            "A delight from start to finish, with a superb cast and a lovely score."]
NEGATIVE = ["A dull and boring mess.", "I hated it.", "Terrible acting and a stupid plot.",
            "Not good at all.", "A waste of time.", "Slow, predictable and far too long, with "
            "wooden dialogue and no heart."]


def make_tiny_bert(mirror: Path) -> Path:
    """Write a tiny random BERT encoder (safetensors + MiniLM's tokenizer) under `mirror`."""
    import torch
    from transformers import BertConfig, BertModel

    from lmdemo.core.registry import minilm_dir

    folder = mirror / TINY_ID
    if (folder / "config.json").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=128)
    BertModel(cfg).save_pretrained(str(folder), safe_serialization=True)
    for name in TOKENIZER_FILES:
        src = minilm_dir() / name
        if src.exists():
            shutil.copy(src, folder / name)
    return folder


def write_reviews(path: Path, repeat: int = 3, with_split: bool = False) -> Path:
    """A small balanced CSV (text,label[,split]) of short reviews."""
    rows = []
    for _ in range(repeat):
        for t in POSITIVE:
            rows.append((t, "positive"))
        for t in NEGATIVE:
            rows.append((t, "negative"))
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label"] + (["split"] if with_split else []))
        for i, (t, y) in enumerate(rows):
            w.writerow([t, y] + ([("train", "validation", "test")[i % 3]] if with_split else []))
    return path


@pytest.fixture(scope="session")
def tiny_mirror(tmp_path_factory) -> Path:
    """A hub mirror holding `test-org/tiny-bert`, built once per test session."""
    mirror = tmp_path_factory.mktemp("mirror")
    make_tiny_bert(mirror)
    return mirror


@pytest.fixture
def tiny_env(tmp_path, monkeypatch, tiny_mirror) -> Path:
    """A temp LMDEMO_HOME with the tiny BERT reachable through the mirror; returns the home."""
    yield from _tiny_env(tmp_path, monkeypatch, tiny_mirror)


@pytest.fixture(scope="module")
def tiny_env_module(tmp_path_factory, tiny_mirror) -> Path:
    """`tiny_env` shared by a whole test module (for fixtures that train once)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield from _tiny_env(tmp_path_factory.mktemp("env"), monkeypatch, tiny_mirror)


def _tiny_env(tmp_path: Path, monkeypatch, tiny_mirror: Path):
    from lmdemo.core import models

    home = tmp_path / "home"
    monkeypatch.setenv("LMDEMO_HOME", str(home))
    monkeypatch.setenv("LMDEMO_HUB_MIRROR", str(tiny_mirror))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("LMDEMO_TRAIN_TOKEN", raising=False)
    monkeypatch.delenv("LMDEMO_HUB_ALLOW", raising=False)
    monkeypatch.delenv("LMDEMO_HUB", raising=False)
    models.clear_cache()
    yield home
    models.clear_cache()


def train_tiny_run(name: str = "tiny", method: str = "full", epochs: int = 1,
                   **hyper) -> Path:
    """Train a run on the tiny BERT in this process (inside `tiny_env`) and return its folder."""
    from lmdemo.training import jobs

    data = write_reviews(jobs.runs_root().parent / f"{name}.csv")
    config = {"base": TINY_ID, "method": method, "epochs": epochs, "batch_size": 4,
              "learning_rate": 3e-3 if method == "full" else 1e-2, "data": str(data),
              "val_fraction": 0.25, **hyper}
    folder = jobs.create_run(name, config, None)
    jobs.run_worker(folder)
    return folder


def make_imdb_mirror(mirror: Path) -> Path:
    """Write `stanfordnlp/imdb` under `mirror` in the hub's own layout (`plain_text/<split>-00000-
    of-00001.parquet`, columns text and label; the unsupervised split has label -1) from the
    small review lists, and return the dataset folder."""
    import pandas as pd

    folder = mirror / "stanfordnlp" / "imdb" / "plain_text"
    folder.mkdir(parents=True, exist_ok=True)
    texts = POSITIVE + NEGATIVE
    labels = [1] * len(POSITIVE) + [0] * len(NEGATIVE)
    for split, tag in (("train", "train"), ("test", "test"), ("unsupervised", "unlabelled")):
        frame = pd.DataFrame({"text": [f"{t} ({tag} {i})" for i, t in enumerate(texts * 2)],
                              "label": (labels * 2) if split != "unsupervised"
                              else [-1] * (2 * len(texts))})
        frame.to_parquet(folder / f"{split}-00000-of-00001.parquet", index=False)
    return folder.parent
