"""Positional encodings as numbers: sinusoidal, sine-only, learned tables, and what they imply.

The sinusoidal encoding of "Attention Is All You Need" (PE(pos, 2i) = sin(pos / 10000^(2i/d)),
PE(pos, 2i+1) = cos(pos / 10000^(2i/d))), the sine-only simplification PE(i, j) =
sin(i / 10000^(2j/d)), similarity between positions and its dependence on distance, the
relative-offset property PE(pos + k) = M_k · PE(pos) with M_k a block-diagonal rotation built from
the formula, and the learned absolute position tables of real models (BERT's
`position_embeddings`, GPT-2's `wpe`) with a 2-D PCA path. Everything returns numpy arrays or
small dataclasses; only `learned_table` touches a model (through `lmdemo.core.models`). Each
panel of the positional page calls one `*_view` function here (one dataclass per panel). The rotary
encoding lives in `lmdemo.lab.rotary`, the position ablation in `lmdemo.lab.position_ablation`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmdemo.core.errors import UserError
from lmdemo.core.registry import ATTENTION_KINDS

ENCODINGS = ("sinusoidal", "sine-only")
METRICS = ("dot", "cosine")
POSITION_TABLE_NAMES = ("position_embeddings", "wpe", "embed_positions", "pos_emb",
                        "position_embedding")


@dataclass(frozen=True)
class Limits:
    """Sizes the positional services accept (pages and CLI use the same caps)."""

    max_d_model: int = 1024  # widest encoding computed
    max_length: int = 2048  # most positions computed
    base: float = 10000.0  # the wavelength base of the paper
    min_d_model: int = 2  # narrowest encoding: one sin/cos pair
    max_rows: int = 300  # a heatmap with more rows is smoothed and thinned: more rows than the
    max_cols: int = 720  # chart has pixels would be dropped unevenly by the browser (moiré)


LIMITS = Limits()


@dataclass(frozen=True)
class Defaults:
    """What the positional page starts from (each value can be changed in the page or its URL)."""

    d_model: int = 64  # the width
    length: int = 100  # the number of positions
    min_positions: int = 2  # fewest positions a slider offers (a distance needs two)
    offset: int = 5  # the offset k of the relative-offset check
    wave_dims: tuple[int, ...] = (0, 1, 6, 7)  # dimensions drawn as waves (a fast and a slow pair)
    corner: int = 6  # rows and columns of M_k shown as a table
    learned_model: str = "minilm"  # the model whose learned position table is shown first
    learned_kinds: tuple[str, ...] = ATTENTION_KINDS  # models offered
    gpt_model: str = "tiny-gpt"  # the shipped GPT-2 (learned table `transformer.wpe`)


DEFAULTS = Defaults()


def check_sizes(length: int, d_model: int, even: bool = True) -> tuple[int, int]:
    """Validate (length, d_model), or raise a UserError that says what to use instead."""
    try:
        length, d_model = int(length), int(d_model)
    except (TypeError, ValueError) as exc:
        raise UserError("length and d_model must be whole numbers.") from exc
    if d_model < LIMITS.min_d_model:
        raise UserError(f"d_model must be at least {LIMITS.min_d_model} (got {d_model}).")
    if d_model > LIMITS.max_d_model:
        raise UserError(f"d_model is capped at {LIMITS.max_d_model} here (got {d_model}); "
                        "use a smaller width.")
    if even and d_model % 2:
        raise UserError(f"d_model must be even: sin and cos come in pairs (got {d_model}; "
                        f"use {d_model - 1} or {d_model + 1}).")
    if length < 1:
        raise UserError(f"length must be at least 1 position (got {length}).")
    if length > LIMITS.max_length:
        raise UserError(f"length is capped at {LIMITS.max_length} positions here (got {length}).")
    return length, d_model


def frequencies(d_model: int, base: float = LIMITS.base) -> np.ndarray:
    """The angular frequency w_i = 1 / base^(2i/d) of each sin/cos pair i."""
    i = np.arange(d_model // 2, dtype=np.float64)  # (d/2,)
    return 1.0 / base ** (2.0 * i / d_model)


def sinusoidal(length: int, d_model: int, base: float = LIMITS.base) -> np.ndarray:
    """The sinusoidal encoding, rows = positions: (length, d_model) float64."""
    length, d_model = check_sizes(length, d_model)
    angles = np.arange(length, dtype=np.float64)[:, None] * frequencies(d_model, base)  # (N, d/2)
    pe = np.empty((length, d_model))
    pe[:, 0::2] = np.sin(angles)
    pe[:, 1::2] = np.cos(angles)
    return pe


def sine_only(length: int, d_model: int, base: float = LIMITS.base) -> np.ndarray:
    """The simplification PE(i, j) = sin(i / base^(2j/d)) for every dimension j: (length, d)."""
    length, d_model = check_sizes(length, d_model, even=False)
    j = np.arange(d_model, dtype=np.float64)  # (d,)
    return np.sin(np.arange(length, dtype=np.float64)[:, None] / base ** (2.0 * j / d_model))


def encoding(kind: str, length: int, d_model: int) -> np.ndarray:
    """The matrix of one of ENCODINGS."""
    if kind == "sinusoidal":
        return sinusoidal(length, d_model)
    if kind == "sine-only":
        return sine_only(length, d_model)
    raise UserError(f"Unknown encoding {kind!r}: use one of {', '.join(ENCODINGS)}.")


def similarity(pe: np.ndarray, metric: str = "dot") -> np.ndarray:
    """Similarity between every pair of positions: (N, N), dot product or cosine."""
    if metric not in METRICS:
        raise UserError(f"Unknown similarity {metric!r}: use dot or cosine.")
    pe = np.asarray(pe, dtype=np.float64)
    if metric == "cosine":
        norms = np.linalg.norm(pe, axis=1, keepdims=True)  # (N, 1)
        pe = pe / np.where(norms > 0, norms, 1.0)
    return pe @ pe.T  # (N, N)


@dataclass
class DiagonalStats:
    """How a similarity matrix varies along each diagonal (positions p and p + offset)."""

    offsets: np.ndarray  # (K,) offsets 0..K-1
    mean: np.ndarray  # (K,) mean similarity at that distance
    spread: np.ndarray  # (K,) max - min along the diagonal: 0 means "depends on distance only"

    @property
    def max_spread(self) -> float:
        return float(self.spread.max()) if self.spread.size else 0.0

    def rows(self) -> list[dict]:
        return [{"offset": int(o), "mean": float(m), "spread": float(s)}
                for o, m, s in zip(self.offsets, self.mean, self.spread, strict=True)]


def diagonal_stats(sim: np.ndarray, max_offset: int | None = None) -> DiagonalStats:
    """Mean and spread of sim[p, p + k] over p, for k = 0..max_offset (the upper diagonals)."""
    n = sim.shape[0]
    k_max = n - 1 if max_offset is None else min(max_offset, n - 1)
    offsets = np.arange(k_max + 1)
    diags = [np.diagonal(sim, offset=int(k)) for k in offsets]
    return DiagonalStats(offsets, np.array([d.mean() for d in diags]),
                         np.array([d.max() - d.min() for d in diags]))


def rotation(k: int, d_model: int, base: float = LIMITS.base) -> np.ndarray:
    """M_k: the block-diagonal rotation with PE(pos + k) = M_k · PE(pos), from the formula.

    sin(w(p+k)) = cos(wk)·sin(wp) + sin(wk)·cos(wp) and cos(w(p+k)) = -sin(wk)·sin(wp) +
    cos(wk)·cos(wp), so each (sin, cos) pair turns by the angle w·k.
    """
    _, d_model = check_sizes(1, d_model)
    m = np.zeros((d_model, d_model))
    for i, w in enumerate(frequencies(d_model, base)):
        c, s = np.cos(w * k), np.sin(w * k)
        m[2 * i:2 * i + 2, 2 * i:2 * i + 2] = [[c, s], [-s, c]]
    return m


@dataclass
class OffsetCheck:
    """How well PE(pos + k) = M_k · PE(pos) holds over every position."""

    kind: str
    k: int
    matrix: np.ndarray  # (d, d) the M_k tried
    errors: np.ndarray  # (N - k,) max |M_k·PE(p) - PE(p+k)| for each p
    lower_bound: float  # for sine-only: the error any linear map must make at p = 0

    @property
    def max_error(self) -> float:
        return float(self.errors.max()) if self.errors.size else 0.0


def offset_check(kind: str, length: int, d_model: int, k: int) -> OffsetCheck:
    """Apply the formula's M_k to every position and measure the error against PE(pos + k).

    For the sine-only encoding the cos terms M_k needs are missing; the best the formula gives is
    the diagonal map cos(w_j·k), and no matrix at all can work: PE(0) is the zero vector, so
    M·PE(0) = 0 ≠ PE(k) for every M.
    """
    length, d_model = check_sizes(length, d_model, even=(kind == "sinusoidal"))
    k = int(k)
    if not 1 <= k < length:
        raise UserError(f"The offset k must be between 1 and length - 1 = {length - 1} (got {k}).")
    pe = encoding(kind, length, d_model)  # (N, d)
    if kind == "sinusoidal":
        m, bound = rotation(k, d_model), 0.0
    else:
        j = np.arange(d_model, dtype=np.float64)
        m = np.diag(np.cos(k / LIMITS.base ** (2.0 * j / d_model)))  # (d, d)
        bound = float(np.abs(pe[k]).max())
    predicted = pe[:-k] @ m.T  # (N - k, d)
    errors = np.abs(predicted - pe[k:]).max(axis=1)  # (N - k,)
    return OffsetCheck(kind, k, m, errors, bound)


@dataclass
class DistanceReport:
    """Can positions be told apart? Distances between the encodings of every pair."""

    nearest: np.ndarray  # (N,) distance from each position to its nearest other position
    closest_pairs: list[tuple[int, int, float]]  # the closest (p, q, distance), p < q
    norms: np.ndarray  # (N,) length of each position's vector

    @property
    def min_distance(self) -> float:
        return self.closest_pairs[0][2] if self.closest_pairs else float("nan")


def distances(pe: np.ndarray, top: int = 10) -> DistanceReport:
    """Nearest-neighbour distance of every position and the closest pairs (Euclidean)."""
    pe = np.asarray(pe, dtype=np.float64)
    n = pe.shape[0]
    if n < 2:
        raise UserError("Distances need at least 2 positions.")
    sq = (pe * pe).sum(axis=1)  # (N,)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * pe @ pe.T, 0.0)  # (N, N)
    dist = np.sqrt(d2)
    np.fill_diagonal(dist, np.inf)
    upper = np.triu_indices(n, k=1)
    flat = dist[upper]
    order = np.argsort(flat, kind="stable")[:top]
    pairs = [(int(upper[0][o]), int(upper[1][o]), float(flat[o])) for o in order]
    return DistanceReport(dist.min(axis=1), pairs, np.sqrt(sq))


def pca_path(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows projected on their first two principal components (numpy SVD): ((N, 2), ratios)."""
    x = np.asarray(table, dtype=np.float64)
    x = x - x.mean(axis=0, keepdims=True)  # (N, d)
    if x.shape[0] < 2:
        raise UserError("A PCA path needs at least 2 positions.")
    u, s, _ = np.linalg.svd(x, full_matrices=False)  # u (N, r), s (r,)
    var = s ** 2
    ratios = var[:2] / var.sum() if var.sum() > 0 else np.zeros(2)
    coords = u[:, :2] * s[:2]  # (N, 2)
    if coords.shape[1] < 2:
        coords = np.hstack([coords, np.zeros((coords.shape[0], 1))])
    return coords, ratios


