"""The logit lens: what a causal transformer would predict if it stopped after each layer.

A transformer keeps one vector per position, the residual stream; each block adds to it. The lens
takes the stream at every depth — index 0 is the embedding output (the input of block 0), index
l the output of block l, index L the output of the last block — and reads it as the model reads
its final state: the final norm, then the unembedding (the LM head), then a softmax. The result
is the most likely next token at every (depth, position), and optionally the probability of one
pinned token (say " Paris") at every depth. The last row is the model's own prediction.

The stream is captured with forward hooks on the blocks (`residual_stream`), not with
`output_hidden_states`, whose last entry transformers already passes through the final norm.
A recurrent LM (tiny-lstm, tiny-gru, tiny-rnn) has no stack of blocks to read: its lens is one
row, its prediction at every step. An encoder predicts no next token and is refused.
`lens(model_id, text, pin)` loads through lmdemo.core.models; `lens_of(loaded, text, pin)` takes a
loaded model (tests use tiny random ones). Activation patching (`lmdemo.lab.patching`) reuses the
hooks here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmdemo.core.errors import UserError
from lmdemo.core.registry import LM_KINDS
from lmdemo.lab.anatomy import anatomy, thread_hooks
from lmdemo.lab.next_token import encode, token_texts

KINDS = LM_KINDS  # models whose predictions the lens reads


@dataclass(frozen=True)
class LensLimits:
    """How much text the lens reads."""

    max_tokens: int = 128  # tokens read, the start token included (the grid is depth x tokens)


LIMITS = LensLimits()


@dataclass
class Pinned:
    """One token followed through the depths."""

    token: str  # the pinned text, exactly one token of this model
    id: int
    probs: np.ndarray  # (depths, T) its probability at every depth and position
    ranks: np.ndarray  # (depths, T) its rank there (0 = the most likely token)

    def at(self, position: int = -1) -> np.ndarray:
        """(depths,) its probability at every depth, at one position (default: the last)."""
        return self.probs[:, _position(position, self.probs.shape[1])]


@dataclass
class LensResult:
    """The lens over one text: the top next token at every depth and position."""

    model: str
    text: str
    kind: str  # "transformer" (one row per depth) or "recurrent" (one row: its prediction)
    tokens: list[str]  # (T,) the tokens read, the start token first when the model has one
    token_ids: list[int]  # (T,)
    depths: list[str]  # (depths,) row labels: "embedding", "layer 1", ..., "layer L" / "output"
    top_ids: np.ndarray  # (depths, T) int: the most likely next token at each depth and position
    top_tokens: list[list[str]]  # (depths, T) those tokens as text
    top_probs: np.ndarray  # (depths, T) their probabilities
    pinned: Pinned | None = None  # the pinned token's curve, when one was asked for
    message: str = ""

    def pinned_curve(self, position: int = -1) -> np.ndarray:
        """(depths,) the pinned token's probability at every depth at one position."""
        if self.pinned is None:
            raise UserError("No token is pinned: give one (e.g. \" Paris\") to follow it.")
        return self.pinned.at(position)

    def first_top(self, token_id: int, position: int = -1) -> int | None:
        """The first depth from which `token_id` stays the top token at `position`, or None."""
        column = self.top_ids[:, _position(position, self.top_ids.shape[1])]
        below = np.nonzero(column != token_id)[0]
        first = 0 if len(below) == 0 else int(below[-1]) + 1
        return first if first < len(column) else None

    def rows(self) -> list[dict]:
        """One row per (depth, position): the CSV export."""
        return [{"depth": d, "position": t, "after": self.tokens[t], "top_token": self.top_tokens[i][t],
                 "top_id": int(self.top_ids[i, t]), "prob": float(self.top_probs[i, t])}
                for i, d in enumerate(self.depths) for t in range(len(self.tokens))]

    def to_json(self) -> dict:
        out = {"model": self.model, "text": self.text, "kind": self.kind, "tokens": self.tokens,
               "token_ids": self.token_ids, "depths": self.depths,
               "top": [[{"token": t, "id": int(i), "prob": float(p)}
                        for t, i, p in zip(tokens, ids, probs, strict=True)]
                       for tokens, ids, probs in zip(self.top_tokens, self.top_ids,
                                                     self.top_probs, strict=True)],
               "message": self.message}
        if self.pinned is not None:
            out["pin"] = {"token": self.pinned.token, "id": self.pinned.id,
                          "position": len(self.tokens) - 1,
                          "probs": [float(p) for p in self.pinned.at(-1)],
                          "ranks": [int(r) for r in self.pinned.ranks[:, -1]],
                          "probs_all": self.pinned.probs.tolist(),
                          "first_top": self.first_top(self.pinned.id)}
        return out


