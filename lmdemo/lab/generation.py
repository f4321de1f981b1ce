"""Step-by-step generation: one token at a time, reusing the work already done on the prefix.

A `Generation` holds a prompt's token ids and the model's memory of them — the cached keys and
values of a transformer (`past_key_values`) or the hidden state of a recurrent model — so each new
token costs one forward step on that token alone, not a recompute of the whole context. Tokens are
appended by force (`force`, the user clicked one: branching), by sampling from the distribution
reshaped by temperature / top-k / top-p (`sample`), or greedily (`greedy`); `undo` removes the last
one and restores the previous distribution exactly (the cache is cropped, the recurrent state is
popped). Each appended token records its raw and reshaped probability. A prompt longer than the
model's context keeps its end; when stepping fills a transformer's context, the window slides (a
full recompute of the last tokens) and the user is told. Results are small dataclasses and numpy
arrays; the object itself is what a page keeps between clicks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from lmdemo.core.errors import UserError
from lmdemo.lab.next_token import start_id
from lmdemo.lab.sampling import SamplingParams, check_params, entropy, softmax, transform

KINDS = ("causal-lm", "recurrent-lm")
MAX_TOP_K_SHOWN = 50  # the most tokens a distribution result lists
NO_RESHAPING = SamplingParams()  # temperature 1, no top-k, no top-p
MAX_STEPS = 4096  # generated tokens one Generation holds at most


def reshape(logits: np.ndarray, params: SamplingParams) -> np.ndarray:
    """(V,) probabilities after temperature / top-k / top-p, the parameters validated first."""
    params = check_params(params.temperature, params.top_k, params.top_p)
    return transform(logits, params)


def entropy_bits(probs: np.ndarray) -> float:
    """Shannon entropy of a distribution, in bits."""
    return max(0.0, entropy(np.asarray(probs, dtype=np.float64)) / math.log(2))


def token_text(tokenizer, token_id: int) -> str:
    """How one token reads on its own (byte-level pieces may decode to a replacement char)."""
    return tokenizer.decode([int(token_id)], clean_up_tokenization_spaces=False)


@dataclass
class Distribution:
    """The next-token distribution after the current context: the top tokens, raw and reshaped."""

    ids: list[int]  # token ids, most likely (raw) first
    tokens: list[str]  # their text
    raw: np.ndarray  # (k,) softmax of the logits
    shaped: np.ndarray  # (k,) after temperature / top-k / top-p
    entropy_raw: float  # bits, over the whole vocabulary
    entropy_shaped: float  # bits, over the whole vocabulary
    kept: int  # how many tokens keep a nonzero probability after reshaping
    vocab_size: int

    def rows(self) -> list[dict]:
        return [{"rank": i + 1, "token": t, "id": j, "raw_probability": float(r),
                 "reshaped_probability": float(s)}
                for i, (t, j, r, s) in enumerate(zip(self.tokens, self.ids, self.raw,
                                                     self.shaped, strict=True))]


@dataclass(frozen=True)
class Step:
    """One appended token and how it was chosen."""

    id: int
    token: str
    p_raw: float  # its probability under the raw distribution
    p_shaped: float  # its probability under the reshaped distribution it was chosen from
    how: str  # "forced", "sampled" or "greedy"


@dataclass
class Generation:
    """A prompt plus generated tokens, with the model's cache of everything read so far."""

    loaded: object  # lmdemo.core.models.Loaded
    prompt_ids: list[int]
    steps: list[Step] = field(default_factory=list)
    message: str = ""  # what the user should know (truncation, sliding window)
    _window: list[int] = field(default_factory=list)  # ids the cache currently covers
    _logits: list[np.ndarray] = field(default_factory=list)  # (V,) next logits after each step
    _states: list = field(default_factory=list)  # recurrent: hidden state after each step
    _cache: object = None  # transformer: the DynamicCache of `_window`

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def start(cls, loaded, text: str) -> Generation:
        """Read the prompt once (one forward pass); empty text starts from the start token."""
        if loaded.spec.kind not in KINDS:
            raise UserError(f"{loaded.spec.id!r} is a {loaded.spec.kind} model; next-word "
                            "prediction needs a causal or recurrent language model.")
        tok = loaded.tokenizer
        ids = list(tok(text or "", add_special_tokens=False)["input_ids"])
        message = ""
        first = start_id(loaded)
        if first is not None:
            ids = [first] + ids
        elif not ids:
            raise UserError("Type some text first: this model has no start token to begin from.")
        limit = context_limit(loaded)
        if len(ids) > limit:
            message = (f"The text has {len(ids)} tokens but the model reads at most {limit}: "
                       f"only the last {limit} are used.")
            ids = ids[-limit:]
        gen = cls(loaded=loaded, prompt_ids=ids, message=message)
        gen._logits = [gen._recompute(ids)]
        return gen

    # ---- reading ------------------------------------------------------------------------------
    @property
    def ids(self) -> list[int]:
        return self.prompt_ids + [s.id for s in self.steps]

    @property
    def logits(self) -> np.ndarray:
        """(V,) logits of the next token after everything read so far."""
        return self._logits[-1]

    def text(self, generated_only: bool = False) -> str:
        tok = self.loaded.tokenizer
        ids = [s.id for s in self.steps] if generated_only else self.ids
        return tok.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)

    def distribution(self, sampling: SamplingParams = NO_RESHAPING,
                     top: int = 10) -> Distribution:
        """The top `top` tokens of the next-token distribution, raw and reshaped."""
        top = max(1, min(int(top), MAX_TOP_K_SHOWN))
        raw = softmax(self.logits)  # (V,)
        shaped = reshape(self.logits, sampling)  # (V,)
        order = np.argsort(-raw, kind="stable")[:top]
        tok = self.loaded.tokenizer
        return Distribution(ids=[int(i) for i in order],
                            tokens=[token_text(tok, i) for i in order],
                            raw=raw[order].astype(np.float32), shaped=shaped[order].astype(np.float32),
                            entropy_raw=entropy_bits(raw), entropy_shaped=entropy_bits(shaped),
                            kept=int((shaped > 0).sum()), vocab_size=int(raw.shape[0]))

    # ---- stepping -----------------------------------------------------------------------------
    def force(self, token_id: int, sampling: SamplingParams = NO_RESHAPING,
              how: str = "forced") -> Step:
        """Append exactly this token (a click on it), recording its probability."""
        vocab = int(self.logits.shape[0])
        if not 0 <= int(token_id) < vocab:
            raise UserError(f"Token id {token_id} is outside the vocabulary (0..{vocab - 1}).")
        if len(self.steps) >= MAX_STEPS:
            raise UserError(f"That is {MAX_STEPS} generated tokens already: undo or "
                            "start again.")
        raw = softmax(self.logits)
        shaped = reshape(self.logits, sampling)
        step = Step(int(token_id), token_text(self.loaded.tokenizer, token_id),
                    float(raw[token_id]), float(shaped[token_id]), how)
        self._advance(int(token_id))
        self.steps.append(step)
        return step

    def greedy(self) -> Step:
        """Append the most likely token."""
        return self.force(int(np.argmax(self.logits)), SamplingParams(temperature=0.0),
                          how="greedy")

    def sample(self, sampling: SamplingParams = NO_RESHAPING, seed: int | None = None) -> Step:
        """Append a token drawn from the reshaped distribution (reproducible with `seed`)."""
        probs = reshape(self.logits, sampling)
        rng = np.random.default_rng(None if seed is None else [int(seed), len(self.ids)])
        token_id = int(rng.choice(len(probs), p=probs))
        return self.force(token_id, sampling, how="greedy" if sampling.temperature == 0
                          else "sampled")

    def undo(self) -> Step | None:
        """Remove the last generated token and restore the state before it; None if none."""
        if not self.steps:
            return None
        step = self.steps.pop()
        self._logits.pop()  # the distribution before this token was kept: restored exactly
        if self.loaded.spec.kind == "recurrent-lm":
            self._states.pop()
            self._window.pop()
        elif self._window == self.ids + [step.id] and _crop(self._cache, len(self._window) - 1):
            self._window.pop()
        else:  # the window had slid (or the cache cannot be cropped): read the context again
            self._recompute(self.ids[-context_limit(self.loaded):])
        return step

    # ---- internals ----------------------------------------------------------------------------
    def _recompute(self, ids: list[int]) -> np.ndarray:
        """A full forward pass over `ids` (the prompt, or a slid window); returns the (V,) logits
        of the next token and leaves the cache (or hidden state) covering `ids`."""
        import torch

        loaded = self.loaded
        x = torch.tensor([ids], device=loaded.device)  # (1, T)
        with torch.inference_mode():
            if loaded.spec.kind == "recurrent-lm":
                out = loaded.model(x)
                self._states = [out.hidden]
            else:
                out = _forward_last(loaded.model, x)
                self._cache = out.past_key_values
            last = out.logits[0, -1].float().cpu().numpy()  # (V,)
        self._window = list(ids)
        return last

    def _advance(self, token_id: int) -> None:
        """Feed one token, reusing the cache / hidden state of everything before it."""
        import torch

        loaded = self.loaded
        x = torch.tensor([[token_id]], device=loaded.device)  # (1, 1)
        with torch.inference_mode():
            if loaded.spec.kind == "recurrent-lm":
                out = loaded.model(x, hidden=self._states[-1])
                self._states.append(out.hidden)
                self._logits.append(out.logits[0, -1].float().cpu().numpy())  # (V,)
                self._window.append(token_id)
                return
            limit = context_limit(loaded)
            if len(self._window) + 1 > limit:
                window = (self._window + [token_id])[-limit:]
                self.message = (f"The context is full ({limit} tokens): the oldest tokens are "
                                "dropped and the rest is read again.")
                x = torch.tensor([window], device=loaded.device)  # (1, limit)
                out = _forward_last(loaded.model, x)
                self._window = window
            else:
                out = loaded.model(input_ids=x, past_key_values=self._cache, use_cache=True)
                self._window.append(token_id)
            self._cache = out.past_key_values
            self._logits.append(out.logits[0, -1].float().cpu().numpy())  # (V,)


