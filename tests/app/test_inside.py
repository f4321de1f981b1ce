"""The Inside-the-model page in AppTest: every tab draws on tiny-gpt (and on smollm2 when fetched),
the numbers on the page are the services' own, clicks and URLs fill the inputs, and bad input is a
message, never an exception."""

from __future__ import annotations

import math

import pytest

from tests.helpers import app_test

PAGE = "pages/inside.py"
TABS = ["Logit lens", "Head ablation", "Patching", "Induction heads"]


def run(query: dict, timeout: float = 300):
    at = app_test(PAGE, timeout)
    for k, v in query.items():
        at.query_params[k] = v
    return at.run()


def clean(at) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert not at.warning, [w.value for w in at.warning]


@pytest.mark.parametrize("tab", TABS)
def test_every_tab_draws_on_tiny_gpt(tab):
    query = {"tab": tab, "model": "tiny-gpt", "text": "The opposite of hot is", "pin": " cold",
             "target": " cold", "length": "12", "preset": "4"}
    at = run(query)
    clean(at)
    assert at.get("plotly_chart")


def test_lens_metrics_are_the_services_numbers():
    from lmdemo.lab.lens import lens

    at = run({"tab": "Logit lens", "model": "tiny-gpt", "text": "The cat sat on the",
              "pin": " mat"})
    clean(at)
    res = lens("tiny-gpt", "The cat sat on the", " mat")
    shown = next(m for m in at.metric if m.label == "Its probability at the output").value
    assert shown == f"{res.pinned_curve()[-1]:.1%}"


def test_head_ablation_metrics_match_the_service():
    from lmdemo.lab.head_ablation import head_ablation

    at = run({"tab": "Head ablation", "model": "tiny-gpt", "text": "The opposite of hot is",
              "target": " cold", "heads": "L1H2, L0H0"})
    clean(at)
    res = head_ablation("tiny-gpt", "The opposite of hot is", "L1H2, L0H0", "zero", 10, " cold")
    after = next(m for m in at.metric if m.label == "p(target), heads ablated").value
    assert after == f"{math.exp(res.target_logprob_after):.1%}"
    assert at.multiselect(key="heads").value == ["L1H2", "L0H0"]  # an old link's text is read
    at = run({"tab": "Head ablation", "model": "tiny-gpt", "text": "The opposite of hot is",
              "target": " cold", "heads": ["L1H2", "L0H0"]})  # as the picker keeps it in the URL
    clean(at)
    assert next(m for m in at.metric if m.label == "p(target), heads ablated").value == after


def test_heads_beyond_the_model_are_left_out_with_a_note():
    """tiny-gpt has 4 layers of 4 heads: the picker offers only those, and a link asking for
    layer 47 / head 63 ablates the heads that exist and says which it left out."""
    from lmdemo.lab.head_ablation import head_ablation

    at = run({"tab": "Head ablation", "model": "tiny-gpt", "text": "The opposite of hot is",
              "target": " cold", "heads": "L47H63, L1H2, L0H9"})
    clean(at)
    picker = at.multiselect(key="heads")
    assert picker.value == ["L1H2"] and len(picker.options) == 16
    assert picker.options[-1] == "L3H3"
    assert any("L47H63, L0H9" in i.value and "layers are 0–3 and heads 0–3" in i.value
               for i in at.info), [i.value for i in at.info]
    res = head_ablation("tiny-gpt", "The opposite of hot is", "L1H2", "zero", 10, " cold")
    after = next(m for m in at.metric if m.label == "p(target), heads ablated").value
    assert after == f"{math.exp(res.target_logprob_after):.1%}"


@pytest.mark.parametrize("query, needle", [
    ({"tab": "Logit lens", "pin": " cold front"}, "exactly one token"),
    ({"tab": "Head ablation", "target": " cold front"}, "pick a single token"),
])
def test_bad_input_is_a_message(query, needle):
    at = run({"model": "tiny-gpt", "text": "The opposite of hot is", **query})
    assert not at.exception, [e.value for e in at.exception]
    assert any(needle in e.value for e in at.error), [e.value for e in at.error]


def test_a_length_beyond_the_slider_in_the_url_falls_back_to_the_default():
    from lmdemo.lab.induction import LIMITS

    at = run({"tab": "Induction heads", "model": "tiny-gpt", "length": "5000"})
    clean(at)
    assert at.slider(key="length").value == LIMITS.default_length  # not 5000, not an error


def test_patching_refuses_unequal_lengths_and_recurrent_models():
    at = run({"tab": "Patching", "model": "tiny-gpt"})
    at.text_input(key="corrupt").set_value("A much longer corrupted prompt than the clean one is")
    at.run()
    assert not at.exception and any("tokens" in e.value for e in at.error)
    at = run({"tab": "Patching", "model": "tiny-lstm"})
    assert not at.exception and any("recurrent" in e.value for e in at.error)


def test_smollm2_lens_puts_paris_on_top_at_the_end():
    from tests.unit.test_smollm2 import require_smollm2

    require_smollm2()
    at = run({"tab": "Logit lens", "text": "The capital of France is", "pin": " Paris"})
    clean(at)
    assert at.selectbox(key="model").value == "smollm2"
    assert next(m for m in at.metric if m.label.startswith("First depth")).value == "layer 30"
