"""Figures for the RNN vs Transformer page: a recurrent model's hidden states over time, one step's
arithmetic, gradient norms against distance on a log scale, path lengths, and measured times of
sequential steps versus one parallel attention product. Arrays in, plotly figures out; no torch.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from lmdemo.plots.common import category_labels

ARCH_COLORS = {"rnn": "#c62828", "lstm": "#1f4e99", "gru": "#2e7d32"}
DIGITS = 4


def hidden_heatmap(tokens: list[str], hidden: np.ndarray, step: int | None = None,
                   max_units: int = 128) -> go.Figure:
    """Hidden state h_t (one row per step) over the first `max_units` units, −1 blue to +1 red."""
    z = np.round(np.asarray(hidden, dtype=np.float64)[:, :max_units], DIGITS)  # (T, ≤max_units)
    labels = [f"{t}: {s}" for t, s in enumerate(category_labels(tokens))]
    fig = go.Figure(go.Heatmap(
        z=z, y=labels, x=list(range(z.shape[1])), colorscale="RdBu_r", zmin=-1, zmax=1,
        colorbar={"title": {"text": "h"}, "thickness": 12},
        hovertemplate="step %{y}<br>unit %{x}<br>h = %{z:.4f}<extra></extra>"))
    if step is not None and 0 <= step < len(labels):
        fig.add_shape(type="rect", x0=-0.5, x1=z.shape[1] - 0.5, y0=step - 0.5, y1=step + 0.5,
                      line={"color": "black", "width": 2}, xref="x", yref="y")
    fig.update_layout(height=int(min(900, max(320, 110 + 22 * len(tokens)))),
                      margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      xaxis={"title": f"hidden unit (first {z.shape[1]})"},
                      yaxis={"autorange": "reversed", "type": "category", "title": "step t"})
    return fig


def step_bars(values: dict[str, np.ndarray], units: int = 24) -> go.Figure:
    """The parts of one step (W·x, U·h, b, their sum, tanh, the model's h) for the first units."""
    fig = go.Figure()
    for name, vec in values.items():
        v = np.round(np.asarray(vec, dtype=np.float64)[:units], DIGITS)
        fig.add_trace(go.Scatter(x=list(range(len(v))), y=v, mode="lines+markers", name=name,
                                 hovertemplate=f"{name}<br>unit %{{x}}: %{{y:.4f}}"
                                               "<extra></extra>"))
    fig.update_layout(height=360, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      xaxis={"title": f"hidden unit (first {units})"}, yaxis={"title": "value"},
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
                                 hovertemplate=f"{model_id}<br>%{{x}} steps back<br>"
                                               "‖∂loss/∂h‖ = %{y:.3e}<extra></extra>"))
    fig.update_layout(height=420, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      xaxis={"title": "steps between h_t and the predicted token (T − t)"},
                      yaxis={"type": "log", "title": "gradient norm ‖∂loss_T/∂h_t‖ (log)",
                             "exponentformat": "power"},
                      legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0})
    return fig


def path_lengths(n_tokens: int) -> go.Figure:
    """Steps a signal travels between token t and the last token: T − t for an RNN, 1 for
    attention."""
    dist = np.arange(1, max(2, n_tokens))
    fig = go.Figure([
        go.Scatter(x=dist, y=dist, mode="lines+markers", name="RNN: one step per token",
                   line={"color": ARCH_COLORS["rnn"]}),
        go.Scatter(x=dist, y=np.ones_like(dist), mode="lines+markers",
                   name="attention: one step, whatever the distance",
                   line={"color": "#6a1b9a"}),
    ])
    fig.update_layout(height=320, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      xaxis={"title": "distance between two tokens"},
                      yaxis={"title": "path length (operations in between)", "rangemode": "tozero"},
                      legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0})
    return fig


def timing_bars(lengths: list[int], loop_s: list[float], kernel_s: list[float],
                attention_s: list[float]) -> go.Figure:
    """Milliseconds per sequence length: the recurrence (Python loop, torch kernel) vs attention."""
    x = [str(n) for n in lengths]
    ms = lambda v: [round(t * 1e3, 4) for t in v]  # noqa: E731
    fig = go.Figure([
        go.Bar(x=x, y=ms(loop_s), name="RNN, T steps in a loop", marker_color="#c62828"),
        go.Bar(x=x, y=ms(kernel_s), name="RNN, torch's kernel (still T steps)",
               marker_color="#ef9a9a"),
        go.Bar(x=x, y=ms(attention_s), name="attention, one parallel product",
               marker_color="#6a1b9a"),
    ])
    fig.update_traces(hovertemplate="%{x} tokens<br>%{y:.3f} ms<extra>%{fullData.name}</extra>")
    fig.update_layout(barmode="group", height=400, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      xaxis={"title": "tokens (the first group is your text)", "type": "category"},
                      yaxis={"type": "log", "title": "milliseconds (median, log scale)"},
                      legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0})
    return fig
