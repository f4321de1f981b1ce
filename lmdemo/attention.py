"""The attention service: the weights a transformer computes, and how it computes them.

`attention(model_id, text)` runs one forward pass with `output_attentions=True` and returns the
weights of every layer and head as one numpy array `(layers, heads, T, T)` indexed
[layer][head][query][key], with the tokens and which of them are special. `step_by_step(...)`
recomputes one head by hand from the layer's real input hidden states and real projection weights —
Q, K, V, the scores QKᵀ/√d_k (causal mask for causal models), the softmax, the weighted sum of V,
then the concatenation of all heads times W^O — and measures how far each step is from what the
model itself returned. BERT-style (query/key/value Linear), GPT-2-style (one Conv1D `c_attn`) and
DistilBERT-style (q_lin/k_lin/v_lin) attention modules are understood. Results are plain numpy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lmdemo.attention_math import hide_special, mean_heads, renormalize, rollout
from lmdemo.config import settings
from lmdemo.errors import UserError

__all__ = ["AttentionResult", "StepResult", "attention", "attention_of", "step_by_step",
           "step_by_step_of", "rollout", "mean_heads",
           "hide_special", "renormalize", "DEFAULT_MAX_TOKENS"]

KINDS = ("encoder", "causal-lm", "classifier")
DEFAULT_MAX_TOKENS = 256  # longest input shown; past this the text is cut and the user is told


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
                "head_contrib": arr(self.head_contrib), "notes": self.notes}


# ----------------------------------------------------------------------------- preprocessing

def _check_index(value: int, size: int, what: str) -> int:
    if not isinstance(value, (int, np.integer)) or not 0 <= value < size:
        raise UserError(f"{what} {value!r} does not exist: this model has {size} {what}s "
                        f"(0 to {size - 1}).")
    return int(value)


def _load(model_id: str):
    from lmdemo.models import load
    from lmdemo.registry import get_spec

    spec = get_spec(model_id)
    if spec.kind == "recurrent-lm" or (spec.source != "hub" and not spec.attentions):
        raise UserError(f"{spec.id!r} is a {spec.kind} model: it returns no attention. Pick a "
                        "transformer such as 'minilm' or 'tiny-gpt'.")
    return load(spec.id, kinds=KINDS)


def _display(token: str) -> str:
    """A token as people read it: GPT-2's Ġ (space) and Ċ (newline) made visible."""
    return token.replace("Ġ", "␣").replace("Ċ", "↵").replace("▁", "␣") or "∅"


def _encode(loaded, text: str, max_tokens: int):
    """Token ids (1, T), display tokens, special mask, truncation flag and message."""
    import torch

    if not isinstance(text, str) or not text.strip():
        raise UserError("The text is empty: type a sentence to see its attention.")
    limit_chars = settings().max_text_chars
    if len(text) > limit_chars:
        raise UserError(f"The text has {len(text):,} characters; the limit is {limit_chars:,}. "
                        "Shorten it.")
    tok = loaded.tokenizer
    limit = max(2, min(int(max_tokens), loaded.max_positions))
    full = tok(text, add_special_tokens=True)["input_ids"]
    enc = tok(text, add_special_tokens=True, truncation=True, max_length=limit,
              return_special_tokens_mask=True)
    ids = enc["input_ids"]
    if not ids:
        raise UserError("The text has no tokens this model knows: type a sentence.")
    truncated = len(full) > len(ids)
    message = ""
    if truncated:
        why = ("this model reads at most" if limit == loaded.max_positions
               else "this view shows at most")
        message = (f"The text has {len(full)} tokens; {why} {limit}, so only the first "
                   f"{len(ids)} are shown.")
    special_ids = set(getattr(tok, "all_special_ids", []) or [])
    mask = enc.get("special_tokens_mask") or [0] * len(ids)
    special = np.array([bool(m) or i in special_ids for m, i in zip(mask, ids, strict=True)])
    tokens = [_display(t) for t in tok.convert_ids_to_tokens(ids)]
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


# ----------------------------------------------------------------------------- step by step

@dataclass
class _Parts:
    """One layer's attention, as y = x·W + b matrices (W: (d_in, d_out))."""

    norm: object  # module applied to the layer input before attention (pre-LN), or None
    w_q: object
    b_q: object
    w_k: object
    b_k: object
    w_v: object
    b_v: object
    w_o: object  # (H·d_k, d_model)
    b_o: object
    out_module: object  # the module whose output is concat·W^O + b^O (for the check)
    n_heads: int
    scaling: float


def _linear(mod):
    """(W, b) of a nn.Linear as x·W + b."""
    import torch

    w = mod.weight.T  # (d_in, d_out)
    b = mod.bias if mod.bias is not None else torch.zeros(w.shape[1], device=w.device)
    return w, b


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
    raise UserError(f"Step by step knows BERT-, RoBERTa-, DistilBERT- and GPT-2-style models; "
                    f"{type(model).__name__} is none of these (its attention maps still show).")


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
            x = parts.norm(x)  # pre-LN models (GPT-2) normalize before attention
        x = x.to(f32)
        n_h = parts.n_heads

        def proj(w, b):  # (T, d_model) -> (H, T, d_k)
            return (x @ w.to(f32) + b.to(f32)).view(t, n_h, -1).transpose(0, 1)

        q_all, k_all, v_all = (proj(parts.w_q, parts.b_q), proj(parts.w_k, parts.b_k),
                               proj(parts.w_v, parts.b_v))  # each (H, T, d_k)
        d_k = q_all.shape[-1]
        scores = (q_all @ k_all.transpose(1, 2)) * parts.scaling  # (H, T, T)
        allowed = torch.ones(t, t, dtype=torch.bool, device=x.device)  # (T, T)
        if loaded.spec.causal:
            allowed = torch.tril(allowed)
        scores = scores.masked_fill(~allowed, float("-inf"))
        weights = torch.softmax(scores, dim=-1)  # (H, T, T)
        heads_out = weights @ v_all  # (H, T, d_k)
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
        notes = [message] if message else []
        if abs(parts.scaling - d_k ** -0.5) > 1e-9:
            notes.append(f"This layer scales scores by {parts.scaling:.4g}, not 1/√d_k.")
        np_ = lambda a: a.detach().float().cpu().numpy()  # noqa: E731
        return StepResult(
            model_id=loaded.spec.id, tokens=tokens, layer=layer, head=head, query=query,
            causal=bool(loaded.spec.causal), n_heads=n_h, d_model=int(x.shape[-1]), d_k=int(d_k),
            scaling=float(parts.scaling), x=np_(x), q=np_(q_all[head, query]),
            k=np_(k_all[head]), v=np_(v_all[head]), allowed=np_(allowed[query]).astype(bool),
            scores=np_(scores[head, query]), weights=np_(row), model_weights=np_(model_row),
            max_abs_diff=float((row - model_row).abs().max()),
            head_max_abs_diff=float((weights - model_att).abs().max()),
            output=np_(heads_out[head, query]), concat=np_(concat[query]),
            w_o_shape=(int(w_o.shape[0]), int(w_o.shape[1])), projected=np_(projected[query]),
            module_output=np_(module_out[query]),
            mha_max_abs_diff=float((projected - module_out).abs().max()),
            head_contrib=np_(per_head.norm(dim=-1)), notes=notes)


def _probe_layers(model):
    base = getattr(model, "base_model", model)
    for path in (("encoder", "layer"), ("h",), ("transformer", "layer")):
        obj = base
        for name in path:
            obj = getattr(obj, name, None)
        if obj is not None:
            return obj
    raise UserError(f"Step by step does not know the layers of {type(model).__name__}.")
