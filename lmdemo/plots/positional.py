"""Figures of the positional encoding page: arrays and result dataclasses in, plotly figures out.

Heatmaps of encodings and similarity matrices, waves of selected dimensions, the error of the
relative-offset rotation, nearest-neighbour distances, the PCA path of a learned table, a rotary
pair turning with position, RoPE measured on a real model, and the before/after charts of the
position ablation. Each panel of the page has one `*_charts(view)` builder returning `Chart`s
(figure, export name, CSV columns, and how much a big heatmap was averaged down), and the tables
it shows come from `corner_table` and `closest_pairs_table`. Axis titles, legends and chart titles
come from `WORDS` in the reader's language (`lmdemo.plots.common.word`). No torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from lmdemo.lab.positional import thin, thin_index
from lmdemo.plots.common import word

_MARGIN = {"l": 60, "r": 20, "t": 50, "b": 50}
_SIMILARITY = {"zmid": None, "colorscale": "Viridis"}  # heatmaps of non-negative-centred scores
NOISE = 1e-9  # values this small relative to the largest are rounding noise, plotted as 0
ROBUST = (1, 99)  # percentiles the colours of a robust heatmap span

WORDS = {
    "en": {
        "dimension": "dimension", "position": "position", "value": "value",
        "dim": "dim {d}", "waves-title": "Selected dimensions over position",
        "mean-sim": "mean similarity", "spread-name": "spread (max − min)", "spread": "spread",
        "distance-k": "distance k = q − p", "by-distance": "Similarity by distance",
        "offset-title": "Error of PE(p+{k}) = M_{k}·PE(p)", "position-p": "position p",
        "max-error": "max abs error",
        "nearest-title": "Nearest-neighbour distance of each position",
        "nearest-y": "distance to the closest other position",
        "pos": "pos {p}", "pc": "PC{i} ({share:.0%} of variance)",
        "pca-off": "position 0 lies off the chart at ({x:.2g}, {y:.2g}); the axes fit the others",
        "pca-title": "Positions on their first two principal axes",
        "unit-circle": "unit circle", "pair": "pair {pair}",
        "pair-title": "Pair {pair} turns by θ = {theta:.4g} rad per position",
        "rope": "RoPE", "added": "added sinusoids",
        "rope-dev-title": "How much q·k changes with absolute position, per offset",
        "offset-nm": "offset n − m", "max-min-m": "max − min over m",
        "wavelength-title": "Wavelength of each pair (base θ = {theta:,.0f})",
        "pair-i": "pair i", "per-turn": "positions per full turn",
        "model-dev-title": "q·k/√d of {q} → {k}: change over absolute positions",
        "model-scores-title": "Layer {layer} head {head}: q·k/√d with q at m (rows), k at n",
        "key-n": "key position n", "query-m": "query position m",
        "normal": "normal positions", "broken": "broken positions",
        "probability": "probability", "next-title": "Next token after the last one",
        "kl-title": "KL divergence at each position (nats)", "token": "token", "kl": "KL",
        "attention-title": "Attention, layer {layer} head {head}",
        "sinusoidal-title": "Sinusoidal encoding, {n} positions × {d}",
        "similarity-title": "{metric} similarity, {kind}",
        "sine-only-title": "Sine-only encoding, {n} positions × {d}",
        "learned-title": "Learned position table of {model}",
        "learned-sim-title": "Cosine similarity between positions",
        "rope-scores-title": "q·k with q at position m (rows), k at n (columns)",
        "position-q": "position q", "distance": "distance",
        "sinusoidal": "sinusoidal", "sine-only": "sine-only", "dot": "dot", "cosine": "cosine",
        "block": "row {r}, column {c}, smoothed over about ±{dr} rows, ±{dc} columns",
        "averaged": "{rows}×{cols} values smoothed and drawn one in {rs}×{cs}, so detail finer "
                    "than a pixel is not drawn as false stripes (every value: python -m lmdemo "
                    "positional --json)",
    },
    "zh": {
        "dimension": "维度", "position": "位置", "value": "取值",
        "dim": "第 {d} 维", "waves-title": "所选维度随位置的变化",
        "mean-sim": "平均相似度", "spread-name": "离散度（最大 − 最小）", "spread": "离散度",
        "distance-k": "距离 k = q − p", "by-distance": "相似度与距离",
        "offset-title": "PE(p+{k}) = M_{k}·PE(p) 的误差", "position-p": "位置 p",
        "max-error": "最大绝对误差",
        "nearest-title": "每个位置到最近邻位置的距离",
        "nearest-y": "到最近的其他位置的距离",
        "pos": "位置 {p}", "pc": "PC{i}（占方差的 {share:.0%}）",
        "pca-off": "位置 0 在图外 ({x:.2g}, {y:.2g})；坐标轴按其余位置缩放",
        "pca-title": "各位置在前两个主成分上的投影",
        "unit-circle": "单位圆", "pair": "第 {pair} 对",
        "pair-title": "第 {pair} 对每个位置转过 θ = {theta:.4g} 弧度",
        "rope": "RoPE", "added": "加上正弦编码",
        "rope-dev-title": "每个偏移下 q·k 随绝对位置的变化",
        "offset-nm": "偏移 n − m", "max-min-m": "对 m 取最大 − 最小",
        "wavelength-title": "每一对的波长（基数 θ = {theta:,.0f}）",
        "pair-i": "第 i 对", "per-turn": "转一整圈需要的位置数",
        "model-dev-title": "{q} → {k} 的 q·k/√d：随绝对位置的变化",
        "model-scores-title": "第 {layer} 层第 {head} 个头：q 在 m（行）、k 在 n 时的 q·k/√d",
        "key-n": "键的位置 n", "query-m": "查询的位置 m",
        "normal": "正常位置", "broken": "破坏后的位置",
        "probability": "概率", "next-title": "最后一个词元之后的下一个词元",
        "kl-title": "每个位置上的 KL 散度（奈特）", "token": "词元", "kl": "KL",
        "attention-title": "注意力，第 {layer} 层第 {head} 个头",
        "sinusoidal-title": "正弦位置编码，{n} 个位置 × {d}",
        "similarity-title": "{metric}相似度，{kind}",
        "sine-only-title": "仅正弦编码，{n} 个位置 × {d}",
        "learned-title": "{model} 的可学习位置表",
        "learned-sim-title": "位置之间的余弦相似度",
        "rope-scores-title": "q 在位置 m（行）、k 在位置 n（列）时的 q·k",
        "position-q": "位置 q", "distance": "距离",
        "sinusoidal": "正弦编码", "sine-only": "仅正弦编码", "dot": "点积", "cosine": "余弦",
        "block": "第 {r} 行、第 {c} 列，在上下约 {dr} 行、左右约 {dc} 列内平滑",
        "averaged": "{rows}×{cols} 个数值先平滑，再每 {rs}×{cs} 个画一个，这样比像素还细的"
                    "细节不会被画成虚假的条纹（全部数值：python -m lmdemo positional --json）",
    },
}


def _w(key: str, **values) -> str:
    return word(WORDS, key, **values)


def _name(kind: str) -> str:
    """An encoding's or metric's name in the chart language (other names as they are)."""
    return _w(kind) if kind in WORDS["en"] else kind


@dataclass
class Chart:
    """One figure of the page with what its exports need."""

    fig: go.Figure
    name: str  # the export's file name (and the widget key)
    data: object = None  # the CSV columns: a DataFrame, a list of rows or a dict of columns
    steps: tuple[int, int] = (1, 1)  # a heatmap averaged over blocks of (rows, columns); (1, 1): full
    shape: tuple[int, int] = (0, 0)  # the full matrix's rows and columns

    @property
    def thinned(self) -> bool:
        return self.steps != (1, 1)

    @property
    def step(self) -> int:
        """The larger of the two steps (1: drawn in full)."""
        return max(self.steps)


def _layout(fig: go.Figure, title: str, x: str, y: str, height: int = 420) -> go.Figure:
    fig.update_layout(title=title, xaxis_title=x, yaxis_title=y, height=height, margin=_MARGIN)
    return fig


def robust_range(z: np.ndarray) -> tuple[float, float]:
    """The colour range of a robust heatmap: the ROBUST percentiles of the values of rows 1 and
    after (row 0, position 0 of a learned table, is often far larger than the rest)."""
    z = np.asarray(z, dtype=np.float64)
    lo, hi = (float(v) for v in np.percentile(z[1:] if len(z) > 1 else z, ROBUST))
    return lo, (hi if hi > lo else lo + 1.0)


def heatmap(matrix: np.ndarray, title: str, x: str | None = None, y: str | None = None,
            zmid: float | None = 0.0, colorscale: str = "RdBu_r", height: int = 460,
            robust: bool = False, xs: Sequence[int] | None = None,
            ys: Sequence[int] | None = None) -> go.Figure:
    """A matrix as a heatmap, row 0 at the top; `xs` / `ys` are the real column / row indices
    (a thinned matrix keeps its true positions on the axes); `robust` spans the colours over
    `robust_range`, so row 0 and a few outliers are clipped instead of washing out the rest."""
    z = np.asarray(matrix)
    clip = {}
    if robust and z.size:
        lo, hi = robust_range(z)
        clip = {"zmin": lo, "zmax": hi}
    axes = {k: np.asarray(v) for k, v in (("x", xs), ("y", ys)) if v is not None}
    fig = go.Figure(go.Heatmap(z=z, colorscale=colorscale, zmid=None if clip else zmid,
                               colorbar={"thickness": 14}, **clip, **axes))
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, title, _w("dimension") if x is None else x,
                   _w("position") if y is None else y, height)


def waves(pe: np.ndarray, dims: Sequence[int], title: str) -> go.Figure:
    """Selected dimensions of an encoding as curves over position."""
    fig = go.Figure()
    pos = np.arange(pe.shape[0])
    for d in dims:
        fig.add_trace(go.Scatter(x=pos, y=pe[:, d], mode="lines", name=_w("dim", d=d)))
    return _layout(fig, title, _w("position"), _w("value"), 360)


def without_noise(values: np.ndarray, scale: float | None = None) -> np.ndarray:
    """`values` with everything below NOISE × `scale` (default: their largest magnitude, at
    least 1) set to 0: floating-point rounding (~1e-14) is not signal."""
    a = np.asarray(values, dtype=np.float64)
    scale = max(1.0, float(np.abs(a).max()) if a.size else 1.0) if scale is None else scale
    return np.where(np.abs(a) < NOISE * scale, 0.0, a)


def diagonal_chart(offsets: np.ndarray, mean: np.ndarray, spread: np.ndarray,
                   title: str) -> go.Figure:
    """Mean similarity at each distance, and its spread over absolute positions; a spread that is
    rounding noise next to the similarities is drawn as 0 (it would otherwise fill its axis)."""
    scale = max(1.0, float(np.abs(mean).max()) if np.size(mean) else 1.0)
    mean, spread = without_noise(mean, scale), without_noise(spread, scale)
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Scatter(x=offsets, y=mean, name=_w("mean-sim"), mode="lines"))
    fig.add_trace(go.Scatter(x=offsets, y=spread, name=_w("spread-name"), mode="lines",
                             line={"dash": "dot"}), secondary_y=True)
    fig.update_yaxes(title_text=_w("spread"), exponentformat="e", secondary_y=True)
    return _layout(fig, title, _w("distance-k"), _w("mean-sim"), 360)


def offset_errors(series: dict[str, np.ndarray], k: int) -> go.Figure:
    """max |M_k·PE(p) − PE(p+k)| for each position p, one curve per encoding (log scale)."""
    fig = go.Figure()
    for name, err in series.items():
        fig.add_trace(go.Scatter(x=np.arange(len(err)), y=np.maximum(err, 1e-17),
                                 name=_name(name), mode="lines"))
    fig.update_yaxes(type="log")
    return _layout(fig, _w("offset-title", k=k), _w("position-p"), _w("max-error"), 360)


def nearest_chart(series: dict[str, np.ndarray]) -> go.Figure:
    """Distance from each position to its nearest other position, one curve per encoding."""
    fig = go.Figure()
    for name, near in series.items():
        fig.add_trace(go.Scatter(x=np.arange(len(near)), y=near, name=_name(name), mode="lines"))
    return _layout(fig, _w("nearest-title"), _w("position"), _w("nearest-y"), 360)


def pca_path(coords: np.ndarray, ratios: np.ndarray, title: str) -> go.Figure:
    """Positions on their first two principal components, joined in order."""
    pos = np.arange(coords.shape[0])
    fig = go.Figure(go.Scatter(
        x=coords[:, 0], y=coords[:, 1], mode="lines+markers", text=[_w("pos", p=p) for p in pos],
        marker={"color": pos, "colorscale": "Viridis", "size": 6,
                "colorbar": {"title": _w("position"), "thickness": 14}},
        line={"color": "rgba(120,120,120,0.4)"}))
    fig = _layout(fig, title, _w("pc", i=1, share=ratios[0]), _w("pc", i=2, share=ratios[1]),
                  460)
    rest = coords[1:, :2]
    if len(rest) >= 2:  # position 0 of a learned table often sits far out and squashes the rest
        lo, hi = rest.min(axis=0), rest.max(axis=0)
        pad = (hi - lo) * 0.08 + 1e-9
        if np.any(coords[0, :2] < lo - pad) or np.any(coords[0, :2] > hi + pad):
            fig.update_xaxes(range=[lo[0] - pad[0], hi[0] + pad[0]])
            fig.update_yaxes(range=[lo[1] - pad[1], hi[1] + pad[1]])
            fig.add_annotation(text=_w("pca-off", x=coords[0, 0], y=coords[0, 1]), showarrow=False,
                               xref="paper", yref="paper", x=0, y=1.02, xanchor="left",
                               yanchor="bottom", font={"size": 12, "color": "#555"})
    return fig


def rotary_pair(path: np.ndarray, pair: int, theta: float) -> go.Figure:
    """One (x_2i, x_2i+1) pair as it turns by pos·θ_i, on the unit circle."""
    pos = np.arange(path.shape[0])
    circle = np.linspace(0, 2 * np.pi, 200)
    fig = go.Figure([
        go.Scatter(x=np.cos(circle), y=np.sin(circle), mode="lines", name=_w("unit-circle"),
                   line={"color": "lightgray"}, hoverinfo="skip"),
        go.Scatter(x=path[:, 0], y=path[:, 1], mode="markers+text", name=_w("pair", pair=pair),
                   text=[str(p) for p in pos], textposition="top center",
                   marker={"color": pos, "colorscale": "Viridis", "size": 9})])
    for p in pos[:: max(1, len(pos) // 12)]:
        fig.add_annotation(x=path[p, 0], y=path[p, 1], ax=0, ay=0, xref="x", yref="y",
                           axref="x", ayref="y", showarrow=True, arrowhead=2, opacity=0.5)
    fig.update_yaxes(scaleanchor="x", scaleratio=1)
    return _layout(fig, _w("pair-title", pair=pair, theta=theta),
                   f"x_{2 * pair}", f"x_{2 * pair + 1}", 480)


def rotary_offsets(offsets: np.ndarray, rope_dev: np.ndarray, add_dev: np.ndarray,
                   title: str | None = None) -> go.Figure:
    """Spread of q·k over absolute positions at each offset: RoPE vs additive sinusoids.

    The two extreme offsets (a single (m, n) pair each, so no spread at all) are left out."""
    if len(offsets) > 2:
        offsets, rope_dev, add_dev = offsets[1:-1], rope_dev[1:-1], add_dev[1:-1]
    fig = go.Figure([
        go.Scatter(x=offsets, y=np.maximum(rope_dev, 1e-17), name=_w("rope"), mode="lines"),
        go.Scatter(x=offsets, y=np.maximum(add_dev, 1e-17), name=_w("added"), mode="lines")])
    fig.update_yaxes(type="log")
    return _layout(fig, title or _w("rope-dev-title"), _w("offset-nm"), _w("max-min-m"), 360)


def wavelengths(freqs: np.ndarray, theta: float) -> go.Figure:
    """Positions per full turn (2π/θ_i) of each rotary pair, log scale."""
    fig = go.Figure(go.Scatter(x=np.arange(len(freqs)), y=2 * np.pi / np.asarray(freqs),
                               mode="lines+markers"))
    fig.update_yaxes(type="log")
    return _layout(fig, _w("wavelength-title", theta=theta), _w("pair-i"), _w("per-turn"), 340)


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
                             _w("model-dev-title", q=q_tok, k=k_tok)),
              f"rope-deviation-{tag}", {"offset": r.offsets, "score": r.by_offset,
                                        "rope": r.deviation, "additive": r.additive_deviation}),
        Chart(heatmap(r.scores, _w("model-scores-title", layer=r.layer, head=r.head),
                      _w("key-n"), _w("query-m"), **_SIMILARITY),
              f"rope-scores-{tag}", {f"n={j}": r.scores[:, j] for j in range(n)}),
    ]


def top_tokens(before: list[tuple[str, float]], after: list[tuple[str, float]]) -> go.Figure:
    """Top next tokens with normal and with broken positions, side by side."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=(_w("normal"), _w("broken")))
    for col, items, color in ((1, before, "#1f77b4"), (2, after, "#d62728")):
        fig.add_trace(go.Bar(x=[p for _, p in items][::-1], y=[t for t, _ in items][::-1],
                             orientation="h", marker_color=color, showlegend=False),
                      row=1, col=col)
    fig.update_xaxes(title_text=_w("probability"))
    fig.update_layout(height=400, margin=_MARGIN, title=_w("next-title"))
    return fig


