"""Rotary position embeddings (RoPE, Su et al. 2021) as numbers.

RoPE does not add anything to a token's vector: it turns each pair of query/key coordinates
(x_2i, x_2i+1) by the angle pos·θ_i, θ_i = base^(-2i/d). A rotation by m·θ on the query and n·θ
on the key leaves their dot product depending on n - m only, so attention scores see relative
offsets. This module rotates vectors (interleaved pairs, as in the RoFormer paper), traces one
pair as it turns with position, and measures how far q·k drifts across absolute positions for a
fixed offset — next to the additive sinusoidal encoding, where it does drift.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmdemo.errors import UserError
from lmdemo.positional import LIMITS, check_sizes, frequencies, sinusoidal


def angles(length: int, d_model: int, base: float = LIMITS.base) -> np.ndarray:
    """pos·θ_i for every position and pair: (length, d/2)."""
    length, d_model = check_sizes(length, d_model)
    return np.arange(length, dtype=np.float64)[:, None] * frequencies(d_model, base)


def table(length: int, d_model: int) -> np.ndarray:
    """The rotation table, rows = positions: [cos(pos·θ_0), sin(pos·θ_0), cos(pos·θ_1), ...]."""
    a = angles(length, d_model)  # (N, d/2)
    out = np.empty((a.shape[0], 2 * a.shape[1]))
    out[:, 0::2], out[:, 1::2] = np.cos(a), np.sin(a)
    return out


def rotate(x: np.ndarray, positions: np.ndarray, base: float = LIMITS.base) -> np.ndarray:
    """Rotate each row x[t] (interleaved pairs) by its position: (T, d) -> (T, d)."""
    x = np.asarray(x, dtype=np.float64)
    positions = np.asarray(positions, dtype=np.float64)
    a = positions[:, None] * frequencies(x.shape[1], base)  # (T, d/2)
    c, s = np.cos(a), np.sin(a)
    even, odd = x[:, 0::2], x[:, 1::2]  # (T, d/2) each
    out = np.empty_like(x)
    out[:, 0::2] = even * c - odd * s
    out[:, 1::2] = even * s + odd * c
    return out


def pair_path(length: int, d_model: int, pair: int, start=(1.0, 0.0)) -> np.ndarray:
    """Where one 2-D pair (x_2i, x_2i+1) = start ends up at each position: (length, 2)."""
    length, d_model = check_sizes(length, d_model)
    if not 0 <= pair < d_model // 2:
        raise UserError(f"The pair index must be between 0 and {d_model // 2 - 1} (got {pair}).")
    x = np.zeros((length, d_model))
    x[:, 2 * pair:2 * pair + 2] = start
    return rotate(x, np.arange(length))[:, 2 * pair:2 * pair + 2]


@dataclass
class RelativeCheck:
    """q·k for one query and one key placed at every pair of positions."""

    scores: np.ndarray  # (N, N) RoPE: rot(q, m)·rot(k, n), rows m = query position
    additive: np.ndarray  # (N, N) the same with the sinusoidal encoding added instead
    by_offset: np.ndarray  # (2N-1,) RoPE score for each offset n - m, from -(N-1) to N-1
    deviation: np.ndarray  # (2N-1,) RoPE: max - min of the score over m at that offset
    additive_deviation: np.ndarray  # (2N-1,) the same for the additive encoding

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
