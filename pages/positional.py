"""Positional encoding: sinusoids, their similarity and rotation property, the sine-only shortcut,
learned tables of real models, rotary embeddings, and an ablation that breaks a model's positions.
"""

import pandas as pd
import streamlit as st

from lmdemo.lab import positional as pos
from lmdemo.lab import rotary
from lmdemo.lab.position_ablation import MODE_TITLES, MODES
from lmdemo.plots import positional as plots
from pages import ui

ui.page("Positional encoding", "intro", "positional")
side = st.sidebar
d_model = side.slider("d_model (width)", 2, pos.LIMITS.max_d_model, 64, step=2, key="d",
                      help="Must be even: sin and cos come in pairs.", **ui.URL)
length = side.slider("Positions", 2, pos.LIMITS.max_length, 100, key="n", **ui.URL)
side.caption(f"Caps: d_model ≤ {pos.LIMITS.max_d_model}, positions ≤ {pos.LIMITS.max_length}.")

EXAMPLES = ["The capital of France is", "The cat sat on the mat because it was tired.",
            "Once upon a time there was a little girl who"]
TABS = ["Sinusoidal", "Similarity", "Relative offset", "Sine-only", "Learned", "Rotary (RoPE)",
        "Ablation"]
tabs = dict(zip(TABS, st.tabs(TABS, key="tab", on_change="rerun", **ui.URL), strict=True))


def slider(label: str, lo: int, hi: int, value: int, key: str, where=st) -> int:
    """An int slider bound to the URL; a range of one value shows as text, not a slider."""
    if hi <= lo:
        where.caption(f"{label}: {lo} (the only choice at this size)")
        return lo
    return where.slider(label, lo, hi, min(max(value, lo), hi), key=key, **ui.URL)


def heatmap(matrix, name: str, title: str, x: str = "dimension", y: str = "position", **kw):
    """A heatmap with PNG + CSV export, thinned when too big for a browser."""
    shown, step = pos.thin(matrix)
    if step > 1:
        st.caption(f"Showing every {step}th row and column ({matrix.shape[0]}×{matrix.shape[1]} "
                   "in full: `python -m lmdemo positional --json`).")
    ui.chart(plots.heatmap(shown, title, x, y, **kw), name, pd.DataFrame(shown), key=name)


def sinusoidal_tab():
    st.markdown(ui.prose("positional", "sinusoidal"))
    st.latex(r"PE_{(pos,\,2i)} = \sin\!\left(\frac{pos}{10000^{2i/d}}\right),\quad "
             r"PE_{(pos,\,2i+1)} = \cos\!\left(\frac{pos}{10000^{2i/d}}\right)")
    with ui.guard("The sinusoidal encoding"):
        pe = pos.sinusoidal(length, d_model)
        heatmap(pe, "sinusoidal-encoding", f"Sinusoidal encoding, {length} positions × {d_model}")
        default = [d for d in (0, 1, 6, 7) if d < d_model]
        dims = st.multiselect("Dimensions to draw as waves", list(range(d_model)), default,
                              key="dims", **ui.URL)
        wave = pd.DataFrame({f"dim {d}": pe[:, d] for d in dims})
        ui.chart(plots.waves(pe, dims, "Selected dimensions over position"), "sinusoidal-waves",
                 wave, key="waves")
        st.caption(f"Wavelengths run from 2π ≈ 6.28 (dims 0, 1) to "
                   f"{2 * 3.14159 / pos.frequencies(d_model)[-1]:,.0f} positions "
                   f"(dims {d_model - 2}, {d_model - 1}).")


def similarity_tab():
    st.markdown(ui.prose("positional", "similarity"))
    st.latex(r"PE_{p}\cdot PE_{p+k} = \sum_{i} \cos(k\,\omega_i),\qquad "
             r"\omega_i = 10000^{-2i/d}")
    c1, c2 = st.columns(2)
    kind = c1.radio("Encoding", pos.KINDS, key="sim_kind", horizontal=True, **ui.URL)
    metric = c2.radio("Similarity", pos.METRICS, key="metric", horizontal=True, **ui.URL)
    with ui.guard("The similarity matrix"):
        sim = pos.similarity(pos.encoding(kind, length, d_model), metric)
        stats = pos.diagonal_stats(sim)
        st.metric("Largest spread along a diagonal (max − min of sim[p, p+k] over p)",
                  f"{stats.max_spread:.3g}")
        heatmap(sim, f"similarity-{kind}-{metric}", f"{metric} similarity, {kind}",
                "position", "position", zmid=None, colorscale="Viridis")
        ui.chart(plots.diagonal_chart(stats.offsets, stats.mean, stats.spread,
                                      "Similarity by distance"), f"diagonals-{kind}-{metric}",
                 stats.rows(), key="diag")


