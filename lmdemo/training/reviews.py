"""Review data for the sentiment classifier: load, map columns, validate, split.

Sources: the shipped set (`lmdemo/assets/reviews/reviews.csv`, columns text,label,split), a
CSV / TSV / JSONL file or upload (bytes, with a column mapping), and IMDB (`stanfordnlp/imdb`)
through `datasets` when the Hugging Face Hub is reachable. Every source ends up as a `Reviews`
(texts plus 0/1 labels, 1 = positive). Bad data — missing columns, labels that are not binary,
bytes that are not UTF-8, no rows, a file over `LMDEMO_MAX_UPLOAD_MB` — raises a `UserError` that
says what to fix, before anything is trained.
"""

from __future__ import annotations

import io
import json
import random
from dataclasses import dataclass
from pathlib import Path

from lmdemo.core.config import ASSETS, settings
from lmdemo.core.errors import UserError

SHIPPED = ASSETS / "reviews" / "reviews.csv"
IMDB_ID = "stanfordnlp/imdb"
TEXT_COLUMNS = ("text", "review", "sentence", "content", "body")  # guessed when none is given
LABEL_COLUMNS = ("label", "sentiment", "labels", "target", "polarity")
_LABEL_WORDS = {"0": 0, "1": 1, "negative": 0, "positive": 1, "neg": 0, "pos": 1,
                "0.0": 0, "1.0": 1}
FORMATS = ("csv", "tsv", "jsonl")


@dataclass
class Reviews:
    """Texts with binary labels (0 = negative, 1 = positive)."""

    texts: list[str]
    labels: list[int]
    source: str = ""

    def __len__(self) -> int:
        return len(self.texts)

    def to_jsonl(self) -> str:
        return "".join(json.dumps({"text": t, "label": y}, ensure_ascii=False) + "\n"
                       for t, y in zip(self.texts, self.labels, strict=True))

    def head(self, n: int) -> Reviews:
        return Reviews(self.texts[:n], self.labels[:n], self.source)


def _format_of(filename: str) -> str:
    name = (filename or "").lower()
    for ext, fmt in ((".csv", "csv"), (".tsv", "tsv"), (".jsonl", "jsonl"), (".json", "jsonl"),
                     (".txt", "tsv")):
        if name.endswith(ext):
            return fmt
    raise UserError(f"{filename!r}: use a .csv, .tsv or .jsonl file with a text column and a "
                    "label column.")


def _frame(data: bytes, filename: str):
    """Parse bytes into a pandas DataFrame of strings, or a UserError."""
    import pandas as pd

    limit = settings().max_upload_mb
    if len(data) > limit * 1024 * 1024:
        raise UserError(f"{filename!r} is {len(data) / 1e6:.1f} MB; the limit on this server is "
                        f"{limit} MB (LMDEMO_MAX_UPLOAD_MB).")
    fmt = _format_of(filename)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(f"{filename!r} is not UTF-8 text (byte {exc.start} is invalid); save it "
                        "as UTF-8 and upload it again.") from exc
    if not text.strip():
        raise UserError(f"{filename!r} is empty: it needs a header and at least one review.")
    try:
        if fmt == "jsonl":
            frame = pd.read_json(io.StringIO(text), lines=True, dtype=False)
        else:
            frame = pd.read_csv(io.StringIO(text), sep="\t" if fmt == "tsv" else ",", dtype=str,
                                keep_default_na=False)
    except ValueError as exc:  # pandas' ParserError and JSON errors are ValueErrors
        raise UserError(f"{filename!r} could not be read as {fmt.upper()}: "
                        f"{str(exc)[:200]}") from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def columns(data: bytes, filename: str) -> list[str]:
    """The column names of an uploaded file, for the page's column mapping."""
    return list(_frame(data, filename).columns)


def guess_column(names: list[str], wanted: tuple[str, ...]) -> str | None:
    lower = {n.lower(): n for n in names}
    return next((lower[w] for w in wanted if w in lower), None)


def _label(value, row: int, column: str) -> int:
    if isinstance(value, bool):
        return int(value)
    key = str(value).strip().lower()
    if key in _LABEL_WORDS:
        return _LABEL_WORDS[key]
    raise UserError(f"Row {row + 2}: label {str(value)[:40]!r} in column {column!r} is not binary; "
                    "use 0/1 or negative/positive.")


