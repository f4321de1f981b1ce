"""The attention service: the weights a transformer computes, and how it computes them.

`attention(model_id, text)` runs one forward pass with `output_attentions=True` and returns the
weights of every layer and head as one numpy array `(layers, heads, T, T)` indexed
[layer][head][query][key], with the tokens and which of them are special. `step_by_step(...)`
recomputes one head by hand from the layer's real input hidden states and projection weights —
Q, K, V (Q and K rotated by RoPE for Llama), the scores QKᵀ/√d_k (causal mask for causal models),
the softmax, the weighted sum of V, then the concatenation of all heads times W^O — and measures
how far each step is from what the model itself returned. BERT-style (query/key/value Linear),
GPT-2-style (one Conv1D `c_attn`), DistilBERT-style (q_lin/k_lin/v_lin) and Llama-style (SmolLM2:
q/k/v/o_proj after an RMSNorm) attention modules are understood. For Llama the rotary position
embedding (RoPE, "rotate_half" layout: coordinate i turns with i + d/2 by position·θ_i) is
recomputed here from the config's rope theta, and grouped-query attention is made visible: several
query heads read one key/value head (`kv_head`, `kv_groups`). Causal models whose registry entry
names a `start_token` (SmolLM2: <|endoftext|>) read the text after it, as the next-word service
does. For a page's panels, `view_of(result, ...)` gives the one matrix a panel draws (a head, the
mean over heads or the rollout; special tokens hidden or not; the row of a followed word),
`grid_of` every layer and head, and `precomputed(...)` the shipped example drawn while a model
loads. Results are plain numpy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from lmdemo.core.config import ASSETS, settings
from lmdemo.core.errors import UserError
from lmdemo.core.messages import Message
from lmdemo.core.registry import ATTENTION_KINDS
from lmdemo.core.validate import unicode_text
from lmdemo.lab.attention_math import hide_special, mean_heads, renormalize, rollout
from lmdemo.lab.tokenization import has_multibyte, token_labels

__all__ = ["AttentionResult", "AttentionView", "StepResult", "attention", "attention_of",
           "step_by_step", "step_by_step_of", "view_of", "grid_of", "precomputed",
           "default_model", "featured_head", "default_query", "clamp_index", "rope_angles",
           "rotate", "rollout", "mean_heads", "hide_special", "renormalize",
           "DEFAULT_MAX_TOKENS", "VIEWS", "MATCH_TOLERANCE", "RESULTS_KEPT"]

KINDS = ATTENTION_KINDS  # transformers whose attention can be shown
DEFAULT_MAX_TOKENS = 256  # longest input shown; past this the text is cut and the user is told
VIEWS = ("head", "mean", "rollout")  # one head, the mean over heads, rollout through layers 0..L
MATCH_TOLERANCE = 1e-4  # a recomputation this close to the model's own numbers equals them
RESULTS_KEPT = 16  # results a UI caches per process (each holds layers·heads·T² floats)
# precomputed with `python -m lmdemo attention --model M --text TEXT [--layer L --head H] --json`
EXAMPLE_FILES = {"minilm": ASSETS / "examples" / "attention.json",
                 "smollm2": ASSETS / "examples" / "attention-smollm2.json"}
# the (layer, head) each model opens on: in the first example sentence, it links "it" to "animal"
FEATURED_HEADS = {"minilm": (3, 1), "smollm2": (3, 8)}
FALLBACK_MODEL = "minilm"  # embedded, always there
PREFERRED_MODEL = "smollm2"  # causal as on the next-word page; the default once fetched


@dataclass
class AttentionResult:
    """Every attention weight of one forward pass."""

    model_id: str
    tokens: list[str]  # display form of each token, T of them
    attentions: np.ndarray  # (layers, heads, T, T) float32, rows sum to 1
    special_mask: np.ndarray  # (T,) bool: [CLS], [SEP], <|endoftext|> ...
    causal: bool  # the model attends only to earlier tokens
    truncated: bool = False  # the text was cut to fit
    message: str = ""  # what the user should know (e.g. about truncation)

    @property
    def n_layers(self) -> int:
        return int(self.attentions.shape[0])

    @property
    def n_heads(self) -> int:
        return int(self.attentions.shape[1])

    @property
    def numbers(self) -> dict:
        """The sizes a reader sees in the page's text (its {{placeholders}})."""
        return {"model": self.model_id, "layers": self.n_layers, "heads": self.n_heads,
                "tokens": len(self.tokens)}

    def to_json(self, layer: int | None = None, head: int | None = None, digits: int = 6) -> dict:
        """Plain JSON; `layer`/`head` narrow the array but keep its [layer][head][q][k] nesting."""
        att = self.attentions
        if layer is not None:
            att = att[_check_index(layer, self.n_layers, "layer")][None]
        if head is not None:
            att = att[:, _check_index(head, self.n_heads, "head")][:, None]
        return {"model": self.model_id, "tokens": self.tokens,
                "special": self.special_mask.astype(bool).tolist(), "causal": self.causal,
                "truncated": self.truncated, "message": self.message,
                "layers": [layer] if layer is not None else list(range(self.n_layers)),
                "heads": [head] if head is not None else list(range(self.n_heads)),
                "attentions": np.round(att.astype(np.float64), digits).tolist()}


