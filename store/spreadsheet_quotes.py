"""The single quote a CSV export puts before formula-like text, and its removal on import, so a re-import keeps notes as typed.

OWASP's advice against CSV injection is a leading `'` before a cell that starts with `=`, `+`, `-`, `@`, a tab or a
carriage return. KetaWatch adds it at the start of the free-text columns and after each `;` or line break inside them
(where Excel splits a CSV whose list separator is `;`). To make that reversible, a quote is also added before quotes
that are already followed by such a character, and the importer takes exactly one away at those places: a note
"Plan:\\n- sleep" exported as "Plan:\\n'- sleep" comes back as "Plan:\\n- sleep".
"""

from __future__ import annotations

import re

import pandas as pd

from store.validation import FORMULA_STARTS

#: The import format's columns people type into: quoted on export, unquoted on import (identifiers refuse such
#: starts, and every other column holds numbers, dates or fixed words).
FREE_TEXT_COLUMNS = ("display_name", "clinician", "notes")

_STARTS = "[" + re.escape("".join(FORMULA_STARTS)) + "]"
#: A place where a spreadsheet may start a cell (the start, or after `;` or a line break) followed by any quotes and a
#: formula character: the export adds one quote there.
_TO_QUOTE = re.compile("(^|[;\n\r])(?='*" + _STARTS + ")")
#: The same place holding the quote an export added: the import takes it away.
_QUOTED = re.compile("(^|[;\n\r])'(?='*" + _STARTS + ")")


def quote_formula_starts(column: pd.Series) -> pd.Series:
    """A text column for a CSV cell: one quote added at every place a spreadsheet could read a formula (missing stays
    missing)."""
    return column.astype("string").str.replace(_TO_QUOTE, r"\1'", regex=True)


def unquote_formula_starts(text: str) -> str:
    """An imported free-text cell with the quotes `quote_formula_starts` added taken away again."""
    return _QUOTED.sub(r"\1", text)
