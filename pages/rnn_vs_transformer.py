"""RNN vs Transformer: tiny-rnn's hidden states on the user's text with one step recomputed by
hand, vanishing gradients measured by autograd for RNN vs LSTM vs GRU, path length, and measured
times of sequential recurrent steps versus one parallel attention product on this server's device,
beside the counted steps and arithmetic that no device changes. Each panel makes its own calls.
"""

import numpy as np
import streamlit as st

from lmdemo.lab import rnn as rnn_lab
from lmdemo.plots import rnn as plots
from lmdemo.plots.common import show_token
from pages import ui

T = "rnn_vs_transformer"
RNN_MODEL = rnn_lab.RNN_MODEL
UNITS_SHOWN = 12  # hidden units in the step-by-step table
UNITS_PLOTTED = 32  # hidden units in the step-by-step chart
ROUND = 5  # decimals in the step-by-step table

ui.page(ui.prose(T, "title"), "intro", T)
if not ui.models_ready(rnn_lab.KINDS, RNN_MODEL):
    st.stop()
text = ui.text_input("text", ui.lines(T, "examples"))


@st.cache_data(max_entries=16, show_spinner=False)
def get_gradients(models: tuple[str, ...], txt: str, at: tuple) -> rnn_lab.GradientResult:
    return rnn_lab.gradient_norms(list(models), txt)


def rnn_installed() -> bool:
    if rnn_lab.installed(RNN_MODEL):
        return True
    st.info(ui.prose(T, "not-installed", model=RNN_MODEL), icon=":material/hourglass_empty:")
    return False


def step_slider(tokens: list[str]) -> int:
    """The step to recompute, kept in the URL; a step from another text is clamped."""
    n = len(tokens)
    raw = st.session_state.get("step", st.query_params.get("step", n - 1))
    if not (str(raw).isdecimal() and int(raw) < n):  # another text's step, or a bad URL: clamp
        st.session_state["step"] = n - 1
    initial = {} if "step" in st.session_state else {"value": min(int(raw), n - 1)}
    return st.select_slider(ui.prose(T, "label-step"), list(range(n)), key="step",
                            format_func=lambda i: f"{i}: {show_token(tokens[i])}",
                            **initial, **ui.URL)


def recurrence_tab() -> None:
    ui.say(T, "recurrence")
    if not rnn_installed():
        return
    ui.warm_up(RNN_MODEL)  # the first load shows a spinner
    steps = ui.cached(rnn_lab.recurrence_steps, RNN_MODEL, text)
    if steps.message:
        st.info(steps.message, icon=":material/content_cut:")
    step = step_slider(steps.tokens)
    res = steps.at(step)
    (h, e), hh = res.w_shape, res.u_shape[0]
    ui.formula(T, "formula-recurrence", h=h, e=e, hh=hh)
    ui.chart(plots.hidden_heatmap(res.tokens, res.hidden, step), "rnn-hidden-states",
             {"step": list(range(len(res.tokens))), "token": res.tokens,
              **{f"h{j}": res.hidden[:, j].tolist() for j in range(res.hidden.shape[1])}},
             key="hidden")
    ui.say(T, "step-intro", step=step, token=show_token(res.tokens[step]))
    ui.formula(T, "formula-step", step=step, wx=f"{res.wx[0]:.4f}", uh=f"{res.uh[0]:+.4f}",
               b=f"{res.b[0]:+.4f}", pre=f"{res.pre[0]:.4f}", manual=f"{res.h_manual[0]:.4f}",
               model=f"{res.h_model[0]:.4f}")
    names = dict(zip(rnn_lab.STEP_PARTS, ui.prose(T, "step-columns").split(" | "),
                     strict=True))
    table = {names[k]: v for k, v in res.step_table(UNITS_SHOWN).items()}
    st.dataframe({k: np.round(v, ROUND) for k, v in table.items()}, hide_index=True)
    parts = {names[k]: v for k, v in res.step_table(len(res.pre)).items()
             if k not in ("unit", "pre")}
    ui.chart(plots.step_bars(parts, units=min(UNITS_PLOTTED, len(res.pre))),
             f"rnn-step-{step}", {k: list(v) for k, v in table.items()}, key="stepfig")
    c1, c2 = st.columns(2)
    c1.metric(ui.prose(T, "metric-step-error"), f"{res.step_error:.1e}")
    c2.metric(ui.prose(T, "metric-run-error"), f"{res.run_error:.1e}")
    if res.reproduced:
        st.success(ui.prose(T, "reproduced"), icon=":material/check_circle:")
    else:
        st.warning(ui.prose(T, "differs", error=f"{res.step_error:.2e}"))