def offset_tab():
    st.markdown(ui.prose("positional", "offset"))
    st.latex(r"\begin{pmatrix} PE_{(p+k,2i)} \\ PE_{(p+k,2i+1)} \end{pmatrix} = "
             r"\begin{pmatrix} \cos k\omega_i & \sin k\omega_i \\ -\sin k\omega_i & "
             r"\cos k\omega_i \end{pmatrix} \begin{pmatrix} PE_{(p,2i)} \\ PE_{(p,2i+1)} "
             r"\end{pmatrix}")
    k = slider("Offset k", 1, length - 1, 5, "k")
    with ui.guard("The offset check"):
        checks = {kind: pos.offset_check(kind, length, d_model, k) for kind in pos.KINDS}
        c1, c2, c3 = st.columns(3)
        c1.metric("Sinusoidal: max error", f"{checks['sinusoidal'].max_error:.2e}")
        c2.metric("Sine-only: max error", f"{checks['sine-only'].max_error:.3g}")
        c3.metric("Sine-only: least error of ANY matrix at p = 0",
                  f"{checks['sine-only'].lower_bound:.3g}")
        errors = {kind: c.errors for kind, c in checks.items()}
        ui.chart(plots.offset_errors(errors, k), f"offset-errors-k{k}", errors, key="offerr")
        block = checks["sinusoidal"].matrix[:min(6, d_model), :min(6, d_model)]
        st.caption(f"The top-left corner of M_{k} (built from the formula, not fitted):")
        st.dataframe(pd.DataFrame(block).round(4))


def sine_only_tab():
    st.markdown(ui.prose("positional", "sine-only"))
    st.latex(r"PE_{(i,\,j)} = \sin\!\left(\frac{i}{10000^{2j/d}}\right)\quad "
             r"\text{for every } j = 0,\dots,d-1")
    with ui.guard("The sine-only comparison"):
        pe = {kind: pos.encoding(kind, length, d_model) for kind in pos.KINDS}
        reports = {kind: pos.distances(m) for kind, m in pe.items()}
        c1, c2 = st.columns(2)
        for col, kind in zip((c1, c2), pos.KINDS, strict=True):
            r = reports[kind]
            p, q, dist = r.closest_pairs[0]
            col.metric(f"{kind}: smallest distance between two positions", f"{dist:.3g}",
                       help=f"positions {p} and {q}")
        heatmap(pe["sine-only"], "sine-only-encoding", "Sine-only encoding")
        near = {kind: r.nearest for kind, r in reports.items()}
        ui.chart(plots.nearest_chart(near), "nearest-neighbour-distance", near, key="near")
        st.caption("Closest pairs of positions under the sine-only encoding:")
        st.dataframe(pd.DataFrame(reports["sine-only"].closest_pairs,
                                  columns=["position p", "position q", "distance"]))


def learned_tab():
    from lmdemo.core.registry import specs_of_kind

    st.markdown(ui.prose("positional", "learned"))
    st.latex(r"x_t = E_{\text{token}}[w_t] + P[t],\qquad P \in \mathbb{R}^{L_{max}\times d}"
             r"\ \text{(learned)}")
    if not any(s.id == "tiny-gpt" for s in specs_of_kind("causal-lm")):
        st.info("tiny-gpt (GPT-2 architecture, `transformer.wpe`) is not installed yet; it "
                "appears in this list once its files are in lmdemo/assets/lm/tiny-gpt.")
    model = ui.model_picker(("encoder", "causal-lm", "classifier"), key="model",
                            default="minilm", container=st)
    with ui.guard("The learned table"):
        lt = pos.learned_table(model, length)
        st.caption(f"`{lt.name}` of {lt.model_id}: {lt.total_positions} positions × "
                   f"{lt.table.shape[1]}; showing the first {lt.table.shape[0]}.")
        heatmap(lt.table, f"learned-{lt.model_id}", f"Learned position table of {lt.model_id}",
                robust=True)
        coords, ratios = pos.pca_path(lt.table)
        ui.chart(plots.pca_path(coords, ratios, "Positions on their first two principal axes"),
                 f"pca-{lt.model_id}", {"position": range(len(coords)), "pc1": coords[:, 0],
                                        "pc2": coords[:, 1]}, key="pca")
        sim = pos.similarity(lt.table, "cosine")
        st.metric("Largest spread along a diagonal (0 would mean: distance only)",
                  f"{pos.diagonal_stats(sim).max_spread:.3g}")
        heatmap(sim, f"learned-similarity-{lt.model_id}", "Cosine similarity between positions",
                "position", "position", zmid=None, colorscale="Viridis")