@dataclass
class LearnedTable:
    """A model's learned absolute position table."""

    model_id: str
    name: str  # the module's name, e.g. "embeddings.position_embeddings" or "transformer.wpe"
    table: np.ndarray  # (positions shown, d_model) float32
    total_positions: int  # rows in the full table


def position_table(model) -> tuple[str, np.ndarray]:
    """The learned position embedding of a loaded torch model: (module name, (P, d) array).

    Raises a UserError when the model has none (recurrent or rotary-only models).
    """
    import torch

    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Embedding) and name.split(".")[-1] in POSITION_TABLE_NAMES:
            return name, module.weight.detach().float().cpu().numpy()  # (P, d)
    if getattr(getattr(model, "config", None), "rope_parameters", None) or \
            getattr(getattr(model, "config", None), "rope_theta", None):
        raise UserError("This model has no learned absolute position table: it uses rotary "
                        "position embeddings (RoPE) instead, rotating each query and key by its "
                        "position inside attention (see the Rotary (RoPE) tab). Pick minilm, "
                        "tiny-gpt or a GPT-2/BERT model.")
    raise UserError("This model has no learned absolute position table (it may use rotary "
                    "embeddings, or be recurrent); pick minilm, tiny-gpt or a GPT-2/BERT model.")


def learned_table(model_id: str, length: int | None = None) -> LearnedTable:
    """The first `length` rows (all when None) of a model's learned position table."""
    from lmdemo.core.models import load
    from lmdemo.core.registry import get_spec

    spec = get_spec(model_id)
    if not spec.learned_positions:
        if spec.kind == "recurrent-lm":
            why = "it reads tokens one at a time, so order is in its recurrence, not in a table"
        elif spec.kind == "causal-lm":
            why = ("it uses rotary position embeddings (RoPE) instead: inside attention each "
                   "query and key is rotated by its position (see the Rotary (RoPE) tab, or "
                   f"`python -m lmdemo positional --kind rotary-model --model {spec.id}`)")
        else:
            why = "it has no learned position table"
        raise UserError(f"{spec.id!r} has no learned position embeddings: {why}. Pick minilm "
                        "or tiny-gpt.")
    loaded = load(model_id)
    name, table = position_table(loaded.model)
    total = table.shape[0]
    if length is not None:
        length = int(length)
        if length < 1:
            raise UserError(f"length must be at least 1 position (got {length}).")
        table = table[:min(length, total)]
    return LearnedTable(spec.id, name, table, total)


