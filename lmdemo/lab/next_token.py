"""The next-token engine: one path from a text to the distribution over the token that comes next.

Every view of a causal or recurrent language model goes through here:
1. `encode(loaded, text)`: the model's start token, then the text's tokens; a text longer than
   the model's context keeps its end, and one message says so.
2. `logits_after(loaded, ids)`: the logits (V,) of the next token, from a forward pass that scores
   the last position only (`logits_to_keep=1`). Results are remembered for the last prompts
   (moving a slider asks the same prompt again), and so is the model's memory of each prompt — the
   cached keys and values of a transformer, the hidden state of a recurrent model — so one more
   token (generation, `lmdemo.lab.generation`) costs a forward step on that token alone. Both
   stores are bounded, per process, and hold no model.
3. `reshape(logits, params)` / `top_entries(...)`: temperature / top-k / top-p (the transform in
   `lmdemo.lab.sampling`) and the most likely tokens, raw beside reshaped.
`next_token(...)` and `score(...)` are the services built on these; they run under
`torch.inference_mode()` and return plain dataclasses of Python numbers — never tensors.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass, field

import numpy as np

from lmdemo.core.errors import UserError
from lmdemo.core.messages import Message
from lmdemo.core.registry import LM_KINDS
from lmdemo.core.validate import unicode_text
from lmdemo.lab.sampling import SamplingParams, check_params, entropy, softmax, transform


@dataclass(frozen=True)
class EngineLimits:
    """How much the engine shows and remembers."""

    default_show: int = 20  # tokens a distribution lists unless asked otherwise
    max_show: int = 50  # the most tokens one distribution lists (page, API and CLI alike)
    memo_prompts: int = 64  # prompts whose next-token logits are remembered (V floats each)
    cached_prompts: int = 16  # prompts whose KV cache / hidden state is kept for the next step
    cached_tokens: int = 4096  # ... and at most this many tokens over all of them


LIMITS = EngineLimits()


class _Store:
    """A small thread-safe LRU map: key -> value, at most `size` entries (and `weight` units)."""

    def __init__(self, size: int, max_weight: int | None = None):
        self.size, self.max_weight = size, max_weight
        self.items: OrderedDict[tuple, tuple[object, int]] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key):
        with self.lock:
            hit = self.items.get(key)
            if hit is not None:
                self.items.move_to_end(key)
            return None if hit is None else hit[0]

    def pop(self, key):
        with self.lock:
            hit = self.items.pop(key, None)
            return None if hit is None else hit[0]

    def put(self, key, value, weight: int = 1) -> None:
        with self.lock:
            self.items[key] = (value, weight)
            self.items.move_to_end(key)
            while len(self.items) > self.size or (
                    self.max_weight is not None and len(self.items) > 1
                    and sum(w for _, w in self.items.values()) > self.max_weight):
                self.items.popitem(last=False)

    def clear(self) -> None:
        with self.lock:
            self.items.clear()

    def __len__(self) -> int:
        return len(self.items)


_MEMO = _Store(LIMITS.memo_prompts)  # (model, ids) -> next-token logits (V,), read-only
_CACHES = _Store(LIMITS.cached_prompts, LIMITS.cached_tokens)  # (model, ids) -> cache handle


def clear_memo() -> None:
    """Forget every remembered prompt (benchmarks and tests use it)."""
    _MEMO.clear()
    _CACHES.clear()


# ----------------------------------------------------------------------------- results

@dataclass
class ScoreResult:
    """How likely a model finds a text, token by token."""

    model: str
    text: str
    tokens: list[str]  # the scored tokens, decoded
    token_ids: list[int]
    log_probs: list[float]  # natural log of p(token | everything before it)
    total_log_prob: float
    perplexity: float  # exp(-mean log-prob)
    truncated: bool = False  # the text was longer than the context; only its end was scored
    message: str = ""

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class NextTokenEntry:
    token: str  # decoded text of the token
    id: int
    prob: float  # raw probability (softmax of the logits)
    sampling_prob: float  # probability after temperature / top-k / top-p


@dataclass
class NextTokenResult:
    """The distribution over the next token after a prompt."""

    model: str
    text: str
    temperature: float
    top_k: int
    top_p: float
    entries: list[NextTokenEntry] = field(default_factory=list)  # most likely first
    entropy: float = 0.0  # of the raw distribution, in nats
    sampling_entropy: float = 0.0  # of the transformed distribution, in nats
    kept: int = 0  # tokens left with a non-zero sampling probability
    vocab_size: int = 0
    context_tokens: int = 0  # tokens fed to the model, the start token included
    truncated: bool = False  # the prompt was longer than the context; only its end was used
    message: str = ""

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Context:
    """A text as the model reads it."""

    ids: list[int]  # the start token (if the model has one), then the text's tokens
    truncated: bool  # the text was longer than the context: only its end is in `ids`
    message: str  # what the user should know about it ("" when nothing)


# ----------------------------------------------------------------------------- 1. encode

def check_text(text) -> str:
    """The text as a string within the length limit, or a UserError."""
    from lmdemo.core.config import settings

    if text is None:
        text = ""
    if not isinstance(text, str):
        raise UserError(f"The text must be a string, not {type(text).__name__}.")
    limit = settings().max_text_chars
    if len(text) > limit:
        raise UserError(f"The text has {len(text):,} characters; the limit is {limit:,}.")
    return unicode_text(text)


def start_id(loaded) -> int | None:
    """The token every text is read after: the registry's `start_token` when it names one
    (SmolLM2 reads after <|endoftext|>, the boundary between its pre-training documents, not after
    its chat marker <|im_start|>), else the tokenizer's bos token, else its eos token."""
    tok = loaded.tokenizer
    named = getattr(loaded.spec, "start_token", "")
    if named:
        value = tok.convert_tokens_to_ids(named)
        known = value != tok.unk_token_id or named == tok.unk_token  # SmolLM2: both <|endoftext|>
        if isinstance(value, int) and known:
            return int(value)
    for value in (getattr(tok, "bos_token_id", None), getattr(tok, "eos_token_id", None)):
        if isinstance(value, int):
            return value
    return None


