"""Attention: one head as a heatmap, every layer × head as clickable thumbnails, the line view,
mean-over-heads and rollout, one head recomputed step by step from the model's real weights, the
multi-head combination through W^O, and two sentences side by side. Llama-style models
(SmolLM2, the default once fetched) also show the rotary position step and which query heads
share a key/value head.
"""

import json

import streamlit as st
import streamlit.components.v1 as components

from lmdemo.core.config import ASSETS
from lmdemo.core.registry import get_spec, is_available
from lmdemo.lab import attention as svc
from lmdemo.lab.attention_math import hide_special, mean_heads, rollout
from lmdemo.plots import attention as plots
from pages import ui

EXAMPLES = ["The animal didn't cross the street because it was too tired",
            "The animal didn't cross the street because it was too wide",
            "The chef who ran to the store was out of food",
            "I put the book on the table because it was heavy"]
# precomputed with `python -m lmdemo attention --model M --text EXAMPLES[0] [--layer L --head H] --json`
EXAMPLE_FILES = {"minilm": ASSETS / "examples" / "attention.json",
                 "smollm2": ASSETS / "examples" / "attention-smollm2.json"}
DEFAULT_HEADS = {"minilm": (3, 1), "smollm2": (3, 8)}  # each links "it" to "animal"
VIEWS = {"head": "One head", "mean": "Mean over heads", "rollout": "Rollout (layers 0…L)"}
FORMULAS = {
    "head": r"A^{(\ell,h)} = \mathrm{softmax}\!\left(\frac{Q_h K_h^{\top}}{\sqrt{d_k}}"
            r" + M\right)",
    "mean": r"\bar A^{(\ell)} = \frac{1}{H}\sum_{h=1}^{H} A^{(\ell,h)}",
    "rollout": r"\hat A^{(\ell)} = \mathrm{rownorm}\!\left(\bar A^{(\ell)} + I\right),\qquad "
               r"R^{(\ell)} = \hat A^{(\ell)}\,\hat A^{(\ell-1)}\cdots\hat A^{(0)}",
}

ui.page("Attention", "intro", "attention")
side = st.sidebar
# SmolLM2 (causal, as on the next-word page) once fetched; else the embedded MiniLM
DEFAULT_MODEL = "smollm2" if is_available(get_spec("smollm2")) else "minilm"
model_id = ui.model_picker(("encoder", "causal-lm", "classifier"), default=DEFAULT_MODEL)
text = ui.text_input("text", EXAMPLES)
DEFAULT_LAYER, DEFAULT_HEAD = DEFAULT_HEADS.get(model_id, DEFAULT_HEADS["minilm"])


@st.cache_data(max_entries=16, show_spinner=False)
def get_attention(model: str, txt: str) -> svc.AttentionResult:
    return svc.attention(model, txt)


@st.cache_data(max_entries=16, show_spinner=False)
def get_steps(model: str, txt: str, layer: int, head: int, query: int) -> svc.StepResult:
    return svc.step_by_step(model, txt, layer, head, query)


def preview() -> None:
    """The precomputed head view of the default example, drawn while the model loads."""
    path = EXAMPLE_FILES.get(model_id)
    if path is None or not path.is_file():
        return
    data = json.loads(path.read_text(encoding="utf-8"))
    if data["model"] != model_id or data["text"] != text or DEFAULT_LAYER not in data["layers"] \
            or DEFAULT_HEAD not in data["heads"]:
        return
    att = data["attentions"][data["layers"].index(DEFAULT_LAYER)][data["heads"].index(DEFAULT_HEAD)]
    ui.chart(plots.head_heatmap(data["tokens"], att,
                                f"Layer {DEFAULT_LAYER}, head {DEFAULT_HEAD} (precomputed)"),
             "attention-preview", key="preview")


res = None
with ui.guard("The attention"):
    ui.warm_up(model_id, preview)
    res = get_attention(model_id, text)
if res is None:
    st.stop()
if res.message:
    st.info(res.message, icon=":material/content_cut:")


