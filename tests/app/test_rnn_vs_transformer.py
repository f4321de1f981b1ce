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


def test_timing_says_what_is_true_on_this_device_and_counts_the_steps(zoo):  # noqa: F811
    """The verdict follows the measured times (on a 2-core CPU attention can be slower: the page
    must say so and why, not claim the opposite), and the counted steps — T for the RNN, 1 for
    attention — are drawn whatever the device."""
    import base64
    import json

    import numpy as np

    at = run({"tab": "Sequential vs parallel"})
    assert not at.exception and not at.error, [e.value for e in at.error]
    ratios = {m.label.split()[0]: float(m.value.rstrip("×")) for m in at.metric}
    slower = [n for n, r in ratios.items() if r < 1]
    text = " ".join(m.value for m in at.markdown)
    if slower:
        assert "took longer than the RNN loop at" in text and ", ".join(slower) in text
        assert "multiply-adds" in text
    else:
        assert "faster than the RNN loop at every length" in text
    assert "Counted, not timed" in text
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    timed, counted = specs[0], specs[1]
    assert timed["layout"]["title"]["text"].startswith("Measured on ")

    def values(v):
        return (np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"])
                if isinstance(v, dict) else np.asarray(v))

    lengths = [int(x) for x in counted["data"][0]["x"]]
    assert lengths == [int(n) for n in ratios]
    assert values(counted["data"][0]["y"]).tolist() == lengths  # RNN: T dependent steps
    assert values(counted["data"][1]["y"]).tolist() == [1] * len(lengths)  # attention: 1


def test_long_formulas_are_written_on_several_lines():
    """A one-line formula wider than the column is clipped at 1400 px: the long ones break."""
    from pages import ui

    for lang in ("en", "zh"):
        sections = ui._sections(lang, "rnn_vs_transformer")
        for key in ("formula-path", "formula-timing"):
            assert "\\begin{gathered}" in sections[key] and "\\\\" in sections[key], (lang, key)
