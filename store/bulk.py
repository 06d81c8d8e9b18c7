"""Writing many new rows at once through the database driver itself: multi-row INSERTs on SQLite, COPY on PostgreSQL.

An ORM or SQLAlchemy Core insert of 100,000 rows spends most of its time building and parsing
statements; the driver's own bulk paths do not. The rows go into the caller's transaction (so an
import stays all-or-nothing), and every value goes through its column's SQLAlchemy type first, so
what is stored is exactly what an ordinary insert would store.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from typing import Any, Callable, Iterator, Mapping, Sequence

from sqlalchemy import Column, Dialect, Table, func, select, text
from sqlmodel import Session

from store.types import UTCDateTime

DIALECTS = ("sqlite", "postgresql")
#: Parameters per SQLite INSERT: fewer means more statements, far more means slow preparing (measured).
_SQLITE_PARAMETERS = 8000


def new_ids(db: Session, table: Table, count: int) -> list[int]:
    """`count` unused ids for `table`, ascending, to be written explicitly (so dependent rows can refer to them).

    On SQLite the importer's transaction holds the write lock, so the ids above the largest stay free; on
    PostgreSQL they are drawn from the column's own sequence, as a default id would be.
    """
    if count == 0:
        return []
    if _dialect(db).name == "sqlite":
        top = db.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar_one()
        return list(range(top + 1, top + 1 + count))
    rows = db.execute(
        text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :count)"),
        {"table": table.name, "count": count},
    )
    return sorted(r[0] for r in rows)


def insert_columns(
    db: Session, table: Table, columns: Mapping[str, Sequence[Any]], same: Mapping[str, Any] | None = None
) -> int:
    """Insert one row per position of the lists in `columns`, with the values of `same` in every row.

    Returns the number of rows written. The lists must all have the same length.
    """
    same = same or {}
    lengths = {len(values) for values in columns.values()}
    if len(lengths) > 1:
        raise ValueError(f"columns of different lengths for {table.name}: {sorted(lengths)}")
    count = lengths.pop() if lengths else 0
    if count == 0:
        return 0
    dialect = _dialect(db)
    names = [*columns, *same]
    values: list[Sequence[Any]] = []
    for name in names:
        process = _bind_processor(table.c[name], dialect)
        if name in same:
            values.append([process(same[name]) if process else same[name]] * count)
        else:
            values.append(list(map(process, columns[name])) if process else columns[name])
    raw = db.connection().connection.driver_connection
    cursor = raw.cursor()
    try:
        if dialect.name == "sqlite":
            _sqlite_insert(cursor, dialect, table, names, values, count)
        else:
            _copy(cursor, dialect, table, names, zip(*values))
    finally:
        cursor.close()
    return count


def _sqlite_insert(cursor: Any, dialect: Dialect, table: Table, names: list[str], values: list[Sequence[Any]], count: int) -> None:
    """INSERT ... VALUES (...), (...), ... with about 8,000 parameters per statement (rows = that / columns)."""
    quote = dialect.identifier_preparer.quote
    head = f"INSERT INTO {quote(table.name)} ({', '.join(quote(n) for n in names)}) VALUES "
    width = len(names)
    one = "(" + ", ".join("?" * width) + ")"
    limit = min(_SQLITE_PARAMETERS, cursor.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
    per = max(1, limit // width)
    full = head + ", ".join([one] * per)
    for start in range(0, count, per):
        rows = min(per, count - start)
        flat: list[Any] = [None] * (rows * width)  # row after row, column after column
        for j, column in enumerate(values):
            flat[j::width] = column[start : start + rows]
        cursor.execute(full if rows == per else head + ", ".join([one] * rows), flat)


def _copy(cursor: Any, dialect: Dialect, table: Table, names: list[str], rows: Iterator[tuple]) -> None:
    """COPY ... FROM STDIN in binary, typed with the columns' own types as the server reports them."""
    quote = dialect.identifier_preparer.quote
    oids = dict(
        cursor.execute(
            "SELECT attname, atttypid FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0",
            (table.name,),
        ).fetchall()
    )
    statement = f"COPY {quote(table.name)} ({', '.join(quote(n) for n in names)}) FROM STDIN (FORMAT BINARY)"
    with cursor.copy(statement) as copy:
        copy.set_types([oids[n] for n in names])
        for row in rows:
            copy.write_row(row)


def _bind_processor(column: Column, dialect: Dialect) -> Callable[[Any], Any] | None:
    if dialect.name == "sqlite" and isinstance(column.type, UTCDateTime):
        return sqlite_utc_text
    return column.type._cached_bind_processor(dialect)


def sqlite_utc_text(value: datetime | None) -> str | None:
    """What `UTCDateTime` stores on SQLite for `value` (naive UTC as 'YYYY-MM-DD HH:MM:SS.ffffff'), made faster."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime: store times as timezone-aware UTC")
    utc = value if value.tzinfo is timezone.utc else value.astimezone(timezone.utc)
    return utc.isoformat(" ", "microseconds")[:26]  # without the "+00:00"


def _dialect(db: Session) -> Dialect:
    dialect = db.connection().dialect
    if dialect.name not in DIALECTS:
        raise NotImplementedError(f"bulk writes support {' and '.join(DIALECTS)}, not {dialect.name}")
    return dialect
