"""The positional encoding page in AppTest: every tab renders without an exception or error box,
inputs come from the URL, a bad width shows st.error, the ablation tab either says tiny-gpt
is missing (st.info) or runs — here on a tiny random GPT-2 served from a local hub mirror — and
the rotary tab measures SmolLM2's own q and k when it is fetched (else says how to fetch it)."""

from __future__ import annotations

import pytest

from tests.helpers import app_test, save_tiny_gpt2

PAGE = "pages/positional.py"
HUB = "distilgpt2"  # the picker's option (the model id) of the mirrored model
TABS = ["Sinusoidal", "Similarity", "Relative offset", "Sine-only", "Learned", "Rotary (RoPE)",
        "Ablation"]
WIDTHLESS = ("Learned", "Ablation")  # tabs whose numbers do not depend on d_model


def run(**params):
    at = app_test(PAGE)
    for k, v in params.items():
        at.query_params[k] = v
    return at.run()


def open_tab(at, label):
    return next(t for t in at.tabs if t.label == label)


def test_default_view():
    at = run()
    assert not at.exception and not at.error
    assert [t.label for t in at.tabs] == TABS
    assert at.slider(key="d").value == 64 and at.slider(key="n").value == 100
    assert len(at.latex) >= 1 and at.multiselect(key="dims").value == [0, 1, 6, 7]


@pytest.mark.parametrize("size", [("16", "40"), ("2", "2")], ids=["small", "smallest"])
@pytest.mark.parametrize("tab", TABS[1:])
def test_every_tab_renders(tab, size):
    d, n = size
    at = run(tab=tab, d=d, n=n)
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert not at.warning, [w.value for w in at.warning]
    assert open_tab(at, tab).children, f"{tab} drew nothing"
    sliders = {s.key: s.value for s in at.slider}
    if tab in WIDTHLESS:  # a width slider there would do nothing: it is not drawn
        assert "d" not in sliders and (tab == "Ablation") == ("n" not in sliders), sliders
    elif int(n) > 2 or int(d) > 2:
        assert sliders["d"] == int(d) and sliders["n"] == int(n)


def test_numbers_on_the_page():
    at = run(tab="Relative offset", d="16", n="40", k="3")
    values = {m.label: m.value for m in at.metric}
    assert float(values["Sinusoidal: max error"]) < 1e-9
    assert float(values["Sine-only: max error"]) > 0.1
    at = run(tab="Rotary (RoPE)", d="16", n="40")
    assert float(next(m.value for m in at.metric if m.label.startswith("RoPE"))) < 1e-5


def test_odd_width_from_the_url_shows_an_error_not_an_exception():
    at = run(d="7")
    assert not at.exception
    assert any("even" in e.value for e in at.error)


def test_ablation_tab_without_a_causal_model_says_so():
    from lmdemo.core.registry import specs_of_kind

    at = run(tab="Ablation")
    assert not at.exception and not at.error
    if not specs_of_kind("causal-lm"):
        assert any("tiny-gpt" in i.value for i in at.info)


def test_ablation_and_learned_tabs_on_a_mirrored_gpt2(tmp_path, monkeypatch):
    from lmdemo.core.models import clear_cache

    save_tiny_gpt2(tmp_path / "distilgpt2")
    monkeypatch.setenv("LMDEMO_HUB_MIRROR", str(tmp_path))
    clear_cache()
    try:
        # select boxes keep their shown label in the URL
        at = run(tab="Ablation", abl_model=HUB, abl_text="abcdefg",
                 abl_mode="position ids shuffled", abl_layer="1", abl_head="3")
        assert not at.exception and not at.error, [e.value for e in at.error]
        assert any(m.label.startswith("KL") for m in at.metric)
        assert at.selectbox(key="abl_mode").value == "shuffle"
        assert at.number_input(key="abl_layer").value == 1
        at = run(tab="Ablation", abl_model=HUB, abl_text="a")  # one token: no order
        assert not at.exception and any("2 tokens" in e.value for e in at.error)
        at = run(tab="Learned", model=HUB, n="30")
        assert not at.exception and not at.error, [e.value for e in at.error]
        assert any("transformer.wpe" in c.value for c in at.caption)
    finally:
        clear_cache()


def test_rotary_tab_measures_the_real_model_or_says_it_is_missing():
    from lmdemo.lab import rotary

    at = run(tab="Rotary (RoPE)", d="16", n="40", rope_layer="2", rope_head="7",
             rope_grid="24")
    assert not at.exception and not at.error, [e.value for e in at.error]
    if not rotary.real_model_ready():
        assert any("fetch smollm2" in i.value for i in at.info)
        return
    values = {m.label: m.value for m in at.metric}
    assert values["rope_theta"] == "100,000"
    assert float(values["RoPE: max change of q·k/√d, relative"]) < 1e-6
    assert float(values["Our rotation vs the model's attention: max diff"]) < 1e-3
    assert any("shares key head 2" in c.value for c in at.caption)  # 9 q heads on 3 kv heads
    at = run(tab="Rotary (RoPE)", rope_head="9")  # SmolLM2 has heads 0..8: the last is shown
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.number_input(key="rope_head").value == 8
    assert any("Query head 9 does not exist in smollm2" in i.value for i in at.info)


