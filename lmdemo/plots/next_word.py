"""Figures for the Next word page: the top next tokens as bars (raw beside reshaped), several models
side by side, candidate sentences ranked by probability; and small HTML views — the text coloured
by surprisal, the generated text with each token's probability on hover, the tokenizer's pieces.
Plain lists and arrays in, plotly figures or HTML strings out; no torch.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from lmdemo.plots.common import category_labels, show_token

RAW_COLOR = "#9db4d3"
SHAPED_COLOR = "#1f4e99"
DIGITS = 5  # values sent to the browser are rounded to this many decimals


def distribution_bars(tokens: list[str], raw, shaped, title: str = "",
                      height: int = 420) -> go.Figure:
    """The top tokens, most likely first: the raw probability beside the reshaped one."""
    labels = category_labels(tokens)
    raw = np.round(np.asarray(raw, dtype=np.float64), DIGITS)
    shaped = np.round(np.asarray(shaped, dtype=np.float64), DIGITS)
    fig = go.Figure([
        go.Bar(x=labels, y=raw, name="raw (softmax of the logits)", marker_color=RAW_COLOR,
               hovertemplate="<b>%{x}</b><br>raw p = %{y:.4f}<extra></extra>"),
        go.Bar(x=labels, y=shaped, name="after temperature / top-k / top-p",
               marker_color=SHAPED_COLOR,
               hovertemplate="<b>%{x}</b><br>reshaped p = %{y:.4f}<extra></extra>"),
    ])
    fig.update_layout(barmode="group", height=height,
                      title=title, margin={"l": 10, "r": 10, "t": 50 if title else 20, "b": 10},
                      yaxis={"title": "probability", "rangemode": "tozero"},
                      xaxis={"type": "category", "title": "next token (most likely first)"},
                      legend={"orientation": "h", "y": -0.3, "yanchor": "top", "x": 0})
    return fig


def side_by_side(results, height: int = 380) -> go.Figure:
    """One bar panel per model; `results`: next-token results (`.model`, `.entries` with `.token`
    and `.prob`), in the order to draw."""
    n = max(1, len(results))
    fig = make_subplots(rows=1, cols=n, subplot_titles=[r.model for r in results],
                        shared_yaxes=True, horizontal_spacing=0.04)
    for i, r in enumerate(results, start=1):
        tokens, probs = [e.token for e in r.entries], [e.prob for e in r.entries]
        fig.add_trace(go.Bar(x=category_labels(tokens),
                             y=np.round(np.asarray(probs, float), DIGITS),
                             marker_color=SHAPED_COLOR, showlegend=False,
                             hovertemplate="<b>%{x}</b><br>p = %{y:.4f}<extra></extra>"),
                      row=1, col=i)
        fig.update_xaxes(type="category", row=1, col=i)
    fig.update_yaxes(title_text="probability", rangemode="tozero", row=1, col=1)
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return fig


def ranked_bars(ranked, title: str = "") -> go.Figure:
    """A ranking of candidate sentences (`.scores`: results with `.text`, `.total_log_prob`)."""
    return sentence_bars([r.text for r in ranked.scores],
                         [r.total_log_prob for r in ranked.scores], title)


def sentence_bars(sentences: list[str], logprobs: list[float], title: str = "") -> go.Figure:
    """Candidate sentences, best (highest total log-probability) at the top."""
    order = np.argsort(-np.asarray(logprobs, dtype=np.float64), kind="stable")
    ys = [_short(sentences[i]) for i in order]
    xs = [round(float(logprobs[i]), 3) for i in order]
    colors = [SHAPED_COLOR if k == 0 else RAW_COLOR for k in range(len(order))]
    fig = go.Figure(go.Bar(x=xs, y=ys, orientation="h", marker_color=colors,
                           customdata=[sentences[i] for i in order],
                           hovertemplate="%{customdata}<br>log p = %{x:.2f} nats"
                                         "<extra></extra>"))
    fig.update_layout(title=title, height=max(220, 60 + 48 * len(order)),
                      margin={"l": 10, "r": 10, "t": 50 if title else 20, "b": 10},
                      xaxis={"title": "log-probability of the whole sentence (nats; higher is "
                                      "more likely)"},
                      yaxis={"autorange": "reversed", "type": "category"})
    return fig


def _short(text: str, n: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _surprisal_color(bits: float, top: float = 16.0) -> str:
    """White (unsurprising) to red (very surprising)."""
    x = 0.0 if not math.isfinite(bits) else min(max(bits / top, 0.0), 1.0)
    g = int(255 - 175 * x)
    return f"rgb(255,{g},{g})"


def _span(text: str, style: str, tip: str) -> str:
    return (f'<span style="{style}" title="{html.escape(tip, quote=True)}">'
            f"{html.escape(text).replace(chr(10), '⏎<br>')}</span>")


def surprisal_html(tokens: list[str], surprisal_bits: list[float]) -> str:
    """The text, each token's background as red as it is surprising (−log₂ p); hover for p."""
    spans = []
    for tok, s in zip(tokens, surprisal_bits, strict=True):
        p = 2.0 ** -s if math.isfinite(s) else 0.0
        spans.append(_span(tok, f"background:{_surprisal_color(s)};border-radius:3px;"
                                "padding:1px 0;white-space:pre-wrap",
                           f"{show_token(tok)}: p = {p:.4g}, surprisal = {s:.2f} bits"))
    legend = ("<div style='font-size:0.8em;color:#666;margin-top:6px'>white: expected · "
              "<span style='background:rgb(255,80,80)'>&nbsp;red&nbsp;</span>: surprising "
              "(16+ bits). Hover a token for its probability.</div>")
    return (f"<div style='line-height:1.9;font-size:1.05em'>{''.join(spans)}</div>{legend}")