def context_limit(loaded) -> int:
    """The most tokens the model reads at once."""
    if loaded.spec.kind == "recurrent-lm":
        return int(getattr(loaded.model.config, "max_len", 512) or 512)
    return int(loaded.max_positions)


def window(loaded, ids: list[int]) -> tuple[list[int], str]:
    """The end of `ids` that fits the model's context, and the message when something was cut."""
    limit = context_limit(loaded)
    if len(ids) <= limit:
        return ids, ""
    return ids[-limit:], Message("context-cut", n=len(ids), limit=limit)


def encode(loaded, text: str) -> Context:
    """[start] + the text's token ids, cut from the left to the model's context."""
    tok = loaded.tokenizer
    ids = list(tok(check_text(text), add_special_tokens=False)["input_ids"])
    first = start_id(loaded)
    if first is not None:
        ids = [first] + ids
    elif not ids:
        raise UserError("Type some text first: this model has no start token to begin from.")
    kept, message = window(loaded, ids)
    return Context(kept, len(kept) < len(ids), message)


# ----------------------------------------------------------------------------- 2. forward

def _key(loaded, ids) -> tuple:
    return (loaded.spec.id, loaded.spec.location, loaded.device, tuple(ids))


def _forward(loaded, ids: list[int], handle=None):
    """One forward pass over `ids` (the new tokens only when `handle`, the cache of the tokens
    before them, is given): the next-token logits (V,) and the handle covering everything read."""
    import torch

    x = torch.tensor([ids], dtype=torch.long, device=loaded.device)  # (1, T)
    with torch.inference_mode():
        if loaded.spec.kind == "recurrent-lm":
            out = loaded.model(x, hidden=handle) if handle is not None else loaded.model(x)
            return out.logits[0, -1].float().cpu().numpy(), out.hidden  # (V,)
        kw = {"past_key_values": handle} if handle is not None else {}
        try:
            out = loaded.model(input_ids=x, use_cache=True, logits_to_keep=1, **kw)
        except TypeError:  # an architecture without `logits_to_keep`
            out = loaded.model(input_ids=x, use_cache=True, **kw)
        return out.logits[0, -1].float().cpu().numpy(), out.past_key_values  # (V,)