def a_kind(kind: str) -> str:
    """A model kind with its article: "an encoder", "a classifier"."""
    return ("an " if kind[:1] in "aeiou" else "a ") + kind


def _position(position: int, size: int) -> int:
    if not isinstance(position, (int, np.integer)) or not -size <= position < size:
        raise UserError(f"Position {position!r} does not exist: the text has {size} tokens "
                        f"(0 to {size - 1}, or negative from the end).")
    return int(position) % size


# ----------------------------------------------------------------------------- checks

def check_model(loaded, what: str = "The logit lens") -> None:
    """A UserError unless `loaded` predicts next tokens (a causal or recurrent LM)."""
    kind = loaded.spec.kind
    if kind not in KINDS:
        raise UserError(f"{what} reads a language model's next-token predictions; "
                        f"{loaded.spec.id!r} is {a_kind(kind)}, which predicts no next token. "
                        "Pick a causal model such as smollm2 or tiny-gpt.")


def single_token(loaded, text: str, what: str = "The pinned token") -> int:
    """The id of `text` when the model reads it as exactly one token, else a UserError that says
    how it splits and what to try instead."""
    if not isinstance(text, str) or not text:
        raise UserError(f"{what} is empty: give one token, e.g. \" Paris\" (with its space).")
    ids = list(loaded.tokenizer(text, add_special_tokens=False)["input_ids"])
    if len(ids) == 1:
        return int(ids[0])
    parts = token_texts(loaded.tokenizer, ids)
    hint = ""
    if not text.startswith(" "):
        spaced = loaded.tokenizer(" " + text, add_special_tokens=False)["input_ids"]
        if len(spaced) == 1:
            hint = f" With a space in front, {' ' + text!r} is one token: try that."
    if not hint and parts:
        hint = f" Try its first piece, {parts[0]!r}."
    raise UserError(f"{what} must be exactly one token of {loaded.spec.id!r}, but {text!r} is "
                    f"{len(ids)}: {' + '.join(repr(p) for p in parts)}.{hint}")


def read_ids(loaded, text: str, max_tokens: int = LIMITS.max_tokens) -> tuple[list[int], str]:
    """The ids the model reads for `text` (through the next-token engine's `encode`), within
    `max_tokens`, and the engine's message."""
    ctx = encode(loaded, text)
    if len(ctx.ids) > max_tokens:
        raise UserError(f"The text is {len(ctx.ids)} tokens (with the start token); this view "
                        f"reads at most {max_tokens}. Shorten it.")
    return ctx.ids, ctx.message


# ----------------------------------------------------------------------------- the stream

def hidden_of(output):
    """The hidden states a block returned (a tensor, or the first item of a tuple)."""
    return output[0] if isinstance(output, tuple) else output


