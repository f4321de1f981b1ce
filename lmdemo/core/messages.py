"""Messages the services hand to a reader (a text cut to fit, a full context), in English and
Chinese. A `Message` is an ordinary `str` holding the English text, so the CLI, the API and
Gradio print it as before; it also keeps its key and values, so the Streamlit pages can show it
in the reader's language (`in_language`). A test keeps both tables' keys and placeholders in step.
"""

from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "context-cut": "The text has {n} tokens, more than the model's context of {limit}: "
                       "only the last {limit} are read.",
        "context-full": "The context is full ({n} tokens): the oldest tokens are dropped and the "
                        "rest is read again.",
        "view-cut-model": "The text has {n} tokens; this model reads at most {limit}, so only "
                          "the first {kept} are shown.",
        "view-cut-view": "The text has {n} tokens; this view shows at most {limit}, so only the "
                         "first {kept} are shown.",
    },
    "zh": {
        "context-cut": "这段文字有 {n} 个词元，超过了模型的上下文长度 {limit}：只读取最后 {limit} 个。",
        "context-full": "上下文已满（{n} 个词元）：最早的词元被丢弃，其余部分重新读取。",
        "view-cut-model": "这段文字有 {n} 个词元；这个模型最多读取 {limit} 个，所以只显示前 {kept} 个。",
        "view-cut-view": "这段文字有 {n} 个词元；这个视图最多显示 {limit} 个，所以只显示前 {kept} 个。",
    },
}


class Message(str):
    """The English text of a message, with its key and values kept for translation."""

    key: str
    values: dict

    def __new__(cls, key: str, **values) -> Message:
        obj = super().__new__(cls, TEXTS["en"][key].format(**values))
        obj.key, obj.values = key, values
        return obj

    def __reduce__(self):  # pickled / copied with its key and values (st.cache_data pickles)
        return _rebuild, (self.key, self.values)

    def in_language(self, lang: str) -> str:
        """The message in `lang` ('en', 'zh'); English when that language lacks it."""
        template = TEXTS.get(lang, {}).get(self.key)
        return template.format(**self.values) if template else str(self)


def _rebuild(key: str, values: dict) -> Message:
    return Message(key, **values)


def in_language(message: str, lang: str) -> str:
    """Any message in `lang`: a `Message` is translated, any other text is returned as it is."""
    return message.in_language(lang) if isinstance(message, Message) else message
