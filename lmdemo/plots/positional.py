"""Figures of the positional encoding page: arrays and result dataclasses in, plotly figures out.

Heatmaps of encodings and similarity matrices, waves of selected dimensions, the error of the
relative-offset rotation, nearest-neighbour distances, the PCA path of a learned table, a rotary
pair turning with position, RoPE measured on a real model, and the before/after charts of the
position ablation. Each panel of the page has one `*_charts(view)` builder returning `Chart`s
(figure, export name, CSV columns, and how much a big heatmap was thinned), and the tables it
shows come from `corner_table` and `closest_pairs_table`. No torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from lmdemo.lab.positional import thin

_MARGIN = {"l": 60, "r": 20, "t": 50, "b": 50}
_SIMILARITY = {"zmid": None, "colorscale": "Viridis"}  # heatmaps of non-negative-centred scores
NOISE = 1e-9  # |values| below this are rounding noise and are plotted as 0


@dataclass
class Chart:
    """One figure of the page with what its exports need."""

    fig: go.Figure
    name: str  # the export's file name (and the widget key)
    data: object = None  # the CSV columns: a DataFrame, a list of rows or a dict of columns
    step: int = 1  # a heatmap thinned to every step-th row and column (1: drawn in full)
    shape: tuple[int, int] = (0, 0)  # the full matrix's rows and columns


def _layout(fig: go.Figure, title: str, x: str, y: str, height: int = 420) -> go.Figure:
    fig.update_layout(title=title, xaxis_title=x, yaxis_title=y, height=height, margin=_MARGIN)
    return fig


def heatmap(matrix: np.ndarray, title: str, x: str = "dimension", y: str = "position",
            zmid: float | None = 0.0, colorscale: str = "RdBu_r", height: int = 460,
            robust: bool = False, xs: Sequence[int] | None = None,
            ys: Sequence[int] | None = None) -> go.Figure:
    """A matrix as a heatmap, row 0 at the top; `xs` / `ys` are the real column / row indices
    (a thinned matrix keeps its true positions on the axes); `robust` spans the colours from the
    1st to the 99th percentile of the values of rows 1 and after, so row 0 (position 0 of a
    learned table, often far larger) and a few outliers are clipped instead of washing out the
    rest."""
    z = np.asarray(matrix)
    clip = {}
    if robust and z.size:
        lo, hi = (float(v) for v in np.percentile(z[1:] if len(z) > 1 else z, [1, 99]))
        clip = {"zmin": lo, "zmax": hi if hi > lo else lo + 1.0}
    axes = {k: np.asarray(v) for k, v in (("x", xs), ("y", ys)) if v is not None}
    fig = go.Figure(go.Heatmap(z=z, colorscale=colorscale, zmid=None if clip else zmid,
                               colorbar={"thickness": 14}, **clip, **axes))
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, title, x, y, height)


def waves(pe: np.ndarray, dims: Sequence[int], title: str) -> go.Figure:
    """Selected dimensions of an encoding as curves over position."""
    fig = go.Figure()
    pos = np.arange(pe.shape[0])
    for d in dims:
        fig.add_trace(go.Scatter(x=pos, y=pe[:, d], mode="lines", name=f"dim {d}"))
    return _layout(fig, title, "position", "value", 360)


def diagonal_chart(offsets: np.ndarray, mean: np.ndarray, spread: np.ndarray,
                   title: str) -> go.Figure:
    """Mean similarity at each distance, and its spread over absolute positions."""
    # floating-point noise (~1e-14) would otherwise fill the spread axis as if it were signal
    mean, spread = (np.where(np.abs(a) < NOISE, 0.0, a) for a in (np.asarray(mean),
                                                                   np.asarray(spread)))
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Scatter(x=offsets, y=mean, name="mean similarity", mode="lines"))
    fig.add_trace(go.Scatter(x=offsets, y=spread, name="spread (max − min)", mode="lines",
                             line={"dash": "dot"}), secondary_y=True)
    fig.update_yaxes(title_text="spread", exponentformat="e", secondary_y=True)
    return _layout(fig, title, "distance k = q − p", "mean similarity", 360)


def offset_errors(series: dict[str, np.ndarray], k: int) -> go.Figure:
    """max |M_k·PE(p) − PE(p+k)| for each position p, one curve per encoding (log scale)."""
    fig = go.Figure()
    for name, err in series.items():
        fig.add_trace(go.Scatter(x=np.arange(len(err)), y=np.maximum(err, 1e-17), name=name,
                                 mode="lines"))
    fig.update_yaxes(type="log")
    return _layout(fig, f"Error of PE(p+{k}) = M_{k}·PE(p)", "position p", "max abs error", 360)


def nearest_chart(series: dict[str, np.ndarray]) -> go.Figure:
    """Distance from each position to its nearest other position, one curve per encoding."""
    fig = go.Figure()
    for name, near in series.items():
        fig.add_trace(go.Scatter(x=np.arange(len(near)), y=near, name=name, mode="lines"))
    return _layout(fig, "Nearest-neighbour distance of each position", "position",
                   "distance to the closest other position", 360)


def pca_path(coords: np.ndarray, ratios: np.ndarray, title: str) -> go.Figure:
    """Positions on their first two principal components, joined in order."""
    pos = np.arange(coords.shape[0])
    fig = go.Figure(go.Scatter(
        x=coords[:, 0], y=coords[:, 1], mode="lines+markers", text=[f"pos {p}" for p in pos],
        marker={"color": pos, "colorscale": "Viridis", "size": 6,
                "colorbar": {"title": "position", "thickness": 14}},
        line={"color": "rgba(120,120,120,0.4)"}))
    return _layout(fig, title, f"PC1 ({ratios[0]:.0%} of variance)",
                   f"PC2 ({ratios[1]:.0%} of variance)", 460)


def rotary_pair(path: np.ndarray, pair: int, theta: float) -> go.Figure:
    """One (x_2i, x_2i+1) pair as it turns by pos·θ_i, on the unit circle."""
    pos = np.arange(path.shape[0])
    circle = np.linspace(0, 2 * np.pi, 200)
    fig = go.Figure([
        go.Scatter(x=np.cos(circle), y=np.sin(circle), mode="lines", name="unit circle",
                   line={"color": "lightgray"}, hoverinfo="skip"),
        go.Scatter(x=path[:, 0], y=path[:, 1], mode="markers+text", name=f"pair {pair}",
                   text=[str(p) for p in pos], textposition="top center",
                   marker={"color": pos, "colorscale": "Viridis", "size": 9})])
    for p in pos[:: max(1, len(pos) // 12)]:
        fig.add_annotation(x=path[p, 0], y=path[p, 1], ax=0, ay=0, xref="x", yref="y",
                           axref="x", ayref="y", showarrow=True, arrowhead=2, opacity=0.5)
    fig.update_yaxes(scaleanchor="x", scaleratio=1)
    return _layout(fig, f"Pair {pair} turns by θ = {theta:.4g} rad per position",
                   f"x_{2 * pair}", f"x_{2 * pair + 1}", 480)


def rotary_offsets(offsets: np.ndarray, rope_dev: np.ndarray, add_dev: np.ndarray,
                   title: str = "How much q·k changes with absolute position, per offset"
                   ) -> go.Figure:
    """Spread of q·k over absolute positions at each offset: RoPE vs additive sinusoids.

    The two extreme offsets (a single (m, n) pair each, so no spread at all) are left out."""
    if len(offsets) > 2:
        offsets, rope_dev, add_dev = offsets[1:-1], rope_dev[1:-1], add_dev[1:-1]
    fig = go.Figure([
        go.Scatter(x=offsets, y=np.maximum(rope_dev, 1e-17), name="RoPE", mode="lines"),
        go.Scatter(x=offsets, y=np.maximum(add_dev, 1e-17), name="added sinusoids",
                   mode="lines")])
    fig.update_yaxes(type="log")
    return _layout(fig, title, "offset n − m", "max − min over m", 360)


def wavelengths(freqs: np.ndarray, theta: float) -> go.Figure:
    """Positions per full turn (2π/θ_i) of each rotary pair, log scale."""
    fig = go.Figure(go.Scatter(x=np.arange(len(freqs)), y=2 * np.pi / np.asarray(freqs),
                               mode="lines+markers"))
    fig.update_yaxes(type="log")
    return _layout(fig, f"Wavelength of each pair (base θ = {theta:,.0f})", "pair i",
                   "positions per full turn", 340)


def rotary_model_charts(r) -> list[Chart]:
    """The charts of `lmdemo.lab.rotary.ModelRotary`."""
    tag = f"{r.model_id}-L{r.layer}H{r.head}"
    q_tok, k_tok = r.tokens[r.query_index], r.tokens[r.key_index]
    n = r.scores.shape[0]
    return [
        Chart(wavelengths(r.frequencies, r.theta), f"rope-wavelengths-{r.model_id}",
              {"pair": np.arange(len(r.frequencies)), "radians_per_position": r.frequencies,
               "wavelength": r.wavelengths}),
        Chart(rotary_offsets(r.offsets, r.deviation, r.additive_deviation,
                             f"q·k/√d of {q_tok!s} → {k_tok!s}: change over absolute positions"),
              f"rope-deviation-{tag}", {"offset": r.offsets, "score": r.by_offset,
                                        "rope": r.deviation, "additive": r.additive_deviation}),
        Chart(heatmap(r.scores, f"Layer {r.layer} head {r.head}: q·k/√d with q at m (rows), k at n",
                      "key position n", "query position m", **_SIMILARITY),
              f"rope-scores-{tag}", {f"n={j}": r.scores[:, j] for j in range(n)}),
    ]


def top_tokens(before: list[tuple[str, float]], after: list[tuple[str, float]]) -> go.Figure:
    """Top next tokens with normal and with broken positions, side by side."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("normal positions", "broken positions"))
    for col, items, color in ((1, before, "#1f77b4"), (2, after, "#d62728")):
        fig.add_trace(go.Bar(x=[p for _, p in items][::-1], y=[t for t, _ in items][::-1],
                             orientation="h", marker_color=color, showlegend=False),
                      row=1, col=col)
    fig.update_xaxes(title_text="probability")
    fig.update_layout(height=400, margin=_MARGIN, title="Next token after the last one")
    return fig


