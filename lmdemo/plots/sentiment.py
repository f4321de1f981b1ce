"""Figures for the Sentiment page: token attributions as coloured text (HTML) and as bars beside
the [CLS] attention, class probabilities, training curves (loss per step, validation accuracy per
epoch), the confusion matrix, and runs compared. Plain numbers in, plotly figures (or an HTML
string) out; no torch. Chart words (titles, axes, legends, class names) follow the reader's
language through `WORDS` and `lmdemo.plots.common.word`.
"""

from __future__ import annotations

import html

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from lmdemo.plots.attention import unique_labels
from lmdemo.plots.common import word

POS, NEG = "#1a9850", "#d73027"  # green for positive evidence, red for negative
SPECIAL = ("[CLS]", "[SEP]", "[PAD]", "<s>", "</s>", "<pad>")
CLASSES = ("negative", "positive")
WORDS = {
    "en": {"negative": "negative", "positive": "positive", "towards-positive": "towards positive",
           "towards-negative": "towards negative (hover a word for its score)",
           "attribution-title": "Attribution ({method}), signed towards positive",
           "cls-title": "[CLS] attention, last layer (mean over heads)",
           "attribution": "attribution", "cls-attention": "[CLS] attention",
           "probability": "probability", "training-loss": "training loss",
           "epoch-loss": "epoch mean loss", "val-accuracy": "validation accuracy",
           "loss": "loss", "accuracy": "accuracy", "step": "step",
           "predicted": "predicted {name}", "true": "true {name}", "score": "score",
           "val_accuracy": "val accuracy", "test_accuracy": "test accuracy",
           "p-positive": "P(positive)"},
    "zh": {"negative": "负面", "positive": "正面", "towards-positive": "偏向正面",
           "towards-negative": "偏向负面（鼠标悬停在词上可看得分）",
           "attribution-title": "归因（{method}），以偏向正面为正",
           "cls-title": "[CLS] 的注意力，最后一层（各头平均）",
           "attribution": "归因", "cls-attention": "[CLS] 注意力",
           "probability": "概率", "training-loss": "训练损失",
           "epoch-loss": "每轮平均损失", "val-accuracy": "验证准确率",
           "loss": "损失", "accuracy": "准确率", "step": "步数",
           "predicted": "预测为{name}", "true": "实际为{name}", "score": "得分",
           "val_accuracy": "验证准确率", "test_accuracy": "测试准确率",
           "p-positive": "P(正面)"},
}


def merge_wordpieces(tokens: list[str], scores) -> tuple[list[str], np.ndarray]:
    """Join WordPiece continuations (`##ing`) to their word, summing their scores; drop [CLS]
    and [SEP]."""
    words: list[str] = []
    vals: list[float] = []
    for tok, s in zip(tokens, np.asarray(scores, dtype=float), strict=True):
        if tok in SPECIAL:
            continue
        if tok.startswith("##") and words:
            words[-1] += tok[2:]
            vals[-1] += s
        else:
            words.append(tok.lstrip("Ġ▁"))
            vals.append(float(s))
    return words, np.asarray(vals)


def attribution_html(tokens: list[str], scores, label: str = "positive") -> str:
    """The review as coloured words: green pushes towards positive, red towards negative."""
    words, vals = merge_wordpieces(tokens, scores)
    if label == "negative":
        vals = -vals  # scores explain the predicted label; show them as evidence for positive
    scale = float(np.abs(vals).max()) if len(vals) else 0.0
    spans = []
    for text, v in zip(words, vals, strict=True):
        alpha = 0.0 if scale == 0 else min(1.0, abs(v) / scale) * 0.85
        rgb = "26,152,80" if v >= 0 else "215,48,39"
        spans.append(f'<span title="{v:+.3f}" style="background: rgba({rgb},{alpha:.2f}); '
                     f'padding: 2px 3px; margin: 1px; border-radius: 4px; line-height: 2.1;">'
                     f"{html.escape(text)}</span>")
    legend = (f'<div style="font-size: 0.8em; opacity: 0.75; margin-top: 4px;">'
              f'<span style="color:{POS}">■</span> {html.escape(word(WORDS, "towards-positive"))}'
              f' &nbsp; <span style="color:{NEG}">■</span> '
              f'{html.escape(word(WORDS, "towards-negative"))}</div>')
    return f'<div style="font-size: 1.1em;">{" ".join(spans)}</div>{legend}'


def attribution_figure(tokens: list[str], attribution, cls_attention, label: str,
                       method: str) -> go.Figure:
    """Per-token attribution (top) beside the [CLS] attention of the last layer (bottom)."""
    labels = unique_labels(tokens)
    attr = np.asarray(attribution, dtype=float)
    toward_pos = attr if label == "positive" else -attr
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=(word(WORDS, "attribution-title", method=method),
                                        word(WORDS, "cls-title")))
    fig.add_bar(x=labels, y=toward_pos, marker_color=[POS if v >= 0 else NEG for v in toward_pos],
                name=word(WORDS, "attribution"), row=1, col=1)
    fig.add_bar(x=labels, y=np.asarray(cls_attention, dtype=float), marker_color="#4575b4",
                name=word(WORDS, "cls-attention"), row=2, col=1)
    fig.update_layout(height=460, showlegend=False, margin=dict(l=40, r=20, t=40, b=40))
    fig.update_xaxes(tickangle=-45)
    return fig


