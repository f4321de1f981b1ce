"""lmdemo.core.validate: every check returns the value in its type or a UserError whose message says
what is allowed; the words other layers rely on ("must be a number", "finite") stay."""

from __future__ import annotations

import pytest

from lmdemo.core import validate
from lmdemo.core.errors import UserError


def message(fn, *args, **kwargs) -> str:
    with pytest.raises(UserError) as info:
        fn(*args, **kwargs)
    return str(info.value)


@pytest.mark.parametrize(("value", "expected"), [(3, 3), (3.0, 3), ("3", 3), (" 7 ", 7), (0, 0),
                                                 (10, 10), ("1e1", 10)])
def test_whole_accepts(value, expected):
    out = validate.whole(value, "n", 0, 10)
    assert out == expected and type(out) is int


@pytest.mark.parametrize("value", [3.5, None, float("nan"), float("inf"), 99, -1, "x", True, [],
                                   "1e400"])
def test_whole_refuses_with_the_range(value):
    assert message(validate.whole, value, "n", 0, 10) == \
        f"n must be a whole number from 0 to 10 (got {value!r})."


def test_whole_without_an_upper_bound_and_with_a_hint():
    assert validate.whole(10**9, "steps", 1) == 10**9
    assert message(validate.whole, 0, "steps", 1, hint="one or more") == \
        "steps must be a whole number of at least 1 (one or more) (got 0)."


@pytest.mark.parametrize(("value", "text"), [
    ("fast", "x must be a number, not 'fast'."),
    (None, "x must be a number, not None."),
    (False, "x must be a number, not False."),
    (float("nan"), "x must be a finite number, not nan."),
    ("inf", "x must be a finite number, not inf."),
    (-float("inf"), "x must be a finite number, not -inf."),
])
def test_number_messages_other_layers_match(value, text):
    assert message(validate.number, value, "x") == text
    assert message(validate.real, value, "x", 0, 1) == text


@pytest.mark.parametrize(("kwargs", "bad", "text"), [
    ({"lo": 0, "hi": 1}, 1.5, "r must be from 0 to 1, not 1.5."),
    ({"lo": 0, "hi": 1, "lo_open": True}, 0, "r must be greater than 0 and at most 1, not 0."),
    ({"lo": 0, "hi": 1, "hi_open": True}, 1, "r must be at least 0 and below 1, not 1."),
    ({"lo": 0}, -0.5, "r must be at least 0, not -0.5."),
    ({"hi": 3, "hi_open": True}, 3, "r must be below 3, not 3."),
    ({"lo": 0, "hi": 100, "hint": "0 = greedy"}, -1, "r must be from 0 to 100 (0 = greedy), not -1."),
])
def test_real_ranges(kwargs, bad, text):
    assert message(validate.real, bad, "r", **kwargs) == text


def test_real_accepts_bounds_and_strings():
    assert validate.real("0.25", "r", 0, 1) == 0.25
    assert validate.real(0, "r", 0, 1) == 0.0 and validate.real(1, "r", 0, 1) == 1.0
    assert validate.real(1e-9, "r", 0, 1, lo_open=True) == 1e-9
    assert validate.real(-5.5, "r") == -5.5  # no bounds: any finite number


def test_choice():
    assert validate.choice("dot", "metric", ("dot", "cosine")) == "dot"
    assert message(validate.choice, "Dot", "metric", ("dot", "cosine")) == \
        "metric must be one of 'dot', 'cosine' (got 'Dot')."
    assert "got None" in message(validate.choice, None, "metric", ["dot"])


def test_text():
    assert validate.text("hi", "prompt", 5) == "hi"
    assert validate.text("", "prompt", allow_empty=True) == ""
    assert message(validate.text, "  ", "prompt") == "The prompt is empty: type something."
    assert message(validate.text, "abcdef", "prompt", 5) == \
        "The prompt is 6 characters long; at most 5 are accepted."
    assert message(validate.text, 42, "prompt") == "The prompt must be text, not int."


def test_texts():
    assert validate.texts("a\n\n b \n", "line") == ["a", " b "]
    assert validate.texts(("x", 2), "line") == ["x", "2"]
    assert message(validate.texts, " \n", "review") == "Give at least one review (one per line)."
    assert message(validate.texts, ["a"] * 3, "review", limit=2) == \
        "That is 3 reviews; one call takes at most 2."
    assert message(validate.texts, {"a": 1}, "review") == \
        "Give the reviews as a list of strings or as text, one per line."
    assert "at most 3 are accepted" in message(validate.texts, ["abcd"], "review", max_chars=3)


def test_the_api_uses_it():
    """The JSON adapters answer with these messages (no second copy of the checks there)."""
    from lmdemo import api
    from lmdemo.lab.positional import LIMITS

    assert message(api.positional, "sinusoidal", 2.5, 8) == \
        f"length must be a whole number from 1 to {LIMITS.max_length} (got 2.5)."
    assert message(api.positional, "cosine-only", 4, 6).startswith("kind must be one of")
    assert message(api.texts_of, "") == "Give at least one sentence (one per line)."


def test_text_refuses_lone_surrogates_with_the_position():
    assert validate.unicode_text("café", "text") == "café"
    assert message(validate.text, "ab\udcff", "prompt") == (
        "The prompt is not valid UTF-8 text: character 3 is an undecodable byte or a lone "
        "surrogate. Give the text in UTF-8.")
    assert "review is not valid UTF-8" in message(validate.texts, ["ok", "\ud800"], "review")


def test_texts_refuse_containers_but_read_numbers():
    assert validate.texts(["a", 2.5], "line") == ["a", "2.5"]
    assert message(validate.texts, ["a", {"b": 1}], "review") == "Review 2 must be text, not dict."
    assert message(validate.texts, [None], "sentence") == "Sentence 1 must be text, not NoneType."


def test_optional_whole():
    assert validate.optional_whole(None, "--limit", 1) is None
    assert validate.optional_whole(" ", "--limit", 1) is None
    assert validate.optional_whole("5", "--limit", 1) == 5
    assert message(validate.optional_whole, -1, "--limit", 1) == \
        "--limit must be a whole number of at least 1 (got -1)."


def test_new_folder(tmp_path):
    assert validate.new_folder(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    assert not (tmp_path / "a").exists()  # checked, not created
    (tmp_path / "empty").mkdir()
    assert validate.new_folder(tmp_path / "empty") == tmp_path / "empty"
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    assert "already exists and is not an empty folder" in message(validate.new_folder,
                                                                  tmp_path / "full")
    (tmp_path / "file").write_text("x")
    assert "is not a folder" in message(validate.new_folder, tmp_path / "file" / "run")
    assert message(validate.new_folder, "/dev/null/x") == (
        "--out '/dev/null/x' cannot be created: '/dev/null' is not a folder.")
    assert message(validate.new_folder, "") == "--out must be a folder path."


@pytest.mark.parametrize("service", ["next_token", "attention", "classify"])
def test_services_refuse_lone_surrogates_themselves(service):
    from lmdemo.lab.attention import attention
    from lmdemo.lab.next_token import next_token
    from lmdemo.training.sentiment import classify

    call = {"next_token": lambda t: next_token("tiny-gpt", t),
            "attention": lambda t: attention("tiny-gpt", t),
            "classify": lambda t: classify([t])}[service]
    with pytest.raises(UserError, match="not valid UTF-8"):
        call("good \udcff bad")
