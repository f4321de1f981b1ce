"""The Next word page in AppTest: it runs on a zoo of tiny random models (and says so with st.info
when the embedded weights are missing), stepping buttons change the text, undo restores it, and
bad inputs show a message, never an exception."""

from __future__ import annotations

import pytest

from tests.helpers import app_test, save_tiny_gpt2

PAGE = "pages/next_word.py"


def build_zoo(root):
    """tiny-gpt, tiny-lstm, tiny-gru and tiny-rnn as tiny random models sharing one tokenizer."""
    import torch
    from transformers import AutoTokenizer

    from lmdemo.core.recurrent import RecurrentConfig, RecurrentLM

    gpt = save_tiny_gpt2(root / "tiny-gpt", n_positions=32)
    tok = AutoTokenizer.from_pretrained(root / "tiny-gpt")
    for i, arch in enumerate(("lstm", "gru", "rnn")):
        torch.manual_seed(i)
        model = RecurrentLM(RecurrentConfig(arch=arch, vocab_size=gpt.config.vocab_size, n_embd=16,
                                            n_hidden=24, max_len=64))
        model.save(root / f"tiny-{arch}")
        tok.save_pretrained(root / f"tiny-{arch}")
    return root


@pytest.fixture(scope="session")
def zoo_dir(tmp_path_factory):
    return build_zoo(tmp_path_factory.mktemp("zoo"))


@pytest.fixture
def zoo(zoo_dir, monkeypatch):
    """Point the registry's embedded language models at the tiny zoo (and hide a fetched smollm2,
    so tiny-gpt is the default)."""
    monkeypatch.setattr("lmdemo.core.registry.LM_DIR", zoo_dir)
    monkeypatch.setenv("LMDEMO_ASSETS_DIR", str(zoo_dir / "no-assets"))
    return zoo_dir


def run(query: dict | None = None, timeout: float = 120):
    at = app_test(PAGE, timeout)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    return at.run()


def texts(at) -> str:
    return " ".join(str(getattr(e, "body", "")) for e in at.get("html"))


def test_missing_weights_show_info_not_error(tmp_path, monkeypatch):
    monkeypatch.setattr("lmdemo.core.registry.LM_DIR", tmp_path)
    monkeypatch.setenv("LMDEMO_ASSETS_DIR", str(tmp_path / "no-assets"))
    at = run()
    assert not at.exception and not at.error
    assert any("not installed" in i.value for i in at.info)


def test_without_smollm2_the_page_says_it_uses_tiny_gpt(zoo):
    at = run()
    assert not at.exception and not at.error
    assert at.selectbox(key="model").value == "tiny-gpt"
    assert any("smollm2 has not been fetched" in c.value for c in at.caption)


def test_smollm2_is_the_default_and_predicts_paris():
    from tests.unit.test_smollm2 import require_smollm2

    require_smollm2()
    at = run({"text": "The capital of France is"}, timeout=300)
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert at.selectbox(key="model").value == "smollm2"
    assert "Paris" in at.button(key="tok_0").label


def test_page_runs_and_shows_the_distribution(zoo):
    at = run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert at.title[0].value == "Next word"
    assert at.slider(key="temp").value == 1.0
    assert [m.label for m in at.metric][:2] == ["Entropy, raw", "Entropy, reshaped"]
    assert at.button(key="greedy") and at.button(key="tok_0")
    assert len(at.get("plotly_chart")) >= 1


def test_force_greedy_undo(zoo):
    at = run()
    label = at.button(key="tok_3").label
    at.button(key="tok_3").click().run()
    assert not at.exception
    assert "(forced)" in texts(at) or "forced" in texts(at)
    assert at.query_params["steps"]
    at.button(key="greedy").click().run()
    steps = at.query_params["steps"]
    steps = steps[0] if isinstance(steps, list) else steps
    assert len(steps.split(",")) == 2
    at.button(key="undo").click().run()
    steps = at.query_params["steps"]
    steps = steps[0] if isinstance(steps, list) else steps
    assert len(steps.split(",")) == 1 and not at.exception
    assert label.split("·")[0].strip()


