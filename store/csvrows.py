"""Reading one import CSV file into its header and rows, with line numbers, so problems can name the line.

Header problems (unknown, repeated or missing required columns), rows with the wrong number of cells and
unreadable text are added to `problems` as `FILE:LINE: COLUMN: message`; blank lines are skipped.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable


#: The longest cell read (Python's csv module stops at 131,072 characters by default): a longer note is then refused by
#: its own rule ("at most 5000 characters") and the file's later problems are still found (IT review: one long cell
#: stopped the reading, and a refused dose two lines on was never reported).
CELL_LIMIT = 16 * 1024 * 1024


@dataclass
class CsvRows:
    """The cleaned header, and for every data row its first line number and its cells."""

    header: list[str]
    lines: list[int] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)


def read_rows(path: Path, known: tuple[str, ...], required: Iterable[str], problems: list[str]) -> CsvRows | None:
    """The rows of `path`, or None if its header cannot be used (the reasons are in `problems`)."""
    before = csv.field_size_limit(CELL_LIMIT)  # the module's one setting, put back after
    try:
        return _read_rows(path, known, required, problems)
    finally:
        csv.field_size_limit(before)


def _read_rows(path: Path, known: tuple[str, ...], required: Iterable[str], problems: list[str]) -> CsvRows | None:
    name = path.name
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        problems.append(f"{name}:0: -: cannot be read ({exc.strerror})")
        return None
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
        except UnicodeDecodeError:
            problems.append(_not_utf8(path))
            return None
        except csv.Error as exc:
            problems.append(f"{name}:1: -: not a readable CSV file ({exc})")
            return None
        if header is None:
            problems.append(f"{name}:1: -: the file is empty; it needs at least a header row")
            return None
        header = [h.strip() for h in header]
        if _semicolon_separated(header, known):  # its every column "unknown", every required one "missing": say why
            problems.append(f"{name}:1: -: this file looks semicolon-separated; save it as comma-separated CSV (UTF-8)")
            return None
        if not _header_ok(name, header, known, required, problems):
            return None
        out = CsvRows(header)
        width = len(header)
        line = reader.line_num
        try:
            for cells in reader:
                start, line = line + 1, reader.line_num
                if len(cells) == width and (cells[0] and not cells[0].isspace()):
                    out.lines.append(start)  # the common case: a full row with a first cell
                    out.rows.append(cells)
                    continue
                if not cells or all(c.strip() == "" for c in cells):
                    continue
                if len(cells) != width:
                    problems.append(f"{name}:{start}: -: {_wrong_width(cells, width, start, line)}")
                    continue
                out.lines.append(start)
                out.rows.append(cells)
        except UnicodeDecodeError:
            problems.append(_not_utf8(path))
        except csv.Error as exc:
            problems.append(f"{name}:{line + 1}: -: the file cannot be read from here on ({exc})")
        return out


def _wrong_width(cells: list[str], width: int, start: int, end: int) -> str:
    """Why a row has the wrong number of cells; a quote left open swallows the lines after it into one cell."""
    said = f"has {len(cells)} cell{'s' if len(cells) != 1 else ''} but the header has {width} columns"
    spanning = [i for i, cell in enumerate(cells) if "\n" in cell or "\r" in cell]
    # An open quote swallows the lines after it into one cell, so the row comes out short; a row with too
    # many cells and a (closed) quoted line break is an extra cell, not an open quote.
    if end > start and spanning and len(cells) < width:
        opened = start + sum(cell.count("\n") for cell in cells[:spanning[0]])
        said += (f"; lines {start} to {end} were read as one row, because a quotation mark (\") on line {opened} "
                 "is not closed: close it, or remove it")
    return said


def _not_utf8(path: Path) -> str:
    """Name the line of the first byte that is not UTF-8 (text is decoded in blocks, so the reader's line is not it)."""
    raw = path.read_bytes()
    try:
        raw.decode("utf-8-sig")
        line, detail = 1, ""
    except UnicodeDecodeError as exc:
        line, detail = raw.count(b"\n", 0, exc.start) + 1, f" (byte 0x{raw[exc.start]:02x})"
    return (f"{path.name}:{line}: -: not UTF-8 text{detail}; save the file as UTF-8 (in Excel: CSV UTF-8) "
            "and import it again")


def _semicolon_separated(header: list[str], known: tuple[str, ...]) -> bool:
    """True for a header written with `;` between columns, as Excel saves CSV where the decimal separator is a comma:
    one column holding a `;`, or columns that split on `;` into known ones."""
    if not any(";" in column for column in header):
        return False
    parts = [part.strip() for column in header for part in column.split(";")]
    return len(header) == 1 or all(part in known for part in parts)


def _header_ok(name: str, header: list[str], known: tuple[str, ...], required: Iterable[str], problems: list[str]) -> bool:
    """False when the rows cannot be read against the header (a repeated or missing required column). An unknown
    column is a problem too, but the rows are still checked without it, so every problem of the file is reported."""
    ok = True
    for column in header:
        if column not in known:
            problems.append(f"{name}:1: {column or '(blank)'}: unknown column; allowed: {', '.join(known)}")
    for column in {c for c in header if header.count(c) > 1}:
        problems.append(f"{name}:1: {column}: the column appears more than once")
        ok = False
    for column in required:
        if column in known and column not in header:
            problems.append(f"{name}:1: {column}: required column is missing")
            ok = False
    return ok