def pick_index(key: str, default: int, size: int) -> None:
    """Keep an index in range for this model before its widget is drawn (URL values included)."""
    raw = st.session_state.get(key, st.query_params.get(key, default))
    try:
        value = int(str(raw).split(":")[0])  # a select box keeps its label ("10: it") in the URL
    except (TypeError, ValueError):
        value = default
    st.session_state[key] = min(max(value, 0), size - 1)


# A click on a thumbnail in "All heads" selects that layer and head (before the sliders exist).
points = (st.session_state.get("grid") or {}).get("selection", {}).get("points", [])
clicked = next(((p["point_index"] // res.n_heads, p["point_index"] % res.n_heads)
                for p in points if p.get("curve_number") == 1), None)
if clicked and clicked != st.session_state.get("grid_applied"):
    st.session_state["layer"], st.session_state["head"] = clicked
st.session_state["grid_applied"] = clicked

pick_index("layer", DEFAULT_LAYER, res.n_layers)
pick_index("head", DEFAULT_HEAD, res.n_heads)
layer = side.select_slider("Layer", list(range(res.n_layers)), key="layer", **ui.URL)
head = side.select_slider("Head", list(range(res.n_heads)), key="head", **ui.URL)
view = side.radio("Show", list(VIEWS), format_func=VIEWS.get, key="view", **ui.URL)
hide = side.toggle("Hide special tokens", key="hide", help="[CLS], [SEP], <|endoftext|> …",
                   **ui.URL)
renorm = side.toggle("Renormalize rows", key="renorm", disabled=not hide,
                     help="After hiding, rescale each row to sum to 1 again.", **ui.URL)
side.caption(f"{res.model_id}: {res.n_layers} layers × {res.n_heads} heads, "
             f"{len(res.tokens)} tokens{' (causal)' if res.causal else ''}.")


def shown(r: svc.AttentionResult):
    """Tokens and the (T, T) matrix of the chosen view, with special tokens hidden if asked."""
    mat = {"head": lambda: r.attentions[layer, head],
           "mean": lambda: mean_heads(r.attentions)[layer],
           "rollout": lambda: rollout(r.attentions)[layer]}[view]()
    tokens = r.tokens
    if hide and r.special_mask.any() and not r.special_mask.all():
        mat = hide_special(mat, r.special_mask, renorm=renorm)
        tokens = [t for t, s in zip(r.tokens, r.special_mask, strict=True) if not s]
    return tokens, mat


def title(r: svc.AttentionResult) -> str:
    what = {"head": f"layer {layer}, head {head}", "mean": f"layer {layer}, mean over heads",
            "rollout": f"rollout through layers 0–{layer}"}[view]
    return f"{r.model_id}: {what}"


def heatmap_tab():
    st.markdown(ui.prose("attention", "heatmap"))
    st.latex(FORMULAS[view])
    tokens, mat = shown(res)
    ui.chart(plots.head_heatmap(tokens, mat, title(res)), f"attention-{view}-L{layer}-H{head}",
             plots.matrix_frame(tokens, mat), key="heatmap")


def grid_tab():
    st.markdown(ui.prose("attention", "grid"))
    att = res.attentions
    if hide and res.special_mask.any() and not res.special_mask.all():
        att = hide_special(att, res.special_mask, renorm=renorm)
    ui.chart(plots.grid_figure(att, (layer, head)), "attention-all-heads", key="grid",
             on_select="rerun", selection_mode="points")
    st.caption(f"Selected: layer {layer}, head {head}. If clicking does not select, use the "
               "sliders in the sidebar.")


def lines_tab():
    st.markdown(ui.prose("attention", "lines"))
    tokens, mat = shown(res)
    st.caption(title(res))
    components.html(plots.line_view_html(tokens, mat), height=plots.line_view_height(len(tokens)),
                    scrolling=True)


def query_picker(tokens: list[str]) -> int:
    words = [t.lstrip("␣") for t in tokens]  # GPT-2/SmolLM2 tokens carry their space
    default = words.index("it") if "it" in words else min(1, len(tokens) - 1)
    pick_index("query", default, len(tokens))
    return st.selectbox("Query token", list(range(len(tokens))), key="query",
                        format_func=lambda i: f"{i}: {tokens[i]}", **ui.URL)


def step_tab():
    st.markdown(ui.prose("attention", "step"))
    query = query_picker(res.tokens)
    with ui.guard("The step-by-step view"):
        s = get_steps(model_id, text, layer, head, query)
        for note in s.notes:
            st.caption(note)
        st.markdown(f"**1. Project.** Layer {s.layer}, head {s.head}: *x* has shape "
                    f"({len(s.tokens)}, {s.d_model}); this head's slices W_Q, W_K, W_V are "
                    f"({s.d_model}, {s.d_k}) each.")
        st.latex(r"q_i = x_i W_Q^{(h)} + b_Q^{(h)},\quad k_j = x_j W_K^{(h)} + b_K^{(h)},\quad "
                 r"v_j = x_j W_V^{(h)} + b_V^{(h)}")
        with st.expander(f"q, K and V as numbers (d_k = {s.d_k}"
                         f"{'; q and K after RoPE' if s.rope else ''})"):
            st.caption(f"q for “{s.tokens[query]}”")
            st.dataframe([dict(enumerate(s.q.round(4).tolist()))], hide_index=True)
            st.caption("K (one row per token)")
            st.dataframe(plots.token_table(s.tokens, s.k))
            st.caption("V (one row per token)")
            st.dataframe(plots.token_table(s.tokens, s.v))
        kv_groups(s)
        rope_step(s)
        st.markdown("**2. Score, 3. softmax.** Each key's score is its dot product with the "
                    "query, divided by √d_k" + (" — keys after the query are masked to −∞ "
                                                "(causal)." if s.causal else "."))
        mask = r"\;(j \le i,\ \text{else } -\infty)" if s.causal else ""
        st.latex(rf"s_j = \frac{{q_i \cdot k_j}}{{\sqrt{{d_k}}}} = \frac{{q_i\cdot k_j}}"
                 rf"{{\sqrt{{{s.d_k}}}}}{mask},\qquad a_j = \frac{{e^{{s_j}}}}"
                 r"{\sum_{j'} e^{s_{j'}}}")
        ui.chart(plots.step_figure(s.tokens, s.scores, s.weights, s.model_weights, query),
                 f"attention-step-L{layer}-H{head}-q{query}",
                 plots.step_rows(s.tokens, s.scores, s.weights, s.model_weights), key="stepfig")
        c1, c2 = st.columns(2)
        c1.metric("max |softmax − model's attention|, this row", f"{s.max_abs_diff:.1e}")
        c2.metric("same check, all heads and rows of this layer", f"{s.head_max_abs_diff:.1e}")
        _verdict(max(s.max_abs_diff, s.head_max_abs_diff), "The recomputed softmax")
        st.markdown("**4. Weighted sum.** The head's output for this token mixes the value "
                    "vectors with those weights.")
        st.latex(r"z_i = \sum_j a_j\, v_j \in \mathbb{R}^{" + str(s.d_k) + "}")
        st.dataframe([dict(enumerate(s.output.round(4).tolist()))], hide_index=True)


def multihead_tab():
    st.markdown(ui.prose("attention", "multihead"))
    query = query_picker(res.tokens)
    with ui.guard("The multi-head view"):
        s = get_steps(model_id, text, layer, head, query)
        t, h, dk, d = len(s.tokens), s.n_heads, s.d_k, s.d_model
        st.latex(r"\mathrm{MultiHead}(X) = \mathrm{Concat}(z^{(1)},\dots,z^{(H)})\,W^O + b^O,"
                 r"\qquad z^{(h)} = \mathrm{softmax}\!\left(\frac{Q_hK_h^\top}{\sqrt{d_k}}"
                 r"\right)V_h")
        st.latex(rf"\underbrace{{({t}\times{h * dk})}}_{{\text{{concat of {h} heads}} \times "
                 rf"{dk}}}\;\cdot\;\underbrace{{({s.w_o_shape[0]}\times{s.w_o_shape[1]})}}"
                 rf"_{{W^O}}\;=\;\underbrace{{({t}\times{d})}}_{{\text{{output}}}}")
        st.dataframe(plots.shape_rows(t, d, h, s.n_kv_heads, dk, s.w_o_shape), hide_index=True)
        kv_groups(s)
        st.metric("max |Concat·W^O + b^O − the model's attention output|",
                  f"{s.mha_max_abs_diff:.1e}")
        _verdict(s.mha_max_abs_diff, "The recomputed multi-head output")
        ui.chart(plots.head_contrib_figure(s.head_contrib, head),
                 f"attention-head-shares-L{layer}-q{query}",
                 {"head": list(range(h)), "norm": s.head_contrib.tolist()}, key="contrib")


def kv_groups(s: svc.StepResult) -> None:
    """Grouped-query attention: which query heads read the chosen head's keys and values."""
    if s.n_kv_heads == s.n_heads:
        return
    st.markdown(ui.prose("attention", "gqa").format(
        n=s.n_heads, kv=s.n_kv_heads, heads=", ".join(map(str, s.sharing)), head=s.head,
        kv_head=s.kv_head, ratio=s.n_heads // s.n_kv_heads))
    st.dataframe(plots.kv_group_rows(s.kv_groups, s.head), hide_index=True)


def rope_step(s: svc.StepResult) -> None:
    """RoPE: q and k turned pair by pair by position·θ_i before their dot product."""
    if not s.rope:
        return
    st.markdown(ui.prose("attention", "rope").replace("BASE", f"{s.rope_theta:.0f}")
                .replace("D_K", str(s.d_k)))
    ui.chart(plots.rope_figure(s.tokens, s.scores, s.scores_without_rope, s.query,
                               s.rope_angles), f"attention-rope-L{s.layer}-H{s.head}-q{s.query}",
             plots.score_rows(s.tokens, s.scores, s.scores_without_rope), key="ropefig")


def compare_tab():
    st.markdown(ui.prose("attention", "compare"))
    c1, c2 = st.columns(2)
    texts = [c1.text_input("Sentence A", EXAMPLES[0], key="text_a", **ui.URL),
             c2.text_input("Sentence B", EXAMPLES[1], key="text_b", **ui.URL)]
    word = st.text_input("Follow the word", "it", key="word", **ui.URL).strip()
    for col, txt, name in zip((c1, c2), texts, "AB", strict=True):
        with col, ui.guard(f"Sentence {name}"):
            r = get_attention(model_id, txt)
            tokens, mat = shown(r)
            ui.chart(plots.head_heatmap(tokens, mat, f"{name}: {title(r)}", height=480),
                     f"attention-{name}", plots.matrix_frame(tokens, mat), key=f"cmp_{name}")
            words = [t.lstrip("␣") for t in tokens]  # "␣it" (GPT-2, SmolLM2) is "it"
            if word in words:
                i = words.index(word)
                ui.chart(plots.row_bars(tokens, mat[i], f"{name}: where “{word}” looks"),
                         f"attention-{name}-{word}", {"key": tokens, "weight": mat[i].tolist()},
                         key=f"row_{name}")
            elif word:
                st.caption(f"“{word}” is not a token of sentence {name}.")


def _verdict(diff: float, what: str) -> None:
    if diff < 1e-4:
        st.success(f"{what} equals what the model returned (difference {diff:.1e}, "
                   "floating-point rounding).", icon=":material/check_circle:")
    else:
        st.warning(f"{what} differs from the model by {diff:.2e}.", icon=":material/warning:")


TABS = {"Heatmap": heatmap_tab, "All heads": grid_tab, "Lines": lines_tab,
        "Step by step": step_tab, "Multi-head": multihead_tab, "Two sentences": compare_tab}
ui.lazy_tabs(TABS)
ui.share_hint()
