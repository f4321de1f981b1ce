"""Induction heads and in-context learning: a random sequence read twice.

The model reads its start token, then `length` random ordinary tokens (seeded; no special or
added tokens, no repeats, each one that decodes to visible text), then the same tokens again.
Nothing in the first copy can be predicted, so its loss is high; a model with induction heads
predicts the second copy from the first ("after A came B last time, so B comes next"), and the loss
drops — learning in context, with no weight changed. `loss_first` and `loss_second` are the mean
losses (nats) over the tokens of each copy. An induction head, at a token of the second copy,
attends to the token that followed the same token in the first copy; its induction score is that
attention weight averaged over the second copy, one number per (layer, head). `induction_scores`
computes it from attention weights alone (so it can be checked on a hand-made pattern).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from lmdemo.core.errors import UserError
from lmdemo.core.registry import CAUSAL_KINDS

KINDS = CAUSAL_KINDS  # the models this works on


@dataclass(frozen=True)
class Limits:
    """Sizes the induction experiment accepts."""

    min_length: int = 2  # shortest random sequence (one token of the second copy has an earlier
    #                      occurrence followed by something only from length 2 on)
    max_length: int = 200  # longest (the model reads 2 * length + 1 tokens, attention kept)
    default_length: int = 50
    top_heads: int = 10  # heads listed as the strongest induction heads


LIMITS = Limits()


@dataclass
class InductionResult:
    """Loss and induction scores of one model on one repeated random sequence."""

    model: str
    length: int  # tokens in one copy
    seed: int
    token_ids: list[int]  # (2 * length + 1,) start token, the copy, the copy again
    tokens: list[str]  # (length,) the copy's tokens, decoded
    losses: list[float]  # (2 * length,) -log p(token) of every token after the start token, nats
    loss_first: float  # mean of losses over the first copy
    loss_second: float  # mean over the second copy
    scores: np.ndarray  # (layers, heads) mean attention from the second copy to the token after
    #                     the earlier occurrence of the same token
    top_heads: list[dict] = field(default_factory=list)  # [{layer, head, score}] highest first

    def rows(self) -> list[dict]:
        """One row per head: the CSV export of the scores."""
        return [{"layer": la, "head": h, "induction_score": float(self.scores[la, h])}
                for la in range(self.scores.shape[0]) for h in range(self.scores.shape[1])]

    def loss_rows(self) -> list[dict]:
        """One row per position of the repeated sequence: the CSV export of the losses."""
        n = len(self.losses) // 2
        return [{"position": i + 1, "copy": 1 if i < n else 2, "loss_nats": float(v)}
                for i, v in enumerate(self.losses)]

    @property
    def text(self) -> str:
        """The repeated sequence as text (the copy twice), e.g. for the Attention page."""
        return "".join(self.tokens) * 2

    def to_json(self) -> dict:
        out = {k: v for k, v in asdict(self).items() if k != "scores"}
        out["scores"] = self.scores.tolist()
        return out


# ----------------------------------------------------------------------------- pure numpy parts

def induction_scores(attentions, length: int) -> np.ndarray:
    """Induction score (layers, heads) from attention weights (layers, heads, T, T), T = 2 *
    length + 1 (start token, copy, copy): for each query q of the second copy (q = length + 1 ..
    2 * length) the weight on key q - length + 1 (the token after q's earlier occurrence),
    averaged over the copy."""
    attn = np.asarray(attentions, dtype=np.float64)  # (L, H, T, T)
    if attn.ndim != 4 or attn.shape[-1] != attn.shape[-2] or attn.shape[-1] != 2 * length + 1:
        raise ValueError(f"attentions of shape {attn.shape} do not fit a sequence of 2 x {length}"
                         " tokens after a start token")
    q = np.arange(length + 1, 2 * length + 1)  # (n,) queries: the second copy
    return attn[:, :, q, q - length + 1].mean(axis=-1)  # (L, H)


def token_losses(logits: np.ndarray, ids) -> np.ndarray:
    """-log p(ids[j] | ids[:j]) for j = 1..T-1, from the logits (T, V) of one forward."""
    z = np.asarray(logits, dtype=np.float64)[:-1]  # (T-1, V)
    z = z - z.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(z).sum(axis=1))  # (T-1,)
    targets = np.asarray(ids[1:])
    return log_norm - z[np.arange(len(targets)), targets]  # (T-1,)


def _top(scores: np.ndarray, k: int) -> list[dict]:
    order = np.argsort(-scores, axis=None, kind="stable")[:k]
    return [{"layer": int(i // scores.shape[1]), "head": int(i % scores.shape[1]),
             "score": float(scores.flat[i])} for i in order]


# ----------------------------------------------------------------------------- the model

def check_length(length, limit: int = LIMITS.max_length) -> int:
    try:
        value = int(length)
    except (TypeError, ValueError):
        raise UserError(f"The length must be a whole number, not {length!r}.") from None
    if value != length and not isinstance(length, str):
        raise UserError(f"The length must be a whole number, not {length!r}.")
    if not LIMITS.min_length <= value <= limit:
        raise UserError(f"The length must be between {LIMITS.min_length} and {limit} tokens "
                        f"(got {value}).")
    return value


def _ordinary(tokenizer, seed: int, n: int) -> list[int]:
    """n distinct ordinary token ids in a seeded random order: no special or added tokens, and
    each one decodes to visible text of its own."""
    skip = set(tokenizer.all_special_ids) | {int(i) for i in
                                             getattr(tokenizer, "added_tokens_decoder", {})}
    vocab = len(tokenizer)
    order = np.random.default_rng(seed).permutation(vocab)
    out: list[int] = []
    for start in range(0, vocab, 4 * n):
        chunk = [int(i) for i in order[start:start + 4 * n] if int(i) not in skip]
        texts = tokenizer.batch_decode([[i] for i in chunk], clean_up_tokenization_spaces=False)
        out += [i for i, t in zip(chunk, texts, strict=True)
                if t.strip() and t.isprintable() and "\ufffd" not in t]
        if len(out) >= n:
            return out[:n]
    raise UserError(f"This model's vocabulary has only {len(out)} ordinary tokens; pick a length "
                    f"of at most {len(out)}.")


def repeated_sequence(loaded, length: int, seed: int = 0) -> list[int]:
    """[start] + a seeded random copy of `length` ordinary tokens + the same copy again."""
    from lmdemo.lab.next_token import context_limit, start_id

    first = start_id(loaded)
    if first is None:
        raise UserError(f"{loaded.spec.id!r} has no start token to read the sequence after.")
    limit = min(LIMITS.max_length, (context_limit(loaded) - 1) // 2)
    length = check_length(length, limit)
    copy = _ordinary(loaded.tokenizer, int(seed), length)
    return [first] + copy + copy


def induction_of(loaded, length: int = LIMITS.default_length, seed: int = 0) -> InductionResult:
    """`induction` for an already loaded model."""
    import torch

    from lmdemo.lab.anatomy import anatomy
    from lmdemo.lab.next_token import token_texts

    if loaded.spec.kind not in KINDS:
        raise UserError(f"{loaded.spec.id!r} is not a causal transformer: induction heads are "
                        "attention heads. Pick smollm2 or tiny-gpt.")
    anatomy(loaded.model)  # a GPT-2- or Llama-style transformer, or a UserError
    try:
        seed = int(seed)
    except (TypeError, ValueError):
        raise UserError(f"The seed must be a whole number, not {seed!r}.") from None
    ids = repeated_sequence(loaded, length, seed)
    n = (len(ids) - 1) // 2
    x = torch.tensor([ids], dtype=torch.long, device=loaded.device)  # (1, 2n + 1)
    with torch.inference_mode():
        out = loaded.model(input_ids=x, use_cache=False, output_attentions=True)
        if not out.attentions or any(a is None for a in out.attentions):
            raise UserError("This model returns no attention weights (load it with eager "
                            "attention).")
        attn = torch.stack([a[0] for a in out.attentions]).float()  # (L, H, T, T)
        q = torch.arange(n + 1, 2 * n + 1, device=attn.device)  # (n,) second-copy queries
        scores = attn[:, :, q, q - n + 1].mean(-1).double().cpu().numpy()  # (L, H)
        logits = out.logits[0].float().cpu().numpy()  # (T, V)
    losses = token_losses(logits, ids)  # (2n,)
    return InductionResult(
        model=loaded.spec.id, length=n, seed=seed, token_ids=[int(i) for i in ids],
        tokens=token_texts(loaded.tokenizer, ids[1:n + 1]), losses=[float(v) for v in losses],
        loss_first=float(losses[:n].mean()), loss_second=float(losses[n:].mean()),
        scores=scores, top_heads=_top(scores, LIMITS.top_heads))


def induction(model_id: str, length: int = LIMITS.default_length,
              seed: int = 0) -> InductionResult:
    """Read a seeded random sequence of `length` tokens twice: per-token loss (first copy versus
    second) and each head's induction score (layers x heads)."""
    from lmdemo.core.models import load

    return induction_of(load(model_id, kinds=KINDS), length, seed)
