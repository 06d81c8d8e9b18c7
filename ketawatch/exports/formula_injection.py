"""Neutralising spreadsheet formula injection in exported text, so opening an export never runs a formula.

OWASP's CSV-injection advice: a cell that begins with `=`, `+`, `-`, `@`, a tab or a carriage
return can be read by Excel, LibreOffice or Google Sheets as a formula (for example
`=HYPERLINK(...)` in a patient's note). Such text gets a leading single quote, which every
spreadsheet shows as text; the rest of the value is kept as written.
"""

from __future__ import annotations

import re

import pandas as pd

from store.validation import FORMULA_STARTS  # the one list: validation refuses such ids, exports quote such text

_FORMULA_START = re.compile("^[" + re.escape("".join(FORMULA_STARTS)) + "]")
#: Control characters that openpyxl refuses to write into a cell (XML 1.0 forbids them).
_ILLEGAL_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def neutralise(column: pd.Series) -> pd.Series:
    """A text column with every formula-like value quoted (vectorised; missing stays missing)."""
    text = column.astype("string")
    risky = text.str.match(_FORMULA_START).fillna(False).astype(bool)
    return text.mask(risky, "'" + text)


def excel_safe(column: pd.Series) -> pd.Series:
    """A text column ready for an Excel cell: formula-like values quoted, forbidden control characters removed."""
    return neutralise(column.astype("string").str.replace(_ILLEGAL_XML, "", regex=True))
