"""Service messages: English as plain strings everywhere, Chinese on the pages; both tables keep
the same keys and placeholders; a Message survives pickling (Streamlit's caches) and JSON."""

from __future__ import annotations

import copy
import json
import pickle
import string

from lmdemo.core.messages import TEXTS, Message, in_language


def _fields(text: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(text) if f}


def test_both_languages_have_the_same_keys_and_placeholders():
    assert set(TEXTS["en"]) == set(TEXTS["zh"])
    for key, en in TEXTS["en"].items():
        assert _fields(en) == _fields(TEXTS["zh"][key]), key


def test_a_message_is_its_english_text_and_translates():
    m = Message("context-cut", n=3000, limit=2048)
    assert m == "The text has 3000 tokens, more than the model's context of 2048: only the last 2048 are read."
    assert json.loads(json.dumps({"m": m}))["m"] == str(m)
    assert in_language(m, "zh") == "这段文字有 3000 个词元，超过了模型的上下文长度 2048：只读取最后 2048 个。"
    assert in_language(m, "fr") == str(m)
    assert in_language("plain text", "zh") == "plain text"


def test_a_message_survives_pickle_and_copy():
    m = Message("view-cut-view", n=900, limit=512, kept=512)
    for back in (pickle.loads(pickle.dumps(m)), copy.deepcopy(m)):
        assert back == m and back.in_language("zh") == m.in_language("zh")


def test_the_engine_cuts_long_texts_with_a_translatable_message():
    from lmdemo.core.models import load
    from lmdemo.lab import next_token

    loaded = load("tiny-gpt")
    limit = next_token.context_limit(loaded)
    ids = list(range(5, 5 + limit + 7))
    kept, message = next_token.window(loaded, ids)
    assert kept == ids[-limit:]
    assert isinstance(message, Message) and message.values == {"n": limit + 7, "limit": limit}
    assert str(limit + 7) in message.in_language("zh")