def explanation_figure(ex) -> go.Figure:
    """`attribution_figure` of an Explanation (tokens, attribution, cls_attention, prediction)."""
    return attribution_figure(ex.tokens, ex.attribution, ex.cls_attention, ex.prediction.label,
                              ex.method)


def probs_figure(probs: dict) -> go.Figure:
    """Both class probabilities as horizontal bars."""
    fig = go.Figure(go.Bar(x=[probs[n] for n in CLASSES], y=[word(WORDS, n) for n in CLASSES],
                           orientation="h", marker_color=[NEG, POS],
                           text=[f"{probs[n]:.1%}" for n in CLASSES], textposition="auto"))
    fig.update_layout(height=160, xaxis=dict(range=[0, 1], title=word(WORDS, "probability")),
                      margin=dict(l=10, r=10, t=10, b=30))
    return fig


def curves_figure(records: list[dict], title: str = "") -> go.Figure:
    """Training loss per step and validation accuracy per epoch (second axis)."""
    steps = [r for r in records if r.get("event") == "step"]
    epochs = [r for r in records if r.get("event") == "epoch"]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_scatter(x=[r["step"] for r in steps], y=[r["loss"] for r in steps], mode="lines",
                    name=word(WORDS, "training-loss"), line=dict(color="#999999"))
    if epochs:
        fig.add_scatter(x=[r["step"] for r in epochs], y=[r.get("train_loss") for r in epochs],
                        mode="lines+markers", name=word(WORDS, "epoch-loss"),
                        line=dict(color="#333"))
        if any("val_accuracy" in r for r in epochs):
            fig.add_scatter(x=[r["step"] for r in epochs],
                            y=[r.get("val_accuracy") for r in epochs], mode="lines+markers",
                            name=word(WORDS, "val-accuracy"), line=dict(color=POS),
                            secondary_y=True)
    fig.update_yaxes(title_text=word(WORDS, "loss"), secondary_y=False, rangemode="tozero")
    fig.update_yaxes(title_text=word(WORDS, "accuracy"), secondary_y=True, range=[0, 1])
    fig.update_layout(title=title, height=340, xaxis_title=word(WORDS, "step"),
                      margin=dict(l=40, r=40, t=40 if title else 10, b=40),
                      legend=dict(orientation="h", y=-0.25))
    return fig


def confusion_figure(confusion: list[list[int]]) -> go.Figure:
    """The 2×2 confusion matrix, rows = true label, columns = predicted."""
    names = [word(WORDS, n) for n in CLASSES]
    z = np.asarray(confusion, dtype=float)
    fig = go.Figure(go.Heatmap(z=z, x=[word(WORDS, "predicted", name=n) for n in names],
                               y=[word(WORDS, "true", name=n) for n in names], colorscale="Blues",
                               text=z.astype(int), texttemplate="%{text}", showscale=False))
    fig.update_layout(height=300, yaxis=dict(autorange="reversed"),
                      margin=dict(l=10, r=10, t=10, b=10))
    return fig


def compare_figure(rows: list[dict], keys=("val_accuracy", "test_accuracy")) -> go.Figure:
    """Runs side by side: one group of bars per run, one bar per score that is known."""
    fig = go.Figure()
    names = [r["model"] for r in rows]
    for key in keys:
        vals = [r.get(key) for r in rows]
        if any(v is not None for v in vals):
            fig.add_bar(x=names, y=vals, name=word(WORDS, key) if key in WORDS["en"]
                        else key.replace("_", " "),
                        text=[f"{v:.1%}" if v is not None else "" for v in vals])
    fig.update_layout(barmode="group", height=340,
                      yaxis=dict(range=[0, 1], title=word(WORDS, "score")),
                      margin=dict(l=40, r=10, t=10, b=40), legend=dict(orientation="h"))
    return fig


def before_after_figure(rows: list[dict]) -> go.Figure:
    """P(positive) of the same review under several models."""
    vals = [r["p_positive"] for r in rows]
    fig = go.Figure(go.Bar(x=[r["model"] for r in rows], y=vals,
                           marker_color=[POS if v >= 0.5 else NEG for v in vals],
                           text=[f"{v:.1%}" for v in vals], textposition="auto"))
    fig.add_hline(y=0.5, line_dash="dot", line_color="#888")
    fig.update_layout(height=300, yaxis=dict(range=[0, 1], title=word(WORDS, "p-positive")),
                      margin=dict(l=40, r=10, t=10, b=40))
    return fig
