"""Figures for the Attention page: one head as a heatmap, every layer × head as a clickable grid
of thumbnails, the bertviz-style line view (self-contained SVG whose hover is pure CSS, so it
works offline and inside `st.html`), the step-by-step scores and softmax, the rotary position
embedding's effect on the scores (Llama/SmolLM2), which query heads share a key/value head
(grouped-query attention), and each head's share of the multi-head output. Arrays in, plotly
figures (or an HTML string, or table rows) out; no torch. The `*_chart(result)` builders take the
attention service's dataclasses (`AttentionView`, `StepResult`) and return a `Chart`: the figure,
its export name and its CSV rows, which is all a page panel draws. `reveal_chart` draws one
query's row with the audience's guessed keys marked (predict, then reveal). Every chart word comes
from WORDS in the reader's language.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from lmdemo.plots.common import word

if TYPE_CHECKING:
    from lmdemo.lab.attention import AttentionView, StepResult

COLORSCALE = "Blues"
DIGITS = 4  # values in lists sent to the browser are rounded to this many decimals
GRID_TILE = 24  # thumbnails are at most this many cells a side (longer texts are pooled)
GRID_MARKERS = 1  # the trace index of grid_figure's clickable markers (0 is the mosaic)
COMPARE_HEIGHT = 480  # pixels of each heatmap when two sentences stand side by side
ZW = "\u200b"  # zero-width space: makes repeated tokens distinct axis categories
GUESS_COLOR = "#e66101"  # the audience's guessed keys
TOP_COLOR = "#1a9850"  # the key the query attends to most

WORDS = {
    "en": {
        "weight": "weight", "query": "query", "key": "key", "key-axis": "key (attended to)",
        "query-axis": "query (attending)", "layer": "layer", "head": "head",
        "click": "click to select",
        "score-title": "score = q·kⱼ / √d_k (masked keys left out)",
        "softmax-title": "softmax weight (bars) and the model's weight (dots)",
        "score": "score", "softmax": "softmax (recomputed)", "recomputed": "recomputed",
        "model-attention": "model's attention", "model": "model",
        "query-token": "query token: {token}",
        "rope-title": "score with RoPE (bars) and without it (dots)",
        "angle-title": "angle position·θᵢ of each pair, in turns", "with-rope": "with RoPE",
        "without-rope": "without RoPE", "pair": "pair", "turns": "turns",
        "pair-axis": "pair i (of q/k coordinates i and i + d_k/2)",
        "contrib-title": "each head's share: ‖headₕ · W^O_h‖ for the query token",
        "norm": "norm", "guess": "guess #{rank}", "top": "attends most",
    },
    "zh": {
        "weight": "权重", "query": "查询", "key": "键", "key-axis": "键（被关注的词元）",
        "query-axis": "查询（发出关注的词元）", "layer": "层", "head": "头",
        "click": "点击选中",
        "score-title": "分数 = q·kⱼ / √d_k（被遮盖的键不画）",
        "softmax-title": "softmax 权重（柱）与模型自己的权重（点）",
        "score": "分数", "softmax": "softmax（重新计算）", "recomputed": "重新计算",
        "model-attention": "模型的注意力", "model": "模型",
        "query-token": "查询词元：{token}",
        "rope-title": "加 RoPE 的分数（柱）与不加的分数（点）",
        "angle-title": "每一对坐标转过的角度 位置·θᵢ（单位：圈）", "with-rope": "加 RoPE",
        "without-rope": "不加 RoPE", "pair": "第几对", "turns": "圈",
        "pair-axis": "第 i 对（q/k 的第 i 与第 i + d_k/2 个坐标）",
        "contrib-title": "每个头的贡献：查询词元的 ‖headₕ · W^O_h‖",
        "norm": "范数", "guess": "猜测 · 第 {rank} 名", "top": "关注最多",
    },
}


class Chart(NamedTuple):
    """One figure of a page with what its exports need: `ui.chart(*chart, key=...)`."""

    fig: go.Figure
    name: str  # the export's file name
    data: object = None  # the CSV rows: a list of rows or a dict of columns (None: no CSV)


def unique_labels(tokens: list[str]) -> list[str]:
    """Axis labels that look like the tokens but stay distinct when a token repeats."""
    seen: dict[str, int] = {}
    out = []
    for tok in tokens:
        n = seen.get(tok, 0)
        seen[tok] = n + 1
        out.append(tok + ZW * n)
    return out


def head_heatmap(tokens: list[str], mat: np.ndarray, title: str = "",
                 key_tokens: list[str] | None = None, height: int | None = None) -> go.Figure:
    """One attention matrix (queries down, keys across), the weight on hover."""
    labels_q = unique_labels(tokens)
    labels_k = unique_labels(key_tokens if key_tokens is not None else tokens)
    t = len(tokens)
    z = np.asarray(mat, dtype=np.float32)  # (T_q, T_k); plotly sends it as 4-byte binary
    fig = go.Figure(go.Heatmap(
        z=z, x=labels_k, y=labels_q, colorscale=COLORSCALE, zmin=0,
        colorbar={"title": {"text": word(WORDS, "weight")}, "thickness": 12},
        hovertemplate=f"{word(WORDS, 'query')} <b>%{{y}}</b> → {word(WORDS, 'key')} <b>%{{x}}</b>"
                      f"<br>{word(WORDS, 'weight')} %{{z:.4f}}<extra></extra>"))
    fig.update_layout(
        title={"text": title, "font": {"size": 14}},
        height=height or int(min(900, max(360, 140 + 22 * t))),
        margin={"l": 10, "r": 10, "t": 40 if title else 20, "b": 10},
        xaxis={"side": "bottom", "tickangle": -60, "title": word(WORDS, "key-axis"),
               "type": "category"},
        yaxis={"autorange": "reversed", "title": word(WORDS, "query-axis"), "type": "category"})
    return fig


def _pool(mat: np.ndarray, size: int) -> np.ndarray:
    """Average (T, T) down to at most (size, size) blocks; each row still sums to ~1 per block."""
    t = mat.shape[-1]
    if t <= size:
        return mat
    edges = np.linspace(0, t, size + 1).astype(int)
    counts = np.diff(edges)
    rows = np.add.reduceat(mat, edges[:-1], axis=-2) / counts[:, None]
    return np.add.reduceat(rows, edges[:-1], axis=-1) / counts[None, :]


def grid_figure(att: np.ndarray, selected: tuple[int, int] | None = None,
                tile: int = GRID_TILE) -> go.Figure:
    """Every layer × head as a thumbnail in ONE heatmap (a mosaic with gaps), each thumbnail
    scaled to its own maximum; an invisible marker on each tile makes it clickable (Streamlit
    `on_select`; markers run layer by layer, so point k is layer k // heads, head k % heads), and
    the selected tile is outlined. Layers are rows (L0 at the top) — unless the model is much
    deeper than wide (SmolLM2: 30 layers × 9 heads), then layers run across and heads down, so
    the grid fits a screen."""
    n_layers, n_heads, t, _ = att.shape
    across = n_layers > 2 * n_heads  # deep models: layers as columns
    n_rows, n_cols = (n_heads, n_layers) if across else (n_layers, n_heads)
    s = min(t, tile)
    step = s + 1  # a one-cell gap between tiles
    mosaic = np.full((n_rows * step - 1, n_cols * step - 1), np.nan)
    ls, hs = np.meshgrid(np.arange(n_layers), np.arange(n_heads), indexing="ij")
    rows, cols = (hs, ls) if across else (ls, hs)  # (layers, heads) tile positions
    for layer in range(n_layers):
        for head in range(n_heads):
            small = _pool(att[layer, head], s)
            peak = small.max() or 1.0
            r, c = rows[layer, head] * step, cols[layer, head] * step
            mosaic[r:r + s, c:c + s] = small / peak
    centers = (s - 1) / 2
    fig = go.Figure()
    fig.add_trace(go.Heatmap(z=mosaic.astype(np.float32), colorscale=COLORSCALE, showscale=False,
                             hoverinfo="skip", zmin=0, zmax=1))
    fig.add_trace(go.Scatter(
        x=(cols * step + centers).ravel(), y=(rows * step + centers).ravel(), mode="markers",
        marker={"size": 28 if max(n_rows, n_cols) <= 12 else 18, "color": "rgba(0,0,0,0)",
                "symbol": "square"},
        customdata=np.stack([ls.ravel(), hs.ravel()], axis=1),
        hovertemplate=f"{word(WORDS, 'layer')} %{{customdata[0]}}, {word(WORDS, 'head')} "
                      f"%{{customdata[1]}}<br>{word(WORDS, 'click')}<extra></extra>",
        showlegend=False))
    if selected is not None:
        layer, head = selected
        r, c = (head, layer) if across else (layer, head)
        fig.add_shape(type="rect", x0=c * step - 0.8, x1=c * step + s - 0.2,
                      y0=r * step - 0.8, y1=r * step + s - 0.2,
                      line={"color": "#d62728", "width": 3})
    row_names, col_names = ("H", "L") if across else ("L", "H")
    fig.update_layout(
        height=int(min(900, max(220, 70 + 760 * n_rows / n_cols))),
        margin={"l": 10, "r": 10, "t": 30, "b": 10}, clickmode="event+select",
        dragmode=False, hovermode="closest",
        xaxis={"tickvals": [c * step + centers for c in range(n_cols)],
               "ticktext": [f"{col_names}{c}" for c in range(n_cols)], "side": "top",
               "showgrid": False, "zeroline": False, "fixedrange": True},
        yaxis={"tickvals": [r * step + centers for r in range(n_rows)],
               "ticktext": [f"{row_names}{r}" for r in range(n_rows)], "autorange": "reversed",
               "showgrid": False, "zeroline": False, "fixedrange": True, "scaleanchor": "x"})
    return fig


def grid_click(selection, n_heads: int) -> dict[str, int]:
    """The thumbnail clicked in grid_figure as {"layer": L, "head": H}, from Streamlit's selection
    state (`{"selection": {"points": [...]}}`, or None); {} when no thumbnail is selected.
    Markers run layer by layer, so point k is layer k // heads, head k % heads."""
    points = ((selection or {}).get("selection") or {}).get("points") or []
    return next(({"layer": p["point_index"] // n_heads, "head": p["point_index"] % n_heads}
                 for p in points if p.get("curve_number") == GRID_MARKERS), {})


LINE_ROW_H = 22  # pixels per token in the line view
LINE_TOP = 28


def line_view_height(n_tokens: int) -> int:
    """The line view's height in pixels (for the iframe that shows it)."""
    return LINE_TOP + LINE_ROW_H * n_tokens + 10


def line_view(v: AttentionView) -> dict:
    """The line view of one view's matrix as `components.html` arguments (html, height)."""
    return {"html": line_view_html(v.tokens, v.matrix), "height": line_view_height(len(v.tokens))}


def line_view_html(tokens: list[str], mat: np.ndarray, min_weight: float = 0.01,
                   width: int = 460) -> str:
    """Tokens in two columns joined by lines whose opacity is the attention weight. Hovering a
    left token keeps only its lines (what it attends to); hovering a right token shows who
    attends to it. Pure SVG + CSS: no script, no network (`st.html` strips SVG, so the page
    shows it in a components iframe)."""
    t = len(tokens)
    mat = np.asarray(mat, dtype=np.float64)
    left_x, right_x = 150, width - 150
    top, row_h = LINE_TOP, LINE_ROW_H
    height = line_view_height(t)

    def ypos(i: int) -> float:
        return top + row_h * i + row_h / 2

    def line(i: int, j: int, w: float) -> str:
        return (f'<line x1="{left_x + 6}" y1="{ypos(i):.0f}" x2="{right_x - 6}" '
                f'y2="{ypos(j):.0f}" stroke-opacity="{w:.3f}" '
                f'stroke-width="{1 + 3 * w:.2f}"><title>{html.escape(tokens[i])} → '
                f'{html.escape(tokens[j])}: {w:.3f}</title></line>')

    parts = []
    for i in range(t):  # one group per query: its token on the left and its lines
        lines = "".join(line(i, j, mat[i, j]) for j in range(t) if mat[i, j] >= min_weight)
        parts.append(f'<g class="q">{lines}<text x="{left_x}" y="{ypos(i) + 5:.0f}" '
                     f'text-anchor="end">{html.escape(tokens[i])}</text></g>')
    for j in range(t):  # one group per key: its token on the right, its lines shown on hover
        lines = "".join(line(i, j, mat[i, j]) for i in range(t) if mat[i, j] >= min_weight)
        parts.append(f'<g class="k">{lines}<text x="{right_x}" y="{ypos(j) + 5:.0f}">'
                     f'{html.escape(tokens[j])}</text></g>')
    css = (".lv{font:14px sans-serif}.lv line{stroke:#1f77b4}.lv text{fill:currentColor;"
           "cursor:default}.lv .k line{visibility:hidden}"
           ".lv:hover .q line{opacity:.12}.lv .q:hover line{opacity:1;stroke:#d62728}"
           ".lv .k:hover line{visibility:visible;stroke:#2ca02c}"
           ".lv g:hover text{font-weight:bold}")
    return (f'<div style="overflow-x:auto;font-family:sans-serif"><style>{css}</style>'
            f'<svg class="lv" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
            f'xmlns="http://www.w3.org/2000/svg"><text x="{left_x}" y="16" text-anchor="end" '
            f'font-weight="bold">{word(WORDS, "query")}</text><text x="{right_x}" y="16" '
            f'font-weight="bold">{word(WORDS, "key")}</text>{"".join(parts)}</svg></div>')


def step_figure(tokens: list[str], scores: np.ndarray, weights: np.ndarray,
                model_weights: np.ndarray, query: int) -> go.Figure:
    """The query's scores q·k/√d_k (top) and their softmax next to the model's own weights."""
    labels = unique_labels(tokens)
    scores = np.asarray(scores, dtype=np.float64)
    finite = np.isfinite(scores)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=(word(WORDS, "score-title"),
                                        word(WORDS, "softmax-title")))
    fig.add_trace(go.Bar(x=[lb for lb, f in zip(labels, finite, strict=True) if f],
                         y=np.round(scores[finite], DIGITS), name=word(WORDS, "score"),
                         marker_color="#7f7f7f",
                         hovertemplate=f"%{{x}}: %{{y:.4f}}<extra>{word(WORDS, 'score')}</extra>"),
                  row=1, col=1)
    fig.add_trace(go.Bar(x=labels, y=np.round(weights, DIGITS), name=word(WORDS, "softmax"),
                         marker_color="#1f77b4",
                         hovertemplate=f"%{{x}}: %{{y:.4f}}<extra>{word(WORDS, 'recomputed')}"
                                       "</extra>"), row=2, col=1)
    fig.add_trace(go.Scatter(x=labels, y=np.round(model_weights, DIGITS), mode="markers",
                             name=word(WORDS, "model-attention"),
                             marker={"color": "#d62728", "size": 8},
                             hovertemplate=f"%{{x}}: %{{y:.4f}}<extra>{word(WORDS, 'model')}"
                                           "</extra>"), row=2, col=1)
    fig.update_layout(height=460, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                      legend={"orientation": "h", "y": -0.25}, bargap=0.15,
                      title=word(WORDS, "query-token", token=tokens[query]))
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=labels)
    return fig


