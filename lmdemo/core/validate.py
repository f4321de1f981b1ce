"""Input checks shared by every service: numbers in a range, choices and texts.

Values arrive from widgets, URLs, HTTP callers, the command line and config files, so they may be
strings, floats where an int is meant, NaN, infinity or booleans. Each function returns the value
in its proper type or raises `UserError` with a message that names the value and says what is
allowed ("top_k must be a whole number from 0 to 100 (got 2.5)."), which the pages show with
`st.error`, the Gradio app as `gr.Error` and the CLI on stderr with exit status 2.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from pathlib import Path

from lmdemo.core.errors import UserError


def _num(x: float) -> str:
    """A bound as people write it: 1 not 1.0, 1e-05 not 0.00001."""
    return f"{x:g}"


def number(value, name: str) -> float:
    """`value` as a finite float (numeric strings accepted, booleans refused)."""
    if isinstance(value, bool):
        raise UserError(f"{name} must be a number, not {value!r}.")
    try:
        out = float(value)
    except (TypeError, ValueError, OverflowError):
        raise UserError(f"{name} must be a number, not {value!r}.") from None
    if not math.isfinite(out):
        raise UserError(f"{name} must be a finite number, not {value}.")
    return out


def _range_words(lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> str:
    low = None if lo is None else (f"greater than {_num(lo)}" if lo_open else
                                   f"at least {_num(lo)}")
    high = None if hi is None else (f"below {_num(hi)}" if hi_open else f"at most {_num(hi)}")
    if low and high:
        if not lo_open and not hi_open:
            return f"from {_num(lo)} to {_num(hi)}"
        return f"{low} and {high}"
    return low or high or "any finite number"


def real(value, name: str, lo: float | None = None, hi: float | None = None, *,
         lo_open: bool = False, hi_open: bool = False, hint: str = "") -> float:
    """`value` as a finite float in the range (bounds closed unless `lo_open` / `hi_open`);
    `hint` is added to the message in brackets, e.g. "0 = greedy"."""
    out = number(value, name)
    too_low = lo is not None and (out <= lo if lo_open else out < lo)
    too_high = hi is not None and (out >= hi if hi_open else out > hi)
    if too_low or too_high:
        words = _range_words(lo, hi, lo_open, hi_open)
        extra = f" ({hint})" if hint else ""
        raise UserError(f"{name} must be {words}{extra}, not {_num(out)}.")
    return out


def whole(value, name: str, lo: int, hi: int | None = None, *, hint: str = "") -> int:
    """`value` as an int from `lo` to `hi` (inclusive; no upper bound when `hi` is None).
    3, 3.0 and "3" are accepted; 3.5, "x", NaN and booleans are not."""
    allowed = f"a whole number from {lo} to {hi}" if hi is not None else \
        f"a whole number of at least {lo}"
    extra = f" ({hint})" if hint else ""
    if isinstance(value, bool):
        ok = False
    else:
        try:
            out = float(value)
            ok = math.isfinite(out) and out == int(out)
        except (TypeError, ValueError, OverflowError):
            ok = False
    if ok and lo <= out and (hi is None or out <= hi):
        return int(out)
    raise UserError(f"{name} must be {allowed}{extra} (got {value!r}).")


def choice(value, name: str, options: Iterable[str]) -> str:
    """`value` if it is one of `options`, else a UserError listing them."""
    options = tuple(options)
    if isinstance(value, str) and value in options:
        return value
    raise UserError(f"{name} must be one of {', '.join(repr(o) for o in options)} "
                    f"(got {value!r}).")


def unicode_text(value: str, name: str = "text") -> str:
    """`value` if it is valid Unicode: a command-line argument with bytes that are not UTF-8
    (Python keeps them as lone surrogates) or a JSON string with a lone surrogate escape cannot
    be encoded, tokenized or printed, so it is refused with the position of the first one."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise UserError(f"The {name} is not valid UTF-8 text: character {exc.start + 1} is an "
                        "undecodable byte or a lone surrogate. Give the text in UTF-8.") from None
    return value


def optional_whole(value, name: str, lo: int, hi: int | None = None, *,
                   hint: str = "") -> int | None:
    """`whole(...)`, or None when the value is absent (None or an empty string)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return whole(value, name, lo, hi, hint=hint)


def text(value, name: str = "text", max_chars: int | None = None, *,
         allow_empty: bool = False) -> str:
    """A string of at most `max_chars` characters, valid Unicode; blank only when
    `allow_empty`."""
    if not isinstance(value, str):
        raise UserError(f"The {name} must be text, not {type(value).__name__}.")
    unicode_text(value, name)
    if not allow_empty and not value.strip():
        raise UserError(f"The {name} is empty: type something.")
    if max_chars is not None and len(value) > max_chars:
        raise UserError(f"The {name} is {len(value):,} characters long; at most {max_chars:,} "
                        "are accepted.")
    return value


def texts(value, what: str = "sentence", limit: int = 64,
          max_chars: int | None = None) -> list[str]:
    """A list of non-blank texts from a list or tuple, or from one string with one per line."""
    if isinstance(value, str):
        items = [line for line in value.splitlines() if line.strip()]
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):  # numbers read as their text; containers and None do not
            if v is None or isinstance(v, (bool, dict, list, tuple, set)):
                raise UserError(f"{what.capitalize()} {i + 1} must be text, not "
                                f"{type(v).__name__}.")
        items = [str(v) for v in value]
    else:
        raise UserError(f"Give the {what}s as a list of strings or as text, one per line.")
    if not items:
        raise UserError(f"Give at least one {what} (one per line).")
    if len(items) > limit:
        raise UserError(f"That is {len(items)} {what}s; one call takes at most {limit}.")
    for item in items:
        text(item, what, max_chars, allow_empty=True)
    return items


def new_folder(path, name: str = "--out") -> Path:
    """A folder that can be created for new output: absent (or an empty folder), under a parent
    that is a writable folder (or can become one). Checked before any work, so a bad path costs
    nothing and leaves nothing behind. The message shows the path as the user typed it."""
    if not isinstance(path, (str, os.PathLike)) or not str(path).strip():
        raise UserError(f"{name} must be a folder path.")
    folder = Path(unicode_text(str(path), name))
    try:
        taken = folder.exists() and (not folder.is_dir() or any(folder.iterdir()))
    except OSError:
        taken = True
    if taken:
        raise UserError(f"{name} {str(path)!r} already exists and is not an empty folder; "
                        "give a new folder.")
    parent = folder.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise UserError(f"{name} {str(path)!r} cannot be created: {str(parent)!r} is not a "
                        "folder.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"{name} {str(path)!r} cannot be created: {str(parent)!r} is not "
                        "writable.")
    return folder