def test_empty_prompt_shows_the_first_token_distribution(zoo):
    at = run({"text": ""})
    assert not at.exception and not at.error
    assert any("prompt is empty" in i.value for i in at.info)


def test_long_prompt_keeps_the_end(zoo):
    at = run({"text": "word " * 60})
    assert not at.exception and not at.error
    assert any("only the last 32" in i.value for i in at.info)


@pytest.mark.parametrize("query", [{"temp": "0"}, {"temp": "nan"}, {"topp": "0"},
                                   {"topk": "-3"}, {"temp": "-1"}, {"seed": "abc"}])
def test_bad_sampling_values_never_raise(zoo, query):
    at = run(query)
    assert not at.exception, [e.value for e in at.exception]
    assert not at.warning, [w.value for w in at.warning]  # no "could not be shown" fallbacks


def test_temperature_zero_is_greedy(zoo):
    at = run({"temp": "0"})
    assert at.slider(key="temp").value == 0.0
    assert not at.exception and not at.error
    shaped = next(m for m in at.metric if m.label == "Entropy, reshaped")
    assert shaped.value == "0.00 bits"  # all the mass on one token
    kept = next(m for m in at.metric if m.label == "Tokens that can still be drawn")
    assert kept.value.startswith("1 of")


def test_token_buttons_show_the_reshaped_probability(zoo):
    """At T=0 every token but the greedy one has probability 0: the buttons say so, not the raw
    probabilities the model gave before reshaping."""
    at = run({"temp": "0"})
    assert not at.exception and not at.error
    labels = [b.label for b in at.button if (b.key or "").startswith("tok_")]
    assert labels and labels[0].endswith("100.0%"), labels
    assert all(label.endswith(" 0.0%") for label in labels[1:]), labels


@pytest.mark.parametrize("tab", ["Surprisal", "Tokens", "Side by side", "Sentence scoring"])
def test_every_tab_runs(zoo, tab):
    at = run({"tab": tab})
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert not at.warning, [w.value for w in at.warning]
    if tab in ("Side by side", "Sentence scoring"):
        assert at.get("plotly_chart"), f"{tab} draws a chart"
    if tab == "Surprisal":
        assert at.metric[0].label == "Perplexity"


def test_empty_text_in_surprisal_is_a_message(zoo):
    at = run({"tab": "Surprisal", "text": ""})
    assert not at.exception and not at.error
    assert any("Type a text" in i.value for i in at.info)


def test_one_candidate_sentence_asks_for_more(zoo):
    at = run({"tab": "Sentence scoring"})
    at.text_area(key="sentences").set_value("Only one sentence.").run()
    assert not at.exception and not at.error
    assert any("at least two" in i.value for i in at.info)


def _steps(at) -> list[int]:
    raw = at.query_params["steps"]
    raw = raw[0] if isinstance(raw, list) else raw
    return [int(x) for x in raw.split(",")]


def test_a_link_replays_the_generated_tokens(zoo):
    at = run({"text": "the cat"})
    at.button(key="tok_2").click().run()
    at.button(key="greedy").click().run()
    at.button(key="sample10").click().run()
    steps = _steps(at)
    assert len(steps) == 12
    import re

    def words(page) -> str:  # the generated text as read (a link keeps tokens, not how chosen)
        return re.sub(r"<[^>]+>", "", texts(page).split("<div style='font-size")[0])

    again = run({"text": "the cat", "steps": ",".join(map(str, steps))})  # a fresh session
    assert not again.exception and _steps(again) == steps
    assert words(again) == words(at) and len(words(at)) > len("the cat")


