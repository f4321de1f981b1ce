"""Review data: formats, column mapping, labels, and every kind of bad file gives a UserError."""

import json

import pytest

from lmdemo.core.errors import UserError
from lmdemo.training import reviews


def test_csv_with_word_labels():
    data = b"text,label\nGreat film,positive\nAwful,negative\n  ,positive\n"
    r = reviews.parse(data, "x.csv")
    assert r.texts == ["Great film", "Awful"] and r.labels == [1, 0]


def test_tsv_and_jsonl_and_numeric_labels():
    r = reviews.parse(b"review\tsentiment\nfine, really\t1\nbad\t0\n", "x.tsv")
    assert r.labels == [1, 0] and r.texts[0] == "fine, really"
    lines = [{"body": "good", "y": 1}, {"body": "bad", "y": 0}]
    blob = "\n".join(json.dumps(x) for x in lines).encode()
    r = reviews.parse(blob, "x.jsonl", text_col="body", label_col="y")
    assert r.labels == [1, 0]


def test_column_mapping_and_listing():
    data = b"a,b,c\nnice,pos,1\nugly,neg,2\n"
    assert reviews.columns(data, "f.csv") == ["a", "b", "c"]
    assert reviews.parse(data, "f.csv", "a", "b").labels == [1, 0]


@pytest.mark.parametrize("data,name,fragment", [
    (b"words,stars\nok,5\n", "x.csv", "no text and no label column"),
    (b"text,label\ngood,3\nbad,0\n", "x.csv", "not binary"),
    (b"text,label\ngood,maybe\n", "x.csv", "not binary"),
    (b"text,label\n\xff\xfe bad bytes,1\n", "x.csv", "not UTF-8"),
    (b"", "x.csv", "empty"),
    (b"text,label\n", "x.csv", "no reviews"),
    (b"text,label\ngood,1\nfine,1\n", "x.csv", "same label"),
    (b"text,label\ngood,1\n", "x.xlsx", ".csv, .tsv or .jsonl"),
    (b"{not json", "x.jsonl", "could not be read"),
])
def test_bad_files_give_clear_errors(data, name, fragment):
    with pytest.raises(UserError, match=fragment):
        reviews.parse(data, name)


def test_size_limit(monkeypatch):
    monkeypatch.setenv("LMDEMO_MAX_UPLOAD_MB", "1")
    blob = b"text,label\n" + b"a fine film,1\nbad,0\n" * 80_000
    with pytest.raises(UserError, match="limit"):
        reviews.parse(blob, "big.csv")


def test_missing_path_and_imdb_offline(monkeypatch, tmp_path):
    with pytest.raises(UserError, match="No data file"):
        reviews.read_path(tmp_path / "nope.csv")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("LMDEMO_HUB_MIRROR", raising=False)
    with pytest.raises(UserError, match="IMDB"):
        reviews.load_spec("imdb")
    monkeypatch.setenv("LMDEMO_HUB_MIRROR", str(tmp_path))  # a mirror without the dataset
    with pytest.raises(UserError, match="not in this server's mirror"):
        reviews.load_spec("imdb")


def test_imdb_loads_through_datasets_from_a_mirror_in_the_hub_layout(monkeypatch, tmp_path):
    from tests.helpers import NEGATIVE, POSITIVE, make_imdb_mirror

    make_imdb_mirror(tmp_path)
    monkeypatch.setenv("LMDEMO_HUB_MIRROR", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
    train = reviews.load_spec("imdb", "train")
    assert len(train) == 2 * (len(POSITIVE) + len(NEGATIVE)) and sum(train.labels) == len(train) // 2
    assert all("(train " in t for t in train.texts)
    by_text = {t.rsplit(" (", 1)[0]: y for t, y in zip(train.texts, train.labels, strict=True)}
    assert all(by_text[t] == 1 for t in POSITIVE) and all(by_text[t] == 0 for t in NEGATIVE)
    test = reviews.load_spec("imdb", "test", limit=5, seed=1)
    assert len(test) == 5 and all("(test " in t for t in test.texts)
    assert reviews.load_spec("imdb", "test", limit=5, seed=1).texts == test.texts  # seeded
    assert reviews.load_spec("imdb", "test", limit=5, seed=2).texts != test.texts


def test_split_is_stratified_and_seeded():
    r = reviews.Reviews([f"t{i}" for i in range(40)], [i % 2 for i in range(40)])
    tr, va = reviews.split_off(r, 0.25, seed=3)
    assert len(tr) + len(va) == 40 and sum(va.labels) == len(va) // 2 == 5
    assert set(tr.texts).isdisjoint(va.texts)
    assert reviews.split_off(r, 0.25, seed=3)[1].texts == va.texts


@pytest.mark.skipif(not reviews.SHIPPED.is_file(), reason="shipped reviews not present")
def test_shipped_splits_are_balanced_and_disjoint():
    splits = {s: reviews.shipped(s) for s in ("train", "validation", "test")}
    assert sum(len(s) for s in splits.values()) >= 1000
    for s in splits.values():
        assert 0.4 < sum(s.labels) / len(s) < 0.6
    assert set(splits["train"].texts).isdisjoint(splits["test"].texts)
