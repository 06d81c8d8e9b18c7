"""`ketawatch import`: load a folder of CONTRACT section 2 CSV files, all or nothing.

Every problem in every file is collected as `FILE:LINE: COLUMN: message` before anything is
written; a row that is already in the database unchanged is skipped (so re-importing a folder
adds nothing), and a row that collides with a stored record but differs from it is an error.
Rows are written with bulk inserts inside one transaction.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from sqlalchemy import Engine, insert, select
from sqlmodel import Session

from store.audit import record_event
from store.db import for_writing
from store.models import CheckIn, InfusionSession, Patient, SideEffectEvent
from store.validation import CHECKIN_RULES, PATIENT_RULES, SESSION_RULES, Validator
from store.vocabulary import CHECKIN_COLUMNS, PATIENT_COLUMNS, SESSION_COLUMNS

FILES = {"patients": "patients.csv", "sessions": "sessions.csv", "checkins": "checkins.csv"}
COLUMNS = {"patients": PATIENT_COLUMNS, "sessions": SESSION_COLUMNS, "checkins": CHECKIN_COLUMNS}
RULES = {"patients": PATIENT_RULES, "sessions": SESSION_RULES, "checkins": CHECKIN_RULES}
KEY_FIELD = {"sessions": "session_at", "checkins": "reported_at"}


class ImportRejected(Exception):
    """The folder cannot be imported; `problems` lists every reason, one line each."""

    def __init__(self, problems: list[str]):
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = problems


@dataclass
class ImportReport:
    """What an import found: per file, rows new and rows already present; and whether it wrote."""

    new: dict[str, int] = field(default_factory=lambda: {k: 0 for k in FILES})
    unchanged: dict[str, int] = field(default_factory=lambda: {k: 0 for k in FILES})
    written: bool = False

    def summary(self) -> str:
        parts = [f"{FILES[k]}: {self.new[k]} new, {self.unchanged[k]} already present" for k in FILES]
        return "; ".join(parts)


@dataclass
class _Row:
    line: int
    values: dict[str, Any]


def _read(path: Path, kind: str, problems: list[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """Rows of one CSV file with their line numbers; header problems go to `problems`."""
    name = path.name
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        problems.append(f"{name}:0: -: cannot be read ({exc.strerror})")
        return
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
        except (csv.Error, UnicodeDecodeError) as exc:
            problems.append(f"{name}:1: -: not a readable UTF-8 CSV file ({exc})")
            return
        if header is None:
            problems.append(f"{name}:1: -: the file is empty; it needs at least a header row")
            return
        header = [h.strip() for h in header]
        known = COLUMNS[kind]
        bad_header = False
        for column in header:
            if column not in known:
                problems.append(f"{name}:1: {column or '(blank)'}: unknown column; allowed: {', '.join(known)}")
                bad_header = True
        for column in {c for c in header if header.count(c) > 1}:
            problems.append(f"{name}:1: {column}: the column appears more than once")
            bad_header = True
        for column, rule in RULES[kind].items():
            if rule.required and column in known and column not in header:
                problems.append(f"{name}:1: {column}: required column is missing")
                bad_header = True
        if bad_header:
            return
        line = reader.line_num
        try:
            for cells in reader:
                start, line = line + 1, reader.line_num
                if not cells or all(c.strip() == "" for c in cells):
                    continue
                if len(cells) != len(header):
                    problems.append(f"{name}:{start}: -: has {len(cells)} cells but the header has {len(header)} columns")
                    continue
                yield start, dict(zip(header, cells))
        except (csv.Error, UnicodeDecodeError) as exc:
            problems.append(f"{name}:{line + 1}: -: the file cannot be read from here on ({exc})")


def _comparable(kind: str, values: dict[str, Any]) -> tuple:
    columns = [c for c in COLUMNS[kind] if c != "patient_id"]
    out = []
    for c in columns:
        v = values.get(c)
        if c == "side_effects":
            v = tuple(sorted(v or ()))
        elif c == "notes" and v == "":
            v = None
        elif isinstance(v, float) and v.is_integer():
            v = int(v)
        elif isinstance(v, datetime):
            v = v.astimezone(timezone.utc)
        out.append(v)
    return tuple(out)


def _differences(kind: str, new: dict[str, Any], old: dict[str, Any]) -> list[str]:
    columns = [c for c in COLUMNS[kind] if c != "patient_id"]
    a, b = _comparable(kind, new), _comparable(kind, old)
    return [c for c, x, y in zip(columns, a, b) if x != y]


class _Importer:
    """Holds one import's parsed rows, the database's existing keys, and the problems found."""

    def __init__(self, engine: Engine, folder: Path, validator: Validator):
        self.engine = engine
        self.folder = folder
        self.validator = validator
        self.problems: list[str] = []
        self.rows: dict[str, list[_Row]] = {k: [] for k in FILES}
        self.declared_patients: set[str] = set()  # every patient_id in patients.csv, valid row or not
        self.report = ImportReport()

    def parse(self) -> None:
        if not self.folder.is_dir():
            self.problems.append(f"{self.folder}:0: -: is not a folder")
            return
        present = [k for k, f in FILES.items() if (self.folder / f).is_file()]
        if not present:
            self.problems.append(f"{self.folder}:0: -: contains none of patients.csv, sessions.csv, checkins.csv")
            return
        validate = {"patients": self.validator.patient, "sessions": self.validator.session, "checkins": self.validator.checkin}
        for kind in present:
            name = FILES[kind]
            seen: dict[tuple, int] = {}
            for line, raw in _read(self.folder / name, kind, self.problems):
                if kind == "patients":
                    self.declared_patients.add(str(raw.get("patient_id", "")).strip())
                clean, problems = validate[kind](raw)
                for p in problems:
                    self.problems.append(f"{name}:{line}: {p.column}: {p.message}")
                if problems:
                    continue
                key = (clean["patient_id"],) if kind == "patients" else (clean["patient_id"], clean[KEY_FIELD[kind]])
                if key in seen:
                    what = "patient" if kind == "patients" else "patient and time"
                    self.problems.append(
                        f"{name}:{line}: {'patient_id' if kind == 'patients' else KEY_FIELD[kind]}: "
                        f"the same {what} already appears at line {seen[key]}"
                    )
                    continue
                seen[key] = line
                self.rows[kind].append(_Row(line, clean))

    def compare_with_database(self, db: Session) -> None:
        file_patients = {r.values["patient_id"]: r for r in self.rows["patients"]}
        referenced = set(file_patients)
        for kind in ("sessions", "checkins"):
            referenced |= {r.values["patient_id"] for r in self.rows[kind]}
        existing_patients = {}
        if referenced:
            for chunk in _chunks(sorted(referenced), 900):
                for p in db.exec(select(Patient).where(Patient.patient_id.in_(chunk))).scalars():
                    existing_patients[p.patient_id] = p
        new_patients = []
        for pid, row in file_patients.items():
            old = existing_patients.get(pid)
            if old is None:
                new_patients.append(row)
                continue
            diff = _differences("patients", row.values, old.model_dump())
            if diff:
                self.problems.append(
                    f"patients.csv:{row.line}: {diff[0]}: patient {pid} is already in the database with different "
                    f"{', '.join(diff)}; change it in KetaWatch (as an amendment) rather than by import"
                )
            else:
                self.report.unchanged["patients"] += 1
        self.rows["patients"] = new_patients
        self.report.new["patients"] = len(new_patients)
        # A session of a patient whose own row has a problem is not reported a second time as "unknown".
        known = set(file_patients) | set(existing_patients) | self.declared_patients
        for kind, table, time_col in (
            ("sessions", InfusionSession, "session_at"),
            ("checkins", CheckIn, "reported_at"),
        ):
            name = FILES[kind]
            rows = []
            for row in self.rows[kind]:
                if row.values["patient_id"] not in known:
                    self.problems.append(
                        f"{name}:{row.line}: patient_id: patient {row.values['patient_id']} is not in patients.csv or the database"
                    )
                else:
                    rows.append(row)
            ids = sorted({r.values["patient_id"] for r in rows} & set(existing_patients))
            stored: dict[tuple, dict[str, Any]] = {}
            voided: dict[tuple, dict[str, Any]] = {}  # a voided record is never brought back by an import
            for chunk in _chunks(ids, 900):
                query = select(table).where(table.patient_id.in_(chunk))
                for rec in db.exec(query).scalars():
                    target = stored if rec.voided_at is None else voided
                    target[(rec.patient_id, getattr(rec, time_col))] = rec.model_dump()
            if kind == "sessions" and (stored or voided):
                by_id = {v["id"]: v for v in (*stored.values(), *voided.values())}
                for chunk in _chunks(sorted(by_id), 900):
                    q = select(SideEffectEvent).where(
                        SideEffectEvent.session_id.in_(chunk), SideEffectEvent.superseded_at.is_(None)
                    )
                    for se in db.exec(q).scalars():
                        by_id[se.session_id].setdefault("side_effects", []).append((se.effect, se.severity))
            fresh = []
            for row in rows:
                key = (row.values["patient_id"], row.values[time_col])
                old = stored.get(key)
                if old is None and key in voided:
                    gone = voided[key]
                    if _differences(kind, row.values, gone):
                        when = gone["voided_at"].strftime("%Y-%m-%d")
                        self.problems.append(
                            f"{name}:{row.line}: {time_col}: a {kind[:-1].replace('checkin', 'check-in')} for patient "
                            f"{row.values['patient_id']} at this time was voided on {when} by {gone['voided_by']} "
                            f"({gone['void_reason']}); an import does not replace it: record it in KetaWatch if it is needed"
                        )
                    else:
                        self.report.unchanged[kind] += 1  # the same record, deliberately voided: it stays voided
                    continue
                if old is None:
                    fresh.append(row)
                    continue
                diff = _differences(kind, row.values, old)
                if diff:
                    self.problems.append(
                        f"{name}:{row.line}: {diff[0]}: a {kind[:-1].replace('checkin', 'check-in')} for patient "
                        f"{row.values['patient_id']} at this time is already recorded with different {', '.join(diff)}; "
                        "amend it in KetaWatch rather than by import"
                    )
                else:
                    self.report.unchanged[kind] += 1
            self.rows[kind] = fresh
            self.report.new[kind] = len(fresh)

    def write(self, db: Session, actor: str, now: datetime) -> None:
        meta = {"recorded_at": now, "recorded_by": actor, "version": 1}
        if self.rows["patients"]:
            db.execute(insert(Patient.__table__), [{**r.values, **meta} for r in self.rows["patients"]])
        if self.rows["sessions"]:
            table = InfusionSession.__table__
            payload = [
                {**{k: v for k, v in r.values.items() if k != "side_effects"}, **meta} for r in self.rows["sessions"]
            ]
            result = db.execute(
                insert(table).returning(table.c.id, sort_by_parameter_order=True), payload
            )
            ids = [row[0] for row in result]
            effects = [
                {"session_id": sid, "effect": effect, "severity": severity}
                for sid, r in zip(ids, self.rows["sessions"])
                for effect, severity in r.values["side_effects"]
            ]
            if effects:
                db.execute(insert(SideEffectEvent.__table__), effects)
        if self.rows["checkins"]:
            db.execute(insert(CheckIn.__table__), [{**r.values, **meta} for r in self.rows["checkins"]])
        patient_ids = sorted(
            {r.values["patient_id"] for kind in FILES for r in self.rows[kind]}
        )
        record_event(
            db,
            actor=actor,
            action="import",
            at=now,
            folder=str(self.folder.resolve()),
            new=self.report.new,
            unchanged=self.report.unchanged,
            patients=patient_ids,
        )


def _in_file_order(problems: list[str]) -> list[str]:
    """Problems ordered as a person reads the folder: patients, sessions, check-ins, each by line."""
    order = {name: i for i, name in enumerate(FILES.values())}

    def key(problem: str) -> tuple[int, int]:
        name, _, rest = problem.partition(":")
        line = rest.partition(":")[0]
        return (order.get(name, -1), int(line) if line.isdigit() else 0)

    return sorted(problems, key=key)


def _chunks(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def import_folder(
    engine: Engine,
    folder: Path | str,
    *,
    actor: str,
    dry_run: bool = False,
    validator: Validator | None = None,
) -> ImportReport:
    """Validate every file in `folder`, then write all new rows in one transaction or nothing at all.

    Raises `ImportRejected` with every problem if anything is wrong; the database is unchanged.
    """
    validator = validator or Validator()
    job = _Importer(engine, Path(folder), validator)
    job.parse()
    if not job.folder.is_dir():
        raise ImportRejected(job.problems)
    with Session(for_writing(engine)) as db, db.begin():
        job.compare_with_database(db)  # also when rows had problems: every problem is reported at once
        if job.problems:
            raise ImportRejected(_in_file_order(job.problems))
        if dry_run:
            return job.report
        job.write(db, actor, validator.now)
    job.report.written = True
    return job.report