def test_session_state_holds_ids_not_models_or_arrays(zoo):
    import numpy as np

    at = run({"text": "the cat"})
    for _ in range(3):
        at.button(key="greedy").click().run()

    def small(value, depth=0) -> bool:
        if isinstance(value, np.ndarray) or hasattr(value, "state_dict") or depth > 4:
            return False
        if isinstance(value, (list, tuple, set)):
            return all(small(v, depth + 1) for v in value)
        if isinstance(value, dict):
            return all(small(v, depth + 1) for v in value.values())
        return not hasattr(value, "__dict__") or all(small(v, depth + 1)
                                                     for v in vars(value).values())

    held = at.session_state.to_dict()
    assert "_steps" in held and len(held["_steps"][1]) == 3
    bad = [k for k, v in held.items() if not small(v)]
    assert not bad, bad
    assert small((1, [2, 3])) and not small({"x": np.zeros(3)})  # the check itself can fail


def test_the_prompt_box_takes_as_much_as_the_services_do(zoo):
    from lmdemo.core.config import settings

    at = run()
    assert at.text_area(key="text").max_chars == settings().max_text_chars  # no silent 5,000 cut


# ----------------------------------------------------------------------------- predict, then reveal

def _plain(tok: str) -> bool:
    """A token the guess box reads as itself: no letters (no case forms), no spaces."""
    return tok.strip() == tok and tok.lower() == tok.upper() and tok.isprintable() and tok != ""


def _expected(model: str, text: str) -> tuple[list, int]:
    """The next-token distribution computed here, independently of the page: the top 50 tokens
    (raw probability, most likely first) and the vocabulary size."""
    from lmdemo.lab.next_token import LIMITS, next_token

    res = next_token(model, text, show=LIMITS.max_show)
    return res.entries, res.vocab_size


def _markdown(at) -> str:
    return "\n".join(m.value for m in at.markdown)


def _link(at) -> dict:
    """The page's link: its query (?reveal= is set by the page) and the guesses box, which the
    browser writes into the URL (AppTest has no browser to do it)."""
    query = {k: (v[0] if isinstance(v, list) else v) for k, v in at.query_params.items()}
    return {**query, "guesses": at.text_input(key="guesses").value}


def _reveal_round(zoo_text: str = "the cat"):
    """A session on tiny-gpt with the answer hidden and three guesses typed: the most likely
    plain token, a plain token on the chart's second half, and one far below the chart."""
    entries, vocab = _expected("tiny-gpt", zoo_text)
    plain = [(rank, e) for rank, e in enumerate(entries, start=1) if _plain(e.token)]
    on_chart = [p for p in plain if p[0] <= 12]
    off_chart = [p for p in plain if p[0] > 12]
    assert len(on_chart) >= 2 and off_chart, "the random zoo model has plain tokens to guess"
    picked = [on_chart[0], on_chart[-1], off_chart[-1]]
    at = run({"text": zoo_text, "quiz": "true"})
    at.text_input(key="guesses").set_value(", ".join(e.token for _, e in picked)).run()
    return at, picked, vocab


def test_hidden_answer_shows_no_chart_and_no_token_buttons(zoo):
    at = run({"quiz": "true"})
    assert not at.exception, [e.value for e in at.exception]
    assert at.toggle(key="quiz").value is True
    assert not at.get("plotly_chart"), "the distribution is hidden"
    assert not [b for b in at.button if (b.key or "").startswith("tok_")]
    assert not at.metric  # the entropy would hint at the answer
    assert at.button(key="reveal_show").label == "Reveal"
    assert any("answer is hidden" in i.value for i in at.info)