def rope_figure(tokens: list[str], scores: np.ndarray, scores_without_rope: np.ndarray,
                query: int, angles: np.ndarray) -> go.Figure:
    """RoPE at work for one query: its scores with q and k rotated (what the model uses) next to
    the scores the same vectors would give unrotated (top), and how far each coordinate pair of
    each token is turned, position·θ_i (bottom; fast pairs on the left, slow ones on the right)."""
    labels = unique_labels(tokens)
    scores, raw = (np.asarray(a, dtype=np.float64) for a in (scores, scores_without_rope))
    keep = np.isfinite(scores)
    shown = [lb for lb, k in zip(labels, keep, strict=True) if k]
    fig = make_subplots(rows=2, cols=1, vertical_spacing=0.16, row_heights=[0.5, 0.5],
                        subplot_titles=(word(WORDS, "rope-title"), word(WORDS, "angle-title")))
    with_rope, without = word(WORDS, "with-rope"), word(WORDS, "without-rope")
    fig.add_trace(go.Bar(x=shown, y=np.round(scores[keep], DIGITS), name=with_rope,
                         marker_color="#1f77b4",
                         hovertemplate=f"%{{x}}: %{{y:.4f}}<extra>{with_rope}</extra>"),
                  row=1, col=1)
    fig.add_trace(go.Scatter(x=shown, y=np.round(raw[keep], DIGITS), mode="markers",
                             name=without, marker={"color": "#ff7f0e", "size": 8},
                             hovertemplate=f"%{{x}}: %{{y:.4f}}<extra>{without}</extra>"),
                  row=1, col=1)
    turns = np.asarray(angles, dtype=np.float64) / (2 * np.pi)  # (T, d_k/2)
    fig.add_trace(go.Heatmap(z=np.round(np.mod(turns, 1.0), DIGITS).astype(np.float32),
                             y=labels, colorscale="Twilight", zmin=0, zmax=1, showscale=False,
                             customdata=np.round(turns, 2),
                             hovertemplate=f"%{{y}}, {word(WORDS, 'pair')} %{{x}}: "
                                           f"%{{customdata}} {word(WORDS, 'turns')}"
                                           "<extra></extra>"), row=2, col=1)
    fig.update_layout(height=640, margin={"l": 10, "r": 10, "t": 50, "b": 10},
                      legend={"orientation": "h", "y": 1.08}, bargap=0.15,
                      title=word(WORDS, "query-token", token=tokens[query]))
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=shown, row=1, col=1)
    fig.update_xaxes(title=word(WORDS, "pair-axis"), row=2, col=1)
    fig.update_yaxes(autorange="reversed", type="category", row=2, col=1)
    return fig


