"""Position ablation: what a causal language model does when its position information is broken.

The model reads the same tokens twice: once with the normal position ids 0, 1, 2, ... and once
with broken ones — all zero (every token claims to be first, so the prefix becomes a bag of words),
shuffled (a seeded permutation) or reversed. We compare the next-token distribution at the last
token (top tokens before/after, KL divergence in nats), the KL at every position, and one
attention head's weights before and after. On GPT-2 style models the position ids pick rows of the
learned table; on Llama-style ones (SmolLM2) they set the RoPE angles. `ablate(model_id, ...)`
loads through lmdemo.core.models and, for models whose registry entry names a start token (SmolLM2's
<|endoftext|>), reads the text after it, as the next-token service does; `ablate_model(model,
tokenizer, ...)` takes an already loaded model (tests use tiny random ones).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmdemo.core.errors import UserError
from lmdemo.core.registry import CAUSAL_KINDS

MODES = ("zeros", "shuffle", "reverse")
KINDS = CAUSAL_KINDS  # the models this works on


@dataclass(frozen=True)
class Limits:
    """Sizes the ablation accepts, and the model it falls back to."""

    max_tokens: int = 128  # longest text ablated (the attention maps are T x T)
    max_index: int = 63  # largest layer/head a page's number box takes (the model checks its own)
    fallback_model: str = "tiny-gpt"  # ablated when the rotary model has not been fetched


LIMITS = Limits()
MAX_TOKENS = LIMITS.max_tokens


def default_model() -> str:
    """The rotary model (SmolLM2) when it is fetched, else the shipped tiny-gpt."""
    from lmdemo.lab.rotary import REAL_MODEL, real_model_ready

    return REAL_MODEL if real_model_ready() else LIMITS.fallback_model


def any_model_installed() -> bool:
    """Whether any causal language model can be ablated here (registry only; loads nothing)."""
    from lmdemo.core.registry import specs_of_kind

    return bool(specs_of_kind(*KINDS))


@dataclass
class AblationResult:
    """Before/after numbers of one ablation; plain numbers only."""

    model_id: str
    mode: str
    tokens: list[str]  # (T,) the input tokens as text, the start token first when one is read
    position_ids: list[int]  # (T,) the broken position ids fed in (the start token's included)
    top_before: list[tuple[str, float]]  # next token after the last one: (token, probability)
    top_after: list[tuple[str, float]]
    kl: float  # KL(before || after) of the last position's next-token distribution, nats
    kl_per_position: list[float]  # (T,) the same at every position
    attention_before: np.ndarray  # (T, T) one head, rows = query tokens
    attention_after: np.ndarray  # (T, T)
    layer: int
    head: int
    n_layers: int
    n_heads: int


def broken_positions(mode: str, n: int, seed: int = 0) -> list[int]:
    """The position ids used instead of 0..n-1."""
    if mode == "zeros":
        return [0] * n
    if mode == "shuffle":
        return [int(i) for i in np.random.default_rng(seed).permutation(n)]
    if mode == "reverse":
        return list(range(n - 1, -1, -1))
    raise UserError(f"Unknown ablation {mode!r}: use one of {', '.join(MODES)}.")


def _token_text(tokenizer, token_id: int) -> str:
    text = tokenizer.decode([int(token_id)])
    return text if text.strip() else repr(text)


def _top(tokenizer, probs: np.ndarray, k: int) -> list[tuple[str, float]]:
    order = np.argsort(-probs, kind="stable")[:k]
    return [(_token_text(tokenizer, i), float(probs[i])) for i in order]


def ablate_model(model, tokenizer, text: str, mode: str = "zeros", layer: int = 0, head: int = 0,
                 seed: int = 0, top_k: int = 10, model_id: str = "",
                 start: int | None = None) -> AblationResult:
    """Run a loaded causal LM with normal and broken position ids and compare. With `start` the
    text is read after that token (which gets a broken position id like every other token)."""
    import torch

    ids = list(tokenizer(text or "", add_special_tokens=False)["input_ids"])
    if len(ids) < 2:
        raise UserError("Type a text of at least 2 tokens: a single token has no order to break.")
    if start is not None:
        ids = [int(start)] + ids
    limit = min(MAX_TOKENS, int(getattr(model.config, "n_positions", 0)
                                or getattr(model.config, "max_position_embeddings", 0)
                                or MAX_TOKENS))
    if len(ids) > limit:
        raise UserError(f"The text is {len(ids)} tokens long; this panel takes at most {limit}. "
                        "Shorten it.")
    n_layers = int(model.config.num_hidden_layers)
    n_heads = int(model.config.num_attention_heads)
    if not (0 <= layer < n_layers and 0 <= head < n_heads):
        raise UserError(f"Layer must be 0..{n_layers - 1} and head 0..{n_heads - 1}.")
    broken = broken_positions(mode, len(ids), seed)
    device = next(model.parameters()).device
    input_ids = torch.tensor([ids], device=device)  # (1, T)
    normal = torch.arange(len(ids), device=device)[None]  # (1, T)
    changed = torch.tensor([broken], device=device)  # (1, T)
    with torch.inference_mode():
        runs = [model(input_ids=input_ids, position_ids=p, output_attentions=True)
                for p in (normal, changed)]
    logp = [torch.log_softmax(r.logits[0].float(), dim=-1) for r in runs]  # 2 x (T, V)
    kl = (logp[0].exp() * (logp[0] - logp[1])).sum(-1).clamp_min(0)  # (T,)
    probs = [lp[-1].exp().cpu().numpy() for lp in logp]  # 2 x (V,)
    attn = [r.attentions[layer][0, head].float().cpu().numpy() for r in runs]  # 2 x (T, T)
    return AblationResult(
        model_id=model_id, mode=mode, tokens=[_token_text(tokenizer, i) for i in ids],
        position_ids=broken, top_before=_top(tokenizer, probs[0], top_k),
        top_after=_top(tokenizer, probs[1], top_k), kl=float(kl[-1]),
        kl_per_position=[float(x) for x in kl.cpu()], attention_before=attn[0],
        attention_after=attn[1], layer=layer, head=head, n_layers=n_layers, n_heads=n_heads)


def ablate(model_id: str, text: str, mode: str = "zeros", layer: int = 0, head: int = 0,
           seed: int = 0, top_k: int = 10) -> AblationResult:
    """Load a causal LM by id and ablate its positions (see `ablate_model`)."""
    from lmdemo.core.models import load
    from lmdemo.core.registry import get_spec

    spec = get_spec(model_id)
    if spec.kind == "recurrent-lm":
        raise UserError(f"{spec.id!r} is recurrent: it has no position ids to break. Pick "
                        "tiny-gpt.")
    loaded = load(model_id, kinds=("causal-lm",))
    if loaded.spec.kind != "causal-lm":
        raise UserError(f"{spec.id!r} is not a causal language model.")
    return ablate_loaded(loaded, text, mode, layer, head, seed, top_k)


def ablate_loaded(loaded, text: str, mode: str = "zeros", layer: int = 0, head: int = 0,
                  seed: int = 0, top_k: int = 10) -> AblationResult:
    """`ablate_model` on an lmdemo `Loaded`: the text is read after the registry's start token
    when it names one (SmolLM2), and as it is otherwise (tiny-gpt keeps its numbers)."""
    from lmdemo.lab.next_token import start_id

    start = start_id(loaded) if getattr(loaded.spec, "start_token", "") else None
    return ablate_model(loaded.model, loaded.tokenizer, text, mode, layer, head, seed, top_k,
                        model_id=loaded.spec.id, start=start)