def test_reveal_marks_each_guess_with_its_rank_and_probability(zoo):
    at, picked, vocab = _reveal_round()
    assert not at.exception and not at.get("plotly_chart")  # typed, still hidden
    preview = _markdown(at)
    assert all(f"`{e.token}`" in preview for _, e in picked)  # each guess's token, no numbers
    assert "rank" not in preview
    at.button(key="reveal_show").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.query_params["reveal"]
    text = _markdown(at)
    for rank, e in picked:
        line = next(x for x in text.splitlines() if f"`{e.token}`" in x and "rank" in x)
        assert f"rank {rank:,} of {vocab:,}" in line, line
        assert f"p = {e.prob:.2%}" in line, line
        assert ("not in the top 12" in line) == (rank > 12), line
        assert ("first choice" in line) == (rank == 1), line
    fig = at.get("plotly_chart")[0].proto.spec
    import json

    notes = [a["text"] for a in json.loads(fig)["layout"]["annotations"]]
    on_chart = [(rank, e) for rank, e in picked if rank <= 12]
    assert sorted(n for n in notes if ": #" in n) == sorted(
        f"{e.token}: #{rank}" for rank, e in on_chart), notes
    far_rank, far = picked[-1]
    assert any("not in the top 12" in n and f"{far.token} (#{far_rank:,}" in n for n in notes)
    assert at.button(key="tok_0")  # the token buttons are back
    assert at.button(key="reveal_hide").label == "Hide again"


def test_a_saved_link_replays_the_revealed_round(zoo):
    at, picked, _ = _reveal_round()
    at.button(key="reveal_show").click().run()
    query = _link(at)
    assert {"quiz", "guesses", "reveal"} <= set(query), query
    again = run(query)  # a fresh session from the link
    assert not again.exception
    assert again.text_input(key="guesses").value == at.text_input(key="guesses").value
    assert again.get("plotly_chart") and again.button(key="reveal_hide")
    assert _markdown(again) == _markdown(at)


def test_a_step_starts_a_new_round(zoo):
    at, _, _ = _reveal_round()
    at.button(key="reveal_show").click().run()
    at.button(key="greedy").click().run()
    assert not at.exception
    assert at.text_input(key="guesses").value == ""  # last round's guesses cleared
    assert not at.get("plotly_chart") and at.button(key="reveal_show")  # hidden again
    at.button(key="reveal_show").click().run()
    at.button(key="reveal_hide").click().run()
    assert not at.get("plotly_chart") and "reveal" not in at.query_params


def test_reveal_reads_in_chinese_and_in_presenter_mode(zoo):
    at, picked, vocab = _reveal_round()
    at.button(key="reveal_show").click().run()
    query = _link(at)
    zh = run({**query, "lang": "zh", "present": "true"})
    assert not zh.exception and not zh.error, [e.value for e in (*zh.exception, *zh.error)]
    assert zh.toggle(key="quiz").label == "隐藏答案：先让观众猜"
    rank, e = picked[0]
    assert f"在 {vocab:,} 个词元中排第 {rank}" in _markdown(zh)
    import json

    layout = json.loads(zh.get("plotly_chart")[0].proto.spec)["layout"]
    assert layout["yaxis"]["title"]["text"] == "概率"
    assert any(f"{e.token}：第 {rank} 名" == a["text"] for a in layout["annotations"])


def test_token_buttons_say_the_raw_probability_on_hover(zoo):
    at = run({"temp": "0"})
    entries, _ = _expected("tiny-gpt", at.text_area(key="text").value)
    second = at.button(key="tok_1")
    assert second.label.endswith(" 0.0%")
    assert f"raw probability was {entries[1].prob:.1%}" in second.help


def test_smollm2_guesses_paris():
    from tests.unit.test_smollm2 import require_smollm2

    require_smollm2()
    at = run({"text": "The capital of France is", "quiz": "true"}, timeout=300)
    at.text_input(key="guesses").set_value("paris, London, banana").run()
    at.button(key="reveal_show").click().run()
    assert not at.exception and not at.error
    lines = [x for x in _markdown(at).splitlines() if "rank" in x]
    assert "`␣Paris`" in lines[0] and "rank 1 of" in lines[0] and "first choice" in lines[0]
    assert "`␣London`" in lines[1] and "`␣banana`" in lines[2]