def token_table(tokens: list[str], mat: np.ndarray):
    """A (T, d) array as a table with one row per token ("3: it"), rounded for display."""
    import pandas as pd

    return pd.DataFrame(np.round(mat, DIGITS), index=[f"{i}: {t}" for i, t in enumerate(tokens)])


def vector_table(vec: np.ndarray, label: str):
    """One vector as a one-row table (columns 0..d-1, the row named `label`), rounded."""
    import pandas as pd

    return pd.DataFrame(np.round(np.asarray(vec, dtype=np.float64)[None], DIGITS), index=[label])


def score_rows(tokens: list[str], scores: np.ndarray, scores_without_rope: np.ndarray) -> list:
    """One query's scores with and without RoPE, per key (masked keys: None), for CSV export."""
    def num(x):
        return float(x) if np.isfinite(x) else None

    return [{"key": t, "score_with_rope": num(a), "score_without_rope": num(b)}
            for t, a, b in zip(tokens, scores, scores_without_rope, strict=True)]


def step_rows(tokens: list[str], scores: np.ndarray, weights: np.ndarray,
              model_weights: np.ndarray) -> list[dict]:
    """One query's scores, softmax and the model's weights per key, for CSV export."""
    return [{"key": t, "score": float(sc) if np.isfinite(sc) else None, "softmax": float(w),
             "model_attention": float(m)}
            for t, sc, w, m in zip(tokens, scores, weights, model_weights, strict=True)]


