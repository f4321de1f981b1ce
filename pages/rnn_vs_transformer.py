"""RNN vs Transformer: tiny-rnn's hidden states on the user's text with one step recomputed by
hand, vanishing gradients measured by autograd for RNN vs LSTM vs GRU, path length, and measured
times of sequential recurrent steps versus one parallel attention product.
"""

import numpy as np
import streamlit as st

from lmdemo.lab import rnn as rnn_lab
from lmdemo.plots import rnn as plots
from lmdemo.plots.next_word import show_token
from pages import ui

KINDS = ("recurrent-lm",)
RNN_MODEL = "tiny-rnn"
GRAD_DEFAULT = ["tiny-rnn", "tiny-lstm", "tiny-gru"]
UNITS_SHOWN = 12  # hidden units in the step-by-step table
EXAMPLES = ["The keys to the old cabinet in the hall are on the table",
            "She said that the book she bought yesterday at the market was very good",
            "I grew up in France, so after many years abroad I still speak fluent",
            "The weather today is"]

ui.page("RNN vs Transformer", "intro", "rnn_vs_transformer")
if not ui.models_ready(KINDS, RNN_MODEL):
    st.stop()
text = ui.text_input("text", EXAMPLES)


def where(*model_ids: str) -> tuple[str, ...]:
    """The models' folders: part of each cache key, so other weights never reuse a result."""
    from lmdemo.core.registry import get_spec

    return tuple(get_spec(m).location for m in model_ids)


@st.cache_data(max_entries=16, show_spinner=False)
def get_recurrence(txt: str, step: int | None, at: tuple) -> rnn_lab.RecurrenceResult:
    return rnn_lab.recurrence(RNN_MODEL, txt, step)


@st.cache_data(max_entries=16, show_spinner=False)
def get_gradients(models: tuple[str, ...], txt: str, at: tuple) -> rnn_lab.GradientResult:
    return rnn_lab.gradient_norms(list(models), txt)


@st.cache_data(max_entries=8, show_spinner=False)
def get_timing(txt: str, at: tuple) -> rnn_lab.TimingResult:
    return rnn_lab.timing(RNN_MODEL, txt)


def rnn_installed() -> bool:
    from lmdemo.core.registry import get_spec, is_available

    if is_available(get_spec(RNN_MODEL)):
        return True
    st.info(f"This panel runs {RNN_MODEL}, whose weights are not installed yet.",
            icon=":material/hourglass_empty:")
    return False


def recurrence_tab() -> None:
    st.markdown(ui.prose("rnn_vs_transformer", "recurrence"))
    if not rnn_installed():
        return
    full = get_recurrence(text, None, where(RNN_MODEL))
    if full.message:
        st.info(full.message, icon=":material/content_cut:")
    n = len(full.tokens)
    raw = st.session_state.get("step", st.query_params.get("step", n - 1))
    try:
        valid = 0 <= int(raw) < n
    except (TypeError, ValueError):
        valid = False
    if not valid:  # a step from another text, or a bad value in the URL: clamp it
        st.session_state["step"] = n - 1
    initial = {} if "step" in st.session_state else {"value": min(int(raw), n - 1)}
    step = st.select_slider("Step t to recompute", list(range(n)), key="step",
                            format_func=lambda i: f"{i}: {show_token(full.tokens[i])}",
                            **initial, **ui.URL)
    res = get_recurrence(text, step, where(RNN_MODEL))
    (h, e), hh = res.w_shape, res.u_shape[0]
    st.latex(r"h_t = \tanh\!\left(W x_t + U h_{t-1} + b\right),\qquad "
             rf"W\in\mathbb{{R}}^{{{h}\times{e}}},\; U\in\mathbb{{R}}^{{{hh}\times{hh}}},\;"
             rf"b\in\mathbb{{R}}^{{{hh}}},\; h_0 = 0")
    ui.chart(plots.hidden_heatmap(res.tokens, res.hidden, step), "rnn-hidden-states",
             {"step": list(range(len(res.tokens))), "token": res.tokens,
              **{f"h{j}": res.hidden[:, j].tolist() for j in range(res.hidden.shape[1])}},
             key="hidden")
    st.markdown(f"**Step {step}** reads “{show_token(res.tokens[step])}”. Unit 0, with the "
                "model's real numbers:")
    st.latex(rf"h_{{{step}}}[0] = \tanh(\underbrace{{{res.wx[0]:.4f}}}_{{(Wx_t)[0]}} "
             rf"+ \underbrace{{{res.uh[0]:+.4f}}}_{{(Uh_{{t-1}})[0]}} "
             rf"+ \underbrace{{{res.b[0]:+.4f}}}_{{b[0]}}) = \tanh({res.pre[0]:.4f}) = "
             rf"{res.h_manual[0]:.4f}\quad(\text{{model: }}{res.h_model[0]:.4f})")
    units = min(UNITS_SHOWN, len(res.pre))
    table = {"unit": list(range(units)), "W·x_t": res.wx[:units], "U·h_{t−1}": res.uh[:units],
             "b": res.b[:units], "sum": res.pre[:units], "tanh(sum)": res.h_manual[:units],
             "model's h_t": res.h_model[:units]}
    st.dataframe({k: np.round(v, 5) if k != "unit" else v for k, v in table.items()},
                 hide_index=True)
    ui.chart(plots.step_bars({"W·x_t": res.wx, "U·h_{t−1}": res.uh, "b": res.b,
                              "tanh(sum)": res.h_manual, "model's h_t": res.h_model},
                             units=min(32, len(res.pre))),
             f"rnn-step-{step}", {k: list(v) for k, v in table.items()}, key="stepfig")
    c1, c2 = st.columns(2)
    c1.metric("max |tanh(sum) − model's h_t|, this step", f"{res.step_error:.1e}")
    c2.metric("same, every step of a hand-run recurrence", f"{res.run_error:.1e}")
    if max(res.step_error, res.run_error) < 1e-4:
        st.success("The hand computation reproduces the model's hidden state (the difference "
                   "is floating-point rounding).", icon=":material/check_circle:")
    else:
        st.warning(f"The hand computation differs from the model by {res.step_error:.2e}.")


