"""The command line: `python -m lmdemo <command> ... [--json]`.

Every service is reachable from a shell. Commands live one per module in `lmdemo/commands/`; each
module defines `register(subparsers)` and its handler returns plain JSON-able data, which is printed
as JSON with `--json` or as readable text without it. A `UserError` prints its message and exits
with status 2 — no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys

from lmdemo import __version__
from lmdemo.core.errors import UserError


def _command_modules():
    import lmdemo.commands as pkg

    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            yield importlib.import_module(f"lmdemo.commands.{info.name}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lmdemo", description=__doc__.splitlines()[0])
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


def read_texts(args) -> tuple[list[str], bool]:
    """The texts given by --text/--file, and whether a list (not one object) should be printed."""
    texts = list(args.text or [])
    if args.file:
        try:
            with open(args.file, encoding="utf-8") as fh:
                texts += [line.rstrip("\n") for line in fh if line.strip()]
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"Cannot read {args.file}: {exc}") from exc
    if not texts:
        raise UserError("Give a text with --text (repeatable) or --file PATH.")
    return texts, bool(args.file) or len(texts) > 1


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
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
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
