"""The list of pages, in tour order: app.py builds the navigation from it, the home page links it,
and the tests open every page listed here. Add a page by adding one line.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PageInfo:
    file: str  # path relative to the repository root
    title: str  # shown in the navigation
    icon: str  # a Material icon name or an emoji
    url_path: str  # the page's address: http://host/<url_path>
    blurb: str  # one line for the home page's tour


PAGES: tuple[PageInfo, ...] = (
    PageInfo("pages/home.py", "Home", ":material/home:", "home",
             "What a language model is, and the tour of this app."),
    # tour pages (one line each, in tour order)
    PageInfo("pages/next_word.py", "Next word", ":material/text_fields:", "next_word", "A probability for every possible next token: reshape it, step through generation, score sentences."),
    PageInfo("pages/rnn_vs_transformer.py", "RNN vs Transformer", ":material/compare_arrows:", "rnn_vs_transformer", "Hidden states step by step, vanishing gradients, and why attention replaced recurrence."),
    PageInfo("pages/attention.py", "Attention", ":material/visibility:", "attention", "Which words each head looks at, and the softmax(QKᵀ/√d_k)·V behind it, step by step."),
    PageInfo("pages/inside.py", "Inside the model", ":material/biotech:", "inside",
             "Watch a prediction form layer by layer, switch heads off, patch activations, find "
             "induction heads."),
    PageInfo("pages/positional.py", "Positional encoding", ":material/timeline:", "positional",
             "Sinusoids, learned tables and rotations: how a transformer knows word order."),
    PageInfo("pages/sentiment.py", "Sentiment", ":material/sentiment_satisfied:", "sentiment", "Query a classifier, see which words decided, fine-tune your own (GPU or CPU) and compare runs."),
)
