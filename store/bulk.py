"""Writing many new rows at once through the database driver itself: executemany on SQLite, COPY on PostgreSQL.

An ORM or SQLAlchemy Core insert of 100,000 rows spends most of its time building and parsing
statements; the driver's own bulk paths do not. The rows go into the caller's transaction (so an
import stays all-or-nothing), and every value goes through its column's SQLAlchemy type first, so
what is stored is exactly what an ordinary insert would store.
"""

from __future__ import annotations

from itertools import repeat
from typing import Any, Iterable, Mapping, Sequence

from sqlalchemy import Table, func, select, text
from sqlmodel import Session

DIALECTS = ("sqlite", "postgresql")


def new_ids(db: Session, table: Table, count: int) -> list[int]:
    """`count` unused ids for `table`, ascending, to be written explicitly (so dependent rows can refer to them).

    On SQLite the importer's transaction holds the write lock, so the ids above the largest stay free; on
    PostgreSQL they are drawn from the column's own sequence, as a default id would be.
    """
    if count == 0:
        return []
    dialect = _dialect(db)
    if dialect == "sqlite":
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
    dialect = db.connection().dialect
    _dialect(db)  # refuses a database it cannot write to in bulk
    names = [*columns, *same]
    data: list[Iterable[Any]] = []
    for name in names:
        process = table.c[name].type._cached_bind_processor(dialect)
        if name in same:
            data.append(repeat(process(same[name]) if process else same[name], count))
        else:
            values = columns[name]
            data.append(map(process, values) if process else values)
    rows = zip(*data)
    cursor = db.connection().connection.driver_connection.cursor()
    quote = dialect.identifier_preparer.quote
    column_list = ", ".join(quote(n) for n in names)
    try:
        if dialect.name == "sqlite":
            marks = ", ".join("?" * len(names))
            cursor.executemany(f"INSERT INTO {quote(table.name)} ({column_list}) VALUES ({marks})", rows)
        else:
            with cursor.copy(f"COPY {quote(table.name)} ({column_list}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
    finally:
        cursor.close()
    return count


def _dialect(db: Session) -> str:
    name = db.connection().dialect.name
    if name not in DIALECTS:
        raise NotImplementedError(f"bulk writes support {' and '.join(DIALECTS)}, not {name}")
    return name