def from_frame(frame, source: str, text_col: str | None = None,
               label_col: str | None = None) -> Reviews:
    """Validate a DataFrame and turn it into Reviews using the given (or guessed) columns."""
    names = list(frame.columns)
    text_col = text_col or guess_column(names, TEXT_COLUMNS)
    label_col = label_col or guess_column(names, LABEL_COLUMNS)
    missing = [what for what, col in (("text", text_col), ("label", label_col))
               if not col or col not in names]
    if missing:
        raise UserError(f"{source}: no {' and no '.join(missing)} column found among "
                        f"{names[:12]}; name them 'text' and 'label' or choose the columns.")
    if text_col == label_col:
        raise UserError("The text column and the label column must be different columns.")
    texts, labels = [], []
    for i, (text, label) in enumerate(zip(frame[text_col].tolist(), frame[label_col].tolist(),
                                          strict=True)):
        text = "" if text is None else str(text).strip()
        if not text:
            continue  # blank lines and empty reviews are skipped, not errors
        texts.append(text)
        labels.append(_label(label, i, label_col))
    if not texts:
        raise UserError(f"{source} has no reviews: every row is empty.")
    if len(set(labels)) < 2:
        raise UserError(f"{source}: every review has the same label; a classifier needs both "
                        "negative and positive examples.")
    return Reviews(texts, labels, source)


def parse(data: bytes, filename: str, text_col: str | None = None,
          label_col: str | None = None) -> Reviews:
    """Reviews from the bytes of an uploaded CSV / TSV / JSONL file (read from memory)."""
    return from_frame(_frame(data, filename), repr(filename), text_col, label_col)


def read_path(path: str | Path, text_col: str | None = None,
              label_col: str | None = None) -> Reviews:
    """Reviews from a file on disk (command line only; the web app never reads user paths)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"No data file at {str(path)!r}; give a CSV/TSV/JSONL path, 'shipped' "
                        "or 'imdb'.")
    return parse(path.read_bytes(), path.name, text_col, label_col)


def shipped(split: str | None = None) -> Reviews:
    """The shipped review set, or one split of it (train, validation, test)."""
    if not SHIPPED.is_file():
        raise UserError("The shipped review set is missing from this installation "
                        f"({SHIPPED}).")
    frame = _frame(SHIPPED.read_bytes(), SHIPPED.name)
    if split is not None:
        if "split" not in frame.columns:
            raise UserError("The shipped review set has no split column.")
        frame = frame[frame["split"].str.strip() == split]
    return from_frame(frame, f"shipped reviews ({split or 'all'})")


def imdb(split: str = "train", limit: int | None = None, seed: int = 0) -> Reviews:
    """IMDB reviews through `datasets` (the hub, or the operator's mirror); a shuffled sample of
    `limit`."""
    from lmdemo.core.hub import dataset_location

    try:
        location = dataset_location(IMDB_ID)
    except UserError as exc:
        raise UserError(f"IMDB is not available here. {exc}") from exc
    try:
        from datasets import load_dataset

        ds = load_dataset(location, split=split)
    except Exception as exc:  # network and format failures of a third-party download
        raise UserError(f"Could not load {IMDB_ID}: {type(exc).__name__}: "
                        f"{str(exc)[:200]}") from exc
    missing = {"text", "label"} - set(ds.column_names)
    if missing:
        raise UserError(f"{IMDB_ID} has no {', '.join(sorted(missing))} column.")
    ds = ds.shuffle(seed=seed)
    if limit:
        ds = ds.select(range(min(limit, len(ds))))
    labels = [int(y) for y in ds["label"]]
    if set(labels) - {0, 1}:
        raise UserError(f"{IMDB_ID} {split} has labels other than 0 and 1.")
    return Reviews([str(t) for t in ds["text"]], labels, f"imdb {split}")


def split_off(reviews: Reviews, fraction: float = 0.1, seed: int = 0) -> tuple[Reviews, Reviews]:
    """A seeded, label-stratified split into (train, validation)."""
    if not 0 < fraction < 1:
        raise UserError("The validation fraction must be between 0 and 1.")
    rng = random.Random(seed)
    train_idx, val_idx = [], []
    for label in (0, 1):
        idx = [i for i, y in enumerate(reviews.labels) if y == label]
        rng.shuffle(idx)
        k = max(1, round(len(idx) * fraction)) if len(idx) > 1 else 0
        val_idx += idx[:k]
        train_idx += idx[k:]
    rng.shuffle(train_idx)

    def pick(idx: list[int]) -> Reviews:
        return Reviews([reviews.texts[i] for i in idx], [reviews.labels[i] for i in idx],
                       reviews.source)

    return pick(train_idx), pick(val_idx)


def load_spec(spec: str, split: str = "train", text_col: str | None = None,
              label_col: str | None = None, limit: int | None = None,
              seed: int = 0) -> Reviews:
    """The data named on the command line: 'shipped', 'imdb' or a file path."""
    spec = (spec or "").strip()
    if spec == "shipped":
        data = shipped(split)
    elif spec == "imdb":
        data = imdb("test" if split == "test" else "train", limit, seed)
    else:
        data = read_path(spec, text_col, label_col)
    return data.head(limit) if limit else data