@dataclass
class SurprisalView:
    """A scored text as the page shows it."""

    html: str  # the text coloured by surprisal
    rows: list[dict]  # token, id, log_prob, surprisal_bits: the CSV export
    mean_bits: float  # mean surprisal per token, in bits


def surprisal(tokens: list[str], ids: list[int], log_probs: list[float]) -> SurprisalView:
    """The surprisal view of a scored text (natural-log probabilities in, bits out)."""
    bits = [-lp / math.log(2) for lp in log_probs]
    rows = [{"token": t, "id": i, "log_prob": lp, "surprisal_bits": b}
            for t, i, lp, b in zip(tokens, ids, log_probs, bits, strict=True)]
    return SurprisalView(surprisal_html(tokens, bits), rows, sum(bits) / max(1, len(bits)))


def step_rows(steps) -> list[dict]:
    """Generated tokens (`Step`s) as table rows: token, id, p_raw, p_shaped, how."""
    return [{"token": s.token, "id": s.id, "p_raw": s.p_raw, "p_shaped": s.p_shaped,
             "how": s.how} for s in steps]


def generated_html(prompt: str, steps: list[dict]) -> str:
    """The prompt in grey, then each generated token underlined by how it was chosen; hover shows
    its probability. `steps`: dicts with token, p_raw, p_shaped, how."""
    marks = {"forced": "#d08a00", "sampled": "#1f4e99", "greedy": "#2e7d32"}
    out = [f"<span style='color:#777;white-space:pre-wrap'>{html.escape(prompt)}</span>"]
    for s in steps:
        color = marks.get(s["how"], "#1f4e99")
        tip = (f"{show_token(s['token'])} ({s['how']}): p = {s['p_raw']:.4f} raw, "
               f"{s['p_shaped']:.4f} after reshaping")
        alpha = 0.12 + 0.5 * min(max(float(s["p_raw"]), 0.0), 1.0)
        out.append(_span(s["token"], f"white-space:pre-wrap;border-bottom:3px solid {color};"
                                     f"background:rgba(31,78,153,{alpha:.2f})", tip))
    legend = ("<div style='font-size:0.8em;color:#666;margin-top:6px'>Underline: "
              + " · ".join(f"<span style='border-bottom:3px solid {c}'>{k}</span>"
                           for k, c in marks.items())
              + ". Darker background = more probable. Hover a token for its probability.</div>")
    return f"<div style='line-height:1.9;font-size:1.1em'>{''.join(out)}</div>{legend}"


def tokens_html(tokens: list[str], ids: list[int]) -> str:
    """The tokenizer's pieces as chips, each with its id underneath."""
    palette = ("#e3f2fd", "#fff3e0", "#e8f5e9", "#fce4ec", "#ede7f6")
    chips = []
    for i, (tok, j) in enumerate(zip(tokens, ids, strict=True)):
        chips.append(
            f"<span style='display:inline-block;margin:2px;padding:2px 5px;border-radius:4px;"
            f"background:{palette[i % len(palette)]};text-align:center;font-family:monospace'>"
            f"{html.escape(show_token(tok))}<br><small style='color:#666'>{j}</small></span>")
    return f"<div style='line-height:1.4'>{''.join(chips)}</div>"


def pieces_html(pieces) -> str:
    """A tokenizer's pieces as chips (`pieces`: lmdemo.lab.tokenization.Piece): the characters a
    run of byte tokens encodes over the ids of those tokens, so a Chinese character reads as
    itself, not as `�`; unknown tokens in red, special tokens in grey."""
    palette = ("#e3f2fd", "#fff3e0", "#e8f5e9", "#fce4ec", "#ede7f6")
    chips = []
    for i, p in enumerate(pieces):
        bg = "#ffcdd2" if p.unknown else "#eeeeee" if p.special else palette[i % len(palette)]
        border = "2px solid #c62828" if p.unknown else "1px solid transparent"
        ids = " ".join(str(j) for j in p.ids)
        chips.append(
            f"<span style='display:inline-block;margin:2px;padding:2px 5px;border-radius:4px;"
            f"background:{bg};border:{border};text-align:center;font-family:monospace'"
            f" title='{html.escape(' '.join(p.tokens), quote=True)}'>"
            f"{html.escape(show_token(p.text))}<br><small style='color:#666'>{ids}</small></span>")
    return f"<div style='line-height:1.4'>{''.join(chips)}</div>"