@dataclass
class StepResult:
    """One head recomputed by hand, for one query token, plus the multi-head combination."""

    model_id: str
    tokens: list[str]
    layer: int
    head: int
    query: int  # index of the query token
    causal: bool
    n_heads: int
    d_model: int
    d_k: int
    scaling: float  # the factor the scores are multiplied by (1/√d_k for most models)
    x: np.ndarray  # (T, d_model) the attention input: layer input hidden states (after ln_1 if pre-LN)
    q: np.ndarray  # (d_k,) the query vector of the query token
    k: np.ndarray  # (T, d_k) key vectors of every token
    v: np.ndarray  # (T, d_k) value vectors of every token
    allowed: np.ndarray  # (T,) bool: keys the query may see (causal mask)
    scores: np.ndarray  # (T,) q·k_j · scaling; masked keys hold -inf
    weights: np.ndarray  # (T,) softmax(scores)
    model_weights: np.ndarray  # (T,) the same row as the model returned it
    max_abs_diff: float  # max |weights - model_weights|
    head_max_abs_diff: float  # the same check over the whole (heads, T, T) of this layer
    output: np.ndarray  # (d_k,) Σ_j weights_j · v_j
    concat: np.ndarray  # (H·d_k,) every head's output for the query token, side by side
    w_o_shape: tuple[int, int]  # (H·d_k, d_model)
    projected: np.ndarray  # (d_model,) concat · W^O + b^O, computed here
    module_output: np.ndarray  # (d_model,) what the model's output projection produced
    mha_max_abs_diff: float  # max |concat·W^O + b^O - module output| over all tokens
    head_contrib: np.ndarray  # (H,) ‖head_h · W^O_h‖ for the query token: each head's share
    notes: list[str] = field(default_factory=list)
    # Grouped-query attention (Llama, SmolLM2): fewer key/value heads than query heads. For
    # models without it n_kv_heads == n_heads, kv_head == head and every group has one head.
    n_kv_heads: int = 0  # key/value heads (0: not given, same as n_heads)
    kv_head: int = -1  # the key/value head the chosen query head reads (-1: same as head)
    kv_groups: list[list[int]] = field(default_factory=list)  # per kv head: its query heads
    # Rotary position embedding (RoPE), applied to q and k before the scores; None without RoPE.
    rope_theta: float | None = None  # the base θ of the frequencies θ_i = base^(-2i/d_k)
    rope_inv_freq: np.ndarray | None = None  # (d_k/2,) θ_i, radians per position
    rope_angles: np.ndarray | None = None  # (T, d_k/2) position_j · θ_i: how far pair i turns
    q_before_rope: np.ndarray | None = None  # (d_k,) the query vector before rotation
    k_before_rope: np.ndarray | None = None  # (T, d_k) key vectors before rotation
    scores_without_rope: np.ndarray | None = None  # (T,) the scores had q and k not been turned

    def __post_init__(self):
        if not self.n_kv_heads:
            self.n_kv_heads = self.n_heads
        if self.kv_head < 0:
            self.kv_head = self.head
        if not self.kv_groups:
            group = self.n_heads // self.n_kv_heads
            self.kv_groups = [list(range(g * group, (g + 1) * group))
                              for g in range(self.n_kv_heads)]

    @property
    def rope(self) -> bool:
        return self.rope_theta is not None

    @property
    def softmax_diff(self) -> float:
        """The larger of the two softmax checks (this row; every head and row of the layer)."""
        return max(self.max_abs_diff, self.head_max_abs_diff)

    @property
    def softmax_matches(self) -> bool:
        return self.softmax_diff < MATCH_TOLERANCE

    @property
    def softmax_diffs(self) -> dict[str, float]:
        """The softmax checks by name: this row, and every head and row of the layer."""
        return {"row": self.max_abs_diff, "layer": self.head_max_abs_diff}

    @property
    def mha_matches(self) -> bool:
        return self.mha_max_abs_diff < MATCH_TOLERANCE

    @property
    def numbers(self) -> dict:
        """The sizes a reader sees in the page's text (its {{placeholders}}), as plain values."""
        return {"layer": self.layer, "head": self.head, "t": len(self.tokens), "d": self.d_model,
                "d_k": self.d_k, "n": self.n_heads, "kv": self.n_kv_heads,
                "width": self.n_heads * self.d_k, "wo_in": self.w_o_shape[0],
                "wo_out": self.w_o_shape[1], "kv_head": self.kv_head,
                "heads": ", ".join(map(str, self.sharing)),
                "ratio": self.n_heads // self.n_kv_heads,
                "token": self.tokens[self.query],
                "base": "" if self.rope_theta is None else f"{self.rope_theta:.0f}"}

    @property
    def sharing(self) -> list[int]:
        """The query heads that read the same key/value head as the chosen one (itself included)."""
        return self.kv_groups[self.kv_head]

    def to_json(self, digits: int = 6) -> dict:
        def arr(a):
            a = np.asarray(a, dtype=np.float64)
            return np.round(np.where(np.isfinite(a), a, np.nan), digits).tolist()

        scores = [None if not np.isfinite(s) else round(float(s), digits) for s in self.scores]
        return {"model": self.model_id, "tokens": self.tokens, "layer": self.layer,
                "head": self.head, "query": self.query, "causal": self.causal,
                "n_heads": self.n_heads, "d_model": self.d_model, "d_k": self.d_k,
                "scaling": self.scaling, "q": arr(self.q), "k": arr(self.k), "v": arr(self.v),
                "scores": scores, "weights": arr(self.weights),
                "model_weights": arr(self.model_weights), "max_abs_diff": self.max_abs_diff,
                "head_max_abs_diff": self.head_max_abs_diff, "output": arr(self.output),
                "w_o_shape": list(self.w_o_shape), "mha_max_abs_diff": self.mha_max_abs_diff,
                "head_contrib": arr(self.head_contrib), "notes": self.notes,
                "n_kv_heads": self.n_kv_heads, "kv_head": self.kv_head,
                "kv_groups": self.kv_groups, "rope": self.rope, "rope_theta": self.rope_theta,
                **({"rope_inv_freq": arr(self.rope_inv_freq),
                    "rope_angles": arr(self.rope_angles),
                    "q_before_rope": arr(self.q_before_rope),
                    "k_before_rope": arr(self.k_before_rope),
                    "scores_without_rope": [None if not np.isfinite(x) else round(float(x), digits)
                                            for x in self.scores_without_rope]}
                   if self.rope else {})}


