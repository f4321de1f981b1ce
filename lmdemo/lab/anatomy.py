"""Where things are inside a causal transformer: its blocks, final norm, unembedding and, per layer,
the projection that mixes the attention heads — for GPT-2 and Llama-style models (SmolLM2).

The "inside the model" tools (logit lens, head ablation, activation patching, induction heads) hook
these modules instead of knowing each architecture themselves. `anatomy(model)` finds them or
raises a UserError naming the architectures it knows; `layers_and_heads(model_id)` gives the number
of layers and heads a page's layer and head inputs are bounded by. `thread_hooks(...)` registers hooks that act
only in the calling thread: the model is shared by every page and visitor of the process, and a
hook that captured or rewrote another visitor's forward pass would corrupt both results.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass

from lmdemo.core.errors import UserError


@dataclass(frozen=True)
class Anatomy:
    """The modules of one causal transformer that the inside-the-model tools use."""

    family: str  # "gpt2" or "llama"
    blocks: tuple  # the transformer blocks, in order; each one's output is the residual stream
    final_norm: object  # applied to the last block's output before the unembedding
    unembed: object  # the LM head: (d_model) -> vocabulary logits
    head_mixers: tuple  # per layer, the module whose input is the heads' outputs side by side
    n_layers: int
    n_heads: int  # query heads per layer
    head_dim: int  # width of one head's output (the mixer's input is n_heads * head_dim wide)

    def head_slice(self, head: int) -> slice:
        """The columns of a mixer's input that carry one head's output."""
        return slice(head * self.head_dim, (head + 1) * self.head_dim)


def anatomy(model) -> Anatomy:
    """The Anatomy of a GPT-2 or Llama-style causal LM (HF transformers)."""
    cfg = model.config
    inner = getattr(model, "transformer", None)
    if inner is not None and hasattr(inner, "h"):  # GPT-2: attn.c_proj mixes the heads
        blocks = tuple(inner.h)
        heads = int(cfg.n_head)
        return Anatomy("gpt2", blocks, inner.ln_f, model.lm_head,
                       tuple(b.attn.c_proj for b in blocks), len(blocks), heads,
                       int(cfg.n_embd) // heads)
    inner = getattr(model, "model", None)
    if inner is not None and hasattr(inner, "layers") and hasattr(inner, "norm"):  # Llama
        blocks = tuple(inner.layers)
        heads = int(cfg.num_attention_heads)
        head_dim = int(getattr(cfg, "head_dim", None) or cfg.hidden_size // heads)
        return Anatomy("llama", blocks, inner.norm, model.lm_head,
                       tuple(b.self_attn.o_proj for b in blocks), len(blocks), heads, head_dim)
    raise UserError(f"Looking inside needs a GPT-2- or Llama-style causal transformer such as "
                    f"smollm2 or tiny-gpt; {type(model).__name__} is neither.")


def layers_and_heads(model_id: str) -> tuple[int, int]:
    """(layers, query heads per layer) of a causal transformer, read from its config (the model is
    loaded through lmdemo.core.models, cached); a UserError for a model without attention heads."""
    from lmdemo.core.models import load

    cfg = load(model_id).model.config
    layers = getattr(cfg, "num_hidden_layers", None)
    heads = getattr(cfg, "num_attention_heads", None)
    if not layers or not heads:
        raise UserError(f"{model_id!r} has no attention heads (it may be recurrent); pick "
                        "tiny-gpt or smollm2.")
    return int(layers), int(heads)


@contextmanager
def thread_hooks(*specs):
    """Register hooks for the duration of a `with` block, acting only in the calling thread.

    Each spec is (module, when, fn, with_kwargs): `when` is "pre" (a forward pre-hook) or "post"
    (a forward hook); `fn` has torch's hook signature. In any other thread the hook does nothing.
    """
    owner = threading.get_ident()

    def mine(fn):
        def hook(*args):
            return fn(*args) if threading.get_ident() == owner else None
        return hook

    handles = []
    try:
        for module, when, fn, with_kwargs in specs:
            register = (module.register_forward_pre_hook if when == "pre"
                        else module.register_forward_hook)
            handles.append(register(mine(fn), with_kwargs=with_kwargs))
        yield
    finally:
        for handle in handles:
            handle.remove()
