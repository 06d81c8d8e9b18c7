"""`ketawatch import`: load a folder of CONTRACT section 2 CSV files, all or nothing.

Every problem in every file is collected as `FILE:LINE: COLUMN: message` before anything is
written; a row that is already in the database unchanged is skipped (so re-importing a folder
adds nothing), and a row that collides with a stored record but differs from it is an error.
Files are checked column by column (store.columnar) and the new rows are written with the driver's
bulk path (store.bulk) inside one transaction.
"""

from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from store.audit import record_event
from store.bulk import insert_columns, new_ids
from store.columnar import CheckedRows, check_rows
from store.csvrows import CsvRows, read_rows
from store.db import for_writing
from store.gcpause import collector_paused
from store.models import CheckIn, InfusionSession, Patient, SideEffectEvent, User
from store.records import stored_ids_ignoring_case
from store.spreadsheet_quotes import FREE_TEXT_COLUMNS, unquote_formula_starts
from store.validation import RULES, SECOND_SESSION_REACH, Validator, look_alike_message, same_looking_id
from store.vocabulary import CHECKIN_COLUMNS, PATIENT_COLUMNS, SESSION_COLUMNS

_LOG = logging.getLogger(__name__)
FILES = {"patients": "patients.csv", "sessions": "sessions.csv", "checkins": "checkins.csv"}
COLUMNS = {"patients": PATIENT_COLUMNS, "sessions": SESSION_COLUMNS, "checkins": CHECKIN_COLUMNS}
KEY_FIELD = {"sessions": "session_at", "checkins": "reported_at"}

_HOLDS = {"patients.csv": "patients", "sessions.csv": "sessions", "checkins.csv": "check-ins"}


def _near_misses(folder: Path) -> list[str]:
    """A problem for each CSV file whose name is nearly one KetaWatch reads (Sessions.csv, checkin.csv): such a file
    would be skipped, and the import would look complete without its rows."""
    names = tuple(FILES.values())
    problems = []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() != ".csv" or path.name in names:
            continue
        near = difflib.get_close_matches(path.name.lower(), names, n=1, cutoff=0.8)
        if near:
            problems.append(f"{path.name}:0: -: not read, since KetaWatch reads only {', '.join(names)} (lower "
                            f"case); if it holds {_HOLDS[near[0]]}, name it {near[0]}")
    return problems

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
    #: What was imported as written but deserves a look (`FILE:LINE: COLUMN: ...`), e.g. a clinician with no account.
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{FILES[k]}: {self.new[k]} new, {self.unchanged[k]} already present" for k in FILES]
        return "; ".join(parts)


@dataclass
class _Batch:
    """The rows of one file, column by column, with the line each came from.

    `flawed` names, by row, the columns that had a problem (already reported). Such a row is never written, but it
    is still checked against the database and the file's other rows, so that its unknown patient or a collision is
    reported in the same run as its own problem (CONTRACT: every problem in every file).
    """

    lines: list[int]
    columns: dict[str, list[Any]]
    flawed: dict[int, frozenset[str]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.lines)

    def keep(self, indexes: list[int]) -> _Batch:
        """Only the rows at `indexes` (ascending, without repeats)."""
        if len(indexes) == len(self.lines):
            return self
        flawed = {new: self.flawed[old] for new, old in enumerate(indexes) if old in self.flawed}
        return _Batch([self.lines[i] for i in indexes], {c: [v[i] for i in indexes] for c, v in self.columns.items()},
                      flawed)

    def row(self, i: int) -> dict[str, Any]:
        return {c: v[i] for c, v in self.columns.items()}

    def row_against(self, i: int, stored: dict[str, Any]) -> dict[str, Any]:
        """Row `i` with its flawed columns taken from `stored`, so that only what could be read is said to differ."""
        return {**self.row(i), **{c: stored.get(c) for c in self.flawed.get(i, ())}}


