"""Databases for the speed benchmark: fresh ones, the cohort imported through the real importer, and the bare-SQL floors.

A floor is what the machine does for the same rows with no KetaWatch code in the way: for the
import, plain INSERTs through the driver's executemany (COPY on PostgreSQL, where one INSERT per
row is slower than the importer itself); for reads, a raw cursor's fetchall.
"""

from __future__ import annotations

import statistics
import time
import uuid
from pathlib import Path
from typing import Callable

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from store.db import forget_engines, make_engine, normalise_url, upgrade
from store.frames import CHECKIN_DTYPES, PATIENT_DTYPES, SESSION_DTYPES
from store.importer import import_folder

#: The clinical tables an import fills, in an order that satisfies the foreign keys.
IMPORTED_TABLES = ("patient", "infusion_session", "side_effect_event", "check_in")


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    """Median wall-clock seconds of `repeats` calls of `fn`."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


class Databases:
    """Fresh, empty databases: SQLite files in `folder`, or new databases on the PostgreSQL server `server_url`."""

    def __init__(self, folder: Path, server_url: str | None = None):
        self.folder = Path(folder)
        self.server_url = normalise_url(server_url) if server_url else None
        self._made: list[str] = []
        if self.server_url and not self.server_url.startswith("postgresql"):
            raise SystemExit("--db must name a PostgreSQL server, e.g. postgresql+psycopg://postgres@127.0.0.1:5432/postgres")

    def _admin(self) -> Engine:
        return create_engine(self.server_url, isolation_level="AUTOCOMMIT")

    def new(self, label: str) -> str:
        """The URL of a new, empty (unmigrated) database."""
        if self.server_url is None:
            path = self.folder / f"{label}-{uuid.uuid4().hex[:6]}.db"
            url = f"sqlite:///{path}"
        else:
            name = f"kw_bench_{label.replace('-', '_')}_{uuid.uuid4().hex[:8]}"
            admin = self._admin()
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            admin.dispose()
            url = make_url(self.server_url).set(database=name).render_as_string(hide_password=False)
        self._made.append(url)
        return url

    def drop(self, url: str) -> None:
        """Remove one database made here (closing KetaWatch's engines first)."""
        forget_engines()
        if url.startswith("sqlite"):
            path = Path(make_url(url).database)
            for suffix in ("", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
        else:
            admin = self._admin()
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
            admin.dispose()
        if url in self._made:
            self._made.remove(url)

    def drop_all(self) -> None:
        for url in list(self._made):
            self.drop(url)


def migrated(url: str) -> Engine:
    """A KetaWatch engine on `url` with the schema at head."""
    engine = make_engine(url)
    upgrade(engine)
    return engine


def timed_import(dbs: Databases, folder: Path, label: str) -> tuple[float, str]:
    """Seconds of `store.importer.import_folder` into a new, migrated database, and that database's URL."""
    url = dbs.new(label)
    engine = migrated(url)
    start = time.perf_counter()
    import_folder(engine, folder, actor="bench")
    seconds = time.perf_counter() - start
    engine.dispose()
    return seconds, url


def _placeholder(engine: Engine) -> str:
    return "?" if engine.dialect.paramstyle == "qmark" else "%s"


def table_rows(engine: Engine, *, where: str = "") -> dict[str, tuple[list[str], list[tuple]]]:
    """Every row of the imported tables as the driver returns them, with the column names."""
    out = {}
    conn = engine.raw_connection()
    try:
        cur = conn.cursor()
        for table in IMPORTED_TABLES:
            cur.execute(f"SELECT * FROM {table} {where}")
            out[table] = ([d[0] for d in cur.description], cur.fetchall())
        cur.close()
        conn.rollback()
    finally:
        conn.close()
    return out


def table_columns(engine: Engine) -> dict[str, list[str]]:
    """The column names of the imported tables."""
    return {table: columns for table, (columns, _) in table_rows(engine, where="WHERE 1 = 0").items()}


def timed_bare_insert(dbs: Databases, rows: dict[str, tuple[list[str], list[tuple]]], label: str) -> float:
    """Seconds to put the same rows into a new migrated database in one transaction, no validation: plain INSERTs
    through executemany on SQLite, COPY on PostgreSQL."""
    url = dbs.new(label)
    engine = migrated(url)
    mark = _placeholder(engine)
    conn = engine.raw_connection()
    try:
        cur = conn.cursor()
        start = time.perf_counter()
        if engine.dialect.name == "sqlite":
            cur.execute("BEGIN")
        for table in IMPORTED_TABLES:
            columns, values = rows[table]
            if not values:
                continue
            if engine.dialect.name == "postgresql":
                # psycopg's executemany sends one INSERT per row, slower than the importer's multi-row INSERTs
                # and so no floor: PostgreSQL's own bulk load is.
                with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in values:
                        copy.write_row(row)
            else:
                cur.executemany(
                    f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))})", values
                )
        conn.commit()
        seconds = time.perf_counter() - start
        cur.close()
    finally:
        conn.close()
    engine.dispose()
    dbs.drop(url)
    return seconds


def _columns(dtypes: dict[str, str], table_columns: list[str]) -> str:
    return ", ".join(c for c in dtypes if c in table_columns)


class BareReads:
    """The SELECTs behind the records a page or command needs, run on a raw DBAPI cursor and fetched whole."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.mark = _placeholder(engine)
        names = table_columns(engine)
        self.statements = {
            "patient": f"SELECT {_columns(PATIENT_DTYPES, names['patient'])} FROM patient WHERE voided_at IS NULL",
            "infusion_session": f"SELECT id, {_columns(SESSION_DTYPES, names['infusion_session'])} FROM infusion_session "
                                "WHERE voided_at IS NULL",
            "side_effect_event": "SELECT session_id, effect, severity FROM side_effect_event WHERE superseded_at IS NULL",
            "check_in": f"SELECT {_columns(CHECKIN_DTYPES, names['check_in'])} FROM check_in WHERE voided_at IS NULL",
        }

    def run(self, statements: list[tuple[str, tuple]]) -> int:
        """Execute and fetch every statement on one raw connection; the number of rows fetched."""
        conn = self.engine.raw_connection()
        try:
            cur = conn.cursor()
            count = 0
            for sql, params in statements:
                cur.execute(sql, params)
                count += len(cur.fetchall())
            cur.close()
            conn.rollback()
        finally:
            conn.close()
        return count

    def everyone(self) -> list[tuple[str, tuple]]:
        """Every live patient, session (with its side effects) and check-in: what `flags` and the caseload read."""
        return [(sql, ()) for sql in self.statements.values()]

    def one_patient(self, patient_id: str) -> list[tuple[str, tuple]]:
        """One patient's live rows and alert reviews: what the patient page and the patient PDF read."""
        m, s, p = self.mark, self.statements, (patient_id,)
        return [
            (s["patient"] + f" AND patient_id = {m}", p),
            (s["infusion_session"] + f" AND patient_id = {m}", p),
            ("SELECT e.session_id, e.effect, e.severity FROM side_effect_event e JOIN infusion_session s "
             f"ON s.id = e.session_id WHERE e.superseded_at IS NULL AND s.patient_id = {m}", p),
            (s["check_in"] + f" AND patient_id = {m}", p),
            (f"SELECT * FROM alert_review WHERE patient_id = {m}", p),
        ]
