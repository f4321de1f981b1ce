"""The RNN vs Transformer page in AppTest: every tab runs on a zoo of tiny random recurrent models,
the hand-computed step matches the model, missing weights and empty text give a message."""

from __future__ import annotations

import pytest

from tests.app.test_next_word import zoo, zoo_dir  # noqa: F401  (fixtures)
from tests.helpers import app_test

PAGE = "pages/rnn_vs_transformer.py"


def run(query: dict | None = None, timeout: float = 180):
    at = app_test(PAGE, timeout)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    return at.run()


def test_missing_weights_show_info_not_error(tmp_path, monkeypatch):
    monkeypatch.setattr("lmdemo.core.registry.LM_DIR", tmp_path)
    at = run()
    assert not at.exception and not at.error
    assert any("not installed" in i.value for i in at.info)


def test_recurrence_tab_reproduces_the_hidden_state(zoo):  # noqa: F811
    at = run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error and not at.warning, [w.value for w in at.warning]
    assert at.title[0].value == "RNN vs Transformer"
    assert any("reproduces the model's hidden state" in s.value for s in at.success)
    step = at.select_slider(key="step")
    step.set_value(2).run()
    assert not at.exception and at.success, [x.value for x in at.warning] + [x.value for x in at.info]


@pytest.mark.parametrize("tab", ["Vanishing gradients", "Path length", "Sequential vs parallel"])
def test_every_tab_runs(zoo, tab):  # noqa: F811
    at = run({"tab": tab})
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error and not at.warning, [w.value for w in at.warning]
    assert at.get("plotly_chart")


def test_bad_step_in_the_url_is_clamped(zoo):  # noqa: F811
    at = run({"step": "999"})
    assert not at.exception and not at.error
    slider = at.select_slider(key="step")
    assert int(str(slider.value).split(":")[0]) == len(slider.options) - 1  # 999 -> the last step


def test_empty_text_is_a_message(zoo):  # noqa: F811
    at = run({"text": ""})
    assert not at.exception and not at.error
    assert any("Type a few words" in i.value for i in at.info)


def test_the_page_loads_no_model_and_holds_no_prose():
    import ast

    from tests.helpers import ROOT

    source = (ROOT / PAGE).read_text(encoding="utf-8")
    names = [n.module for n in ast.walk(ast.parse(source)) if isinstance(n, ast.ImportFrom)]
    names += [a.name for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Import)
              for a in n.names]
    assert not any(m.startswith(("torch", "lmdemo.core")) for m in names), names
    assert "tokenizer" not in source and len(source.splitlines()) <= 150


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_speedup_metric_labels_fit_a_narrow_column(lang):
    """Five metrics share a row: a label longer than a dozen characters is cut off ("loop ÷
    attent…"); the ratio's meaning lives in the help text instead."""
    from pages import ui

    sections = ui._sections(lang, "rnn_vs_transformer")
    label = sections["metric-speedup"].replace("{{n}}", "1024")
    assert len(label) <= 12, label
    assert "÷" in sections["help-speedup"]