#: The session columns `Validator.unusual_checked_session` reads.
_SESSION_ASKED = ("dose_mg", "weight_kg", "route", "session_at", "duration_min", "sbp_pre", "sbp_post", "dbp_pre", "dbp_post", "hr_pre",
                  "hr_post", "spo2_pre", "spo2_post")
_COMPARED = {kind: tuple(c for c in COLUMNS[kind] if c != "patient_id") for kind in FILES}
_PLAIN = {kind: tuple(c for c in columns if c != "side_effects") for kind, columns in _COMPARED.items()}


def _comparable(kind: str, values: dict[str, Any]) -> tuple:
    out = []
    for c in _COMPARED[kind]:
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
    plain = _PLAIN[kind]
    if [new.get(c) for c in plain] == [old.get(c) for c in plain] and (
        kind != "sessions" or sorted(new.get("side_effects") or ()) == sorted(old.get("side_effects") or ())
    ):
        return []  # equal as they are, so equal once made comparable: the common case of a re-import
    a, b = _comparable(kind, new), _comparable(kind, old)
    return [c for c, x, y in zip(_COMPARED[kind], a, b) if x != y]


class _Importer:
    """Holds one import's rows (those with problems too, never written), the stored keys, and the problems found."""

    def __init__(self, engine: Engine, folder: Path, validator: Validator):
        self.engine = engine
        self.folder = folder
        self.validator = validator
        self.problems: list[str] = []
        self.batches: dict[str, _Batch] = {k: _Batch([], {c: [] for c in RULES[k]}) for k in FILES}
        self.declared_patients: set[str] = set()  # every patient_id in patients.csv, valid row or not
        self.patients_unread = False  # patients.csv is there but could not be read: no patient is called unknown
        self.report = ImportReport()
        #: The stored live sessions of the file's patients, as (patient_id, time, weight): what a new session's
        #: 24-hour and weight questions are asked against, beside the file's other new sessions.
        self.stored_sessions: list[tuple[str, datetime, float | None]] = []

    def parse(self) -> None:
        if not self.folder.is_dir():
            self.problems.append(f"{self.folder}:0: -: " + ("is a file, not a folder" if self.folder.exists()
                                                            else "no such folder"))
            return
        for near_miss in _near_misses(self.folder):  # "Sessions.csv" beside patients.csv was skipped without a word
            self.problems.append(near_miss)
        present = [k for k, f in FILES.items() if (self.folder / f).is_file()]
        if not present and not self.problems:
            self.problems.append(f"{self.folder}:0: -: contains none of patients.csv, sessions.csv, checkins.csv")
            return
        for kind in present:
            name = FILES[kind]
            required = [c for c, rule in RULES[kind].items() if rule.required]
            table = read_rows(self.folder / name, COLUMNS[kind], required, self.problems)
            if table is None:
                self.patients_unread |= kind == "patients"
                continue
            _unquote_free_text(table)
            if kind == "patients":
                at = table.header.index("patient_id")
                self.declared_patients.update(cells[at].strip() for cells in table.rows)
            checked = check_rows(self.validator, kind, table.header, table.rows)
            for i, problems in checked.problems.items():
                self.problems.extend(f"{name}:{table.lines[i]}: {p.column}: {p.message}" for p in problems)
            flawed = {i: self._with_partners(kind, {p.column for p in problems}) for i, problems in checked.problems.items()}
            batch = _Batch(table.lines, checked.columns, flawed)
            self.batches[kind] = batch.keep(self._first_of_each(kind, table.lines, checked))

    def _with_partners(self, kind: str, columns: set[str]) -> frozenset[str]:
        """The columns with a problem and those read by the same check across fields (all five SDS items; both
        blood pressures): a blank SDS item beside the one the problem names is not a difference from a stored record."""
        for fields, _ in self.validator.row_checks(kind):
            if columns & set(fields):
                columns |= set(fields)
        return frozenset(columns)

    def _first_of_each(self, kind: str, lines: list[int], checked: CheckedRows) -> list[int]:
        """The rows whose patient can be read and whose record key has not appeared before; a repeat is a problem.

        A row with a problem of its own is kept (it is never written), so its other problems are still found.
        """
        pids = checked.columns["patient_id"]
        keys = pids if kind == "patients" else list(zip(pids, checked.columns[KEY_FIELD[kind]]))
        if not checked.problems and len(set(keys)) == len(keys):
            return list(range(len(keys)))
        column = "patient_id" if kind == "patients" else KEY_FIELD[kind]
        what = "patient" if kind == "patients" else "patient and time"
        seen: dict[Any, int] = {}
        keep = []
        for i, key in enumerate(keys):
            if pids[i] is None:
                continue  # no patient to look up: the row's own problem says why
            if kind != "patients" and key[1] is None:
                keep.append(i)  # no time to compare: its patient is still looked up
                continue
            first = seen.setdefault(key, lines[i])
            if first != lines[i]:
                self.problems.append(f"{FILES[kind]}:{lines[i]}: {column}: the same {what} already appears at line {first}")
                continue
            keep.append(i)
        return keep

    def _without_look_alikes(self, db: Session, patients, rows: list[int]) -> list[int]:
        """The new patients' rows, less those whose id reads as another's (stored or earlier in the file) but for case."""
        ids = [patients.columns["patient_id"][i] for i in rows]
        stored = stored_ids_ignoring_case(db, ids)
        keep, earlier = [], []
        for i, pid in zip(rows, ids):
            twin = same_looking_id(pid, stored) or same_looking_id(pid, earlier)
            if twin is not None:
                self.problems.append(f"patients.csv:{patients.lines[i]}: patient_id: {look_alike_message(pid, twin)}")
            else:
                keep.append(i)
                earlier.append(pid)
        return keep

    def compare_with_database(self, db: Session) -> None:
        patients = self.batches["patients"]
        file_patients = {pid: i for i, pid in enumerate(patients.columns["patient_id"])}
        referenced = set(file_patients)
        for kind in ("sessions", "checkins"):
            referenced.update(self.batches[kind].columns["patient_id"])
        existing_patients = {}
        if referenced:
            for chunk in _chunks(sorted(referenced), 900):
                query = select(Patient.__table__).where(Patient.__table__.c.patient_id.in_(chunk))
                for p in db.execute(query).mappings():
                    existing_patients[p["patient_id"]] = dict(p)
        new_patients = []
        for pid, i in file_patients.items():
            old = existing_patients.get(pid)
            if old is None:
                new_patients.append(i)
                continue
            diff = _differences("patients", patients.row_against(i, old), old)
            if diff:
                self.problems.append(
                    f"patients.csv:{patients.lines[i]}: {diff[0]}: patient {pid} is already in the database with different "
                    f"{', '.join(diff)}; change it in KetaWatch (as an amendment) rather than by import"
                )
            else:
                self.report.unchanged["patients"] += 1
        new_patients = self._without_look_alikes(db, patients, new_patients)
        self.batches["patients"] = patients.keep(new_patients)
        self._clinicians_without_accounts(db)
        self.report.new["patients"] = len(new_patients)
        # A session of a patient whose own row has a problem is not reported a second time as "unknown".
        known = set(file_patients) | set(existing_patients) | self.declared_patients
        for kind, table, time_col in (
            ("sessions", InfusionSession, "session_at"),
            ("checkins", CheckIn, "reported_at"),
        ):
            batch = self._known_patients_only(kind, known)
            ids = sorted(set(batch.columns["patient_id"]) & set(existing_patients))
            stored: dict[tuple, dict[str, Any]] = {}
            voided: dict[tuple, dict[str, Any]] = {}  # a voided record is never brought back by an import
            for chunk in _chunks(ids, 900):
                query = select(table.__table__).where(table.__table__.c.patient_id.in_(chunk))
                for rec in db.execute(query).mappings():
                    target = stored if rec["voided_at"] is None else voided
                    # To the second, as the file has it: a record saved with the clock's fraction before times
                    # were kept to the second is the same record as its exported row.
                    seen = {**rec, time_col: rec[time_col].replace(microsecond=0)}
                    target[(rec["patient_id"], seen[time_col])] = seen
            if kind == "sessions" and (stored or voided):
                by_id = {v["id"]: v for v in (*stored.values(), *voided.values())}
                for chunk in _chunks(sorted(by_id), 900):
                    q = select(SideEffectEvent).where(
                        SideEffectEvent.session_id.in_(chunk), SideEffectEvent.superseded_at.is_(None)
                    )
                    for se in db.exec(q).scalars():
                        by_id[se.session_id].setdefault("side_effects", []).append((se.effect, se.severity))
            if kind == "sessions":
                self.stored_sessions = [(pid, rec["session_at"], rec["weight_kg"]) for (pid, _), rec in stored.items()]
            if stored or voided:
                batch = batch.keep(self._not_stored(kind, batch, time_col, stored, voided))
            self.batches[kind] = batch
            self.report.new[kind] = len(batch)
        self._unusual_values(patients, existing_patients)

    #: At most this many unusual-value notes per file are listed; the rest are counted.
    UNUSUAL_NOTES_SHOWN = 20

    def _unusual_values(self, patients: _Batch, existing: dict[str, dict]) -> None:
        """Note each new session and check-in the forms would ask about before saving (a dose far above the plan, a
        vital out of its usual range, a date long before the treatment start): imported as written, as the import
        format allows, but said, since most are slips of the keyboard (clinician's browser pass: 500 mg IV for 70 kg
        imported without a word), or a second session within 24 hours of another, or a weight far from the last
        (pounds?), against the patient's stored sessions and the file's other new ones."""
        plans = {pid: (row.get("treatment_start"), row.get("planned_dose_mg_per_kg")) for pid, row in existing.items()}
        plans.update({pid: (start, plan) for pid, start, plan in zip(
            patients.columns["patient_id"], patients.columns["treatment_start"],
            patients.columns["planned_dose_mg_per_kg"])})
        neighbours = self._session_neighbours()
        for kind, asked in (("sessions", _SESSION_ASKED), ("checkins", ("reported_at",))):
            batch, found = self.batches[kind], []
            columns = [batch.columns[c] for c in asked]  # only what the question reads: a row's every column was slow
            for i, pid in enumerate(batch.columns["patient_id"]):
                if i in batch.flawed:  # refused already, with its own problem: nothing here is read as given
                    continue
                start, plan = plans.get(pid, (None, None))
                row = {c: values[i] for c, values in zip(asked, columns)}
                problems = (self.validator.unusual_checked_session(row, treatment_start=start, planned_mg_per_kg=plan,
                                                                   other_sessions=neighbours.get(i, ()))
                            if kind == "sessions" else self.validator.unusual_checked_checkin(row, treatment_start=start))
                found += [f"{FILES[kind]}:{batch.lines[i]}: {p.column}: {p.message} (allowed by the import format: check it)"
                          for p in problems]
            self.report.notes += found[:self.UNUSUAL_NOTES_SHOWN]
            if len(found) > self.UNUSUAL_NOTES_SHOWN:
                self.report.notes.append(f"{FILES[kind]}: and {len(found) - self.UNUSUAL_NOTES_SHOWN} more unusual "
                                         "value(s) like these")

    def _session_neighbours(self) -> dict[int, list[tuple[datetime, float | None]]]:
        """For each new session row, the patient's other sessions (stored, or new in the file) that its 24-hour and
        weight questions turn on: those within a day of it, the last weighed before it, and the first weighed at all.

        `Validator.unusual_checked_session` gives the same answer from these as from all the patient's sessions (it
        asks about every session within 24 hours, and compares the weight with the last weighed before, or the first
        weighed after where none is before), without comparing each session with every other one. A property test
        holds the two answers equal.
        """
        batch = self.batches["sessions"]
        times, weights = batch.columns["session_at"], batch.columns["weight_kg"]
        by_patient: dict[str, list[tuple[datetime, float | None, int | None]]] = {}
        for pid, at, weight in self.stored_sessions:
            by_patient.setdefault(pid, []).append((at, weight, None))
        for i, pid in enumerate(batch.columns["patient_id"]):
            if i not in batch.flawed:
                by_patient.setdefault(pid, []).append((times[i], weights[i], i))
        day = SECOND_SESSION_REACH  # in real time; the question itself is asked on the clinic's clock
        found: dict[int, list[tuple[datetime, float | None]]] = {}
        for sessions in by_patient.values():
            if len(sessions) < 2:
                continue
            sessions.sort(key=lambda s: s[0])
            weighed = [k for k, s in enumerate(sessions) if (s[1] or 0) > 0]
            first_two_weighed = [sessions[k] for k in weighed[:2]]  # the first besides the session asked about
            last_weighed = None
            for k, (at, _, row) in enumerate(sessions):
                if row is not None:
                    near, j = [], k - 1
                    while j >= 0 and at - sessions[j][0] < day:
                        near.append(sessions[j])
                        j -= 1
                    j = k + 1
                    while j < len(sessions) and sessions[j][0] - at < day:
                        near.append(sessions[j])
                        j += 1
                    first = next((s for s in first_two_weighed if s is not sessions[k]), None)
                    asked = (*near, last_weighed, first)
                    found[row] = list({s[0]: s[:2] for s in asked if s is not None}.values())  # each once
                if (sessions[k][1] or 0) > 0:
                    last_weighed = sessions[k]
        return found

    def _clinicians_without_accounts(self, db: Session) -> None:
        """Note each new patient's clinician that no account has: imported as written (CONTRACT allows any username,
        and accounts may come later), but a typo would leave the patient out of that clinician's list unnoticed."""
        batch = self.batches["patients"]
        named = {c for c in batch.columns.get("clinician", []) if c}
        if not named:
            return
        accounts = set(db.execute(select(User.__table__.c.username)).scalars())
        lines: dict[str, list[int]] = {}  # one note per name, in the file's order: 40 patients of three clinicians
        for i, clinician in enumerate(batch.columns["clinician"]):  # made 40 notes (IT review)
            if clinician and clinician not in accounts:
                lines.setdefault(clinician, []).append(batch.lines[i])
        for clinician, found in lines.items():
            near = difflib.get_close_matches(clinician, sorted(accounts), n=1, cutoff=0.8)
            hint = f" (did you mean '{near[0]}'?)" if near else ""
            where = (f"patients.csv:{found[0]}" if len(found) == 1 else
                     f"patients.csv lines {', '.join(map(str, found[:5]))}{', ...' if len(found) > 5 else ''} "
                     f"({len(found)} patients)")
            self.report.notes.append(
                f"{where}: clinician: no KetaWatch account is named '{clinician}'{hint}; "
                f"{'the patient is' if len(found) == 1 else 'they are'} imported with it as written, and the "
                "caseload's clinician filter lists it as a clinician of its own. Correct it on the Patients and "
                "plans page, or add the account if the name is right (ketawatch users add)"
            )

    def _known_patients_only(self, kind: str, known: set[str]) -> _Batch:
        """The rows of `kind` whose patient is known; each other row is a problem, unless patients.csv could not be
        read (its own problem is reported), since its patients cannot be told."""
        batch = self.batches[kind]
        pids = batch.columns["patient_id"]
        if set(pids) <= known or self.patients_unread:
            return batch
        keep = []
        for i, pid in enumerate(pids):
            if pid in known:
                keep.append(i)
            else:
                self.problems.append(
                    f"{FILES[kind]}:{batch.lines[i]}: patient_id: patient {pid} is not in patients.csv or the database"
                )
        return batch.keep(keep)

    def _not_stored(self, kind: str, batch: _Batch, time_col: str, stored: dict, voided: dict) -> list[int]:
        """The rows not yet in the database; one that is, unchanged, is counted, and a changed one is a problem."""
        name = FILES[kind]
        record = kind[:-1].replace("checkin", "check-in")
        fresh = []
        for i, key in enumerate(zip(batch.columns["patient_id"], batch.columns[time_col])):
            old = stored.get(key)
            if old is None and key in voided:
                gone = voided[key]
                if _differences(kind, batch.row_against(i, gone), gone):
                    when = gone["voided_at"].strftime("%Y-%m-%d")
                    self.problems.append(
                        f"{name}:{batch.lines[i]}: {time_col}: a {record} for patient "
                        f"{key[0]} at this time was voided on {when} by {gone['voided_by']} "
                        f"({gone['void_reason']}); an import does not replace it: record it in KetaWatch if it is needed"
                    )
                else:
                    self.report.unchanged[kind] += 1  # the same record, deliberately voided: it stays voided
                continue
            if old is None:
                fresh.append(i)
                continue
            diff = _differences(kind, batch.row_against(i, old), old)
            if diff:
                self.problems.append(
                    f"{name}:{batch.lines[i]}: {diff[0]}: a {record} for patient "
                    f"{key[0]} at this time is already recorded with different {', '.join(diff)}; "
                    "amend it in KetaWatch rather than by import"
                )
            else:
                self.report.unchanged[kind] += 1
        return fresh

    def write(self, db: Session, actor: str, now: datetime) -> None:
        if any(batch.flawed for batch in self.batches.values()):  # import_folder stops first; this is the last guard
            raise AssertionError("a row with a problem was about to be written")
        meta = {"recorded_at": now, "recorded_by": actor, "version": 1}
        insert_columns(db, Patient.__table__, self.batches["patients"].columns, meta)
        sessions = self.batches["sessions"]
        ids = new_ids(db, InfusionSession.__table__, len(sessions))
        columns = {"id": ids, **{k: v for k, v in sessions.columns.items() if k != "side_effects"}}
        insert_columns(db, InfusionSession.__table__, columns, meta)
        effects = [(sid, e, s) for sid, items in zip(ids, sessions.columns["side_effects"]) for e, s in items]
        insert_columns(db, SideEffectEvent.__table__, dict(zip(("session_id", "effect", "severity"), map(list, zip(*effects)))))
        insert_columns(db, CheckIn.__table__, self.batches["checkins"].columns, meta)
        patient_ids = sorted({pid for batch in self.batches.values() for pid in batch.columns["patient_id"]})
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