def attention_pair(before: np.ndarray, after: np.ndarray, tokens: list[str],
                   title: str) -> go.Figure:
    """One head's attention weights with normal and with broken positions."""
    labels = [f"{i}:{t}" for i, t in enumerate(tokens)]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("normal positions", "broken positions"),
                        horizontal_spacing=0.12)
    for col, m in ((1, before), (2, after)):
        fig.add_trace(go.Heatmap(z=m, x=labels, y=labels, zmin=0, zmax=1, colorscale="Blues",
                                 showscale=col == 2), row=1, col=col)
        fig.update_yaxes(autorange="reversed", row=1, col=col)
    fig.update_layout(height=480, margin=_MARGIN, title=title)
    return fig


def kl_chart(tokens: list[str], kl: list[float]) -> go.Figure:
    """KL(normal || broken) of the next-token distribution after each token."""
    fig = go.Figure(go.Bar(x=[f"{i}:{t}" for i, t in enumerate(tokens)], y=kl))
    return _layout(fig, "KL divergence at each position (nats)", "token", "KL", 320)


def ablation_charts(r) -> list[Chart]:
    """The charts of `lmdemo.lab.position_ablation.AblationResult`."""
    rows = [{"rank": i + 1, "before": b[0], "p_before": b[1], "after": a[0], "p_after": a[1]}
            for i, (b, a) in enumerate(zip(r.top_before, r.top_after, strict=True))]
    return [
        Chart(top_tokens(r.top_before, r.top_after), f"ablation-top-{r.mode}", rows),
        Chart(kl_chart(r.tokens, r.kl_per_position), f"ablation-kl-{r.mode}",
              {"token": r.tokens, "position_id": r.position_ids, "kl": r.kl_per_position}),
        Chart(attention_pair(r.attention_before, r.attention_after, r.tokens,
                             f"Attention, layer {r.layer} head {r.head}"),
              f"ablation-attention-{r.mode}",
              {"before": r.attention_before.ravel(), "after": r.attention_after.ravel()}),
    ]


