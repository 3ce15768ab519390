"""CSV as the ledger writes it (RFC 4180, CRLF line ends), for tools that import it, and the
optional guard for files opened in a spreadsheet instead.

A cell starting with = + - @ TAB or CR is a formula to Excel, LibreOffice and Google Sheets
(CSV injection, OWASP). Values are written as they are by default, since an import tool must
get the address a person gave; `spreadsheet_safe` prefixes such a cell with `'`, which a
spreadsheet shows as text and an import tool would keep as part of the value.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Final

#: the first characters that make a spreadsheet read a cell as a formula
FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_cell(value: str) -> str:
    """`value`, with a leading `'` when a spreadsheet would read it as a formula."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def csv_bytes(records: Iterable[Sequence[str]], *, spreadsheet_safe: bool = False) -> bytes:
    """The records as UTF-8 CSV, every cell guarded when `spreadsheet_safe`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    if spreadsheet_safe:
        writer.writerows([spreadsheet_cell(c) for c in r] for r in records)
    else:
        writer.writerows(records)
    return out.getvalue().encode("utf-8")