def gradients_tab() -> None:
    st.markdown(ui.prose("rnn_vs_transformer", "gradients"))
    from lmdemo.core.registry import specs_of_kind

    options = [s.id for s in specs_of_kind(*KINDS)]
    default = [m for m in GRAD_DEFAULT if m in options] or options[:1]
    picked = st.multiselect("Models", options, default=default, key="grad_models", **ui.URL)
    if not picked:
        st.info("Pick at least one recurrent model.")
        return
    res = get_gradients(tuple(picked), text, where(*picked))
    if res.message:
        st.info(res.message, icon=":material/content_cut:")
    st.latex(r"\frac{\partial \mathcal{L}_T}{\partial h_t} = \frac{\partial \mathcal{L}_T}"
             r"{\partial h_{T}}\prod_{k=t+1}^{T}\frac{\partial h_k}{\partial h_{k-1}},\qquad "
             r"\text{RNN: }\frac{\partial h_k}{\partial h_{k-1}} = "
             r"\operatorname{diag}\!\left(1-h_k^2\right)U")
    ui.chart(plots.gradient_lines(res.model_ids, res.archs, res.distance, res.norms),
             "gradient-norms", res.rows(), key="grads")
    cols = st.columns(len(res.model_ids))
    far = int(res.distance[0])
    for col, model_id, row in zip(cols, res.model_ids, res.norms, strict=True):
        near, first = row[-1], row[0]
        ratio = first / near if near > 0 else float("nan")
        col.metric(f"{model_id}: {far} steps back vs 0", f"×{ratio:.1e}",
                   help="‖∂L/∂h_t‖ at the first token divided by its value at the last step")
    st.caption(f"The loss is that of predicting “{show_token(res.tokens[-1])}” (the last token); "
               f"it is {', '.join(f'{m} {v:.2f}' for m, v in zip(res.model_ids, res.loss, strict=True))} "
               "nats. h is the hidden state (for the LSTM, h and not the cell c).")


def path_tab() -> None:
    st.markdown(ui.prose("rnn_vs_transformer", "path"))
    from lmdemo.core.models import load
    from lmdemo.core.registry import specs_of_kind

    tokenizer = load(specs_of_kind(*KINDS)[0].id, kinds=KINDS).tokenizer
    n = min(len(tokenizer(text, add_special_tokens=False)["input_ids"]) + 1, rnn_lab.MAX_TOKENS)
    st.latex(rf"\text{{RNN: }} h_T = f(\dots f(f(x_1, h_0), x_2)\dots, x_T)\;\Rightarrow\;"
             rf"\text{{path}}(1, T) = T - 1 = {n - 1}"
             r"\qquad\text{attention: } \mathrm{softmax}\!\left(\frac{QK^\top}{\sqrt d}\right)V"
             r"\;\Rightarrow\;\text{path} = 1")
    dist = list(range(1, max(2, n)))
    ui.chart(plots.path_lengths(n), "path-length",
             {"distance": dist, "rnn_steps": dist, "attention_steps": [1] * len(dist)},
             key="path")


def timing_tab() -> None:
    st.markdown(ui.prose("rnn_vs_transformer", "timing"))
    if not rnn_installed():
        return
    with st.spinner("Timing both ways…"):
        res = get_timing(text, where(RNN_MODEL))
    st.latex(r"\underbrace{h_t = \tanh(Wx_t + Uh_{t-1} + b),\ t = 1\dots T}_{T\text{ steps, one "
             r"after another}}\qquad\text{vs}\qquad\underbrace{\mathrm{softmax}\!\left("
             r"\frac{QK^\top}{\sqrt d}+M\right)V}_{\text{one batch of matrix products}}")
    ui.chart(plots.timing_bars(res.lengths, res.loop_s, res.kernel_s, res.attention_s),
             "sequential-vs-parallel", res.rows(), key="timing")
    cols = st.columns(len(res.lengths))
    for col, n, a, c in zip(cols, res.lengths, res.loop_s, res.attention_s, strict=True):
        col.metric(f"{n} tokens: loop ÷ attention", f"{a / c:.2g}×",
                   help="Time of the RNN's step-by-step loop divided by the attention's time, "
                        "same input and width (above 1: attention is faster)")
    st.markdown(ui.prose("rnn_vs_transformer", "timing_note").format(
        width=res.hidden_size, model=RNN_MODEL, repeats=res.repeats))


if not text.strip():
    st.info("Type a few words to run the recurrent models on them.", icon=":material/info:")
    st.stop()
TABS = {"Recurrence": recurrence_tab, "Vanishing gradients": gradients_tab,
        "Path length": path_tab, "Sequential vs parallel": timing_tab}
ui.lazy_tabs(TABS)
ui.share_hint()
