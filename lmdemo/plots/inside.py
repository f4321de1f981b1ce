"""Figures for "Inside the model": the logit lens as a depths × positions grid (colour = the top
token's probability, text = the token) and a pinned token's curve across depths; a layers × heads
map (importance of each head for a target token, or induction scores); the next-token distribution
before and after ablating heads; the activation-patching grid; the loss along a repeated sequence.
Axis titles, legends and colour-bar titles come from `WORDS` in the reader's language
(`lmdemo.plots.common.word`); chart titles are the caller's. Results in (the lab's dataclasses,
read by attribute), plotly figures out; no torch.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from lmdemo.plots.common import category_labels, show_token, word

DIGITS = 4  # values sent to the browser are rounded to this many decimals
BEFORE, AFTER = "#9db4d3", "#c0392b"

WORDS = {
    "en": {
        "p-top": "p(top)", "hover-lens": "after “%{x}”, %{y}: <b>%{text}</b> p = %{z:.3f}",
        "position-read": "position (the token just read)", "depth": "depth",
        "hover-pinned": "%{x}: p = %{y:.4f}, rank %{customdata}",
        "hover-head": "layer %{y}, head %{x}: %{z:.3f}", "head": "head", "layer": "layer",
        "intact": "intact", "ablated": "heads ablated",
        "next-token": "next token (0 where it is not among the top)", "probability": "probability",
        "recovered": "recovered",
        "hover-patch": "patch %{y} at “%{x}”: %{z:.2f} recovered",
        "position-patch": "position (clean / corrupted where they differ)",
        "depth-patched": "depth patched",
        "first-copy": "first copy (mean {loss:.2f})", "second-copy": "second copy (mean {loss:.2f})",
        "position-seq": "position in the sequence", "loss": "loss = −ln p(token), nats",
    },
    "zh": {
        "p-top": "p（最高）", "hover-lens": "读完“%{x}”后，%{y}：<b>%{text}</b> p = %{z:.3f}",
        "position-read": "位置（刚读入的词元）", "depth": "深度",
        "hover-pinned": "%{x}：p = %{y:.4f}，排名 %{customdata}",
        "hover-head": "第 %{y} 层，第 %{x} 个头：%{z:.3f}", "head": "头", "layer": "层",
        "intact": "完整模型", "ablated": "消融这些头之后",
        "next-token": "下一个词元（不在前列时记为 0）", "probability": "概率",
        "recovered": "恢复比例",
        "hover-patch": "在“%{x}”处修补 %{y}：恢复了 %{z:.2f}",
        "position-patch": "位置（干净 / 被破坏，两者不同时都列出）",
        "depth-patched": "被修补的深度",
        "first-copy": "第一遍（平均 {loss:.2f}）", "second-copy": "第二遍（平均 {loss:.2f}）",
        "position-seq": "序列中的位置", "loss": "损失 = −ln p(词元)，奈特",
    },
}


def _w(key: str, **values) -> str:
    return word(WORDS, key, **values)


def _height(rows: int, per_row: int = 22, least: int = 260, most: int = 900) -> int:
    return int(min(most, max(least, 90 + per_row * rows)))


def lens_grid(res, title: str = "") -> go.Figure:
    """Depths (rows, embedding at the bottom) × positions: the top next token and its probability."""
    probs = np.round(np.asarray(res.top_probs, dtype=np.float64), DIGITS)  # (depths, T)
    text = [[show_token(t) for t in row] for row in res.top_tokens]
    fig = go.Figure(go.Heatmap(
        z=probs, x=category_labels(res.tokens), y=list(res.depths), text=text,
        texttemplate="%{text}", textfont={"size": 10}, colorscale="Blues", zmin=0, zmax=1,
        colorbar={"title": _w("p-top")},
        hovertemplate=_w("hover-lens") + "<extra></extra>"))
    fig.update_layout(title=title, height=_height(len(res.depths)),
                      margin={"l": 10, "r": 10, "t": 50 if title else 20, "b": 10},
                      xaxis={"title": _w("position-read"), "type": "category"},
                      yaxis={"title": _w("depth"), "type": "category"})
    return fig


def pinned_curve(res, position: int = -1, title: str = "") -> go.Figure:
    """The pinned token's probability (and rank) at every depth, at one position."""
    probs = res.pinned_curve(position)  # (depths,)
    ranks = res.pinned.ranks[:, position]  # (depths,)
    fig = go.Figure(go.Scatter(
        x=list(res.depths), y=np.round(probs.astype(np.float64), DIGITS + 2), mode="lines+markers",
        customdata=ranks, name=show_token(res.pinned.token),
        hovertemplate=_w("hover-pinned") + "<extra></extra>"))
    fig.update_layout(title=title, height=320, margin={"l": 10, "r": 10, "t": 50, "b": 10},
                      xaxis={"title": _w("depth"), "type": "category"},
                      yaxis={"title": f"p({show_token(res.pinned.token)})", "rangemode": "tozero"})
    return fig


