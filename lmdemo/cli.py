"""The command line: `python -m lmdemo <command> ... [--json]`.

Every service is reachable from a shell. Commands live one per module in `lmdemo/commands/`; each
module defines `register(subparsers)` and its handler returns plain JSON-able data, which is printed
as JSON with `--json` or as readable text without it. A `UserError` prints its message and exits
with status 2 — no traceback. Every argument is checked before anything is created or loaded:
argparse's own errors are one line with status 2 as well, text that is not valid UTF-8 (bytes
Python keeps as lone surrogates) is refused for every argument that is not a path, and `--file`
reads at most MAX_FILE_BYTES and MAX_FILE_LINES.
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys

from lmdemo import __version__
from lmdemo.core import validate
from lmdemo.core.errors import UserError

MAX_FILE_BYTES = 4 * 1024 * 1024  # the most bytes `--file` reads (one text per line)
MAX_FILE_LINES = 1_000  # the most texts one `--file` holds
PATH_ARGS = ("file", "out", "data", "run_dir", "corpus_dir", "model")  # may name any file: not
#                                                  checked for UTF-8 (Linux file names are bytes)


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: `error: lmdemo attention: argument --digits: ...`."""

    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {message} (see `{self.prog} --help`)\n")


def _command_modules():
    import lmdemo.commands as pkg

    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            yield importlib.import_module(f"lmdemo.commands.{info.name}")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="lmdemo", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"lmdemo {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _command_modules():
        module.register(sub)
    return parser


def add_json_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")


def add_lm_flag(p: argparse.ArgumentParser) -> None:
    """--model for the causal commands; without it, smollm2 when fetched, else tiny-gpt."""
    p.add_argument("--model", default=None, help="a causal-lm or recurrent-lm id (default: "
                   "smollm2 once `lmdemo fetch smollm2` has run, else tiny-gpt)")


def lm_of(args) -> str:
    """The --model given, or the default language model (a note on stderr when it falls back)."""
    from lmdemo.core.registry import FALLBACK_LM, PREFERRED_LM, default_lm

    if args.model:
        return args.model
    model = default_lm()
    if model == FALLBACK_LM:
        print(f"note: {PREFERRED_LM} is not fetched yet (`python -m lmdemo fetch "
              f"{PREFERRED_LM}`); using {FALLBACK_LM}.", file=sys.stderr)
    return model


def add_text_inputs(p: argparse.ArgumentParser, what: str = "text") -> None:
    """--text (repeatable) or --file PATH with one text per line."""
    p.add_argument("--text", action="append", help=f"the {what}; repeat for several")
    p.add_argument("--file", help=f"a UTF-8 file with one {what} per line")


def read_lines(path: str) -> list[str]:
    """The non-blank lines of a UTF-8 file, reading at most MAX_FILE_BYTES (so /dev/zero or a
    huge file is refused, not read without end) and accepting at most MAX_FILE_LINES."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise UserError(f"Cannot read {path}: {exc.strerror or type(exc).__name__}.") from None
    if len(data) > MAX_FILE_BYTES:
        raise UserError(f"{path} is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB; give a "
                        f"file of at most {MAX_FILE_LINES:,} texts, one per line.")
    if b"\0" in data:
        raise UserError(f"{path} holds NUL bytes: give a UTF-8 text file, one text per line.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path} is not UTF-8 text (byte {exc.start} is invalid); save it as "
                        "UTF-8.") from None
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) > MAX_FILE_LINES:
        raise UserError(f"{path} holds {len(lines):,} texts; one call takes at most "
                        f"{MAX_FILE_LINES:,}.")
    return lines


def read_texts(args, what: str = "text", allow_empty: bool = False) -> tuple[list[str], bool]:
    """The texts given by --text/--file, each checked (valid UTF-8, within the length limit), and
    whether a list (not one object) should be printed."""
    from lmdemo.core.config import settings

    texts = list(args.text or [])
    if args.file:
        texts += read_lines(args.file)
    if not texts:
        raise UserError("Give a text with --text (repeatable) or --file PATH.")
    limit = settings().max_text_chars
    for t in texts:
        validate.text(t, what, limit, allow_empty=allow_empty)
    return texts, bool(args.file) or len(texts) > 1


def _check_unicode(args) -> None:
    """Every text argument (not a path) must be valid UTF-8: `--text $'\\xff'` reaches Python as
    a lone surrogate, which no tokenizer and no JSON printer accepts."""
    for key, value in vars(args).items():
        if key in PATH_ARGS or key == "func":
            continue
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str):
                validate.unicode_text(item, f"--{key.replace('_', '-')} value")


def _human(data, indent: int = 0) -> str:
    pad = "  " * indent
    if isinstance(data, dict):
        lines = []
        for k, v in data.items():
            if isinstance(v, (dict, list)) and v:
                lines.append(f"{pad}{k}:")
                lines.append(_human(v, indent + 1))
            else:
                lines.append(f"{pad}{k}: {v}")
        return "\n".join(lines)
    if isinstance(data, list):
        return "\n".join(_human(x, indent) if isinstance(x, (dict, list)) else f"{pad}- {x}"
                         for x in data)
    return f"{pad}{data}"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a one-line argparse error (status 2)
        return exc.code if isinstance(exc.code, int) else 2
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        _check_unicode(args)
        data = args.func(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    if data is not None:
        text = (json.dumps(data, ensure_ascii=False, allow_nan=False)
                if getattr(args, "json", False) else _human(data))
        try:
            print(text, flush=True)
        except BrokenPipeError:  # e.g. `| head`: the reader left; not an error of ours
            sys.stderr.close()
            return 0
    return 0
