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