def logits_after(loaded, ids: list[int]) -> np.ndarray:
    """The logits (V,) of the token after `ids` (which must fit the context; see `window`).

    A remembered prompt costs nothing; a prompt one token longer than one whose cache is kept
    costs one forward step on that token; anything else is read in full, once."""
    key = _key(loaded, ids)
    hit = _MEMO.get(key)
    if hit is not None:
        return hit
    prefix = _CACHES.pop(_key(loaded, ids[:-1])) if len(ids) > 1 else None
    if prefix is not None:  # the cache is ours now: the forward pass extends it in place
        logits, handle = _forward(loaded, ids[-1:], prefix)
    else:
        logits, handle = _forward(loaded, ids)
    logits.setflags(write=False)
    _MEMO.put(key, logits)
    _CACHES.put(key, handle, weight=len(ids))
    return logits


def all_logits(loaded, ids: list[int]) -> np.ndarray:
    """Next-token logits (T, V) after every prefix of `ids`, from one uncached pass (scoring, and
    the reference cached steps are checked against)."""
    import torch

    x = torch.tensor([ids], dtype=torch.long, device=loaded.device)  # (1, T)
    with torch.inference_mode():
        if loaded.spec.kind == "causal-lm":
            return loaded.model(x, use_cache=False).logits[0].float().cpu().numpy()  # (T, V)
        return loaded.model(x).logits[0].float().cpu().numpy()  # (T, V)


# ----------------------------------------------------------------------------- 3. reshape

def reshape(logits: np.ndarray, params: SamplingParams) -> np.ndarray:
    """(V,) probabilities after temperature / top-k / top-p, the parameters validated first."""
    params = check_params(params.temperature, params.top_k, params.top_p)
    return transform(logits, params)


def top_ids(probs: np.ndarray, show: int, greedy_first: int | None = None) -> np.ndarray:
    """The `show` most likely ids, most likely first, ties by id (a stable descending sort);
    `greedy_first` puts the greedy choice first even when tied."""
    show = min(show, len(probs))
    top = np.argpartition(-probs, show - 1)[:show]  # the `show` most likely, unordered
    order = top[np.lexsort((top, -probs[top]))]
    if greedy_first is not None:
        order = np.concatenate([[greedy_first], order[order != greedy_first]])[:show]
    return order


def token_texts(tokenizer, token_ids) -> list[str]:
    """How each token reads on its own, decoded in one call."""
    return tokenizer.batch_decode([[int(i)] for i in token_ids], clean_up_tokenization_spaces=False)


def check_show(show) -> int:
    try:
        show = int(show)
    except (TypeError, ValueError):
        raise UserError(f"show must be a whole number, not {show!r}.") from None
    if not 1 <= show <= LIMITS.max_show:
        raise UserError(f"show must be between 1 and {LIMITS.max_show}, not {show}.")
    return show


# ----------------------------------------------------------------------------- services

def score(model_id: str, text: str) -> ScoreResult:
    """Per-token log-probabilities of `text` under a causal or recurrent LM."""
    from lmdemo.core.models import load

    text = check_text(text)
    if not text.strip():
        raise UserError("Give a non-empty text to score.")
    loaded = load(model_id, kinds=LM_KINDS)
    ctx = encode(loaded, text)
    z = all_logits(loaded, ctx.ids)[:-1].astype(np.float64)  # (T-1, V): predictions of ids[1:]
    z = z - z.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(z).sum(axis=1))  # (T-1,)
    targets = np.asarray(ctx.ids[1:])  # (T-1,)
    log_probs = z[np.arange(len(targets)), targets] - log_norm  # (T-1,)
    total = float(log_probs.sum())
    return ScoreResult(
        model=loaded.spec.id, text=text, tokens=token_texts(loaded.tokenizer, targets),
        token_ids=[int(i) for i in targets], log_probs=[float(x) for x in log_probs],
        total_log_prob=total, perplexity=float(math.exp(-total / len(targets))),
        truncated=ctx.truncated, message=ctx.message)


