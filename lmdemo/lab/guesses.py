"""The audience's guesses, scored against the model's answer (predict, then reveal).

Next word: a typed guess is matched to ONE token of the model's vocabulary. A word that follows
other words is usually a token with a leading space (" Paris" after "The capital of France is"),
so each guess is tried with and without a leading space, as typed, lower-cased and capitalised; of
the forms that are a single token, the most probable one wins. A word that is several tokens in
every form is scored by its first token, and says how many tokens it is. Each guess gets its rank
over the whole vocabulary (1 = the model's most likely token; ties by id, as the chart orders its
bars) and its probability, raw and reshaped. Attention: a guessed key gets its weight and its rank
in the query's row. A round (`round_id`) names what is being guessed, so a reveal holds for that
question only. Arrays and strings in, frozen dataclasses out; no torch.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import numpy as np

MAX_GUESSES = 12  # guesses one round keeps (the first ones typed)
MAX_GUESS_CHARS = 40  # characters of one guess (longer ones are cut)
SEPARATORS = re.compile(r"[,;\n，、；]+")  # between typed guesses: commas, semicolons, new lines
SPACE_MARK = "␣"  # how the app writes a leading space; typed, it means a space


@dataclass(frozen=True)
class TokenGuess:
    """One typed guess of the next token, matched to the model's vocabulary and scored."""

    guess: str  # as typed (cleaned)
    token_id: int  # the token it was matched to
    token: str  # that token's text
    pieces: int  # how many tokens the guessed word is (1: exactly one token)
    rank: int  # 1 = the model's most likely next token (whole vocabulary, ties by id)
    p_raw: float  # its probability, softmax of the logits
    p_shaped: float  # its probability after temperature / top-k / top-p

    def shown(self, top: int) -> bool:
        """Whether the guess is among the `top` tokens a chart draws."""
        return self.rank <= top


@dataclass(frozen=True)
class KeyGuess:
    """One guessed key token of an attention row, scored."""

    key: int  # index of the key token
    token: str
    weight: float  # the query's attention on it
    rank: int  # 1 = the key the query attends to most (ties by index)


def split_guesses(raw: str | None) -> list[str]:
    """The guesses typed in one box, separated by commas, semicolons or new lines (Chinese
    punctuation too): stripped, each cut to MAX_GUESS_CHARS, blanks and repeats dropped, at most
    MAX_GUESSES."""
    out: list[str] = []
    for part in SEPARATORS.split(str(raw or "")):
        guess = part.strip()[:MAX_GUESS_CHARS].strip()
        if guess and guess not in out:
            out.append(guess)
    return out[:MAX_GUESSES]


def forms(guess: str) -> list[str]:
    """The strings a guess may stand for, most natural first: with a leading space (a word after
    other words) and without, each as typed, lower-cased and capitalised. A leading space typed
    (or written ␣) is kept as the only spacing asked for."""
    text = guess.replace(SPACE_MARK, " ")
    body = text.strip()
    if not body:
        return []
    spacings = [" "] if text.startswith(" ") else [" ", ""]
    cases = [body, body.lower(), body[:1].upper() + body[1:]]
    out: list[str] = []
    for space in spacings:
        for case in cases:
            if space + case not in out:
                out.append(space + case)
    return out


def rank_of(probs: np.ndarray, index: int) -> int:
    """The 1-based rank of entry `index` when `probs` is sorted most likely first, ties by index
    (the order of `next_token.top_ids`, so rank <= N means "on a chart of the top N")."""
    probs = np.asarray(probs)
    p = probs[index]
    return int((probs > p).sum() + (probs[:index] == p).sum() + 1)


def encode_form(tokenizer, text: str) -> list[int]:
    """The token ids of `text` alone (no special tokens)."""
    return [int(i) for i in tokenizer(text, add_special_tokens=False)["input_ids"]]


def match(tokenizer, guess: str, raw: np.ndarray) -> tuple[int, int] | None:
    """(token id, pieces) a guess stands for: the most probable of its forms that is one token,
    else the first token of its first form (pieces > 1); None when no form has a token."""
    split: tuple[int, int] | None = None
    best: tuple[float, int] | None = None
    for form in forms(guess):
        ids = encode_form(tokenizer, form)
        if not ids or not all(0 <= i < len(raw) for i in ids):
            continue
        if len(ids) == 1:
            if best is None or raw[ids[0]] > best[0]:
                best = (float(raw[ids[0]]), ids[0])
        elif split is None:
            split = (ids[0], len(ids))
    return (best[1], 1) if best is not None else split


def score_tokens(tokenizer, guesses: list[str], raw: np.ndarray, shaped: np.ndarray,
                 token_text=None) -> list[TokenGuess]:
    """Each guess matched to a token and scored against the next-token distribution (`raw` and
    `shaped`: (V,) probabilities); guesses that match no token are left out. `token_text(id)`
    gives a token's text (default: the tokenizer's decode of that id alone)."""
    raw, shaped = np.asarray(raw, dtype=np.float64), np.asarray(shaped, dtype=np.float64)

    def text_of(i: int) -> str:
        if token_text is not None:
            return token_text(i)
        return tokenizer.decode([i], clean_up_tokenization_spaces=False)

    out = []
    for guess in guesses:
        found = match(tokenizer, guess, raw)
        if found is None:
            continue
        token_id, pieces = found
        out.append(TokenGuess(guess, token_id, text_of(token_id), pieces, rank_of(raw, token_id),
                              float(raw[token_id]), float(shaped[token_id])))
    return out


def token_rows(guesses: list[TokenGuess], top: int) -> list[dict]:
    """The scored guesses as table rows (the CSV export)."""
    return [{"guess": g.guess, "token": g.token, "id": g.token_id, "tokens_in_word": g.pieces,
             "rank": g.rank, "raw_probability": g.p_raw, "reshaped_probability": g.p_shaped,
             "on_chart": g.shown(top)} for g in guesses]


def guessable_keys(n_tokens: int, query: int, causal: bool) -> list[int]:
    """The keys a query can attend to: every token, or up to the query itself when causal."""
    return list(range(min(query + 1, n_tokens) if causal else n_tokens))


def top_key(row: np.ndarray) -> int:
    """The key a query attends to most (the first of equal weights)."""
    return int(np.argmax(np.asarray(row)))


def score_keys(row: np.ndarray, tokens: list[str], keys: list[int]) -> list[KeyGuess]:
    """Each guessed key (an index into `tokens`; others are left out) with its weight in the
    query's `row` (T,) and its rank."""
    row = np.asarray(row, dtype=np.float64)
    return [KeyGuess(k, tokens[k], float(row[k]), rank_of(row, k))
            for k in dict.fromkeys(int(k) for k in keys) if 0 <= k < len(tokens)]


def round_id(*question) -> str:
    """A short stable name for what is being guessed (model, text, position, head...): a reveal
    kept under this name holds for this question only."""
    return hashlib.sha1(repr(question).encode("utf-8")).hexdigest()[:10]