# ------------------------------------------------------------------ one builder per page panel

def heatmap_chart(matrix: np.ndarray, name: str, title: str, x: str = "dimension",
                  y: str = "position", **kw) -> Chart:
    """A heatmap thinned when too big for a browser, with its shown cells as the CSV."""
    matrix = np.asarray(matrix)
    shown, step = thin(matrix)
    rows, cols = np.arange(matrix.shape[0])[::step], np.arange(matrix.shape[1])[::step]
    return Chart(heatmap(shown, title, x, y, xs=cols, ys=rows, **kw), name,
                 pd.DataFrame(shown, index=rows, columns=cols), step,
                 (int(matrix.shape[0]), int(matrix.shape[1])))


def sinusoidal_charts(v) -> list[Chart]:
    """`lmdemo.lab.positional.SinusoidalView`: the encoding as a heatmap."""
    n, d = v.pe.shape
    return [heatmap_chart(v.pe, "sinusoidal-encoding", f"Sinusoidal encoding, {n} positions × {d}")]


def wave_charts(v, dims: Sequence[int]) -> list[Chart]:
    """`SinusoidalView`: the chosen dimensions (those that exist) as waves over position."""
    dims = [int(i) for i in dims if 0 <= int(i) < v.pe.shape[1]]
    return [Chart(waves(v.pe, dims, "Selected dimensions over position"), "sinusoidal-waves",
                  pd.DataFrame({f"dim {i}": v.pe[:, i] for i in dims}))]