# ----------------------------------------------------------------------------- preprocessing

def _check_index(value: int, size: int, what: str) -> int:
    if not isinstance(value, (int, np.integer)) or not 0 <= value < size:
        raise UserError(f"{what} {value!r} does not exist: this model has {size} {what}s "
                        f"(0 to {size - 1}).")
    return int(value)


def _load(model_id: str):
    from lmdemo.core.models import load
    from lmdemo.core.registry import get_spec

    spec = get_spec(model_id)
    if spec.kind == "recurrent-lm" or (spec.source != "hub" and not spec.attentions):
        raise UserError(f"{spec.id!r} is a {spec.kind} model: it returns no attention. Pick a "
                        "transformer such as 'minilm' or 'tiny-gpt'.")
    return load(spec.id, kinds=KINDS)


def _display(token: str) -> str:
    """A token as people read it: GPT-2's Ġ (space) and Ċ (newline) made visible."""
    return token.replace("Ġ", "␣").replace("Ċ", "↵").replace("▁", "␣") or "∅"


def _start_id(loaded) -> int | None:
    """The start token a causal model reads a text after, when its registry entry names one
    (SmolLM2: <|endoftext|>); None for every other model, whose tokenizer adds what it adds."""
    if not (loaded.spec.causal and getattr(loaded.spec, "start_token", "")):
        return None
    from lmdemo.lab.next_token import start_id

    return start_id(loaded)


