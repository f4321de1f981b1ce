"""Every page in the catalog runs in Streamlit's AppTest without an exception, in normal and in
presenter mode, and the navigation lists every page."""

from __future__ import annotations

import pytest

from pages.catalog import PAGES
from tests.helpers import app_test


@pytest.mark.parametrize("info", PAGES, ids=[p.url_path for p in PAGES])
def test_page_runs_without_exception(info):
    at = app_test(info.file).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title, "every page has a title"
    assert not at.error, [e.value for e in at.error]  # the default view shows no error box


def test_app_navigation_runs():
    at = app_test("app.py").run()
    assert not at.exception
    assert at.title[0].value.startswith("lmdemo")


def test_presenter_mode_toggle_is_bound_to_the_url():
    at = app_test("pages/home.py")
    at.query_params["present"] = "true"
    at.run()
    assert not at.exception
    assert at.toggle(key="present").value is True


@pytest.mark.parametrize("info", PAGES, ids=[p.url_path for p in PAGES])
def test_page_runs_in_chinese(info):
    """?lang=zh: the page reads pages/text/zh/, keeps the language in the URL, shows no error."""
    at = app_test(info.file)
    at.query_params["lang"] = "zh"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert any("\u4e00" <= c <= "\u9fff" for c in at.title[0].value), at.title[0].value
    assert at.selectbox(key="lang_pick").value == "zh"


def test_the_language_switch_changes_the_page_and_the_url():
    at = app_test("pages/home.py").run()
    assert at.title[0].value.startswith("lmdemo —")
    at.selectbox(key="lang_pick").set_value("zh").run()
    assert not at.exception
    assert at.query_params.get("lang") in ("zh", ["zh"])
    assert "看懂" in at.title[0].value
    at.selectbox(key="lang_pick").set_value("en").run()
    assert "lang" not in at.query_params and "see how" in at.title[0].value


def test_presenter_figures_grow_their_notes_but_never_shrink_them():
    import plotly.graph_objects as go

    from pages import ui

    fig = go.Figure(go.Bar(x=[1], y=[1]))
    fig.add_annotation(text="Paris: #1", x=1, y=1)
    fig.add_annotation(text="big", x=1, y=1, font={"size": 30})
    shown = ui.presenter_figure(fig)
    assert [a.font.size for a in shown.layout.annotations] == [ui.PRESENTER_FIG["legend"], 30]
    assert fig.layout.annotations[0].font.size is None  # the page's own figure is untouched
    assert shown.layout.xaxis.tickfont.size == ui.PRESENTER_FIG["tick"] >= 20
