"""Pure numpy helpers for attention maps: mean over heads, hiding special tokens, renormalizing
rows, and attention rollout (Abnar & Zuidema 2020).

Everything here takes and returns numpy arrays shaped like transformers' attentions stacked over
layers, `(layers, heads, T, T)` indexed [layer][head][query][key], so the page, the CLI and the
tests share one implementation and none of them needs torch.
"""

from __future__ import annotations

import numpy as np


def mean_heads(att: np.ndarray) -> np.ndarray:
    """Average over heads: (layers, heads, T, T) -> (layers, T, T)."""
    return att.mean(axis=1)


def renormalize(mat: np.ndarray) -> np.ndarray:
    """Make every row (last axis) sum to 1 again; all-zero rows stay zero."""
    sums = mat.sum(axis=-1, keepdims=True)
    return np.divide(mat, sums, out=np.zeros_like(mat), where=sums > 0)


def hide_special(att: np.ndarray, special_mask: np.ndarray, renorm: bool = False) -> np.ndarray:
    """Drop the rows and columns of special tokens ([CLS], [SEP], <|endoftext|> ...) from the last
    two axes; with `renorm`, rows are rescaled to sum to 1 over the tokens that remain."""
    keep = ~np.asarray(special_mask, dtype=bool)
    if not keep.any():
        return att
    out = att[..., keep, :][..., :, keep]
    return renormalize(out) if renorm else out


def rollout(att: np.ndarray, residual: bool = True) -> np.ndarray:
    """Attention rollout: how much each input token flows into each position after each layer.

    For every layer the heads are averaged, the identity is added for the residual connection
    (A + I), rows are renormalized, and the layers are multiplied together:
    R_0 = Â_0, R_l = Â_l · R_{l-1}. Returns (layers, T, T); entry l is the rollout up to layer l.
    """
    mean = mean_heads(att).astype(np.float64)  # (layers, T, T)
    n_layers, t = mean.shape[0], mean.shape[-1]
    eye = np.eye(t)
    out = np.empty_like(mean)
    joint = eye
    for layer in range(n_layers):
        a = mean[layer] + eye if residual else mean[layer]  # (T, T)
        a = renormalize(a)
        joint = a @ joint  # (T, T)
        out[layer] = joint
    return out.astype(np.float32)