def _encode(loaded, text: str, max_tokens: int):
    """Token ids (1, T), display tokens, special mask, truncation flag and message."""
    import torch

    if not isinstance(text, str) or not text.strip():
        raise UserError("The text is empty: type a sentence to see its attention.")
    limit_chars = settings().max_text_chars
    if len(text) > limit_chars:
        raise UserError(f"The text has {len(text):,} characters; the limit is {limit_chars:,}. "
                        "Shorten it.")
    unicode_text(text)
    tok = loaded.tokenizer
    limit = max(2, min(int(max_tokens), loaded.max_positions))
    special_ids = set(getattr(tok, "all_special_ids", []) or [])
    first = _start_id(loaded)
    if first is not None:  # the same sequence the next-word view reads: <start> + the text
        full = [first] + list(tok(text, add_special_tokens=False)["input_ids"])
        ids = full[:limit]
        mask = [1] + [0] * (len(ids) - 1)
    else:
        full = tok(text, add_special_tokens=True)["input_ids"]
        enc = tok(text, add_special_tokens=True, truncation=True, max_length=limit,
                  return_special_tokens_mask=True)
        ids = enc["input_ids"]
        mask = enc.get("special_tokens_mask") or [0] * len(ids)
    if not ids or (first is not None and len(ids) < 2):
        raise UserError("The text has no tokens this model knows: type a sentence.")
    truncated = len(full) > len(ids)
    message = ""
    if truncated:
        key = "view-cut-model" if limit == loaded.max_positions else "view-cut-view"
        message = Message(key, n=len(full), limit=limit, kept=len(ids))
    special = np.array([bool(m) or i in special_ids for m, i in zip(mask, ids, strict=True)])
    tokens = [_display(t) for t in tok.convert_ids_to_tokens(ids)]
    if has_multibyte(tok, ids):  # byte-level pieces of Chinese or emoji: show the characters
        tokens = token_labels(tok, ids)
    input_ids = torch.tensor([ids], device=loaded.device)  # (1, T)
    return input_ids, tokens, special, truncated, message


def _forward(loaded, input_ids, hidden: bool = False):
    import torch

    with torch.inference_mode():
        out = loaded.model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                           output_attentions=True, output_hidden_states=hidden)
    if not getattr(out, "attentions", None) or out.attentions[0] is None:
        raise UserError(f"{loaded.spec.id!r} returns no attention weights (its attention "
                        "implementation does not expose them).")
    return out


def _stack(attentions) -> np.ndarray:
    import torch

    att = torch.stack([a[0] for a in attentions])  # (layers, heads, T, T)
    return att.float().cpu().numpy()


def attention(model_id: str, text: str, max_tokens: int = DEFAULT_MAX_TOKENS) -> AttentionResult:
    """Every layer's and head's attention weights for `text`: one forward pass."""
    return attention_of(_load(model_id), text, max_tokens)


def attention_of(loaded, text: str, max_tokens: int = DEFAULT_MAX_TOKENS) -> AttentionResult:
    """`attention` for an already loaded model (a `models.Loaded`; tests pass tiny ones)."""
    input_ids, tokens, special, truncated, message = _encode(loaded, text, max_tokens)
    out = _forward(loaded, input_ids)
    return AttentionResult(model_id=loaded.spec.id, tokens=tokens,
                           attentions=_stack(out.attentions), special_mask=special,
                           causal=bool(loaded.spec.causal), truncated=truncated, message=message)