def similarity_charts(v) -> list[Chart]:
    """`SimilarityView`: the matrix, then the mean and spread along each diagonal."""
    tag = f"{v.kind}-{v.metric}"
    return [heatmap_chart(v.sim, f"similarity-{tag}", f"{v.metric} similarity, {v.kind}",
                          "position", "position", **_SIMILARITY),
            Chart(diagonal_chart(v.stats.offsets, v.stats.mean, v.stats.spread,
                                 "Similarity by distance"), f"diagonals-{tag}", v.stats.rows())]


def offset_charts(v) -> list[Chart]:
    """`OffsetView`: the error at every position, one curve per encoding."""
    errors = {kind: c.errors for kind, c in v.checks.items()}
    return [Chart(offset_errors(errors, v.k), f"offset-errors-k{v.k}", errors)]


def corner_table(v) -> pd.DataFrame:
    """`OffsetView`: the top-left corner of M_k, rounded for reading."""
    return pd.DataFrame(v.corner).round(4)


def sine_only_charts(v) -> list[Chart]:
    """`SineOnlyView`: the sine-only encoding, then each position's nearest-neighbour distance."""
    near = {kind: r.nearest for kind, r in v.reports.items()}
    return [heatmap_chart(v.encodings["sine-only"], "sine-only-encoding", "Sine-only encoding"),
            Chart(nearest_chart(near), "nearest-neighbour-distance", near)]


def closest_pairs_table(v, kind: str = "sine-only") -> pd.DataFrame:
    """`SineOnlyView`: the closest pairs of positions under one encoding."""
    return pd.DataFrame(v.reports[kind].closest_pairs,
                        columns=["position p", "position q", "distance"])


def learned_charts(v) -> list[Chart]:
    """`LearnedView`: the table, its PCA path, and the cosine similarity of its rows."""
    tag, coords = v.model_id, v.coords
    return [
        heatmap_chart(v.table, f"learned-{tag}", f"Learned position table of {tag}", robust=True),
        Chart(pca_path(coords, v.ratios, "Positions on their first two principal axes"),
              f"pca-{tag}", {"position": range(len(coords)), "pc1": coords[:, 0],
                             "pc2": coords[:, 1]}),
        heatmap_chart(v.sim, f"learned-similarity-{tag}", "Cosine similarity between positions",
                      "position", "position", **_SIMILARITY),
    ]


def rotary_charts(v) -> list[Chart]:
    """`lmdemo.lab.rotary.RotaryView`: the turning pair, then q·k per offset and at every (m, n)."""
    rc = v.check
    return [
        Chart(rotary_pair(v.path, v.pair, v.theta), f"rope-pair-{v.pair}",
              {"position": range(len(v.path)), "x_even": v.path[:, 0], "x_odd": v.path[:, 1]}),
        Chart(rotary_offsets(rc.offsets, rc.deviation, rc.additive_deviation), "rope-deviation",
              {"offset": rc.offsets, "rope": rc.deviation, "additive": rc.additive_deviation}),
        heatmap_chart(rc.scores, "rope-scores", "q·k with q at position m (rows), k at n (columns)",
                      "key position n", "query position m", **_SIMILARITY),
    ]
