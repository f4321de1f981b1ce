"""Figures for the Next word page: the top next tokens as bars (raw beside reshaped), several models
side by side, candidate sentences ranked by probability; and small HTML views — the text coloured
by surprisal, the generated text with each token's probability on hover, the tokenizer's pieces;
and the audience's guesses marked on the distribution once it is revealed. Every chart word comes
from WORDS in the reader's language. Plain lists and arrays in, plotly figures or HTML strings out;
no torch.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from lmdemo.plots.common import category_labels, show_token, word

WORDS = {
    "en": {
        "raw": "raw (softmax of the logits)", "shaped": "after temperature / top-k / top-p",
        "raw-p": "raw p", "shaped-p": "reshaped p", "probability": "probability",
        "next-token": "next token (most likely first)",
        "sentence-logp": "log-probability of the whole sentence (nats; higher is more likely)",
        "nats": "nats", "bits": "bits", "surprisal": "surprisal",
        "white-expected": "white: expected", "red": "red",
        "surprising": ": surprising (16+ bits). Hover a token for its probability.",
        "underline": "Underline:", "forced": "forced", "sampled": "sampled", "greedy": "greedy",
        "darker": ". Darker background = more probable. Hover a token for its probability.",
        "tip-raw": "raw", "tip-shaped": "after reshaping",
        "guess-mark": "{guesses}: #{rank}", "not-shown": "not in the top {top}:",
        "guess-rank": "{guess} (#{rank}, p = {p})",
    },
    "zh": {
        "raw": "原始分布（logits 的 softmax）", "shaped": "经温度 / top-k / top-p 调整后",
        "raw-p": "原始 p", "shaped-p": "调整后 p", "probability": "概率",
        "next-token": "下一个词元（按可能性从高到低）",
        "sentence-logp": "整句的对数概率（单位 nat，越高越可能）",
        "nats": "nat", "bits": "比特", "surprisal": "惊讶度",
        "white-expected": "白色：在意料之中", "red": "红色",
        "surprising": "：出乎意料（16 比特以上）。把鼠标移到词元上可看它的概率。",
        "underline": "下划线：", "forced": "强制", "sampled": "采样", "greedy": "贪心",
        "darker": "。背景越深，概率越高。把鼠标移到词元上可看它的概率。",
        "tip-raw": "（原始）", "tip-shaped": "（调整后）",
        "guess-mark": "{guesses}：第 {rank} 名", "not-shown": "不在前 {top} 名：",
        "guess-rank": "{guess}（第 {rank} 名，p = {p}）",
    },
}
GUESS_COLOR = "#e66101"  # bars and notes of the audience's guesses
GUESS_BAND = "rgba(230,97,1,0.14)"  # behind a guessed token's bars

RAW_COLOR = "#9db4d3"
SHAPED_COLOR = "#1f4e99"
DIGITS = 5  # values sent to the browser are rounded to this many decimals


def distribution_bars(tokens: list[str], raw, shaped, title: str = "",
                      height: int = 420, marks: dict[int, str] | None = None,
                      missing: list[str] | None = None) -> go.Figure:
    """The top tokens, most likely first: the raw probability beside the reshaped one. `marks`
    ({bar index: note}) shades those bars' place as guesses and writes the note above them;
    `missing` lists the guesses that are not among the bars (one note in the corner)."""
    labels = category_labels(tokens)
    raw = np.round(np.asarray(raw, dtype=np.float64), DIGITS)
    shaped = np.round(np.asarray(shaped, dtype=np.float64), DIGITS)
    marks = {i: note for i, note in (marks or {}).items() if 0 <= i < len(labels)}
    fig = go.Figure([
        go.Bar(x=labels, y=raw, name=word(WORDS, "raw"), marker_color=RAW_COLOR,
               hovertemplate=f"<b>%{{x}}</b><br>{word(WORDS, 'raw-p')} = %{{y:.4f}}<extra></extra>"),
        go.Bar(x=labels, y=shaped, name=word(WORDS, "shaped"), marker_color=SHAPED_COLOR,
               hovertemplate=f"<b>%{{x}}</b><br>{word(WORDS, 'shaped-p')} = %{{y:.4f}}"
                             "<extra></extra>"),
    ])
    for i, note in marks.items():  # a band behind the guessed token's bars, its note above
        fig.add_shape(type="rect", xref="x", yref="paper", x0=i - 0.48, x1=i + 0.48, y0=0, y1=1,
                      fillcolor=GUESS_BAND, line={"color": GUESS_COLOR, "width": 2}, layer="below")
        fig.add_annotation(x=labels[i], y=float(max(raw[i], shaped[i])), text=html.escape(note),
                           showarrow=True, arrowhead=2, arrowcolor=GUESS_COLOR, ax=0, ay=-34,
                           font={"color": GUESS_COLOR, "size": 17}, bgcolor="rgba(255,255,255,.85)")
    if missing:
        fig.add_annotation(xref="paper", yref="paper", x=1, y=1, xanchor="right", yanchor="bottom",
                           align="right", showarrow=False, bgcolor="rgba(255,255,255,.85)",
                           font={"color": GUESS_COLOR, "size": 15},
                           text="<br>".join([word(WORDS, "not-shown", top=len(labels))]
                                            + [html.escape(m) for m in missing]))
    top = float(max(raw.max(initial=0), shaped.max(initial=0)))
    fig.update_layout(barmode="group", height=height,
                      title=title, margin={"l": 10, "r": 10, "b": 10, "t": (50 if title else 20)
                                           + (20 * (len(missing) + 1) if missing else 0)},
                      yaxis={"title": word(WORDS, "probability"), "rangemode": "tozero",
                             **({"range": [0, top * 1.25 or 1]} if marks else {})},
                      xaxis={"type": "category", "title": word(WORDS, "next-token")},
                      legend={"orientation": "h", "y": -0.3, "yanchor": "top", "x": 0})
    return fig


def guess_marks(ids: list[int], guesses) -> tuple[dict[int, str], list[str]]:
    """Where scored guesses (`.guess`, `.token_id`, `.rank`, `.p_raw`) fall on a chart of the
    tokens `ids`: {bar index: note naming the guesses on that bar and its rank}, and a note for
    each guess that is not on the chart."""
    on: dict[int, list] = {}
    missing = []
    for g in guesses:
        if g.token_id in ids:
            on.setdefault(ids.index(g.token_id), []).append(g)
        else:
            missing.append(word(WORDS, "guess-rank", guess=g.guess, rank=f"{g.rank:,}",
                                p=f"{g.p_raw:.2g}"))
    marks = {i: word(WORDS, "guess-mark", guesses=" / ".join(dict.fromkeys(g.guess for g in gs)),
                     rank=gs[0].rank) for i, gs in on.items()}
    return marks, missing


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
    fig.update_yaxes(title_text=word(WORDS, "probability"), rangemode="tozero", row=1, col=1)
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
                           hovertemplate=f"%{{customdata}}<br>log p = %{{x:.2f}} "
                                         f"{word(WORDS, 'nats')}<extra></extra>"))
    fig.update_layout(title=title, height=max(220, 60 + 48 * len(order)),
                      margin={"l": 10, "r": 10, "t": 50 if title else 20, "b": 10},
                      xaxis={"title": word(WORDS, "sentence-logp")},
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
                           f"{show_token(tok)}: p = {p:.4g}, {word(WORDS, 'surprisal')} = "
                           f"{s:.2f} {word(WORDS, 'bits')}"))
    legend = (f"<div style='font-size:0.8em;color:#666;margin-top:6px'>"
              f"{word(WORDS, 'white-expected')} · <span style='background:rgb(255,80,80)'>&nbsp;"
              f"{word(WORDS, 'red')}&nbsp;</span>{word(WORDS, 'surprising')}</div>")
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
        how = word(WORDS, s["how"]) if s["how"] in marks else s["how"]
        tip = (f"{show_token(s['token'])} ({how}): p = {s['p_raw']:.4f} {word(WORDS, 'tip-raw')}, "
               f"{s['p_shaped']:.4f} {word(WORDS, 'tip-shaped')}")
        alpha = 0.12 + 0.5 * min(max(float(s["p_raw"]), 0.0), 1.0)
        out.append(_span(s["token"], f"white-space:pre-wrap;border-bottom:3px solid {color};"
                                     f"background:rgba(31,78,153,{alpha:.2f})", tip))
    legend = (f"<div style='font-size:0.8em;color:#666;margin-top:6px'>{word(WORDS, 'underline')} "
              + " · ".join(f"<span style='border-bottom:3px solid {c}'>{word(WORDS, k)}</span>"
                           for k, c in marks.items())
              + f"{word(WORDS, 'darker')}</div>")
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