# ----------------------------------------------------------------------------- what a panel draws

@dataclass
class AttentionView:
    """The matrix a panel draws (a head, the mean over heads or the rollout), tokens shown."""

    model_id: str
    tokens: list[str]  # the tokens shown (special ones left out when hidden), T' of them
    matrix: np.ndarray  # (T', T') rows are queries, columns keys
    view: str  # one of VIEWS
    layer: int
    head: int
    word_row: np.ndarray | None = None  # (T',) where the followed word looks; None: not a token

    @property
    def numbers(self) -> dict:
        """What a title of this view says (the page's text {{placeholders}})."""
        return {"model": self.model_id, "view": self.view, "layer": self.layer, "head": self.head}


def default_model() -> str:
    """The page's first model: SmolLM2 once fetched, else the embedded MiniLM."""
    from lmdemo.core.registry import get_spec, is_available

    return PREFERRED_MODEL if is_available(get_spec(PREFERRED_MODEL)) else FALLBACK_MODEL


def featured_head(model_id: str) -> tuple[int, int]:
    """The (layer, head) a model opens on."""
    return FEATURED_HEADS.get(model_id, FEATURED_HEADS[FALLBACK_MODEL])


def clamp_index(raw, default: int, size: int) -> int:
    """An index from a widget or the URL ("10", 10, or a select box's label "10: it"), kept in
    0..size-1; anything unreadable is `default`."""
    try:
        value = int(str(raw).split(":")[0])
    except (TypeError, ValueError):
        value = default
    return min(max(value, 0), size - 1)


def word_index(tokens: list[str], word: str) -> int | None:
    """Where `word` is a token ("␣it" of GPT-2/SmolLM2 counts as "it"), or None."""
    words = [t.lstrip("␣") for t in tokens]
    return words.index(word) if word and word in words else None


def default_query(tokens: list[str], word: str) -> int:
    """The query token a page opens on: `word` where it is a token, else the second token."""
    found = word_index(tokens, word)
    return found if found is not None else min(1, len(tokens) - 1)


def _visible(res: AttentionResult, att: np.ndarray, hide: bool, renorm: bool):
    """`att` (..., T, T) and the tokens, with special tokens left out when asked (and when some,
    not all, tokens are special)."""
    mask = res.special_mask
    if not (hide and mask.any() and not mask.all()):
        return res.tokens, att
    return ([t for t, s in zip(res.tokens, mask, strict=True) if not s],
            hide_special(att, mask, renorm=renorm))


def view_of(res: AttentionResult, view: str = "head", layer: int = 0, head: int = 0,
            hide: bool = False, renorm: bool = False, word: str = "") -> AttentionView:
    """The (T, T) matrix of one view of `res`, special tokens hidden if asked, with the row of
    `word` when it is one of the tokens shown."""
    if view not in VIEWS:
        raise UserError(f"Unknown view {view!r}: pick one of {', '.join(VIEWS)}.")
    layer = _check_index(layer, res.n_layers, "layer")
    head = _check_index(head, res.n_heads, "head")
    mat = {"head": lambda: res.attentions[layer, head],
           "mean": lambda: mean_heads(res.attentions)[layer],
           "rollout": lambda: rollout(res.attentions)[layer]}[view]()  # (T, T)
    tokens, mat = _visible(res, mat, hide, renorm)
    i = word_index(tokens, word)
    return AttentionView(res.model_id, tokens, mat, view, layer, head,
                         None if i is None else mat[i])


def grid_of(res: AttentionResult, hide: bool = False, renorm: bool = False) -> np.ndarray:
    """Every layer's and head's weights, (layers, heads, T', T'), special tokens hidden if asked."""
    return _visible(res, res.attentions, hide, renorm)[1]


