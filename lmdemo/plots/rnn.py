"""Figures for the RNN vs Transformer page: a recurrent model's hidden states over time, one step's
arithmetic, gradient norms against distance on a log scale, path lengths, and measured times of
sequential steps versus one parallel attention product, next to the counted dependent steps and
multiply-adds of each. Axis titles, legends and chart titles come from `WORDS` in the reader's
language (`lmdemo.plots.common.word`). Arrays in, plotly figures out; no torch.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from lmdemo.plots.common import category_labels, word

ARCH_COLORS = {"rnn": "#c62828", "lstm": "#1f4e99", "gru": "#2e7d32"}
ATTENTION_COLOR = "#6a1b9a"
DIGITS = 4

WORDS = {
    "en": {
        "hidden-units": "hidden unit (first {n})", "step-t": "step t", "value": "value",
        "hover-hidden": "step %{y}<br>unit %{x}<br>h = %{z:.4f}",
        "hover-unit": "{name}<br>unit %{{x}}: %{{y:.4f}}",
        "hover-grad": "{model}<br>%{{x}} steps back<br>‖∂loss/∂h‖ = %{{y:.3e}}",
        "steps-back": "steps between h_t and the predicted token (T − t)",
        "grad-norm": "gradient norm ‖∂loss_T/∂h_t‖ (log)",
        "rnn-path": "RNN: one step per token",
        "attention-path": "attention: one step, whatever the distance",
        "distance": "distance between two tokens",
        "path-length": "path length (operations in between)",
        "rnn-loop": "RNN, T steps in a loop", "rnn-kernel": "RNN, torch's kernel (still T steps)",
        "attention-product": "attention, one parallel product",
        "hover-ms": "%{x} tokens<br>%{y:.3f} ms",
        "tokens-axis": "tokens (the first group is your text)",
        "ms-axis": "milliseconds (fastest run, log scale)",
        "timing-title": "Measured on {device}",
        "rnn": "RNN", "attention": "attention (per layer)",
        "dependent-steps": "dependent steps (log)", "multiply-adds": "multiply-adds (log)",
        "counted-steps": "Dependent steps: one must wait for the last",
        "counted-work": "Arithmetic: multiply-adds",
        "tokens": "tokens T",
        "hover-count": "%{x} tokens<br>%{y:,}",
    },
    "zh": {
        "hidden-units": "隐藏单元（前 {n} 个）", "step-t": "时间步 t", "value": "取值",
        "hover-hidden": "时间步 %{y}<br>单元 %{x}<br>h = %{z:.4f}",
        "hover-unit": "{name}<br>单元 %{{x}}：%{{y:.4f}}",
        "hover-grad": "{model}<br>往回 %{{x}} 步<br>‖∂loss/∂h‖ = %{{y:.3e}}",
        "steps-back": "h_t 与被预测词元之间的步数（T − t）",
        "grad-norm": "梯度范数 ‖∂loss_T/∂h_t‖（对数）",
        "rnn-path": "RNN：每个词元一步",
        "attention-path": "注意力：不论距离多远，都只要一步",
        "distance": "两个词元之间的距离",
        "path-length": "路径长度（中间经过的运算次数）",
        "rnn-loop": "RNN，循环里的 T 步", "rnn-kernel": "RNN，torch 内核（仍是 T 步）",
        "attention-product": "注意力，一次并行的矩阵乘积",
        "hover-ms": "%{x} 个词元<br>%{y:.3f} 毫秒",
        "tokens-axis": "词元数（第一组是你的文本）",
        "ms-axis": "毫秒（最快一次，对数刻度）",
        "timing-title": "在 {device} 上实测",
        "rnn": "RNN", "attention": "注意力（每层）",
        "dependent-steps": "相互依赖的步数（对数）", "multiply-adds": "乘加次数（对数）",
        "counted-steps": "相互依赖的步数：每一步都要等上一步",
        "counted-work": "计算量：乘加次数",
        "tokens": "词元数 T",
        "hover-count": "%{x} 个词元<br>%{y:,}",
    },
}


def _w(key: str, **values) -> str:
    return word(WORDS, key, **values)


def hidden_heatmap(tokens: list[str], hidden: np.ndarray, step: int | None = None,
                   max_units: int = 128) -> go.Figure:
    """Hidden state h_t (one row per step) over the first `max_units` units, −1 blue to +1 red."""
    z = np.round(np.asarray(hidden, dtype=np.float64)[:, :max_units], DIGITS)  # (T, ≤max_units)
    labels = [f"{t}: {s}" for t, s in enumerate(category_labels(tokens))]
    fig = go.Figure(go.Heatmap(
        z=z, y=labels, x=list(range(z.shape[1])), colorscale="RdBu_r", zmin=-1, zmax=1,
        colorbar={"title": {"text": "h"}, "thickness": 12},
        hovertemplate=_w("hover-hidden") + "<extra></extra>"))
    if step is not None and 0 <= step < len(labels):
        fig.add_shape(type="rect", x0=-0.5, x1=z.shape[1] - 0.5, y0=step - 0.5, y1=step + 0.5,
                      line={"color": "black", "width": 2}, xref="x", yref="y")
    fig.update_layout(height=int(min(900, max(320, 110 + 22 * len(tokens)))),
                      margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      xaxis={"title": _w("hidden-units", n=z.shape[1])},
                      yaxis={"autorange": "reversed", "type": "category", "title": _w("step-t")})
    return fig


def step_bars(values: dict[str, np.ndarray], units: int = 24) -> go.Figure:
    """The parts of one step (W·x, U·h, b, their sum, tanh, the model's h) for the first units."""
    fig = go.Figure()
    for name, vec in values.items():
        v = np.round(np.asarray(vec, dtype=np.float64)[:units], DIGITS)
        fig.add_trace(go.Scatter(x=list(range(len(v))), y=v, mode="lines+markers", name=name,
                                 hovertemplate=_w("hover-unit", name=name) + "<extra></extra>"))
    fig.update_layout(height=360, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      xaxis={"title": _w("hidden-units", n=units)}, yaxis={"title": _w("value")},
                      legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0})
    return fig