def head_map(matrix, title: str = "", colorbar: str = "", diverging: bool = False) -> go.Figure:
    """A layers (rows) × heads (columns) map; click a cell to pick that head."""
    z = np.round(np.asarray(matrix, dtype=np.float64), DIGITS)  # (L, H)
    n_layers, n_heads = z.shape
    top = float(np.abs(z).max()) or 1.0
    scale = {"colorscale": "RdBu", "reversescale": True, "zmid": 0, "zmin": -top,
             "zmax": top} if diverging else {"colorscale": "Viridis"}  # diverging: red = positive
    fig = go.Figure(go.Heatmap(
        z=z, x=[f"H{h}" for h in range(n_heads)], y=[f"L{la}" for la in range(n_layers)],
        colorbar={"title": colorbar}, **scale,
        hovertemplate=_w("hover-head") + "<extra></extra>"))
    fig.update_layout(title=title, height=_height(n_layers, 18),
                      margin={"l": 10, "r": 10, "t": 50 if title else 20, "b": 10},
                      xaxis={"title": _w("head"), "type": "category"},
                      yaxis={"title": _w("layer"), "type": "category", "autorange": "reversed"})
    return fig


def clicked_head(point: dict) -> tuple[int, int] | None:
    """(layer, head) of a clicked cell of `head_map`, from the point Streamlit reports."""
    try:
        return int(str(point["y"]).lstrip("L")), int(str(point["x"]).lstrip("H"))
    except (KeyError, TypeError, ValueError):
        return None


def ablation_bars(res, title: str = "") -> go.Figure:
    """The most likely next tokens before ablating and after, side by side."""
    tokens = list(dict.fromkeys([t.token for t in res.before] + [t.token for t in res.after]))
    before = {t.token: t.prob for t in res.before}
    after = {t.token: t.prob for t in res.after}
    labels = category_labels(tokens)
    fig = go.Figure([
        go.Bar(x=labels, y=[round(before.get(t, 0.0), DIGITS + 2) for t in tokens],
               name=_w("intact"), marker_color=BEFORE),
        go.Bar(x=labels, y=[round(after.get(t, 0.0), DIGITS + 2) for t in tokens],
               name=_w("ablated"), marker_color=AFTER)])
    fig.update_layout(barmode="group", title=title, height=380,
                      margin={"l": 10, "r": 10, "t": 50 if title else 20, "b": 10},
                      xaxis={"title": _w("next-token"), "type": "category"},
                      yaxis={"title": _w("probability"), "rangemode": "tozero"},
                      legend={"orientation": "h", "y": -0.35, "yanchor": "top", "x": 0})
    return fig


def patch_grid(res, title: str = "") -> go.Figure:
    """Share of the clean-vs-corrupt logit difference recovered by patching each (depth,
    position) from the clean run into the corrupted one: 1 = the clean answer's lead is back."""
    z = np.round(np.asarray(res.recovered, dtype=np.float64), DIGITS)  # (depths, T)
    x = category_labels([c if c == k else f"{c} / {k}"
                         for c, k in zip(res.tokens, res.corrupt_tokens, strict=True)])
    fig = go.Figure(go.Heatmap(
        z=z, x=x, y=list(res.depths), colorscale="RdBu", zmid=0, zmin=-1, zmax=1,
        colorbar={"title": _w("recovered")},
        hovertemplate=_w("hover-patch") + "<extra></extra>"))
    fig.update_layout(title=title, height=_height(len(res.depths)),
                      margin={"l": 10, "r": 10, "t": 50 if title else 20, "b": 10},
                      xaxis={"title": _w("position-patch"), "type": "category"},
                      yaxis={"title": _w("depth-patched"), "type": "category"})
    return fig


def loss_curve(res, title: str = "") -> go.Figure:
    """The loss of each token of the repeated sequence; the second copy is marked."""
    losses = np.round(np.asarray(res.losses, dtype=np.float64), DIGITS)  # (2n,)
    n = len(losses) // 2
    fig = go.Figure([
        go.Scatter(x=list(range(1, n + 1)), y=losses[:n], mode="lines+markers",
                   name=_w("first-copy", loss=res.loss_first), marker_color=BEFORE),
        go.Scatter(x=list(range(n + 1, 2 * n + 1)), y=losses[n:], mode="lines+markers",
                   name=_w("second-copy", loss=res.loss_second), marker_color=AFTER)])
    fig.update_layout(title=title, height=360, margin={"l": 10, "r": 10, "t": 50, "b": 10},
                      xaxis={"title": _w("position-seq")},
                      yaxis={"title": _w("loss"), "rangemode": "tozero"},
                      legend={"orientation": "h", "y": -0.25, "yanchor": "top", "x": 0})
    return fig