def precomputed(model_id: str, text: str, layer: int | None = None,
                head: int | None = None) -> AttentionView | None:
    """The shipped result for this model, text, layer and head (by default the model's featured
    head), drawn while the model loads; None when there is none."""
    if layer is None or head is None:
        layer, head = featured_head(model_id)
    path = EXAMPLE_FILES.get(model_id)
    if path is None or not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    if data["model"] != model_id or data["text"] != text or layer not in data["layers"] \
            or head not in data["heads"]:
        return None
    att = data["attentions"][data["layers"].index(layer)][data["heads"].index(head)]  # (T, T)
    return AttentionView(model_id, data["tokens"], np.asarray(att, dtype=np.float32), "head",
                         layer, head)


# ----------------------------------------------------------------------------- step by step

@dataclass
class _Parts:
    """One layer's attention, as y = x·W + b matrices (W: (d_in, d_out))."""

    norm: object  # module applied to the layer input before attention (pre-LN), or None
    w_q: object  # (d_model, H·d_k)
    b_q: object
    w_k: object  # (d_model, H_kv·d_k)
    b_k: object
    w_v: object  # (d_model, H_kv·d_k)
    b_v: object
    w_o: object  # (H·d_k, d_model)
    b_o: object
    out_module: object  # the module whose output is concat·W^O + b^O (for the check)
    n_heads: int
    scaling: float
    n_kv_heads: int = 0  # key/value heads (grouped-query attention); 0: same as n_heads
    rope_theta: float | None = None  # RoPE base when q and k are rotated, else None
    rope_type: str = "default"  # the config's rope_type (only "default" is recomputed exactly)


def _linear(mod):
    """(W, b) of a nn.Linear as x·W + b."""
    import torch

    w = mod.weight.T  # (d_in, d_out)
    b = mod.bias if mod.bias is not None else torch.zeros(w.shape[1], device=w.device)
    return w, b


def _rope_config(config) -> tuple[float, str]:
    """(theta, rope_type) from a Llama config: `rope_parameters` (transformers 5), else the older
    top-level `rope_theta`."""
    params = getattr(config, "rope_parameters", None) or {}
    if isinstance(params, dict) and "rope_theta" in params:
        return float(params["rope_theta"]), str(params.get("rope_type", "default"))
    return float(getattr(config, "rope_theta", 10_000.0)), "default"


def _layer_parts(model, layer: int) -> _Parts:
    base = getattr(model, "base_model", model)
    if hasattr(base, "encoder") and hasattr(base.encoder, "layer"):  # BERT, RoBERTa, MiniLM
        block = base.encoder.layer[layer]
        att = block.attention.self
        n_heads = att.num_attention_heads
        d_k = att.attention_head_size
        w_o, b_o = _linear(block.attention.output.dense)
        return _Parts(None, *_linear(att.query), *_linear(att.key), *_linear(att.value), w_o, b_o,
                      block.attention.output.dense, n_heads,
                      float(getattr(att, "scaling", d_k ** -0.5)))
    if hasattr(base, "h"):  # GPT-2: one Conv1D c_attn holds Q, K and V side by side
        block = base.h[layer]
        att = block.attn
        d = att.embed_dim
        w, b = att.c_attn.weight, att.c_attn.bias  # (d, 3d), (3d,)
        return _Parts(block.ln_1, w[:, :d], b[:d], w[:, d:2 * d], b[d:2 * d], w[:, 2 * d:],
                      b[2 * d:], att.c_proj.weight, att.c_proj.bias, att.c_proj, att.num_heads,
                      float(getattr(att, "scaling", att.head_dim ** -0.5)))
    if hasattr(base, "transformer") and hasattr(base.transformer, "layer"):  # DistilBERT
        att = base.transformer.layer[layer].attention
        d_k = att.dim // att.n_heads
        w_o, b_o = _linear(att.out_lin)
        return _Parts(None, *_linear(att.q_lin), *_linear(att.k_lin), *_linear(att.v_lin), w_o,
                      b_o, att.out_lin, att.n_heads, float(getattr(att, "scaling", d_k ** -0.5)))
    if hasattr(base, "layers") and hasattr(base.layers[layer], "self_attn"):  # Llama, SmolLM2
        block = base.layers[layer]
        att = block.self_attn
        cfg = model.config
        theta, rope_type = _rope_config(cfg)
        w_o, b_o = _linear(att.o_proj)
        return _Parts(block.input_layernorm, *_linear(att.q_proj), *_linear(att.k_proj),
                      *_linear(att.v_proj), w_o, b_o, att.o_proj, int(cfg.num_attention_heads),
                      float(getattr(att, "scaling", att.head_dim ** -0.5)),
                      int(getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads),
                      theta, rope_type)
    raise UserError(f"Step by step knows BERT-, RoBERTa-, DistilBERT-, GPT-2- and Llama-style "
                    f"models; {type(model).__name__} is none of these (its attention maps still "
                    "show).")


