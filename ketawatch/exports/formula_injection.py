"""Neutralising spreadsheet formula injection in exported text, so opening an export never runs a formula.

OWASP's CSV-injection advice: a cell that begins with `=`, `+`, `-`, `@`, a tab or a carriage
return can be read by Excel, LibreOffice or Google Sheets as a formula (for example
`=HYPERLINK(...)` in a patient's note). In a CSV file such text gets a leading single quote, which
every spreadsheet shows as text; the rest of the value is kept as written. An Excel workbook says
what each cell is, so there the text is kept exactly and its cell is marked as text with Excel's
quote prefix (`formula_like` finds them), which stays text when the cell is edited: the quote
had become part of the value for anyone analysing the workbook (export review). In a CSV file the same goes
for text after a semicolon or a line break: where the list separator is `;` (much of Europe), Excel
splits a CSV line at each `;`, whatever the commas and quotes say, and so starts a new row at a
line break in a note too: `Ann;=WEBSERVICE(...)` would start a cell.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from store.spreadsheet_quotes import quote_formula_starts
from store.validation import FORMULA_STARTS  # the one list: validation refuses such ids, exports quote such text

_FORMULA_START = re.compile("^[" + re.escape("".join(FORMULA_STARTS)) + "]")
#: Control characters that openpyxl refuses to write into a cell (XML 1.0 forbids them).
_ILLEGAL_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def neutralise(column: pd.Series) -> pd.Series:
    """A text column for a CSV cell: a quote before a formula-like start, and before one after any semicolon or
    line break (reversible on import: store.spreadsheet_quotes)."""
    return quote_formula_starts(column)


def excel_safe(column: pd.Series) -> pd.Series:
    """A text column ready for an Excel cell (never split): the control characters XML forbids removed; a
    formula-like value is kept as written, for its cell to be marked as text (`formula_like`)."""
    return column.astype("string").str.replace(_ILLEGAL_XML, "", regex=True)


def formula_like(column: pd.Series) -> np.ndarray:
    """Which values of a text column a spreadsheet could take for a formula, by their start."""
    return column.astype("string").str.match(_FORMULA_START).fillna(False).to_numpy(dtype=bool)