def gradients_tab() -> None:
    ui.say(T, "gradients")
    options, default = rnn_lab.recurrent_models()
    picked = st.multiselect(ui.prose(T, "label-models"), options, default=default,
                            key="grad_models", **ui.URL)
    if not picked:
        st.info(ui.prose(T, "no-models"))
        return
    res = get_gradients(tuple(picked), text, tuple(map(ui.weights_of, picked)))
    if res.message:
        st.info(res.message, icon=":material/content_cut:")
    ui.formula(T, "formula-gradient")
    ui.chart(plots.gradient_lines(res.model_ids, res.archs, res.distance, res.norms),
             "gradient-norms", res.rows(), key="grads")
    far = int(res.distance[0])
    for col, model_id, ratio in zip(st.columns(len(res.model_ids)), res.model_ids, res.decay(),
                                    strict=True):
        col.metric(ui.prose(T, "metric-decay", model=model_id, far=far), f"×{ratio:.1e}",
                   help=ui.prose(T, "help-decay"))
    losses = ", ".join(f"{m} {v:.2f}" for m, v in zip(res.model_ids, res.loss, strict=True))
    st.caption(ui.prose(T, "gradient-note", token=show_token(res.tokens[-1]), losses=losses))


def path_tab() -> None:
    ui.say(T, "path")
    res = rnn_lab.path_length(text)
    ui.formula(T, "formula-path", steps=res.n_tokens - 1)
    ui.chart(plots.path_lengths(res.n_tokens), "path-length", res.rows(), key="path")


def timing_tab() -> None:
    ui.say(T, "timing")
    if not rnn_installed():
        return
    with st.spinner(ui.prose(T, "spinner-timing")):
        res = ui.cached(rnn_lab.timing, RNN_MODEL, text)
    ui.formula(T, "formula-timing")
    ui.chart(plots.timing_bars(res.lengths, res.loop_s, res.kernel_s, res.attention_s,
                               res.device_name), "sequential-vs-parallel", res.rows(), key="timing")
    for col, n, ratio in zip(st.columns(len(res.lengths)), res.lengths, res.speedups(),
                             strict=True):
        col.metric(ui.prose(T, "metric-speedup", n=n), f"{ratio:.2g}×",
                   help=ui.prose(T, "help-speedup"))
    slower = res.attention_slower_at()  # what is true on this device, and why
    kind = f"{'cpu' if res.device == 'cpu' else 'gpu'}-{'slower' if slower else 'faster'}"
    ui.say(T, f"verdict-{kind}", device=res.device_name, threads=res.threads, n=res.lengths[-1],
           lengths=", ".join(map(str, slower)),
           work=f"{res.attention_work[-1] / res.rnn_work[-1]:.0f}")
    ui.say(T, "counted")
    ui.chart(plots.counted_steps(res.lengths, res.rnn_steps, res.attention_steps, res.rnn_work,
                                 res.attention_work), "counted-steps", res.rows(), key="counted")
    ui.say(T, "timing_note", width=res.hidden_size, model=RNN_MODEL, repeats=res.repeats)


if not text.strip():
    st.info(ui.prose(T, "no-text"), icon=":material/info:")
    st.stop()
ui.lazy_tabs({"Recurrence": recurrence_tab, "Vanishing gradients": gradients_tab,
              "Path length": path_tab, "Sequential vs parallel": timing_tab})
ui.share_hint()