def kv_group_rows(kv_groups: list[list[int]], head: int) -> list[dict]:
    """Which query heads read which key/value head (grouped-query attention), as table rows."""
    return [{"K/V head": g, "query heads": ", ".join(map(str, group)),
             "chosen head": "◀" if head in group else ""} for g, group in enumerate(kv_groups)]


def shape_rows(t: int, d: int, n_heads: int, n_kv: int, d_k: int, w_o_shape) -> list[dict]:
    """The tensor shapes of one multi-head attention layer (T tokens, width d), as table rows."""
    kv = [] if n_kv == n_heads else [
        {"tensor": f"K, V ({n_kv} shared K/V heads)", "shape": f"({t}, {d_k}) each"}]
    return [{"tensor": "X (layer input)", "shape": f"({t}, {d})"},
            {"tensor": "Q_h, K_h, V_h (each head)", "shape": f"({t}, {d_k})"}, *kv,
            {"tensor": "A_h (each head)", "shape": f"({t}, {t})"},
            {"tensor": "z_h = A_h V_h (each head)", "shape": f"({t}, {d_k})"},
            {"tensor": "Concat(z_1 … z_H)", "shape": f"({t}, {n_heads * d_k})"},
            {"tensor": "W^O", "shape": str(tuple(w_o_shape))},
            {"tensor": "output", "shape": f"({t}, {d})"}]