def next_token(model_id: str, text: str = "", top_k: int = 0, temperature: float = 1.0,
               top_p: float = 1.0, show: int = LIMITS.default_show) -> NextTokenResult:
    """The next-token distribution after `text` (empty = after the start token), raw and
    reshaped by temperature / top-k / top-p."""
    from lmdemo.core.models import load

    text = check_text(text)
    show = check_show(show)
    params = check_params(temperature, top_k, top_p)
    loaded = load(model_id, kinds=LM_KINDS)
    ctx = encode(loaded, text)
    logits = logits_after(loaded, ctx.ids)  # (V,)
    params = check_params(params.temperature, params.top_k, params.top_p, len(logits))
    raw = softmax(logits)  # (V,)
    sampled = transform(logits, params)  # (V,)
    greedy = int(np.argmax(sampled)) if params.temperature == 0.0 else None
    order = top_ids(raw, show, greedy)
    texts = token_texts(loaded.tokenizer, order)
    entries = [NextTokenEntry(token=t, id=int(i), prob=float(raw[i]),
                              sampling_prob=float(sampled[i]))
               for t, i in zip(texts, order, strict=True)]
    return NextTokenResult(
        model=loaded.spec.id, text=text, temperature=params.temperature, top_k=params.top_k,
        top_p=params.top_p, entries=entries, entropy=entropy(raw),
        sampling_entropy=entropy(sampled), kept=int((sampled > 0).sum()),
        vocab_size=int(len(logits)), context_tokens=len(ctx.ids), truncated=ctx.truncated,
        message=ctx.message)


@dataclass
class Ranked:
    """Candidate sentences scored by one model, most likely first."""

    model: str
    scores: list[ScoreResult]  # sorted by total log-probability, highest first

    def rows(self) -> list[dict]:
        return [{"sentence": r.text, "log_prob_nats": r.total_log_prob, "tokens": len(r.tokens),
                 "perplexity": r.perplexity} for r in self.scores]


MAX_SENTENCES = 20  # candidate sentences one ranking scores at most


def rank(model_id: str, sentences) -> Ranked:
    """Score each candidate sentence (one per item; blanks dropped) and rank them."""
    sentences = [s.strip() for s in list(sentences) if isinstance(s, str) and s.strip()]
    if len(sentences) < 2:
        raise UserError("Give at least two sentences, one per line, to rank them.")
    if len(sentences) > MAX_SENTENCES:
        raise UserError(f"That is {len(sentences)} sentences; one ranking takes at most "
                        f"{MAX_SENTENCES}.")
    scored = [score(model_id, s) for s in sentences]
    return Ranked(scored[0].model, sorted(scored, key=lambda r: -r.total_log_prob))


@dataclass
class SideBySide:
    """The same prompt's next-token distribution under several models."""

    results: list[NextTokenResult]  # one per model that could answer, in the order asked
    errors: dict[str, str]  # model id -> why it could not

    def rows(self) -> list[dict]:
        return [{"model": r.model, "rank": i + 1, "token": e.token, "id": e.id,
                 "probability": e.prob, "reshaped": e.sampling_prob,
                 "entropy_bits": r.entropy / math.log(2)}
                for r in self.results for i, e in enumerate(r.entries)]


def side_by_side(model_ids: list[str], text: str, top_k: int = 0, temperature: float = 1.0,
                 top_p: float = 1.0, show: int = LIMITS.default_show) -> SideBySide:
    """`next_token` for each model; a model that cannot answer is reported, not raised."""
    results, errors = [], {}
    for model_id in model_ids:
        try:
            results.append(next_token(model_id, text, top_k, temperature, top_p, show))
        except UserError as exc:
            errors[model_id] = str(exc)
    return SideBySide(results, errors)