SMOOTHING_PASSES = 3  # moving means in a row before thinning: each pass damps aliasing further


def _moving_mean(a: np.ndarray, width: int, axis: int) -> np.ndarray:
    """The mean of `width` neighbours of every value along `axis` (edges mirrored), same shape."""
    n = a.shape[axis]
    pad = [(0, 0)] * a.ndim
    pad[axis] = (width // 2, width - 1 - width // 2)
    c = np.cumsum(np.pad(a, pad, mode="symmetric"), axis=axis)  # (…, n + width − 1, …)
    c = np.concatenate([np.zeros_like(np.take(c, [0], axis=axis)), c], axis=axis)
    return (np.take(c, np.arange(width, width + n), axis=axis)
            - np.take(c, np.arange(n), axis=axis)) / width


def thin_index(n: int, step: int) -> np.ndarray:
    """The rows (or columns) of n that `thin` keeps with this step: the middle of each step."""
    return np.arange(step // 2, n, step) if step > 1 else np.arange(n)


def thin(matrix: np.ndarray, max_rows: int = LIMITS.max_rows,
         max_cols: int = LIMITS.max_cols) -> tuple[np.ndarray, tuple[int, int]]:
    """A big matrix brought down to at most max_rows × max_cols so a browser can draw it without
    aliasing: along each axis with step s > 1 it is smoothed (a moving mean of width s, applied
    SMOOTHING_PASSES times: a bell about 3s wide) and one value in s is kept, at `thin_index`.
    Keeping every s-th row of the raw matrix instead would turn a wave faster than s into a slow
    false one (moiré); smoothed, detail finer than a pixel fades to its local mean. Returns
    (shown, (row step, column step)); (1, 1): the matrix unchanged."""
    matrix = np.asarray(matrix)
    steps = (max(1, -(-matrix.shape[0] // max(1, max_rows))),
             max(1, -(-matrix.shape[1] // max(1, max_cols))))
    if steps == (1, 1):
        return matrix, steps
    shown = matrix.astype(np.float64)
    for axis, step in enumerate(steps):
        if step > 1:
            smooth = shown
            for _ in range(SMOOTHING_PASSES):
                smooth = _moving_mean(smooth, step, axis)
            shown = np.take(smooth, thin_index(shown.shape[axis], step), axis=axis)
    return shown, steps


# ------------------------------------------------------------------ one result per page panel

def installed(model_id: str) -> bool:
    """Whether a model of the registry can be used here (for a page's hint; loads nothing)."""
    from lmdemo.core.registry import get_spec, is_available

    try:
        return is_available(get_spec(model_id))
    except UserError:
        return False


def wave_dims(d_model: int) -> list[int]:
    """The dimensions drawn as waves at first, those that exist at this width."""
    return [d for d in DEFAULTS.wave_dims if d < int(d_model)]


@dataclass
class SinusoidalView:
    """The sinusoidal encoding and the wavelength of each of its pairs."""

    pe: np.ndarray  # (N, d)
    wavelengths: np.ndarray  # (d/2,) positions per full turn of each pair: 2π / ω_i


def sinusoidal_view(length: int, d_model: int) -> SinusoidalView:
    pe = sinusoidal(length, d_model)  # (N, d)
    return SinusoidalView(pe, 2 * np.pi / frequencies(pe.shape[1]))


@dataclass
class SimilarityView:
    """How alike the vectors of every two positions are, and how that varies along diagonals."""

    kind: str
    metric: str
    sim: np.ndarray  # (N, N)
    stats: DiagonalStats


def similarity_view(kind: str, metric: str, length: int, d_model: int) -> SimilarityView:
    sim = similarity(encoding(kind, length, d_model), metric)  # (N, N)
    return SimilarityView(kind, metric, sim, diagonal_stats(sim))


@dataclass
class OffsetView:
    """PE(p + k) = M_k · PE(p) checked for each of ENCODINGS, and the corner of the sinusoidal M_k."""

    k: int
    checks: dict[str, OffsetCheck]  # one per ENCODINGS
    corner: np.ndarray  # (c, c) the top-left corner of the sinusoidal M_k


def offset_view(length: int, d_model: int, k: int) -> OffsetView:
    checks = {kind: offset_check(kind, length, d_model, k) for kind in ENCODINGS}
    c = min(DEFAULTS.corner, int(d_model))
    return OffsetView(int(k), checks, checks["sinusoidal"].matrix[:c, :c])


@dataclass
class SineOnlyView:
    """Both encodings and how well each tells its positions apart."""

    encodings: dict[str, np.ndarray]  # kind -> (N, d)
    reports: dict[str, DistanceReport]  # kind -> distances


def sine_only_view(length: int, d_model: int) -> SineOnlyView:
    pe = {kind: encoding(kind, length, d_model) for kind in ENCODINGS}
    return SineOnlyView(pe, {kind: distances(m) for kind, m in pe.items()})


@dataclass
class LearnedView:
    """A model's learned position table, its PCA path and the cosine similarity of its rows."""

    model_id: str
    name: str  # the table's module, e.g. "transformer.wpe"
    total_positions: int  # rows in the full table
    shown: int  # rows shown (the first ones)
    width: int  # the model's d_model
    table: np.ndarray  # (shown, width)
    coords: np.ndarray  # (shown, 2) positions on the first two principal axes
    ratios: np.ndarray  # (2,) share of the variance on each axis
    sim: np.ndarray  # (shown, shown) cosine similarity between positions
    stats: DiagonalStats


def learned_view(model_id: str, length: int | None = None) -> LearnedView:
    lt = learned_table(model_id, length)
    coords, ratios = pca_path(lt.table)
    sim = similarity(lt.table, "cosine")
    return LearnedView(lt.model_id, lt.name, lt.total_positions, *lt.table.shape, lt.table, coords,
                       ratios, sim, diagonal_stats(sim))