def attention_pair(before: np.ndarray, after: np.ndarray, tokens: list[str],
                   title: str) -> go.Figure:
    """One head's attention weights with normal and with broken positions."""
    labels = [f"{i}:{t}" for i, t in enumerate(tokens)]
    fig = make_subplots(rows=1, cols=2, subplot_titles=(_w("normal"), _w("broken")),
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
    return _layout(fig, _w("kl-title"), _w("token"), _w("kl"), 320)


def ablation_charts(r) -> list[Chart]:
    """The charts of `lmdemo.lab.position_ablation.AblationResult`."""
    rows = [{"rank": i + 1, "before": b[0], "p_before": b[1], "after": a[0], "p_after": a[1]}
            for i, (b, a) in enumerate(zip(r.top_before, r.top_after, strict=True))]
    return [
        Chart(top_tokens(r.top_before, r.top_after), f"ablation-top-{r.mode}", rows),
        Chart(kl_chart(r.tokens, r.kl_per_position), f"ablation-kl-{r.mode}",
              {"token": r.tokens, "position_id": r.position_ids, "kl": r.kl_per_position}),
        Chart(attention_pair(r.attention_before, r.attention_after, r.tokens,
                             _w("attention-title", layer=r.layer, head=r.head)),
              f"ablation-attention-{r.mode}",
              {"before": r.attention_before.ravel(), "after": r.attention_after.ravel()}),
    ]


# ------------------------------------------------------------------ one builder per page panel

def heatmap_chart(matrix: np.ndarray, name: str, title: str, x: str | None = None,
                  y: str | None = None, **kw) -> Chart:
    """A heatmap smoothed and thinned (`lmdemo.lab.positional.thin`) when it has more cells than
    a chart has pixels; the axes carry the real index of each shown row and column, the title says
    it was thinned, the hover which cell a value stands for, and the CSV the shown cells."""
    matrix = np.asarray(matrix)
    shown, (rs, cs) = thin(matrix)
    rows, cols = thin_index(matrix.shape[0], rs), thin_index(matrix.shape[1], cs)
    if (rs, cs) != (1, 1):
        title += "<br><sup>" + _w("averaged", rs=rs, cs=cs, rows=matrix.shape[0],
                                  cols=matrix.shape[1]) + "</sup>"
    fig = heatmap(shown, title, x, y, xs=cols, ys=rows, **kw)
    if (rs, cs) != (1, 1):
        fig.data[0].update(customdata=[[_w("block", r=r, c=c, dr=3 * (rs - 1) // 2,
                                           dc=3 * (cs - 1) // 2)
                                        for c in cols] for r in rows],
                           hovertemplate="%{customdata}<br>%{z:.4g}<extra></extra>")
    return Chart(fig, name, pd.DataFrame(shown, index=rows, columns=cols), (rs, cs),
                 (int(matrix.shape[0]), int(matrix.shape[1])))


def sinusoidal_charts(v) -> list[Chart]:
    """`lmdemo.lab.positional.SinusoidalView`: the encoding as a heatmap."""
    n, d = v.pe.shape
    return [heatmap_chart(v.pe, "sinusoidal-encoding", _w("sinusoidal-title", n=n, d=d))]


def wave_charts(v, dims: Sequence[int]) -> list[Chart]:
    """`SinusoidalView`: the chosen dimensions (those that exist) as waves over position."""
    dims = [int(i) for i in dims if 0 <= int(i) < v.pe.shape[1]]
    return [Chart(waves(v.pe, dims, _w("waves-title")), "sinusoidal-waves",
                  pd.DataFrame({f"dim {i}": v.pe[:, i] for i in dims}))]


def spread_value(stats) -> float:
    """The largest spread along a diagonal as the page shows it: 0 when it is rounding noise
    next to the similarities themselves (see `without_noise`)."""
    scale = max(1.0, float(np.abs(stats.mean).max()) if np.size(stats.mean) else 1.0)
    return float(without_noise(np.array([stats.max_spread]), scale)[0])


def similarity_charts(v) -> list[Chart]:
    """`SimilarityView`: the matrix, then the mean and spread along each diagonal."""
    tag = f"{v.kind}-{v.metric}"
    return [heatmap_chart(v.sim, f"similarity-{tag}",
                          _w("similarity-title", metric=_name(v.metric), kind=_name(v.kind)),
                          _w("position"), _w("position"), **_SIMILARITY),
            Chart(diagonal_chart(v.stats.offsets, v.stats.mean, v.stats.spread,
                                 _w("by-distance")), f"diagonals-{tag}", v.stats.rows())]


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
    n, d = v.encodings["sine-only"].shape
    return [heatmap_chart(v.encodings["sine-only"], "sine-only-encoding",
                          _w("sine-only-title", n=n, d=d)),
            Chart(nearest_chart(near), "nearest-neighbour-distance", near)]


def closest_pairs_table(v, kind: str = "sine-only") -> pd.DataFrame:
    """`SineOnlyView`: the closest pairs of positions under one encoding."""
    return pd.DataFrame(v.reports[kind].closest_pairs,
                        columns=[_w("position-p"), _w("position-q"), _w("distance")])


def learned_charts(v) -> list[Chart]:
    """`LearnedView`: the table (colours over `robust_range`), its PCA path, and the cosine
    similarity of its rows."""
    tag, coords = v.model_id, v.coords
    return [
        heatmap_chart(v.table, f"learned-{tag}", _w("learned-title", model=tag), robust=True),
        Chart(pca_path(coords, v.ratios, _w("pca-title")),
              f"pca-{tag}", {"position": range(len(coords)), "pc1": coords[:, 0],
                             "pc2": coords[:, 1]}),
        heatmap_chart(v.sim, f"learned-similarity-{tag}", _w("learned-sim-title"),
                      _w("position"), _w("position"), **_SIMILARITY),
    ]


def rotary_charts(v) -> list[Chart]:
    """`lmdemo.lab.rotary.RotaryView`: the turning pair, then q·k per offset and at every (m, n)."""
    rc = v.check
    return [
        Chart(rotary_pair(v.path, v.pair, v.theta), f"rope-pair-{v.pair}",
              {"position": range(len(v.path)), "x_even": v.path[:, 0], "x_odd": v.path[:, 1]}),
        Chart(rotary_offsets(rc.offsets, rc.deviation, rc.additive_deviation), "rope-deviation",
              {"offset": rc.offsets, "rope": rc.deviation, "additive": rc.additive_deviation}),
        heatmap_chart(rc.scores, "rope-scores", _w("rope-scores-title"), _w("key-n"),
                      _w("query-m"), **_SIMILARITY),
    ]


# ------------------------------------------------------------------ the numbers each panel shows

def offset_metrics(v) -> dict[str, str]:
    """`OffsetView`: the page's metrics, keyed by their label's text section."""
    sin, only = v.checks["sinusoidal"], v.checks["sine-only"]
    return {"offset_sinusoidal": f"{sin.max_error:.2e}",
            "offset_sine_only": f"{only.max_error:.3g}", "offset_bound": f"{only.lower_bound:.3g}"}


def rotary_metrics(v) -> dict[str, str]:
    """`RotaryView`: the change of q·k over absolute positions, RoPE and added sinusoids."""
    return {"rope_deviation": f"{v.check.max_deviation:.2e}",
            "rope_additive": f"{v.check.max_additive_deviation:.3g}"}


def rotary_model_metrics(r) -> dict[str, str]:
    """`ModelRotary`: the model's base, the relative checks and our rotation against the model."""
    return {"model_theta": f"{r.theta:,.0f}",
            "model_deviation": f"{r.relative_deviation:.1e}",
            "model_additive": f"{r.relative_additive_deviation:.3g}",
            "model_diff": f"{r.model_max_diff:.1e}"}
