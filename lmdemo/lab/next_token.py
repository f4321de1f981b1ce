"""Next-token services for causal and recurrent language models: score a text, show the next token.

`score(model_id, text)` gives every token of the text with its log-probability given everything
before it (the first token is scored after the bos token), the total and the perplexity.
`next_token(model_id, text, ...)` gives the distribution over the token that would come next, both
raw and after temperature / top-k / top-p (the transform lives in `lmdemo.lab.sampling`), with its
entropy. Both accept any model of kind causal-lm or recurrent-lm (GPT-2 style, LSTM, GRU, RNN,
hub models), keep only the end of a text longer than the model's context (and say so), run under
`torch.inference_mode()` and return plain dataclasses of Python numbers — never tensors.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass, field

import numpy as np

from lmdemo.core.errors import UserError
from lmdemo.lab.sampling import check_params, entropy, softmax, transform

LM_KINDS = ("causal-lm", "recurrent-lm")
DEFAULT_SHOW = 20  # entries returned by next_token unless asked otherwise
MAX_SHOW = 200
MEMO_SIZE = 64  # prompts whose last logits are remembered (sliders re-ask the same prompt)
_MEMO: OrderedDict[tuple, np.ndarray] = OrderedDict()  # (model, folder, ids) -> logits (V,)
_MEMO_LOCK = threading.Lock()


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
    context_tokens: int = 0  # tokens fed to the model, the bos token included
    truncated: bool = False  # the prompt was longer than the context; only its end was used
    message: str = ""

    def to_json(self) -> dict:
        return asdict(self)


def _check_text(text) -> str:
    from lmdemo.core.config import settings

    if text is None:
        text = ""
    if not isinstance(text, str):
        raise UserError(f"The text must be a string, not {type(text).__name__}.")
    limit = settings().max_text_chars
    if len(text) > limit:
        raise UserError(f"The text has {len(text):,} characters; the limit is {limit:,}.")
    return text


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


def _bos_id(loaded) -> int:
    value = start_id(loaded)
    if value is None:
        raise UserError("This model's tokenizer has no bos or eos token to start a text with.")
    return value


def _context(loaded, text: str) -> tuple[list[int], bool, str]:
    """[bos] + the text's ids, cut to the model's context from the left; truncated flag, message."""
    tok = loaded.tokenizer
    ids = [_bos_id(loaded)] + list(tok(text, add_special_tokens=False)["input_ids"])
    limit = loaded.max_positions
    if len(ids) <= limit:
        return ids, False, ""
    kept = ids[-limit:]
    message = (f"The text has {len(ids) - 1} tokens, more than the model's context of {limit}; "
               f"only the last {limit - 1} were used.")
    return kept, True, message


def _logits(loaded, ids: list[int], last_only: bool = False) -> np.ndarray:
    """Next-token logits (T, V) as float32 numpy for every position of `ids`, or (1, V) for the
    last position only (a transformer then skips the output layer for the other positions)."""
    import torch

    with torch.inference_mode():
        x = torch.tensor([ids], dtype=torch.long, device=loaded.device)  # (1, T)
        if last_only and loaded.spec.kind == "causal-lm":
            try:
                logits = loaded.model(x, logits_to_keep=1, use_cache=False).logits[0]  # (1, V)
            except TypeError:  # a hub architecture without logits_to_keep
                logits = loaded.model(x, use_cache=False).logits[0, -1:]  # (1, V)
        elif loaded.spec.kind == "causal-lm":  # no cache to build: nothing reuses it
            logits = loaded.model(x, use_cache=False).logits[0]  # (T, V)
        else:
            logits = loaded.model(x).logits[0]  # (T, V)
        return logits.float().cpu().numpy()


def _last_logits(loaded, ids: list[int]) -> np.ndarray:
    """The logits (V,) after `ids`, remembered for the last MEMO_SIZE prompts: moving the
    temperature / top-k / top-p sliders asks again for the same prompt, and needs no forward."""
    key = (loaded.spec.id, loaded.spec.location, loaded.device, tuple(ids))
    with _MEMO_LOCK:
        hit = _MEMO.get(key)
        if hit is not None:
            _MEMO.move_to_end(key)
            return hit
    logits = _logits(loaded, ids, last_only=True)[-1]  # (V,)
    logits.setflags(write=False)
    with _MEMO_LOCK:
        _MEMO[key] = logits
        while len(_MEMO) > MEMO_SIZE:
            _MEMO.popitem(last=False)
    return logits


def clear_memo() -> None:
    with _MEMO_LOCK:
        _MEMO.clear()


def _decode_each(tokenizer, token_ids) -> list[str]:
    """Each token's text, decoded in one call."""
    return tokenizer.batch_decode([[int(i)] for i in token_ids])


