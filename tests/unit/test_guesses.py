"""Guesses against the model's answer: typed words split and matched to one token (the leading-space
form included, the most probable single-token form winning), ranks over the whole vocabulary in
the chart's order (ties by id), probabilities raw and reshaped, attention keys scored, and a
round's name that changes with the question."""

from __future__ import annotations

import numpy as np
import pytest

from lmdemo.lab import guesses as g
from lmdemo.lab.next_token import top_ids


class FakeTokenizer:
    """Whole words of VOCAB are one token; anything else is one token per character."""

    VOCAB = {" Paris": 0, "Paris": 1, " paris": 2, " the": 3, " Lyon": 4, "x": 5, " ": 6, "y": 7,
             "e": 8, " e": 9, "l": 10}

    def __call__(self, text, add_special_tokens=False):
        if text in self.VOCAB:
            return {"input_ids": [self.VOCAB[text]]}
        ids = [self.VOCAB.get(c, 99) for c in text]
        return {"input_ids": ids}

    def decode(self, ids, clean_up_tokenization_spaces=False):
        names = {v: k for k, v in self.VOCAB.items()}
        return "".join(names.get(i, "?") for i in ids)


def test_split_guesses():
    assert g.split_guesses(" Paris, Lyon;the\nParis ,， 巴黎、 ") == ["Paris", "Lyon", "the", "巴黎"]
    assert g.split_guesses("") == [] and g.split_guesses(None) == []
    assert g.split_guesses(",".join(f"w{i}" for i in range(40))) == [f"w{i}" for i in range(12)]
    assert g.split_guesses("a" * 100) == ["a" * g.MAX_GUESS_CHARS]


def test_forms_put_the_leading_space_first():
    assert g.forms("paris") == [" paris", " Paris", "paris", "Paris"]
    assert g.forms("Paris") == [" Paris", " paris", "Paris", "paris"]
    assert g.forms("␣Paris") == [" Paris", " paris"]  # a typed leading space is kept as asked
    assert g.forms("   ") == []


def test_rank_of_follows_the_chart_order_ties_by_id():
    probs = np.array([0.1, 0.3, 0.1, 0.4, 0.1])
    order = list(top_ids(probs, len(probs)))
    assert [g.rank_of(probs, i) for i in order] == [1, 2, 3, 4, 5]
    assert g.rank_of(probs, 3) == 1 and g.rank_of(probs, 4) == 5


def test_a_guess_is_matched_to_its_most_probable_single_token_form():
    tok = FakeTokenizer()
    raw = np.full(11, 0.01)
    raw[[0, 1, 2]] = [0.5, 0.05, 0.2]  # " Paris" most likely
    assert g.match(tok, "paris", raw) == (0, 1)  # " Paris" beats " paris" and "Paris"
    raw[2] = 0.6
    assert g.match(tok, "Paris", raw) == (2, 1)  # now " paris" is the most probable form
    assert g.match(tok, "xy", raw) == (6, 3)  # no single-token form: " xy" -> first token " ", 3
    assert g.match(tok, "", raw) is None


def test_score_tokens_gives_rank_and_probabilities():
    tok = FakeTokenizer()
    logits = np.linspace(0, 1, 11)[::-1].copy()  # id 0 most likely, then 1, 2...
    raw = np.exp(logits) / np.exp(logits).sum()
    shaped = np.zeros(11)
    shaped[0] = 1.0  # greedy
    out = g.score_tokens(tok, ["Paris", "the", "Lyon", "zz", "xy"], raw, shaped)
    assert [(s.guess, s.token_id, s.token, s.pieces, s.rank) for s in out] == [
        ("Paris", 0, " Paris", 1, 1), ("the", 3, " the", 1, 4), ("Lyon", 4, " Lyon", 1, 5),
        ("xy", 6, " ", 3, 7)]  # "zz" has no token of this vocabulary: left out
    assert out[1].p_raw == pytest.approx(raw[3]) and out[1].p_shaped == 0.0
    assert out[0].p_shaped == 1.0
    assert out[0].shown(1) and not out[1].shown(3) and out[1].shown(4)
    rows = g.token_rows(out, top=4)
    assert [r["on_chart"] for r in rows] == [True, True, False, False]
    assert rows[2] == {"guess": "Lyon", "token": " Lyon", "id": 4, "tokens_in_word": 1, "rank": 5,
                       "raw_probability": pytest.approx(raw[4]), "reshaped_probability": 0.0,
                       "on_chart": False}


def test_with_the_real_tiny_gpt_tokenizer():
    from transformers import AutoTokenizer

    from lmdemo.core.registry import get_spec

    tok = AutoTokenizer.from_pretrained(get_spec("tiny-gpt").location)
    paris = tok(" Paris", add_special_tokens=False)["input_ids"]
    assert len(paris) == 1
    raw = np.full(len(tok), 1.0 / len(tok))
    raw[paris[0]] += 0.5
    raw /= raw.sum()
    (guess,) = g.score_tokens(tok, ["paris"], raw, raw)
    assert guess.token_id == paris[0] and guess.token == " Paris" and guess.rank == 1
    (long,) = g.score_tokens(tok, ["elephant"], raw, raw)  # " elephant" is two tokens
    assert long.pieces == 2 and long.token_id == tok(" elephant")["input_ids"][0]


def test_attention_keys():
    row = np.array([0.5, 0.1, 0.3, 0.1])
    tokens = ["<s>", "the", "cat", "it"]
    assert g.top_key(row) == 0
    out = g.score_keys(row, tokens, [2, 2, 9, 3, 1])
    assert [(k.key, k.token, k.rank) for k in out] == [(2, "cat", 2), (3, "it", 4), (1, "the", 3)]
    assert out[0].weight == pytest.approx(0.3)
    assert g.guessable_keys(4, 1, causal=True) == [0, 1]
    assert g.guessable_keys(4, 1, causal=False) == [0, 1, 2, 3]


def test_round_id_names_the_question():
    a = g.round_id("tiny-gpt", (1, 2, 3))
    assert a == g.round_id("tiny-gpt", (1, 2, 3)) and len(a) == 10
    assert a != g.round_id("tiny-gpt", (1, 2, 3, 4))