def head_contrib_figure(contrib: np.ndarray, selected: int) -> go.Figure:
    """‖head_h · W^O_h‖ for the query token: how much each head adds to the layer's output."""
    n = len(contrib)
    colors = ["#d62728" if h == selected else "#1f77b4" for h in range(n)]
    fig = go.Figure(go.Bar(x=[f"H{h}" for h in range(n)], y=np.round(contrib, DIGITS),
                           marker_color=colors,
                           hovertemplate="%{x}: %{y:.4f}<extra></extra>"))
    fig.update_layout(height=300, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                      title=word(WORDS, "contrib-title"), yaxis_title=word(WORDS, "norm"))
    return fig


def head_contrib_rows(contrib: np.ndarray) -> dict:
    """Each head's share of the output (head_contrib_figure's numbers), for CSV export."""
    return {"head": list(range(len(contrib))), "norm": np.asarray(contrib).tolist()}


def row_bars(tokens: list[str], row: np.ndarray, title: str) -> go.Figure:
    """One query's attention over the keys, as bars."""
    labels = unique_labels(tokens)
    fig = go.Figure(go.Bar(x=labels, y=np.round(row, DIGITS), marker_color="#1f77b4",
                           hovertemplate="%{x}: %{y:.4f}<extra></extra>"))
    fig.update_layout(height=280, margin={"l": 10, "r": 10, "t": 40, "b": 10}, title=title,
                      yaxis={"range": [0, 1], "title": word(WORDS, "weight")})
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=labels)
    return fig


