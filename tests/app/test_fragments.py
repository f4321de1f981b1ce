"""`ui.lazy_tabs` in AppTest: only the open tab's panel runs, and it runs as a fragment (so a click
inside it reruns that panel alone in a real browser: tests/browser/test_fragments.py); the panel
draws chart words in the reader's language even where nothing set it in that run (a fragment rerun
may run in a fresh thread), and a failing panel shows a warning while the rest of the page goes on.
"""

from __future__ import annotations

import pytest


def tabs_app():
    """A page of three tabs whose panels note where they ran: (tab, inside a fragment, language
    of chart words)."""
    import streamlit as st
    from streamlit.runtime.scriptrunner_utils.script_run_context import ThreadState

    from lmdemo.plots import common
    from pages import ui

    common.set_language("en")  # the page's own run says English; the panel must follow ?lang=

    def panel(name):
        def run():
            st.session_state.setdefault("ran", []).append(
                (name, ThreadState.get().fragment_id is not None, common.language()))
            if name == "Broken":
                raise RuntimeError("boom")
            st.markdown(f"panel {name}")
        return run

    ui.lazy_tabs({name: panel(name) for name in ("First", "Second", "Broken")})
    st.markdown("after the tabs")


def run(query: dict | None = None):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(tabs_app, default_timeout=60)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    return at.run()


def shown(at) -> list[str]:
    return [m.value for m in at.markdown]


def test_only_the_open_tab_runs_and_it_runs_as_a_fragment():
    at = run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["ran"] == [("First", True, "en")]
    assert "panel First" in shown(at) and "panel Second" not in shown(at)
    assert "after the tabs" in shown(at)


@pytest.mark.parametrize("tab", ["Second", "First"])
def test_the_tab_in_the_url_is_the_one_that_runs(tab):
    at = run({"tab": tab})
    assert [r[0] for r in at.session_state["ran"]] == [tab]
    assert f"panel {tab}" in shown(at)


def test_a_panel_draws_chart_words_in_the_readers_language():
    at = run({"lang": "zh", "tab": "Second"})
    assert at.session_state["ran"] == [("Second", True, "zh")]


def test_a_failing_panel_is_a_warning_and_the_page_goes_on():
    at = run({"tab": "Broken"})
    assert not at.exception, [e.value for e in at.exception]
    assert any("boom" in w.value for w in at.warning), [w.value for w in at.warning]
    assert "after the tabs" in shown(at)


def test_cached_results_are_keyed_by_model_weights_and_inputs(monkeypatch):
    """`ui.cached` remembers a service's result per (service, model, weights, arguments): other
    arguments or other weights of the same model id compute again; the same ones do not."""
    from pages import ui

    calls = []
    where = {"m": "/weights/one"}

    def service(model_id, text):
        calls.append((model_id, where["m"], text))
        return f"{model_id}:{where['m']}:{text}"

    service.__module__, service.__qualname__ = __name__, "probe_service"
    monkeypatch.setattr(f"{__name__}.probe_service", service, raising=False)
    monkeypatch.setattr(ui, "weights_of", lambda model_id: where["m"])
    ui._cached.clear()
    assert ui.cached(service, "m1", "a") == "m1:/weights/one:a"
    assert ui.cached(service, "m1", "a") == "m1:/weights/one:a"
    assert len(calls) == 1
    ui.cached(service, "m1", "b")
    ui.cached(service, "m2", "a")
    assert len(calls) == 3
    where["m"] = "/weights/two"  # a retrained run or a fetched model: new weights, same id
    assert ui.cached(service, "m1", "a") == "m1:/weights/two:a"
    assert len(calls) == 4
    ui._cached.clear()
