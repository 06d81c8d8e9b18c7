"""Validating a whole file column by column, so a bulk import is fast yet says exactly what the row validators say.

A column of a large import holds few distinct cells (scores 0-3, a few thousand patient ids, one
time per record at most), so each distinct cell is parsed once by `Validator.field` (the rules of
store.validation) and the result is mapped onto every row that holds it. The checks across the fields
of a record come from `Validator.row_checks`. Any row this pass cannot prove clean is validated again
by the record validator in `store.validation.VALIDATE`, which gives its problems (messages, order) and
its values, so nothing here words a problem or repeats a limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from store.validation import DEFAULTS, RULES, VALIDATE, Problem, Rule, Validator


@dataclass
class CheckedRows:
    """Parsed values per field for every row, and the problems of the rows that have any (by row index)."""

    columns: dict[str, list[Any]]
    problems: dict[int, list[Problem]]


def check_rows(validator: Validator, kind: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> CheckedRows:
    """Validate `rows` (cells in `header` order) as records of `kind`; a row with problems keeps no values."""
    n = len(rows)
    cells_by_column = dict(zip(header, zip(*rows))) if rows else {}
    columns: dict[str, list[Any]] = {}
    suspects: set[int] = set()
    for name, rule in RULES[kind].items():
        cells = cells_by_column.get(name, (None,) * n)  # a column left out is blank in every row
        columns[name] = _parse_column(validator, rule, cells, suspects)
    for fields, agree in validator.row_checks(kind):
        combos = list(zip(*(columns[f] for f in fields)))
        disagree = {combo for combo in set(combos) if not agree(*combo)}
        if disagree:
            suspects.update(i for i, combo in enumerate(combos) if combo in disagree)
    for name, default in DEFAULTS[kind].items():
        columns[name] = [default if v is None else v for v in columns[name]]
    problems: dict[int, list[Problem]] = {}
    for i in sorted(suspects):
        clean, row_problems = VALIDATE[kind](validator, dict(zip(header, rows[i])))
        if row_problems:
            problems[i] = row_problems
        else:  # cannot happen with the rules as they are, but the record validator has the last word
            for name, value in clean.items():
                columns[name][i] = value
    return CheckedRows(columns, problems)


def _parse_column(validator: Validator, rule: Rule, cells: Sequence[Any], suspects: set[int]) -> list[Any]:
    """The parsed value of every cell; the rows of cells with a problem are added to `suspects`."""
    parsed: dict[Any, Any] = {}
    bad: set[Any] = set()
    for cell in set(cells):
        parsed[cell], message = validator.field(rule, cell)
        if message is not None:
            bad.add(cell)
    values = list(map(parsed.__getitem__, cells))
    if rule.kind == "side_effects":  # each record gets its own list
        values = [list(v or ()) for v in values]
    if bad:
        suspects.update(i for i, cell in enumerate(cells) if cell in bad)
    return values