def guess_bars(tokens: list[str], row: np.ndarray, guessed: dict[int, int], top: int,
               title: str) -> go.Figure:
    """One query's weights over the keys as bars, the audience's guesses ({key index: rank})
    coloured and labelled with their rank, and the key attended to most (`top`) labelled."""
    labels = unique_labels(tokens)
    row = np.round(np.asarray(row, dtype=np.float64), DIGITS)
    colours = [GUESS_COLOR if k in guessed else TOP_COLOR if k == top else "#1f77b4"
               for k in range(len(labels))]
    fig = go.Figure(go.Bar(x=labels, y=row, marker_color=colours,
                           hovertemplate="%{x}: %{y:.4f}<extra></extra>"))
    notes = {k: word(WORDS, "guess", rank=r) for k, r in guessed.items() if 0 <= k < len(labels)}
    if 0 <= top < len(labels):
        notes[top] = " · ".join(x for x in (word(WORDS, "top"), notes.get(top, "")) if x)
    for k, note in notes.items():
        colour = GUESS_COLOR if k in guessed else TOP_COLOR
        fig.add_annotation(x=labels[k], y=float(row[k]), text=html.escape(note), showarrow=True,
                           arrowhead=2, arrowcolor=colour, ax=0, ay=-34,
                           font={"color": colour, "size": 17}, bgcolor="rgba(255,255,255,.85)")
    fig.update_layout(height=360, margin={"l": 10, "r": 10, "t": 50, "b": 10}, title=title,
                      yaxis={"range": [0, min(1.0, float(row.max(initial=0)) * 1.3 or 1.0)],
                             "title": word(WORDS, "weight")},
                      xaxis={"title": word(WORDS, "key-axis")})
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=labels)
    return fig


