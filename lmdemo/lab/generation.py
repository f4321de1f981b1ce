"""Step-by-step generation on top of the next-token engine: token ids in, token ids out.

A `Generation` is a prompt's token ids plus the tokens appended so far (`Step`s: the id, how it was
chosen and its probability). It holds no cache and no vocabulary-sized array: the next-token
logits come from `lmdemo.lab.next_token.logits_after`, which remembers recent prompts and keeps
the model's memory of them (cached keys and values, or a recurrent hidden state) between calls, so
appending one token costs one forward step on that token. Tokens are appended by force (a click:
branching), by sampling from the distribution reshaped by temperature / top-k / top-p (seeded, so
a link replays the same draw), or greedily; `undo` removes the last one and gives back the
distribution before it. When the text outgrows the model's context the oldest tokens are dropped
(the window slides) and the user is told. A page keeps only the model id, the text and the steps
— a few numbers per token — and rebuilds its `Generation` on every rerun at no cost.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from lmdemo.core.errors import UserError
from lmdemo.core.messages import Message
from lmdemo.lab.next_token import (
    LIMITS,
    LM_KINDS,
    all_logits,
    encode,
    logits_after,
    reshape,
    token_texts,
    top_ids,
    window,
)
from lmdemo.lab.sampling import SamplingParams, entropy, softmax

NO_RESHAPING = SamplingParams()  # temperature 1, no top-k, no top-p
MAX_STEPS = 4096  # generated tokens one Generation holds at most
ACTIONS = ("force", "greedy", "sample", "undo", "reset")


def entropy_bits(probs: np.ndarray) -> float:
    """Shannon entropy of a distribution, in bits."""
    return max(0.0, entropy(np.asarray(probs, dtype=np.float64)) / math.log(2))


def token_text(tokenizer, token_id: int) -> str:
    """How one token reads on its own (byte-level pieces may decode to a replacement char)."""
    return token_texts(tokenizer, [token_id])[0]


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
    """A prompt plus generated tokens: ids only; the model is looked up, never kept elsewhere."""

    loaded: object  # lmdemo.core.models.Loaded (the process's shared, cached model)
    prompt_ids: list[int]
    steps: list[Step] = field(default_factory=list)
    message: str = ""  # what the user should know (truncation, sliding window)

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def start(cls, loaded, text: str, steps: list[Step] | None = None) -> Generation:
        """The prompt as the model reads it (one forward pass the first time, none after)."""
        if loaded.spec.kind not in LM_KINDS:
            raise UserError(f"{loaded.spec.id!r} is a {loaded.spec.kind} model; next-word "
                            "prediction needs a causal or recurrent language model.")
        ctx = encode(loaded, text or "")
        gen = cls(loaded=loaded, prompt_ids=ctx.ids, steps=list(steps or []), message=ctx.message)
        gen.logits  # noqa: B018 - read the prompt now, so errors show where the prompt is typed
        return gen

    # ---- reading ------------------------------------------------------------------------------
    @property
    def ids(self) -> list[int]:
        return self.prompt_ids + [s.id for s in self.steps]

    @property
    def logits(self) -> np.ndarray:
        """(V,) logits of the next token after everything read so far (the window that fits)."""
        ids, message = window(self.loaded, self.ids)
        if message and self.steps:
            self.message = Message("context-full", n=len(ids))
        return logits_after(self.loaded, ids)

    def text(self, generated_only: bool = False) -> str:
        tok = self.loaded.tokenizer
        ids = [s.id for s in self.steps] if generated_only else self.ids
        return tok.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)

    def tokens(self) -> list[str]:
        """Each token read so far (start token, prompt, generated), as it reads on its own."""
        return token_texts(self.loaded.tokenizer, self.ids)

    def prompt_text(self) -> str:
        return self.loaded.tokenizer.decode(self.prompt_ids, skip_special_tokens=True,
                                            clean_up_tokenization_spaces=False)

    def distribution(self, sampling: SamplingParams = NO_RESHAPING,
                     top: int = 10) -> Distribution:
        """The top `top` tokens of the next-token distribution, raw and reshaped."""
        top = max(1, min(int(top), LIMITS.max_show))
        logits = self.logits
        raw = softmax(logits)  # (V,)
        shaped = reshape(logits, sampling)  # (V,)
        order = top_ids(raw, top)
        return Distribution(ids=[int(i) for i in order],
                            tokens=token_texts(self.loaded.tokenizer, order),
                            raw=raw[order].astype(np.float32),
                            shaped=shaped[order].astype(np.float32),
                            entropy_raw=entropy_bits(raw), entropy_shaped=entropy_bits(shaped),
                            kept=int((shaped > 0).sum()), vocab_size=int(raw.shape[0]))

    # ---- stepping -----------------------------------------------------------------------------
    def force(self, token_id: int, sampling: SamplingParams = NO_RESHAPING,
              how: str = "forced") -> Step:
        """Append exactly this token (a click on it), recording its probability."""
        logits = self.logits
        vocab = int(logits.shape[0])
        if not 0 <= int(token_id) < vocab:
            raise UserError(f"Token id {token_id} is outside the vocabulary (0..{vocab - 1}).")
        if len(self.steps) >= MAX_STEPS:
            raise UserError(f"That is {MAX_STEPS} generated tokens already: undo or "
                            "start again.")
        step = Step(int(token_id), token_text(self.loaded.tokenizer, token_id),
                    float(softmax(logits)[token_id]), float(reshape(logits, sampling)[token_id]),
                    how)
        self.steps.append(step)
        self.logits  # noqa: B018 - one cached forward step on the new token, now
        return step

    def greedy(self) -> Step:
        """Append the most likely token."""
        return self.force(int(np.argmax(self.logits)), SamplingParams(temperature=0.0),
                          how="greedy")

    def sample(self, sampling: SamplingParams = NO_RESHAPING, seed: int | None = None) -> Step:
        """Append a token drawn from the reshaped distribution (reproducible with `seed`: the same
        seed at the same position draws the same token)."""
        probs = reshape(self.logits, sampling)
        rng = np.random.default_rng(None if seed is None else [int(seed), len(self.ids)])
        token_id = int(rng.choice(len(probs), p=probs))
        return self.force(token_id, sampling, how="greedy" if sampling.temperature == 0
                          else "sampled")

    def undo(self) -> Step | None:
        """Remove the last generated token; the distribution before it comes back (remembered,
        or read again). None when there is nothing to undo."""
        return self.steps.pop() if self.steps else None

    def act(self, action: str, sampling: SamplingParams = NO_RESHAPING, token: int = 0,
            times: int = 1, seed: int = 0) -> None:
        """One user action: force `token`, `times` greedy or sampled tokens, undo, or reset."""
        if action not in ACTIONS:
            raise UserError(f"Unknown action {action!r}: use one of {', '.join(ACTIONS)}.")
        if action == "force":
            self.force(token, sampling)
        elif action == "reset":
            self.steps.clear()
        elif action == "undo":
            self.undo()
        for _ in range(times if action in ("greedy", "sample") else 0):
            self.greedy() if action == "greedy" else self.sample(sampling, seed=seed)

    def replay(self, token_ids: list[int], sampling: SamplingParams = NO_RESHAPING) -> None:
        """Append tokens kept in a link (stops quietly at the first that is not valid)."""
        for token in token_ids[:MAX_STEPS]:
            try:
                self.force(int(token), sampling)
            except (UserError, ValueError):
                break


def start(model_id: str, text: str) -> Generation:
    """Load a causal or recurrent model and read `text` into a new `Generation`."""
    from lmdemo.core.models import load

    return Generation.start(load(model_id, kinds=LM_KINDS), text)


def full_recompute_logits(loaded, ids: list[int]) -> np.ndarray:
    """(V,) next-token logits after `ids` from one uncached pass over the window that fits (the
    reference the cached steps are checked and benchmarked against)."""
    return all_logits(loaded, window(loaded, ids)[0])[-1]