def test_ablation_defaults_to_smollm2_when_fetched_and_learned_tab_explains_rope():
    from lmdemo.lab import rotary

    if not rotary.real_model_ready():
        pytest.skip("smollm2 is not fetched")
    at = run(tab="Ablation")
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.selectbox(key="abl_model").value == "smollm2"
    assert at.text_area(key="abl_text").value == "The capital of France is"
    assert float(next(m.value for m in at.metric if m.label.startswith("KL")).split()[0]) > 1
    at = run(tab="Learned", model="smollm2")
    assert not at.exception and any("rotary" in e.value for e in at.error)


def test_every_input_is_restored_from_the_url():
    at = run(tab="Sinusoidal", d="16", n="40", dims=["2", "5"])
    assert not at.exception and not at.error
    assert at.multiselect(key="dims").value == [2, 5]
    assert any("dims 14, 15" in c.value for c in at.caption)  # the slowest pair at d = 16
    at = run(tab="Similarity", d="16", n="40", sim_kind="sine-only", metric="cosine")
    assert (at.radio(key="sim_kind").value, at.radio(key="metric").value) == ("sine-only",
                                                                              "cosine")
    at = run(tab="Relative offset", d="16", n="40", k="7")
    assert at.slider(key="k").value == 7 and any("M_7" in c.value for c in at.caption)
    at = run(tab="Rotary (RoPE)", d="16", n="40", pair="3", steps="10")
    assert (at.slider(key="pair").value, at.slider(key="steps").value) == (3, 10)
    assert not at.exception and not at.error


def test_a_range_of_one_value_is_text_and_big_heatmaps_are_thinned():
    at = run(tab="Relative offset", d="2", n="2")
    assert any("Offset k: 1 (the only choice" in c.value for c in at.caption)
    at = run(tab="Sinusoidal", d="1024", n="2048")
    assert not at.exception and not at.error
    title = figures(at)[0]["layout"]["title"]["text"]
    assert "2048 positions" in title and "2048×1024 values smoothed" in title, title
    assert max(array(figures(at)[0]["data"][0]["y"])) > 2000  # the axis ends near 2048, not 340


def figures(at) -> list[dict]:
    """The plotly figures of the page, as the JSON Streamlit sends."""
    import json

    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def array(values):
    """A plotly JSON array (a list, or {"bdata": base64, "dtype": ...}) as numpy."""
    import base64

    import numpy as np

    if isinstance(values, dict):
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"])
    return np.asarray(values)


def test_similarity_spread_of_rounding_noise_is_shown_as_zero():
    at = run(tab="Similarity", d="64", n="512")
    assert not at.exception and not at.error
    spread = next(m for m in at.metric if m.label.startswith("Largest spread"))
    assert spread.value == "0"
    assert "rounding" in spread.help and "e-1" in spread.help  # the raw value, in the help
    line = figures(at)[1]["data"][1]
    assert line["name"].startswith("spread") and not array(line["y"]).any()


def test_layer_and_head_beyond_the_model_are_clamped_with_a_note():
    """tiny-gpt has 4 layers of 4 heads: a link asking for layer 47, head 63 shows layer 3,
    head 3 and says why, instead of an error."""
    from lmdemo.lab import positional as pos

    if not pos.installed("tiny-gpt"):
        pytest.skip("tiny-gpt is not installed")
    at = run(tab="Ablation", abl_model="tiny-gpt", abl_layer="47", abl_head="63")
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.number_input(key="abl_layer").value == 3
    assert at.number_input(key="abl_head").value == 3
    notes = [i.value for i in at.info]
    assert any("Layer 47 does not exist in tiny-gpt" in n for n in notes), notes
    assert any("Head 63" in n and "0 to 3" in n for n in notes), notes
    assert at.number_input(key="abl_layer").max == 3  # the box itself is bounded
    titles = [f["layout"].get("title", {}).get("text", "") for f in figures(at)]
    assert "Attention, layer 3 head 3" in titles, titles


def test_the_page_holds_no_words():
    """Every sentence, label and formula comes from pages/text/en/positional.md."""
    import ast

    from tests.helpers import ROOT

    tree = ast.parse((ROOT / PAGE).read_text(encoding="utf-8"))
    docstrings = {id(n.body[0].value) for n in ast.walk(tree) if isinstance(
        n, ast.Module | ast.FunctionDef) and ast.get_docstring(n)}
    prose = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)
             and isinstance(n.value, str) and " " in n.value and id(n) not in docstrings]
    assert not prose, prose
