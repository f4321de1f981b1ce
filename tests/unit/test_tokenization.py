"""lmdemo.lab.tokenization against independent computations: Python's own UTF-8 encoder,
transformers' GPT-2 byte table, and counts made by hand over small tokenizers built here."""

from __future__ import annotations

import random

import pytest

from lmdemo.lab import tokenization as tz

MIXED = "The cat 小猫没有跳过那条沟，因为它太累了 😀 café!"


@pytest.fixture(scope="module")
def byte_bpe():
    """A byte-level BPE with no merges: every byte of the text is its own token (as GPT-2 reads
    a character it has no merge for)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(tz.byte_decoder())  # the 256 printable stand-ins of bytes
    vocab = {"<|endoftext|>": 0, **{c: i + 1 for i, c in enumerate(alphabet)}}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>",
                                   eos_token="<|endoftext|>", unk_token="<|endoftext|>")


@pytest.fixture(scope="module")
def wordpiece():
    """A WordPiece vocabulary that knows a few Chinese characters and English words."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "cat", "sat", ".", "小", "有", "太", "，"]
    tok = Tokenizer(models.WordPiece({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]"), set(words)


def test_byte_table_is_the_one_the_tokenizers_library_uses():
    from tokenizers import pre_tokenizers

    assert set(tz.byte_decoder()) == set(pre_tokenizers.ByteLevel.alphabet())
    every_byte = bytes(range(256)).decode("latin-1") + MIXED  # as the library writes them
    (shown, _), = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False) \
        .pre_tokenize_str(every_byte)
    assert bytes(tz.byte_decoder()[c] for c in shown) == every_byte.encode("utf-8")


def test_group_bytes_rebuilds_each_character_from_any_cut():
    rng = random.Random(0)
    data = MIXED.encode("utf-8")
    for _ in range(50):
        cuts = sorted(rng.sample(range(1, len(data)), 20))
        chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
        groups = tz.group_bytes(chunks)
        assert "".join(text for _, _, text in groups) == MIXED
        assert [a for a, _, _ in groups] == [0] + [b for _, b, _ in groups[:-1]]  # contiguous
        for a, b, text in groups:  # each group is exactly its chunks' bytes, whole characters
            assert b"".join(chunks[a:b]).decode("utf-8") == text


def test_bytes_that_never_complete_show_as_hex_not_replacement_characters():
    groups = tz.group_bytes([b"a", "猫".encode()[:2], b"b", b"\xff"])
    texts = "".join(t for _, _, t in groups)
    assert "\ufffd" not in texts
    assert texts == "a<0xE7><0x8C>b<0xFF>"


def test_byte_level_split_groups_the_bytes_of_each_character(byte_bpe):
    split = tz.split_text(byte_bpe, MIXED)
    pieces = [p for p in split.pieces if not p.special]
    assert "".join(p.text for p in pieces) == MIXED
    for p in pieces:  # a character of n UTF-8 bytes is n tokens here
        assert "\ufffd" not in p.text
        assert len(p.ids) == len(p.text.encode("utf-8"))
    assert [p.text for p in pieces if len(p.ids) > 1][:3] == ["小", "猫", "没"]
    assert split.n_unknown == 0 and split.unknown_share == 0.0
    assert split.n_text_tokens == len(MIXED.encode("utf-8"))


def test_ids_cut_inside_a_character_never_show_a_replacement_character(byte_bpe):
    ids = byte_bpe("猫猫", add_special_tokens=False)["input_ids"]
    split = tz.split_ids(byte_bpe, ids[:4])  # one whole character and one byte of the next
    assert [p.text for p in split.pieces] == ["猫", "<0xE7>"]


def test_wordpiece_unknown_share_matches_a_count_by_hand(wordpiece):
    tok, known = wordpiece
    text = "小猫没有跳过那条沟，因为它太累了"
    unknown = sum(c not in known for c in text)  # BERT splits every CJK character on its own
    split = tz.split_text(tok, text)
    assert split.n_unknown == unknown
    assert split.unknown_share == pytest.approx(unknown / len(text))
    assert [p.text for p in split.pieces if p.special] == ["[CLS]", "[SEP]"]
    assert tz.unknown_share(tok, "the cat sat.") == 0.0


def test_token_tax_counts_characters_and_tokens(byte_bpe, wordpiece):
    en, zh = "The cat sat.", "猫坐着。"
    rows = tz.token_tax(byte_bpe, [en, zh])
    assert [(r.chars, r.tokens) for r in rows] == [(len(en), len(en.encode())),
                                                   (len(zh), len(zh.encode()))]
    assert rows[1].chars_per_token == pytest.approx(len(zh) / len(zh.encode()))
    tax = tz.token_tax(wordpiece[0], [zh])[0]
    assert (tax.tokens, tax.unknown) == (4, 4)  # 猫 坐 着 。: none of them in the vocabulary


def test_vocabulary_kinds(byte_bpe, wordpiece):
    assert tz.vocabulary_kind(byte_bpe) == "byte-level"
    assert tz.vocabulary_kind(wordpiece[0]) == "wordpiece"


def test_rows_list_every_token_once(byte_bpe):
    ids = byte_bpe("猫 cat")["input_ids"]
    rows = tz.split_ids(byte_bpe, ids).rows()
    assert [r["id"] for r in rows] == ids
    assert [r["characters"] for r in rows] == ["猫"] * 3 + [" ", "c", "a", "t"]  # no merges
    assert [r["piece"] for r in rows] == [0, 0, 0, 1, 2, 3, 4]


def test_token_labels_name_the_characters_of_byte_tokens():
    from lmdemo.core.models import load
    from lmdemo.lab.attention import attention
    from lmdemo.lab.tokenization import has_multibyte, token_labels

    tok = load("tiny-gpt").tokenizer
    ids = tok("月 cat", add_special_tokens=False)["input_ids"]
    labels = token_labels(tok, ids)
    assert len(labels) == len(ids) and labels[-1] == "␣cat"
    n = sum(label.startswith("月") for label in labels)  # 月 is 3 UTF-8 bytes
    assert labels[:n] == [f"月({i + 1}/{n})" for i in range(n)]
    assert "".join(tok.decode([i]) for i in ids[n:]) == " cat"
    assert has_multibyte(tok, ids) and not has_multibyte(tok, ids[n:])
    assert all("\ufffd" not in t for t in attention("tiny-gpt", "天上的月").tokens)
    assert attention("tiny-gpt", "The cat sat.").tokens == ["The", "␣cat", "␣sat", "."]
