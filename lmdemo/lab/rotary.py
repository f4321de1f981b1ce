"""Rotary position embeddings (RoPE, Su et al. 2021) as numbers.

RoPE does not add anything to a token's vector: it turns each pair of query/key coordinates
(x_2i, x_2i+1) by the angle pos·θ_i, θ_i = base^(-2i/d). A rotation by m·θ on the query and n·θ
on the key leaves their dot product depending on n - m only, so attention scores see relative
offsets. This module rotates vectors (interleaved pairs, as in the RoFormer paper), traces one
pair as it turns with position, and measures how far q·k drifts across absolute positions for a
fixed offset — next to the additive sinusoidal encoding, where it does drift (`rotary_view`, one
result for the page's panel), and measures the same on a real model's own q and k (`measure`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmdemo.core.errors import UserError
from lmdemo.lab.positional import LIMITS as ENCODING_LIMITS
from lmdemo.lab.positional import check_sizes, frequencies, sinusoidal


def angles(length: int, d_model: int, base: float = ENCODING_LIMITS.base) -> np.ndarray:
    """pos·θ_i for every position and pair: (length, d/2)."""
    length, d_model = check_sizes(length, d_model)
    return np.arange(length, dtype=np.float64)[:, None] * frequencies(d_model, base)


def table(length: int, d_model: int) -> np.ndarray:
    """The rotation table, rows = positions: [cos(pos·θ_0), sin(pos·θ_0), cos(pos·θ_1), ...]."""
    a = angles(length, d_model)  # (N, d/2)
    out = np.empty((a.shape[0], 2 * a.shape[1]))
    out[:, 0::2], out[:, 1::2] = np.cos(a), np.sin(a)
    return out


LAYOUTS = ("interleaved", "half")  # RoFormer's pairs (2i, 2i+1); transformers' (i, i + d/2)


def _pair_slices(d: int, layout: str) -> tuple[slice, slice]:
    if layout == "interleaved":
        return slice(0, d, 2), slice(1, d, 2)
    if layout == "half":
        return slice(0, d // 2), slice(d // 2, d)
    raise UserError(f"Unknown rotary layout {layout!r}: use one of {', '.join(LAYOUTS)}.")


def rotate(x: np.ndarray, positions: np.ndarray, base: float = ENCODING_LIMITS.base,
           layout: str = "interleaved") -> np.ndarray:
    """Rotate each row x[t] by its position: (T, d) -> (T, d). Pair i is (x_2i, x_2i+1) in the
    "interleaved" layout, (x_i, x_{i+d/2}) in the "half" layout of transformers' rotate_half."""
    x = np.asarray(x, dtype=np.float64)
    positions = np.asarray(positions, dtype=np.float64)
    a = positions[:, None] * frequencies(x.shape[1], base)  # (T, d/2)
    c, s = np.cos(a), np.sin(a)
    first, second = _pair_slices(x.shape[1], layout)
    even, odd = x[:, first], x[:, second]  # (T, d/2) each
    out = np.empty_like(x)
    out[:, first] = even * c - odd * s
    out[:, second] = even * s + odd * c
    return out


def pair_path(length: int, d_model: int, pair: int, start=(1.0, 0.0)) -> np.ndarray:
    """Where one 2-D pair (x_2i, x_2i+1) = start ends up at each position: (length, 2)."""
    length, d_model = check_sizes(length, d_model)
    if not 0 <= pair < d_model // 2:
        raise UserError(f"The pair index must be between 0 and {d_model // 2 - 1} (got {pair}).")
    x = np.zeros((length, d_model))
    x[:, 2 * pair:2 * pair + 2] = start
    return rotate(x, np.arange(length))[:, 2 * pair:2 * pair + 2]


class OffsetStats:
    """Properties shared by results holding (N, N) `scores` and per-offset deviations."""

    @property
    def offsets(self) -> np.ndarray:
        n = self.scores.shape[0]
        return np.arange(-(n - 1), n)

    @property
    def max_deviation(self) -> float:
        return float(self.deviation.max())

    @property
    def max_additive_deviation(self) -> float:
        return float(self.additive_deviation.max())


@dataclass
class RelativeCheck(OffsetStats):
    """q·k for one query and one key placed at every pair of positions."""

    scores: np.ndarray  # (N, N) RoPE: rot(q, m)·rot(k, n), rows m = query position
    additive: np.ndarray  # (N, N) the same with the sinusoidal encoding added instead
    by_offset: np.ndarray  # (2N-1,) RoPE score for each offset n - m, from -(N-1) to N-1
    deviation: np.ndarray  # (2N-1,) RoPE: max - min of the score over m at that offset
    additive_deviation: np.ndarray  # (2N-1,) the same for the additive encoding


