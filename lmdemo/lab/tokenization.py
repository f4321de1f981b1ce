"""How a model splits a text, shown honestly for any script.

Byte-level BPE (GPT-2, SmolLM2, the embedded tiny models) cuts a Chinese character into two or
three byte tokens that mean nothing on their own; shown one by one they read as `�`. Here
consecutive tokens are grouped back into the characters their bytes encode (`group_bytes`), so a
view shows `猫` over the ids of the three tokens that spell it. Also measured: characters per
token for an English and a Chinese text side by side (the "token tax": the same sentence costs a
model more tokens in one language than in another), and the share of unknown tokens (`[UNK]`)
for WordPiece models such as MiniLM, whose vocabulary knows only a few hundred Chinese characters.
Tokenizers in, small dataclasses out; no torch.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

BYTE_TOKEN = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")  # SentencePiece byte fallback: <0xE4>
UTF8_MAX = 4  # bytes in the longest UTF-8 character


@dataclass(frozen=True)
class Piece:
    """What a reader sees for one or more consecutive tokens: the characters they encode."""

    text: str  # the characters (a leading space kept); bytes that decode to nothing as <0xNN>
    ids: tuple[int, ...]  # the token ids that encode them, in order
    tokens: tuple[str, ...]  # the vocabulary's own strings for those ids
    special: bool = False  # a special token ([CLS], <|endoftext|>...), never merged
    unknown: bool = False  # the tokenizer's unknown token: the text it stands for is lost


@dataclass(frozen=True)
class Split:
    """A text (or a list of ids) as the model's tokenizer cuts it."""

    pieces: list[Piece]
    n_tokens: int  # tokens, special tokens included
    n_text_tokens: int  # tokens that carry text (special tokens left out; [UNK] counted)
    n_chars: int  # characters the text tokens stand for
    n_unknown: int  # [UNK] tokens

    @property
    def unknown_share(self) -> float:
        """The share of text tokens that are [UNK] (0 when there are none)."""
        return self.n_unknown / self.n_text_tokens if self.n_text_tokens else 0.0

    def rows(self) -> list[dict]:
        """One row per token: the CSV export."""
        out = []
        for n, p in enumerate(self.pieces):
            for tid, tok in zip(p.ids, p.tokens, strict=True):
                out.append({"piece": n, "characters": p.text, "token": tok, "id": tid,
                            "special": p.special, "unknown": p.unknown})
        return out


@dataclass(frozen=True)
class Tax:
    """One text's cost in tokens."""

    text: str
    chars: int  # Unicode characters
    tokens: int  # tokens, no special tokens
    unknown: int  # [UNK] tokens among them

    @property
    def chars_per_token(self) -> float:
        return self.chars / self.tokens if self.tokens else 0.0


