"""CSV export that is safe to open in a spreadsheet.

Exported tables carry text people typed (reviews, prompts, tokens). A cell that starts with `=`,
`+`, `-` or `@` (or a tab or carriage return, which some spreadsheets skip before reading a
formula) is run as a formula by Excel, LibreOffice and Google Sheets: `=HYPERLINK(...)` or
`+cmd|' /C calc'!A0` is formula injection. `csv_text` prefixes such text cells (and column names)
with a single quote, as OWASP recommends, so they show as the text they are. Numbers stay numbers:
a float -0.5 and a text cell that is a plain number ("-0.5", "+3", "1e-5") are left alone.
"""

from __future__ import annotations

import io
import re

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def neutralise(value):
    """`value`, with a single quote in front when it is text a spreadsheet would run as a
    formula; anything else (numbers, None, plain numeric text) unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) \
            and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def csv_text(data, index: bool = False) -> str:
    """`data` (a pandas DataFrame, a dict of columns, a list of dicts or a list of rows) as CSV
    text (RFC 4180: CRLF line ends) with every formula-like text cell and column name
    neutralised."""
    import pandas as pd

    frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame(data)
    frame = frame.copy()
    frame.columns = [neutralise(c) if isinstance(c, str) else c for c in frame.columns]
    for col in frame.columns:
        if frame[col].dtype == object or pd.api.types.is_string_dtype(frame[col]):
            frame[col] = frame[col].map(neutralise)
    buf = io.StringIO()
    frame.to_csv(buf, index=index, lineterminator="\r\n")  # RFC 4180; with "\r\n" as the
    return buf.getvalue()  # line end, a cell holding a lone "\r" is quoted and stays one cell