def score(model_id: str, text: str) -> ScoreResult:
    """Per-token log-probabilities of `text` under a causal or recurrent LM."""
    from lmdemo.core.models import load

    text = _check_text(text)
    if not text.strip():
        raise UserError("Give a non-empty text to score.")
    loaded = load(model_id, kinds=LM_KINDS)
    ids, truncated, message = _context(loaded, text)
    logits = _logits(loaded, ids)  # (T, V)
    z = logits[:-1].astype(np.float64)  # (T-1, V): predictions for ids[1:]
    z = z - z.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(z).sum(axis=1))  # (T-1,)
    targets = np.asarray(ids[1:])  # (T-1,)
    log_probs = z[np.arange(len(targets)), targets] - log_norm  # (T-1,)
    total = float(log_probs.sum())
    return ScoreResult(
        model=loaded.spec.id, text=text,
        tokens=_decode_each(loaded.tokenizer, targets),
        token_ids=[int(i) for i in targets],
        log_probs=[float(x) for x in log_probs],
        total_log_prob=total,
        perplexity=float(math.exp(-total / len(targets))),
        truncated=truncated, message=message)


def next_token(model_id: str, text: str = "", top_k: int = 0, temperature: float = 1.0,
               top_p: float = 1.0, show: int = DEFAULT_SHOW) -> NextTokenResult:
    """The next-token distribution after `text` (empty = after the bos token), raw and sampled."""
    from lmdemo.core.models import load

    text = _check_text(text)
    try:
        show = int(show)
    except (TypeError, ValueError):
        raise UserError(f"show must be a whole number, not {show!r}.") from None
    if not 1 <= show <= MAX_SHOW:
        raise UserError(f"show must be between 1 and {MAX_SHOW}, not {show}.")
    params = check_params(temperature, top_k, top_p)
    loaded = load(model_id, kinds=LM_KINDS)
    ids, truncated, message = _context(loaded, text)
    logits = _last_logits(loaded, ids)  # (V,)
    params = check_params(params.temperature, params.top_k, params.top_p, len(logits))
    raw = softmax(logits)  # (V,)
    sampled = transform(logits, params)  # (V,)
    show = min(show, len(raw))
    top = np.argpartition(-raw, show - 1)[:show]  # the `show` most likely, unordered
    order = top[np.lexsort((top, -raw[top]))]  # most likely first; ties by id, as a stable sort
    if params.temperature == 0.0:  # greedy: put the chosen token first even on ties
        best = int(np.argmax(sampled))
        order = np.concatenate([[best], order[order != best]])[:show]
    texts = _decode_each(loaded.tokenizer, order)
    entries = [NextTokenEntry(token=t, id=int(i), prob=float(raw[i]),
                              sampling_prob=float(sampled[i])) for t, i in zip(texts, order, strict=True)]
    return NextTokenResult(
        model=loaded.spec.id, text=text, temperature=params.temperature, top_k=params.top_k,
        top_p=params.top_p, entries=entries, entropy=entropy(raw),
        sampling_entropy=entropy(sampled), kept=int((sampled > 0).sum()),
        vocab_size=int(len(logits)), context_tokens=len(ids), truncated=truncated,
        message=message)