def rope_angles(n_positions: int, d_k: int, theta: float, device=None):
    """RoPE's angles: position p turns coordinate pair i by p·θ_i with θ_i = theta^(-2i/d_k).
    Returns (inv_freq (d_k/2,), angles (T, d_k/2)), float32 as the model computes them."""
    import torch

    f32 = torch.float32
    inv_freq = 1.0 / (theta ** (torch.arange(0, d_k, 2, device=device, dtype=f32) / d_k))
    positions = torch.arange(n_positions, device=device, dtype=f32)  # (T,)
    return inv_freq, positions[:, None] * inv_freq[None, :]  # (d_k/2,), (T, d_k/2)


def rotate(x, angles):
    """Turn every pair (x_i, x_{i+d/2}) of the last axis by its angle — the "rotate_half" layout
    of Llama checkpoints: x (..., T, d_k), angles (T, d_k/2) -> (..., T, d_k)."""
    import torch

    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]  # (..., T, d_k/2) each
    cos, sin = angles.cos(), angles.sin()  # (T, d_k/2)
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)


def step_by_step(model_id: str, text: str, layer: int, head: int, query: int,
                 max_tokens: int = DEFAULT_MAX_TOKENS) -> StepResult:
    """Recompute one head of one layer by hand for one query token, and check it."""
    return step_by_step_of(_load(model_id), text, layer, head, query, max_tokens)