@functools.lru_cache(maxsize=1)
def byte_decoder() -> dict[str, int]:
    """The inverse of GPT-2's bytes_to_unicode: the printable stand-in of each byte -> the byte."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
            *range(ord("®"), ord("ÿ") + 1)]
    chars, extra = {}, 0
    for b in range(256):
        if b in keep:
            chars[chr(b)] = b
        else:
            chars[chr(256 + extra)] = b
            extra += 1
    return chars


def _hex(data: bytes) -> str:
    return "".join(f"<0x{b:02X}>" for b in data)


def _decode(data: bytes) -> str:
    """Bytes as text; bytes that are no part of a whole character as <0xNN> (never `�`)."""
    out, i = [], 0
    while i < len(data):
        try:
            out.append(data[i:].decode("utf-8"))
            break
        except UnicodeDecodeError as exc:
            out.append(data[i:i + exc.start].decode("utf-8"))
            out.append(_hex(data[i + exc.start:i + exc.end]))
            i += exc.end
    return "".join(out)


def group_bytes(chunks: Sequence[bytes]) -> list[tuple[int, int, str]]:
    """Consecutive chunks (each token's bytes) joined until together they decode to whole UTF-8
    characters: (first chunk, end chunk, text) for each group, covering every chunk in order."""
    groups: list[tuple[int, int, str]] = []
    start, buf = 0, b""
    for i, chunk in enumerate(chunks):
        buf += chunk
        try:
            text = buf.decode("utf-8")
        except UnicodeDecodeError as exc:
            waiting = exc.reason == "unexpected end of data" and len(buf) - exc.start < UTF8_MAX
            if waiting and i + 1 < len(chunks):
                continue  # a character started but its last bytes come with the next token
            text = _decode(buf)
        groups.append((start, i + 1, text))
        start, buf = i + 1, b""
    return groups


def vocabulary_kind(tokenizer) -> str:
    """"byte-level" (GPT-2-style BPE), "wordpiece" (BERT, MiniLM), "sentencepiece", or "other"."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    decoder = type(getattr(backend, "decoder", None)).__name__
    if decoder == "ByteLevel":
        return "byte-level"
    if decoder == "WordPiece":
        return "wordpiece"
    names = repr(getattr(backend, "decoder", ""))
    if "Metaspace" in names or "ByteFallback" in names or "▁" in names:
        return "sentencepiece"
    return "other"


def _unknown_id(tokenizer) -> int | None:
    """The id of the unknown token, unless it doubles as the start/end/padding token (tiny
    byte-level models name <|endoftext|> as their unknown token, which never stands for text)."""
    unk = getattr(tokenizer, "unk_token_id", None)
    others = {getattr(tokenizer, f"{n}_token_id", None) for n in ("bos", "eos", "pad", "cls")}
    return None if unk is None or unk in others else int(unk)


def token_bytes(tokenizer, ids: Sequence[int]) -> list[bytes]:
    """The bytes of text each (non-special) token stands for."""
    kind = vocabulary_kind(tokenizer)
    tokens = tokenizer.convert_ids_to_tokens([int(i) for i in ids])
    table = byte_decoder()
    out = []
    for tid, tok in zip(ids, tokens, strict=True):
        if kind == "byte-level" and all(c in table for c in tok):
            out.append(bytes(table[c] for c in tok))
        elif kind == "sentencepiece" and (m := BYTE_TOKEN.match(tok)):
            out.append(bytes([int(m.group(1), 16)]))
        elif kind == "sentencepiece":
            out.append(tok.replace("▁", " ").encode("utf-8"))
        elif kind == "wordpiece":
            out.append((tok[2:] if tok.startswith("##") else tok).encode("utf-8"))
        else:
            out.append(tokenizer.decode([int(tid)], clean_up_tokenization_spaces=False)
                       .encode("utf-8"))
    return out


def split_ids(tokenizer, ids: Sequence[int]) -> Split:
    """The pieces a reader sees for these token ids: runs of byte tokens grouped into the
    characters they encode; special and unknown tokens on their own."""
    ids = [int(i) for i in ids]
    tokens = tokenizer.convert_ids_to_tokens(ids)
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    unk = _unknown_id(tokenizer)
    pieces: list[Piece] = []
    run: list[int] = []  # positions of the current run of text tokens

    def flush() -> None:
        chunks = token_bytes(tokenizer, [ids[k] for k in run])
        for a, b, text in group_bytes(chunks):
            pos = run[a:b]
            pieces.append(Piece(text, tuple(ids[k] for k in pos), tuple(tokens[k] for k in pos)))
        run.clear()

    for k, tid in enumerate(ids):
        if tid == unk or tid in special:
            flush()
            pieces.append(Piece(tokens[k], (tid,), (tokens[k],), special=tid != unk,
                                unknown=tid == unk))
        else:
            run.append(k)
    flush()
    text_pieces = [p for p in pieces if not p.special]
    n_unknown = sum(p.unknown for p in pieces)
    return Split(pieces, len(ids), sum(len(p.ids) for p in text_pieces),
                 sum(len(p.text) for p in text_pieces if not p.unknown) + n_unknown, n_unknown)


def token_labels(tokenizer, ids: Sequence[int]) -> list[str]:
    """One readable label per token, for charts with a row per token: the characters its piece
    encodes (a character spread over k byte tokens labels each as "月(1/k)" ... "月(k/k)"), a
    leading space as ␣ and a line break as ↵ — never a replacement character."""
    labels: list[str] = []
    for p in split_ids(tokenizer, ids).pieces:
        text = p.text.replace("\n", "↵")
        text = "␣" + text[1:] if text.startswith(" ") else text
        k = len(p.ids)
        labels += [text] if k == 1 else [f"{text}({i + 1}/{k})" for i in range(k)]
    return labels


def has_multibyte(tokenizer, ids: Sequence[int]) -> bool:
    """Whether a byte-level tokenizer's tokens for these ids carry any non-ASCII byte (Chinese,
    emoji...), i.e. whether its raw token strings would be unreadable."""
    if vocabulary_kind(tokenizer) != "byte-level":
        return False
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    return any(b >= 0x80 for chunk in token_bytes(tokenizer, [i for i in ids if i not in special])
               for b in chunk)


def split_text(tokenizer, text: str) -> Split:
    """How the tokenizer cuts `text` (with the special tokens the model reads around it)."""
    return split_ids(tokenizer, tokenizer(text)["input_ids"])


def unknown_share(tokenizer, text: str) -> float:
    """The share of the text's tokens that are [UNK] (what the model cannot read at all)."""
    return split_text(tokenizer, text).unknown_share


def token_tax(tokenizer, texts: Sequence[str]) -> list[Tax]:
    """Each text's characters and tokens (no special tokens): characters per token shows how
    much text one token carries in each language."""
    unk = _unknown_id(tokenizer)
    out = []
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        out.append(Tax(text, len(text), len(ids), sum(int(i) == unk for i in ids)))
    return out