def residual_stream(loaded, ids: list[int]):
    """The residual stream at every depth for one text: a tensor (L+1, T, d) on the model's
    device and dtype — row 0 the input of block 0, row l the output of block l. One forward pass,
    captured by hooks that are removed before returning."""
    import torch

    parts = anatomy(loaded.model)
    states: list = [None] * (parts.n_layers + 1)

    def keep_input(module, args, kwargs):
        states[0] = (args[0] if args else kwargs["hidden_states"]).detach()

    def keep_output(index):
        def hook(module, args, output):
            states[index] = hidden_of(output).detach()
        return hook

    x = torch.tensor([ids], dtype=torch.long, device=loaded.device)  # (1, T)
    hooks = [(parts.blocks[0], "pre", keep_input, True)]
    hooks += [(b, "post", keep_output(i + 1), False) for i, b in enumerate(parts.blocks)]
    with thread_hooks(*hooks), torch.inference_mode():
        loaded.model(input_ids=x, use_cache=False)
    return torch.stack([s[0] for s in states])  # (L+1, T, d)


def read_out(loaded, states):
    """Logits (..., V) as float32 of residual-stream vectors (..., d): final norm, then the
    unembedding — exactly what the model does to the output of its last block."""
    import torch

    parts = anatomy(loaded.model)
    with torch.inference_mode():
        return parts.unembed(parts.final_norm(states)).float()


# ----------------------------------------------------------------------------- services

def lens(model_id: str, text: str, pin: str | None = None) -> LensResult:
    """The logit lens of `text` under a causal or recurrent LM (loaded through core.models)."""
    from lmdemo.core.models import load
    from lmdemo.core.registry import get_spec

    spec = get_spec(model_id)
    if spec.source != "hub" and spec.kind not in KINDS:
        raise UserError(f"The logit lens reads a language model's next-token predictions; "
                        f"{spec.id!r} is {a_kind(spec.kind)}, which predicts no next token. Pick a "
                        "causal model such as smollm2 or tiny-gpt.")
    return lens_of(load(spec.id, kinds=KINDS), text, pin)


def lens_of(loaded, text: str, pin: str | None = None) -> LensResult:
    """The logit lens of `text` under an already loaded model."""
    import torch

    check_model(loaded)
    pin_id = single_token(loaded, pin) if pin else None
    ids, message = read_ids(loaded, text)
    if loaded.spec.kind == "recurrent-lm":
        x = torch.tensor([ids], dtype=torch.long, device=loaded.device)  # (1, T)
        with torch.inference_mode():
            rows = [loaded.model(x).logits[0].float()]  # [(T, V)]: one row, its prediction
        depths, kind = ["output"], "recurrent"
    else:
        parts = anatomy(loaded.model)
        states = residual_stream(loaded, ids)  # (L+1, T, d)
        rows = (read_out(loaded, s) for s in states)  # one (T, V) at a time: memory stays small
        depths = ["embedding"] + [f"layer {i + 1}" for i in range(parts.n_layers)]
        kind = "transformer"
    tops, pins = [], []
    with torch.inference_mode():
        for logits in rows:  # (T, V)
            probs = torch.softmax(logits, dim=-1)  # (T, V)
            tops.append(probs.max(dim=-1))
            if pin_id is not None:
                own = logits[:, pin_id]  # (T,)
                pins.append((probs[:, pin_id], (logits > own.unsqueeze(-1)).sum(-1)))
        top_p = torch.stack([p for p, _ in tops])  # (depths, T)
        top_i = torch.stack([i for _, i in tops])  # (depths, T)
        pinned = None
        if pin_id is not None:
            pinned = Pinned(pin, pin_id,
                            torch.stack([p for p, _ in pins]).cpu().numpy().astype(np.float64),
                            torch.stack([r for _, r in pins]).cpu().numpy().astype(np.int64))
    top_ids = top_i.cpu().numpy().astype(np.int64)  # (depths, T)
    texts = token_texts(loaded.tokenizer, top_ids.reshape(-1))
    width = len(ids)
    return LensResult(
        model=loaded.spec.id, text=text, kind=kind, tokens=token_texts(loaded.tokenizer, ids),
        token_ids=[int(i) for i in ids], depths=depths, top_ids=top_ids,
        top_tokens=[texts[r * width:(r + 1) * width] for r in range(len(depths))],
        top_probs=top_p.cpu().numpy().astype(np.float64), pinned=pinned, message=message)