def step_by_step_of(loaded, text: str, layer: int, head: int, query: int,
                    max_tokens: int = DEFAULT_MAX_TOKENS) -> StepResult:
    """`step_by_step` for an already loaded model."""
    import torch

    input_ids, tokens, _, _, message = _encode(loaded, text, max_tokens)
    t = len(tokens)
    model = loaded.model
    n_layers = len(_probe_layers(model))
    layer = _check_index(layer, n_layers, "layer")
    query = _check_index(query, t, "token")
    parts = _layer_parts(model, layer)
    head = _check_index(head, parts.n_heads, "head")
    captured = {}
    hook = parts.out_module.register_forward_hook(
        lambda _m, _i, out: captured.__setitem__("out", out))
    try:
        out = _forward(loaded, input_ids, hidden=True)
    finally:
        hook.remove()
    with torch.inference_mode():
        f32 = torch.float32
        x = out.hidden_states[layer][0]  # (T, d_model) input of this layer
        if parts.norm is not None:
            x = parts.norm(x)  # pre-norm models (GPT-2 LayerNorm, Llama RMSNorm) normalize first
        x = x.to(f32)
        n_h = parts.n_heads
        n_kv = parts.n_kv_heads or n_h
        group = n_h // n_kv  # query heads per key/value head

        def proj(w, b, heads):  # (T, d_model) -> (heads, T, d_k)
            return (x @ w.to(f32) + b.to(f32)).view(t, heads, -1).transpose(0, 1)

        q_all = proj(parts.w_q, parts.b_q, n_h)  # (H, T, d_k)
        k_all = proj(parts.w_k, parts.b_k, n_kv)  # (H_kv, T, d_k)
        v_all = proj(parts.w_v, parts.b_v, n_kv)  # (H_kv, T, d_k)
        d_k = q_all.shape[-1]
        q_raw, k_raw = q_all, k_all
        inv_freq = angles = None
        if parts.rope_theta is not None:  # RoPE: turn q and k by their position, not v
            inv_freq, angles = rope_angles(t, d_k, parts.rope_theta, x.device)  # (T, d_k/2)
            q_all, k_all = rotate(q_all, angles), rotate(k_all, angles)
        # grouped-query attention: query head h reads key/value head h // group
        k_rep = k_all.repeat_interleave(group, dim=0)  # (H, T, d_k)
        v_rep = v_all.repeat_interleave(group, dim=0)  # (H, T, d_k)
        scores = (q_all @ k_rep.transpose(1, 2)) * parts.scaling  # (H, T, T)
        allowed = torch.ones(t, t, dtype=torch.bool, device=x.device)  # (T, T)
        if loaded.spec.causal:
            allowed = torch.tril(allowed)
        scores = scores.masked_fill(~allowed, float("-inf"))
        weights = torch.softmax(scores, dim=-1)  # (H, T, T)
        heads_out = weights @ v_rep  # (H, T, d_k)
        concat = heads_out.transpose(0, 1).reshape(t, n_h * d_k)  # (T, H·d_k)
        w_o, b_o = parts.w_o.to(f32), parts.b_o.to(f32)  # (H·d_k, d_model), (d_model,)
        projected = concat @ w_o + b_o  # (T, d_model)
        module_out = captured["out"]
        module_out = (module_out[0] if isinstance(module_out, tuple) else module_out)[0].to(f32)
        model_att = out.attentions[layer][0].to(f32)  # (H, T, T)
        per_head = torch.stack([heads_out[h, query] @ w_o[h * d_k:(h + 1) * d_k]
                                for h in range(n_h)])  # (H, d_model)
        row = weights[head, query]  # (T,)
        model_row = model_att[head, query]  # (T,)
        kv_head = head // group
        notes = [message] if message else []
        if abs(parts.scaling - d_k ** -0.5) > 1e-9:
            notes.append(f"This layer scales scores by {parts.scaling:.4g}, not 1/√d_k.")
        if parts.rope_theta is not None and parts.rope_type != "default":
            notes.append(f"This model's RoPE is of type {parts.rope_type!r}; it is recomputed "
                         "here with plain frequencies, so small differences are expected.")
        np_ = lambda a: a.detach().float().cpu().numpy()  # noqa: E731
        rope = {}
        if parts.rope_theta is not None:
            raw = (q_raw[head, query] @ k_raw[kv_head].T) * parts.scaling  # (T,)
            rope = {"rope_theta": float(parts.rope_theta), "rope_inv_freq": np_(inv_freq),
                    "rope_angles": np_(angles), "q_before_rope": np_(q_raw[head, query]),
                    "k_before_rope": np_(k_raw[kv_head]),
                    "scores_without_rope": np_(raw.masked_fill(~allowed[query], float("-inf")))}
        return StepResult(
            model_id=loaded.spec.id, tokens=tokens, layer=layer, head=head, query=query,
            causal=bool(loaded.spec.causal), n_heads=n_h, d_model=int(x.shape[-1]), d_k=int(d_k),
            scaling=float(parts.scaling), x=np_(x), q=np_(q_all[head, query]),
            k=np_(k_rep[head]), v=np_(v_rep[head]), allowed=np_(allowed[query]).astype(bool),
            scores=np_(scores[head, query]), weights=np_(row), model_weights=np_(model_row),
            max_abs_diff=float((row - model_row).abs().max()),
            head_max_abs_diff=float((weights - model_att).abs().max()),
            output=np_(heads_out[head, query]), concat=np_(concat[query]),
            w_o_shape=(int(w_o.shape[0]), int(w_o.shape[1])), projected=np_(projected[query]),
            module_output=np_(module_out[query]),
            mha_max_abs_diff=float((projected - module_out).abs().max()),
            head_contrib=np_(per_head.norm(dim=-1)), notes=notes, n_kv_heads=n_kv,
            kv_head=kv_head, kv_groups=[list(range(g * group, (g + 1) * group))
                                        for g in range(n_kv)], **rope)


def _probe_layers(model):
    base = getattr(model, "base_model", model)
    for path in (("encoder", "layer"), ("h",), ("transformer", "layer"), ("layers",)):
        obj = base
        for name in path:
            obj = getattr(obj, name, None)
        if obj is not None:
            return obj
    raise UserError(f"Step by step does not know the layers of {type(model).__name__}.")