def _unquote_free_text(table: CsvRows) -> None:
    """Take away the quote a CSV export (KetaWatch's or any following OWASP's advice) put before formula-like text in
    the free-text columns, so a note exported and imported again reads as typed ("'- sleep" was stored as such)."""
    for at in [i for i, column in enumerate(table.header) if column in FREE_TEXT_COLUMNS]:
        for cells in table.rows:
            if "'" in cells[at]:
                cells[at] = unquote_formula_starts(cells[at])


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
    try:
        with collector_paused():
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
    except ImportRejected as exc:
        if not dry_run:
            try:
                _audit_refusal(engine, job, actor, validator.now, len(exc.problems))
            except SQLAlchemyError as audit_error:  # the problems are what the user needs; the log says why no line
                _LOG.error("a refused import could not be audited: %s", type(audit_error).__name__)
        raise
    job.report.written = True
    return job.report


def _audit_refusal(engine: Engine, job: _Importer, actor: str, now: datetime, problems: int) -> None:
    """An import refused is audited too, in its own transaction (the import's rolled back): who tried to load what
    and how many problems stopped it, without the problems' words, which quote the rows."""
    with Session(for_writing(engine)) as db, db.begin():
        record_event(db, actor=actor, action="import_refused", at=now, folder=str(job.folder.resolve()),
                     problems=problems)