def _diagonals(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = m.shape[0]
    diags = [np.diagonal(m, offset=int(k)) for k in range(-(n - 1), n)]
    return np.array([d[0] for d in diags]), np.array([d.max() - d.min() for d in diags])


def relative_check(length: int, d_model: int, seed: int = 0) -> RelativeCheck:
    """Place a random query q and key k at every (m, n) and compare the scores along offsets."""
    length, d_model = check_sizes(length, d_model)
    rng = np.random.default_rng(seed)
    q, k = rng.standard_normal(d_model), rng.standard_normal(d_model)  # (d,) each
    pos = np.arange(length)
    rq = rotate(np.tile(q, (length, 1)), pos)  # (N, d) q at every position
    rk = rotate(np.tile(k, (length, 1)), pos)  # (N, d)
    scores = rq @ rk.T  # (N, N)
    pe = sinusoidal(length, d_model)  # (N, d)
    additive = (q + pe) @ (k + pe).T  # (N, N)
    by_offset, deviation = _diagonals(scores)
    _, add_dev = _diagonals(additive)
    return RelativeCheck(scores, additive, by_offset, deviation, add_dev)


@dataclass
class RotaryView:
    """The page's rotary panel: one pair turning with position, and the relative check."""

    pair: int
    theta: float  # radians per position of that pair
    path: np.ndarray  # (steps, 2) where the pair (1, 0) ends up at each position
    check: RelativeCheck


def rotary_view(length: int, d_model: int, pair: int, steps: int) -> RotaryView:
    path = pair_path(steps, d_model, int(pair))  # validates the sizes and the pair
    return RotaryView(int(pair), float(frequencies(d_model)[int(pair)]), path,
                      relative_check(length, d_model))


# ------------------------------------------------------------------------- on a real model

@dataclass(frozen=True)
class Limits:
    """Sizes the rotary services accept, and what the page starts from."""

    real_model: str = "smollm2"  # the rotary model the page and the CLI measure by default
    max_tokens: int = 128  # longest text read (the attention check is T x T)
    max_grid: int = 512  # most positions m, n of the (m, n) grid
    page_grid: int = 256  # most positions m, n the page's slider offers
    grid: int = 64  # positions m, n measured at first
    steps: int = 16  # positions drawn for one turning pair at first
    max_steps: int = 64  # most positions drawn for one turning pair
    max_index: int = 63  # largest layer/head a page's number box takes (the model checks its own)


LIMITS = Limits()
REAL_MODEL = LIMITS.real_model
MAX_TOKENS = LIMITS.max_tokens
MAX_GRID = LIMITS.max_grid


def real_model_ready() -> bool:
    """Whether REAL_MODEL's files are on disk (registry only; loads nothing)."""
    from lmdemo.core.registry import get_spec, is_available

    try:
        return is_available(get_spec(REAL_MODEL))
    except UserError:
        return False


@dataclass
class ModelRotary(OffsetStats):
    """RoPE measured on one attention head of a real model."""

    model_id: str
    tokens: list[str]  # (T,) the tokens read, the start token first when the model has one
    layer: int
    head: int  # the query head
    kv_head: int  # the key/value head it shares (grouped-query attention)
    n_layers: int
    n_heads: int
    n_kv_heads: int
    query_index: int  # the token whose query q is used (index into tokens)
    key_index: int  # the token whose key k is used
    theta: float  # the model's RoPE base (rope_theta)
    head_dim: int
    layout: str  # "half" = transformers' rotate_half, as the model itself rotates
    frequencies: np.ndarray  # (d/2,) radians per position of each pair
    q: np.ndarray  # (d,) the real pre-RoPE query
    k: np.ndarray  # (d,) the real pre-RoPE key
    scores: np.ndarray  # (N, N) rot(q, m)·rot(k, n)/√d, rows m = query position
    additive: np.ndarray  # (N, N) (q + PE_m)·(k + PE_n)/√d with the paper's sinusoids
    by_offset: np.ndarray  # (2N-1,) RoPE score at each offset n − m, from −(N−1) to N−1
    deviation: np.ndarray  # (2N-1,) RoPE: max − min of the score over m at that offset
    additive_deviation: np.ndarray  # (2N-1,) the same for the additive encoding
    model_attention: np.ndarray  # (T, T) the model's own attention weights of this head
    recomputed_attention: np.ndarray  # (T, T) softmax of this module's rotation of every q, k

    @property
    def wavelengths(self) -> np.ndarray:
        """(d/2,) positions for one full turn of each pair: 2π / frequency."""
        return 2 * np.pi / self.frequencies

    @property
    def relative_deviation(self) -> float:
        """max deviation / largest |score|: float error for RoPE."""
        return self.max_deviation / max(float(np.abs(self.scores).max()), 1e-300)

    @property
    def relative_additive_deviation(self) -> float:
        return self.max_additive_deviation / max(float(np.abs(self.additive).max()), 1e-300)

    @property
    def model_max_diff(self) -> float:
        """max |recomputed − model| attention weight over the real (causal) positions."""
        return float(np.abs(self.recomputed_attention - self.model_attention).max())

    def to_json(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if not isinstance(v, np.ndarray)}
        out.update({k: v.tolist() for k, v in self.__dict__.items() if isinstance(v, np.ndarray)})
        out.update(wavelengths=self.wavelengths.tolist(), offsets=self.offsets.tolist(),
                   max_deviation=self.max_deviation,
                   max_additive_deviation=self.max_additive_deviation,
                   relative_deviation=self.relative_deviation,
                   relative_additive_deviation=self.relative_additive_deviation,
                   model_max_diff=self.model_max_diff)
        return out


def rope_theta(config) -> float:
    """The RoPE base of a transformers config (v5: rope_parameters["rope_theta"]), or a
    UserError when the model has no plain rotary embedding."""
    params = getattr(config, "rope_parameters", None) or {}
    theta = params.get("rope_theta", getattr(config, "rope_theta", None))
    if theta is None:
        raise UserError("This model has no rotary position embeddings (it adds a learned or "
                        f"fixed position table instead); pick {REAL_MODEL}.")
    kind = params.get("rope_type", "default") or "default"
    if kind != "default":
        raise UserError(f"This model scales its rotary angles ({kind!r} RoPE); only plain RoPE "
                        "is measured here.")
    return float(theta)


def _attention_module(model, layer: int):
    try:
        return model.model.layers[layer].self_attn
    except (AttributeError, IndexError, TypeError) as exc:
        raise UserError(f"This model is not Llama-style (no model.layers[{layer}].self_attn "
                        f"with q_proj and k_proj); pick {REAL_MODEL}.") from exc


def _index(i: int, n: int, what: str) -> int:
    try:
        i = int(i)
    except (TypeError, ValueError) as exc:
        raise UserError(f"The {what} token must be a whole number.") from exc
    if not -n <= i < n:
        raise UserError(f"The {what} token must be between 0 and {n - 1} (or -{n}..-1 from the "
                        f"end); the text has {n} tokens with the start token (got {i}).")
    return i % n


def measure_model(model, tokenizer, text: str, layer: int = 0, head: int = 0, query: int = -1,
                  key: int = 1, length: int = 64, start: int | None = None,
                  theta: float | None = None, layout: str = "half",
                  model_id: str = "") -> ModelRotary:
    """Measure RoPE on a loaded Llama-style causal LM (eager attention).

    The text is read after `start` (when given). Forward hooks on the layer's q_proj and k_proj
    catch every token's pre-RoPE query and key; head `head`'s q of token `query` and its key/value
    head's k of token `key` are rotated here to every position m, n < `length`. `theta` and
    `layout` override the model's own (a deliberately wrong choice makes the check against the
    model's attention fail)."""
    import torch

    cfg = model.config
    model_theta = rope_theta(cfg)
    theta = model_theta if theta is None else float(theta)
    _pair_slices(2, layout)  # validates the layout
    n_layers, n_heads = int(cfg.num_hidden_layers), int(cfg.num_attention_heads)
    n_kv = int(getattr(cfg, "num_key_value_heads", None) or n_heads)
    d = int(getattr(cfg, "head_dim", None) or cfg.hidden_size // n_heads)
    try:
        layer, head, length = int(layer), int(head), int(length)
    except (TypeError, ValueError) as exc:
        raise UserError("Layer, head and positions must be whole numbers.") from exc
    if not (0 <= layer < n_layers and 0 <= head < n_heads):
        raise UserError(f"Layer must be 0..{n_layers - 1} and head 0..{n_heads - 1}.")
    if not 2 <= length <= MAX_GRID:
        raise UserError(f"Positions must be between 2 and {MAX_GRID} (got {length}).")
    attn = _attention_module(model, layer)
    if not (hasattr(attn, "q_proj") and hasattr(attn, "k_proj")) or hasattr(attn, "q_norm"):
        raise UserError(f"This model's attention is not Llama-style; pick {REAL_MODEL}.")
    if text is not None and not isinstance(text, str):
        raise UserError(f"The text must be a string, not {type(text).__name__}.")
    ids = ([] if start is None else [int(start)]) + list(
        tokenizer(text or "", add_special_tokens=False)["input_ids"])
    if len(ids) < 2:
        raise UserError("Type a text of at least one token (two without a start token).")
    if len(ids) > MAX_TOKENS:
        raise UserError(f"The text is {len(ids)} tokens long; this panel takes at most "
                        f"{MAX_TOKENS}. Shorten it.")
    qi, ki = _index(query, len(ids), "query"), _index(key, len(ids), "key")
    caught: dict[str, np.ndarray] = {}

    def catch(name):
        def hook(_module, _inputs, output):
            caught[name] = output[0].detach().double().cpu().numpy()  # (T, heads * d)
        return hook

    handles = [attn.q_proj.register_forward_hook(catch("q")),
               attn.k_proj.register_forward_hook(catch("k"))]
    try:
        device = next(model.parameters()).device
        with torch.inference_mode():
            out = model(input_ids=torch.tensor([ids], device=device), output_attentions=True)
    finally:
        for h in handles:
            h.remove()
    if not out.attentions or out.attentions[layer] is None:
        raise UserError("This model returns no attention weights (load it with eager "
                        "attention).")
    kv = head // max(1, n_heads // n_kv)
    t = len(ids)
    q_all = caught["q"].reshape(t, n_heads, d)[:, head]  # (T, d) pre-RoPE queries of the head
    k_all = caught["k"].reshape(t, n_kv, d)[:, kv]  # (T, d) pre-RoPE keys of its kv head
    pos = np.arange(t)
    logits = rotate(q_all, pos, theta, layout) @ rotate(k_all, pos, theta, layout).T / np.sqrt(d)
    logits = np.where(np.tril(np.ones((t, t), dtype=bool)), logits, -np.inf)  # causal
    recomputed = np.exp(logits - logits.max(axis=1, keepdims=True))
    recomputed /= recomputed.sum(axis=1, keepdims=True)  # (T, T)
    model_attention = out.attentions[layer][0, head].double().cpu().numpy()  # (T, T)

    q, k = q_all[qi], k_all[ki]  # (d,) each
    grid = np.arange(length)
    scores = rotate(np.tile(q, (length, 1)), grid, theta, layout) @ \
        rotate(np.tile(k, (length, 1)), grid, theta, layout).T / np.sqrt(d)  # (N, N)
    pe = sinusoidal(length, d)  # (N, d)
    additive = (q + pe) @ (k + pe).T / np.sqrt(d)  # (N, N)
    by_offset, deviation = _diagonals(scores)
    _, add_dev = _diagonals(additive)

    def text_of(i):
        s = tokenizer.decode([int(i)])
        return s if s.strip() else repr(s)

    return ModelRotary(
        model_id=model_id, tokens=[text_of(i) for i in ids], layer=layer, head=head, kv_head=kv,
        n_layers=n_layers, n_heads=n_heads, n_kv_heads=n_kv, query_index=qi, key_index=ki,
        theta=theta, head_dim=d, layout=layout, frequencies=frequencies(d, theta), q=q, k=k,
        scores=scores, additive=additive, by_offset=by_offset, deviation=deviation,
        additive_deviation=add_dev, model_attention=model_attention,
        recomputed_attention=recomputed)


def measure_loaded(loaded, text: str, layer: int = 0, head: int = 0, query: int = -1,
                   key: int = 1, length: int = 64, **kw) -> ModelRotary:
    """`measure_model` on an lmdemo `Loaded`, the text read after its start token."""
    from lmdemo.lab.next_token import start_id

    return measure_model(loaded.model, loaded.tokenizer, text, layer, head, query, key, length,
                         start=start_id(loaded), model_id=loaded.spec.id, **kw)


def measure(model_id: str, text: str, layer: int = 0, head: int = 0, query: int = -1,
            key: int = 1, length: int = 64) -> ModelRotary:
    """Load a rotary causal LM by id (see `measure_model`) and measure RoPE on one head."""
    from lmdemo.core.models import load
    from lmdemo.core.registry import get_spec

    spec = get_spec(model_id)
    if spec.kind != "causal-lm":
        raise UserError(f"{spec.id!r} is not a causal transformer: it has no rotary embeddings. "
                        f"Pick {REAL_MODEL}.")
    if spec.learned_positions:
        raise UserError(f"{spec.id!r} uses a learned position table, not rotary embeddings. "
                        f"Pick {REAL_MODEL}.")
    loaded = load(model_id, kinds=("causal-lm",))
    return measure_loaded(loaded, text, layer, head, query, key, length)