def rotary_tab():
    st.markdown(ui.prose("positional", "rotary"))
    st.latex(r"R_{m}\begin{pmatrix} x_{2i} \\ x_{2i+1} \end{pmatrix} = \begin{pmatrix} "
             r"\cos m\theta_i & -\sin m\theta_i \\ \sin m\theta_i & \cos m\theta_i "
             r"\end{pmatrix}\begin{pmatrix} x_{2i} \\ x_{2i+1} \end{pmatrix},\quad "
             r"(R_m q)\cdot(R_n k) = q^\top R_{n-m}\, k")
    c1, c2 = st.columns(2)
    pair = slider("Pair i", 0, d_model // 2 - 1, 0, "pair", c1)
    steps = c2.slider("Positions drawn", 2, 64, 16, key="steps", **ui.URL)
    with ui.guard("The rotary pair"):
        path = rotary.pair_path(steps, d_model, pair)
        theta = float(pos.frequencies(d_model)[pair])
        ui.chart(plots.rotary_pair(path, pair, theta), f"rope-pair-{pair}",
                 {"position": range(steps), "x_even": path[:, 0], "x_odd": path[:, 1]},
                 key="ropepair")
    with ui.guard("The relative check"):
        rc = rotary.relative_check(length, d_model)
        c1, c2 = st.columns(2)
        c1.metric("RoPE: max change of q·k over absolute positions", f"{rc.max_deviation:.2e}")
        c2.metric("Added sinusoids: the same", f"{rc.max_additive_deviation:.3g}")
        ui.chart(plots.rotary_offsets(rc.offsets, rc.deviation, rc.additive_deviation),
                 "rope-deviation", {"offset": rc.offsets, "rope": rc.deviation,
                                    "additive": rc.additive_deviation}, key="ropedev")
        heatmap(rc.scores, "rope-scores", "q·k with q at position m (rows), k at n (columns)",
                "key position n", "query position m", zmid=None, colorscale="Viridis")
    rotary_model_panel()


def rotary_model_panel():
    st.subheader(f"On a real model: {rotary.REAL_MODEL}")
    st.markdown(ui.prose("positional", "rotary-model"))
    if not rotary.real_model_ready():
        st.info(ui.prose("positional", "rotary-model-missing"), icon=":material/info:")
        return
    text = ui.text_input("rope_text", EXAMPLES)
    c1, c2, c3 = st.columns(3)
    layer = c1.number_input("Layer", 0, 63, 0, key="rope_layer", **ui.URL)
    head = c2.number_input("Query head", 0, 63, 0, key="rope_head", **ui.URL)
    grid = c3.slider("Positions m, n", 2, 256, 64, key="rope_grid", **ui.URL)
    with ui.guard("The measurement on the real model"):
        r = rotary.measure(rotary.REAL_MODEL, text, int(layer), int(head), length=grid)
        st.caption(f"Head width {r.head_dim} ({r.head_dim // 2} pairs); query head {r.head} "
                   f"shares key head {r.kv_head}. q of {r.tokens[r.query_index]!r}, k of "
                   f"{r.tokens[r.key_index]!r}, both before rotation.")
        c1, c2, c3, c4 = st.columns(4)
        c1.metric("rope_theta", f"{r.theta:,.0f}")
        c2.metric("RoPE: max change of q·k/√d, relative", f"{r.relative_deviation:.1e}")
        c3.metric("Added sinusoids: the same", f"{r.relative_additive_deviation:.3g}")
        c4.metric("Our rotation vs the model's attention: max diff", f"{r.model_max_diff:.1e}")
        for fig, name, data in plots.rotary_model_charts(r):
            ui.chart(fig, name, data, key=name)


def ablation_tab():
    from lmdemo.core.registry import specs_of_kind
    from lmdemo.lab.position_ablation import ablate

    st.markdown(ui.prose("positional", "ablation"))
    st.latex(r"\mathrm{KL}(p\,\|\,q) = \sum_{w} p(w)\,\log\frac{p(w)}{q(w)}")
    if not specs_of_kind("causal-lm"):
        return st.info(ui.prose("positional", "ablation-missing"), icon=":material/hourglass_top:")
    default = rotary.REAL_MODEL if rotary.real_model_ready() else "tiny-gpt"
    model = ui.model_picker(("causal-lm",), key="abl_model", default=default, container=st)
    text = ui.text_input("abl_text", EXAMPLES)
    c1, c2, c3 = st.columns(3)
    mode = c1.selectbox("Break positions", MODES, key="abl_mode",
                        format_func=MODE_TITLES.get, **ui.URL)
    layer = c2.number_input("Layer", 0, 63, 0, key="abl_layer", **ui.URL)
    head = c3.number_input("Head", 0, 63, 0, key="abl_head", **ui.URL)
    with ui.guard("The ablation"):
        r = ablate(model, text, mode, int(layer), int(head))
        st.metric("KL(normal ‖ broken) at the last token", f"{r.kl:.3g} nats")
        for fig, name, data in plots.ablation_charts(r):
            ui.chart(fig, name, data, key=name)


PANELS = [sinusoidal_tab, similarity_tab, offset_tab, sine_only_tab, learned_tab, rotary_tab,
          ablation_tab]
for name, panel in zip(TABS, PANELS, strict=True):
    if tabs[name].open is not False:
        with tabs[name]:
            panel()
ui.share_hint()