def row_frame(tokens: list[str], row: np.ndarray) -> dict:
    """One query's weights per key (row_bars' numbers), for CSV export."""
    return {"key": list(tokens), "weight": np.asarray(row).tolist()}


def matrix_frame(tokens: list[str], mat: np.ndarray, key_tokens: list[str] | None = None):
    """A long-form table (query, key, weight) for CSV export."""
    keys = key_tokens if key_tokens is not None else tokens
    rows = []
    for i, q in enumerate(tokens):
        for j, k in enumerate(keys):
            rows.append({"query_index": i, "query": q, "key_index": j, "key": k,
                         "weight": float(mat[i, j])})
    return rows


# ----------------------------------------------------------------------------- one chart per panel

def heatmap_chart(v: AttentionView, title: str, name: str = "", height: int | None = None,
                  export: bool = True) -> Chart:
    """The matrix of one view as a heatmap, with its (query, key, weight) rows unless not
    `export`ed (the precomputed preview)."""
    return Chart(head_heatmap(v.tokens, v.matrix, title, height=height),
                 name or f"attention-{v.view}-L{v.layer}-H{v.head}",
                 matrix_frame(v.tokens, v.matrix) if export else None)


def sentence_charts(v: AttentionView, name: str, title: str, word: str,
                    word_title: str) -> list[Chart]:
    """Sentence `name` of a side-by-side comparison: its heatmap, then where the followed
    `word` looks (v.word_row) when it is one of the sentence's tokens."""
    charts = [heatmap_chart(v, title, f"attention-{name}", COMPARE_HEIGHT)]
    if v.word_row is not None:
        charts.append(Chart(row_bars(v.tokens, v.word_row, word_title),
                            f"attention-{name}-{word}", row_frame(v.tokens, v.word_row)))
    return charts


def step_chart(s: StepResult) -> Chart:
    """The query's scores and softmax next to the model's own weights."""
    return Chart(step_figure(s.tokens, s.scores, s.weights, s.model_weights, s.query),
                 f"attention-step-L{s.layer}-H{s.head}-q{s.query}",
                 step_rows(s.tokens, s.scores, s.weights, s.model_weights))


def rope_chart(s: StepResult) -> Chart:
    """The scores with and without RoPE, and how far each pair turns."""
    return Chart(rope_figure(s.tokens, s.scores, s.scores_without_rope, s.query, s.rope_angles),
                 f"attention-rope-L{s.layer}-H{s.head}-q{s.query}",
                 score_rows(s.tokens, s.scores, s.scores_without_rope))


def contrib_chart(s: StepResult) -> Chart:
    """Each head's share of the multi-head output for the query token."""
    return Chart(head_contrib_figure(s.head_contrib, s.head),
                 f"attention-head-shares-L{s.layer}-q{s.query}", head_contrib_rows(s.head_contrib))


def qkv_tables(s: StepResult) -> list[tuple[str, object]]:
    """("q", the query vector as one row), ("k", K) and ("v", V) with one row per token."""
    return [("q", vector_table(s.q, _row_name(s))), ("k", token_table(s.tokens, s.k)),
            ("v", token_table(s.tokens, s.v))]


def output_table(s: StepResult):
    """The head's output z for the query token, as a one-row table."""
    return vector_table(s.output, _row_name(s))


def _row_name(s: StepResult) -> str:
    return f"{s.query}: {s.tokens[s.query]}"  # as token_table names its rows


def shape_table(s: StepResult) -> list[dict]:
    """The tensor shapes of the layer's multi-head attention."""
    return shape_rows(len(s.tokens), s.d_model, s.n_heads, s.n_kv_heads, s.d_k, s.w_o_shape)


def reveal_chart(v: AttentionView, query: int, guessed: dict[int, int], top: int,
                 title: str) -> Chart:
    """Query `query`'s row of a view with the guessed keys ({key index: rank}) and the key it
    attends to most marked, and its (key, weight) rows."""
    row = v.matrix[query]
    return Chart(guess_bars(v.tokens, row, guessed, top, title),
                 f"attention-guesses-L{v.layer}-H{v.head}-q{query}", row_frame(v.tokens, row))