def _forward_last(model, x):
    """A cached forward pass over x (1, T) that scores only the last position: the output layer
    over the whole vocabulary is skipped for the T − 1 positions nobody looks at."""
    try:
        return model(input_ids=x, use_cache=True, logits_to_keep=1)  # logits (1, 1, V)
    except TypeError:  # an architecture without `logits_to_keep`
        return model(input_ids=x, use_cache=True)  # logits (1, T, V)


def context_limit(loaded) -> int:
    """The most tokens the model reads at once."""
    if loaded.spec.kind == "recurrent-lm":
        return int(getattr(loaded.model.config, "max_len", 512) or 512)
    return int(loaded.max_positions)


def _crop(cache, new_length: int) -> bool:
    """Shorten a transformers cache to `new_length` tokens; False when this cache cannot."""
    current = int(cache.get_seq_length())
    if new_length >= current:
        return new_length == current
    try:
        cache.crop(new_length - current)  # transformers 5: a negative count removes tokens
    except (ValueError, TypeError, AttributeError):
        try:
            cache.crop(new_length)  # transformers 4: the length to keep
        except (ValueError, TypeError, AttributeError):
            return False
    return int(cache.get_seq_length()) == new_length


def start(model_id: str, text: str) -> Generation:
    """Load a causal or recurrent model and read `text` into a new `Generation`."""
    from lmdemo.core.models import load

    return Generation.start(load(model_id, kinds=KINDS), text)


def full_recompute_logits(loaded, ids: list[int]) -> np.ndarray:
    """(V,) next-token logits after `ids`, from one uncached forward pass (the reference the
    cached steps are checked and benchmarked against)."""
    import torch

    x = torch.tensor([ids[-context_limit(loaded):]], device=loaded.device)  # (1, T)
    with torch.inference_mode():
        if loaded.spec.kind == "recurrent-lm":
            logits = loaded.model(x).logits  # (1, T, V)
        else:
            logits = loaded.model(input_ids=x, use_cache=False).logits  # (1, T, V)
    return logits[0, -1].float().cpu().numpy()