def gradient_lines(model_ids: list[str], archs: list[str], distance, norms) -> go.Figure:
    """‖∂loss/∂h_t‖ against how many steps back t is, one line per model, log scale."""
    fig = go.Figure()
    dist = np.asarray(distance)
    for model_id, arch, row in zip(model_ids, archs, np.asarray(norms), strict=True):
        y = np.where(row > 0, row, np.nan)
        fig.add_trace(go.Scatter(x=dist, y=y, mode="lines+markers", name=model_id,
                                 line={"color": ARCH_COLORS.get(arch)},
                                 hovertemplate=_w("hover-grad", model=model_id)
                                 + "<extra></extra>"))
    fig.update_layout(height=420, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      xaxis={"title": _w("steps-back")},
                      yaxis={"type": "log", "title": _w("grad-norm"),
                             "exponentformat": "power"},
                      legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0})
    return fig


def path_lengths(n_tokens: int) -> go.Figure:
    """Steps a signal travels between token t and the last token: T − t for an RNN, 1 for
    attention."""
    dist = np.arange(1, max(2, n_tokens))
    fig = go.Figure([
        go.Scatter(x=dist, y=dist, mode="lines+markers", name=_w("rnn-path"),
                   line={"color": ARCH_COLORS["rnn"]}),
        go.Scatter(x=dist, y=np.ones_like(dist), mode="lines+markers",
                   name=_w("attention-path"), line={"color": ATTENTION_COLOR}),
    ])
    fig.update_layout(height=320, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      xaxis={"title": _w("distance")},
                      yaxis={"title": _w("path-length"), "rangemode": "tozero"},
                      legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0})
    return fig


def timing_bars(lengths: list[int], loop_s: list[float], kernel_s: list[float],
                attention_s: list[float], device: str = "") -> go.Figure:
    """Milliseconds per sequence length: the recurrence (Python loop, torch kernel) vs attention,
    titled with the device they were measured on."""
    x = [str(n) for n in lengths]
    ms = lambda v: [round(t * 1e3, 4) for t in v]  # noqa: E731
    fig = go.Figure([
        go.Bar(x=x, y=ms(loop_s), name=_w("rnn-loop"), marker_color=ARCH_COLORS["rnn"]),
        go.Bar(x=x, y=ms(kernel_s), name=_w("rnn-kernel"), marker_color="#ef9a9a"),
        go.Bar(x=x, y=ms(attention_s), name=_w("attention-product"),
               marker_color=ATTENTION_COLOR),
    ])
    fig.update_traces(hovertemplate=_w("hover-ms") + "<extra>%{fullData.name}</extra>")
    fig.update_layout(barmode="group", height=420,
                      margin={"l": 10, "r": 10, "t": 80 if device else 30, "b": 10},
                      title=_w("timing-title", device=device) if device else None,
                      xaxis={"title": _w("tokens-axis"), "type": "category"},
                      yaxis={"type": "log", "title": _w("ms-axis")},
                      legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0})
    return fig


def counted_steps(lengths: list[int], rnn_steps: list[int], attention_steps: list[int],
                  rnn_work: list[int], attention_work: list[int]) -> go.Figure:
    """What does not depend on the device, side by side on log scales: the dependent steps (T for
    the RNN, 1 per attention layer) and the multiply-adds (attention's grow with T²)."""
    x = [str(n) for n in lengths]
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12,
                        subplot_titles=(_w("counted-steps"), _w("counted-work")))
    for col, (rnn, att) in enumerate(((rnn_steps, attention_steps), (rnn_work, attention_work)),
                                     start=1):
        for name, y, color in ((_w("rnn"), rnn, ARCH_COLORS["rnn"]),
                               (_w("attention"), att, ATTENTION_COLOR)):
            fig.add_trace(go.Bar(x=x, y=[int(v) for v in y], name=name, marker_color=color,
                                 legendgroup=name, showlegend=col == 1,
                                 hovertemplate=_w("hover-count") + f"<extra>{name}</extra>"),
                          row=1, col=col)
    fig.update_xaxes(title_text=_w("tokens"), type="category")
    fig.update_yaxes(type="log", exponentformat="power")
    fig.update_yaxes(title_text=_w("dependent-steps"), row=1, col=1)
    fig.update_yaxes(title_text=_w("multiply-adds"), row=1, col=2)
    fig.update_layout(barmode="group", height=380, margin={"l": 10, "r": 10, "t": 60, "b": 10},
                      legend={"orientation": "h", "y": -0.25, "yanchor": "top", "x": 0})
    return fig
