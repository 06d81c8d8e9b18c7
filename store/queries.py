"""Read-only queries that return DataFrames for the engine, the pages and the exports."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Iterable

import pandas as pd
from sqlalchemy import BigInteger, Date, Engine, Text, cast, extract, func, literal_column, select, union_all

from store.frames import CHECKIN_DTYPES, PATIENT_DTYPES, SESSION_DTYPES, Records, conform
from store.types import UTCDateTime
from store.app_settings import RESTORE_KEY
from store.models import (
    AlertReview,
    AppSetting,
    AuditEvent,
    CheckIn,
    DataChange,
    InfusionSession,
    Patient,
    RecordRevision,
    SideEffectEvent,
)

_TRACKING = ["version", "recorded_at", "recorded_by", "amended_at", "amended_by", "amendment_reason",
             "voided_at", "voided_by", "void_reason"]


def _driver_frame(engine: Engine, statement) -> pd.DataFrame:
    """Rows of a SELECT read through the driver's own cursor, as the driver returns them.

    At caseload scale SQLAlchemy's per-value result processing costs several times the query
    itself, so the clinical tables are read raw and typed column by column afterwards
    (`_typed_instants`, then `conform`). Only for statements whose bound values are plain text or
    numbers: those need no bind processing either.
    """
    compiled = statement.compile(dialect=engine.dialect, compile_kwargs={"render_postcompile": True})
    params = compiled.params
    if any(value is not None and not isinstance(value, (str, int, float)) for value in params.values()):
        raise TypeError("_driver_frame takes only statements with text or number parameters")
    if compiled.positional:
        params = tuple(params[name] for name in compiled.positiontup)
    with engine.connect() as conn:
        cursor = conn.connection.cursor()
        try:
            cursor.execute(str(compiled), params)
            columns = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
        finally:
            cursor.close()
    return pd.DataFrame.from_records(rows, columns=columns, coerce_float=False)


def _as_read(engine: Engine, column):
    """The column as the fast reader selects it: on PostgreSQL an instant comes as epoch microseconds,
    because building psycopg's datetime objects and then a frame from them costs more than the query."""
    if engine.dialect.name == "postgresql" and isinstance(column.type, UTCDateTime):
        return cast(extract("epoch", column) * 1_000_000, BigInteger).label(column.key)
    return column


def _typed_instants(raw: pd.DataFrame, table) -> pd.DataFrame:
    """Parse a raw frame's timestamp and date columns (ISO text on SQLite, epoch microseconds on PostgreSQL)."""
    for column in table.__table__.columns:
        if column.name not in raw.columns or not len(raw):
            continue
        if isinstance(column.type, UTCDateTime):
            values = raw[column.name]
            if pd.api.types.is_numeric_dtype(values):  # float when some are NULL: exact below 2**53 us (year 2255)
                raw[column.name] = pd.to_datetime(values, unit="us", utc=True)
            else:
                raw[column.name] = pd.to_datetime(values, utc=True, format="ISO8601")
        elif isinstance(column.type, Date):
            raw[column.name] = pd.to_datetime(raw[column.name], format="ISO8601")
    return raw


def _where_patients(statement, table, patient_ids: Iterable[str] | None):
    if patient_ids is None:
        return statement
    return statement.where(table.patient_id.in_(list(patient_ids)))


def side_effects_text(engine: Engine, *, patient_ids: Iterable[str] | None = None) -> pd.Series:
    """Current side effects per session id as the import format's `effect:severity;...` text.

    Chosen by patient through a subquery, not by a list of session ids: a caseload-wide read
    would otherwise bind one parameter per session, past the drivers' limits on a large caseload.
    """
    q = select(SideEffectEvent.session_id, SideEffectEvent.effect, SideEffectEvent.severity).where(
        SideEffectEvent.superseded_at.is_(None)
    )
    if patient_ids is not None:
        theirs = select(InfusionSession.id).where(InfusionSession.patient_id.in_(list(patient_ids)))
        q = q.where(SideEffectEvent.session_id.in_(theirs))
    frame = _driver_frame(engine, q.order_by(SideEffectEvent.session_id, SideEffectEvent.id))
    if frame.empty:
        return pd.Series(dtype="string", name="side_effects")
    # Concatenating "effect:severity;" per session and dropping the last ";" is a join, vectorised.
    text = (frame["effect"] + ":" + frame["severity"] + ";").groupby(frame["session_id"]).sum().str[:-1]
    return text.astype("string").rename("side_effects")


def _table_frame(
    engine: Engine, table, dtypes: dict[str, str], order: tuple[str, ...], patient_ids: Iterable[str] | None, *,
    include_voided: bool, with_tracking: bool,
) -> pd.DataFrame:
    """One clinical table as a typed frame; voided rows and who recorded or changed each row only when asked for."""
    tracking = with_tracking or include_voided
    names = [c for c in dtypes if c in table.__table__.c] + (_TRACKING if tracking else [])
    q = select(*(_as_read(engine, getattr(table, c)) for c in names))
    if not include_voided:
        q = q.where(table.voided_at.is_(None))
    q = _where_patients(q, table, patient_ids).order_by(*(getattr(table, c) for c in order))
    raw = _typed_instants(_driver_frame(engine, q), table)
    if table is InfusionSession and len(raw):
        effects = side_effects_text(engine, patient_ids=patient_ids)
        raw["side_effects"] = raw["id"].map(effects)
    out = conform(raw, dtypes)
    if tracking:
        for c in _TRACKING:
            values = raw[c] if len(raw) else pd.Series(dtype="object")
            if c.endswith("_at"):  # an aware UTC time, or None where nothing happened
                values = values.astype(object).where(values.notna(), None)
            out[c] = values.reset_index(drop=True)
    return out


def patients_frame(engine: Engine, patient_ids: Iterable[str] | None = None, *, with_tracking: bool = False) -> pd.DataFrame:
    """Patients (not voided) with CONTRACT columns plus status, optionally with who recorded them."""
    return _table_frame(engine, Patient, PATIENT_DTYPES, ("patient_id",), patient_ids,
                        include_voided=False, with_tracking=with_tracking)


def sessions_frame(
    engine: Engine, patient_ids: Iterable[str] | None = None, *, include_voided: bool = False, with_tracking: bool = False
) -> pd.DataFrame:
    """Sessions in time order, with side effects as text; voided ones only when asked for."""
    return _table_frame(engine, InfusionSession, SESSION_DTYPES, ("patient_id", "session_at"), patient_ids,
                        include_voided=include_voided, with_tracking=with_tracking)


def checkins_frame(
    engine: Engine, patient_ids: Iterable[str] | None = None, *, include_voided: bool = False, with_tracking: bool = False
) -> pd.DataFrame:
    """Check-ins in time order; voided ones only when asked for."""
    return _table_frame(engine, CheckIn, CHECKIN_DTYPES, ("patient_id", "reported_at"), patient_ids,
                        include_voided=include_voided, with_tracking=with_tracking)


def load_records(engine: Engine, patient_ids: Iterable[str] | None = None) -> Records:
    """The live records of the given patients (default: everyone), ready for the risk engine."""
    ids = None if patient_ids is None else list(patient_ids)
    return Records(
        patients_frame(engine, ids),
        sessions_frame(engine, ids),
        checkins_frame(engine, ids),
    )


def data_version(engine: Engine) -> tuple[int, ...]:
    """A cheap fingerprint that changes with every clinical write, for cache keys.

    PostgreSQL: the `data_change` counter its statement triggers bump (counting rows is a scan
    there). SQLite: row counts (a B-tree count, quick): new rows raise a count and every
    amendment or void adds a `RecordRevision` row. Both add the restore mark: a restored database
    can repeat the counter or the counts of another state, which a cache would then serve.
    """
    mark = select(AppSetting.value).where(AppSetting.key == RESTORE_KEY)
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            changes = int(conn.execute(select(DataChange.changes).where(DataChange.id == 1)).scalar_one())
            return changes, _mark_number(conn.execute(mark).scalar_one_or_none())
    tables = (Patient, InfusionSession, CheckIn, AlertReview, RecordRevision)
    counts = select(*(select(func.count()).select_from(t).scalar_subquery() for t in tables), mark.scalar_subquery())
    with engine.connect() as conn:
        *numbers, restored = conn.execute(counts).one()
        return (*(int(n) for n in numbers), _mark_number(restored))


def _mark_number(mark: str | None) -> int:
    """The restore mark as a number for a version tuple (0 before any restore)."""
    return int(mark, 16) if mark else 0


def record_fingerprints(engine: Engine) -> pd.DataFrame:
    """Per patient and table: row count, newest id (or version) and summed versions, voided rows included.

    Every add raises a count and every amendment or void raises a version, so a patient whose
    fingerprint is unchanged still has exactly the records they had: a reader that keeps per-patient
    results (the dashboard's caseload) recomputes only the patients whose fingerprint moved.
    """
    parts = [select(Patient.patient_id, literal_column("'patient'").label("kind"), func.count().label("n"),
                    func.max(Patient.version).label("top"), func.sum(Patient.version).label("versions"))
             .group_by(Patient.patient_id)]
    for table, kind in ((InfusionSession, "session"), (CheckIn, "checkin")):
        parts.append(select(table.patient_id, literal_column(f"'{kind}'"), func.count(), func.max(table.id),
                            func.sum(table.version)).group_by(table.patient_id))
    parts.append(select(AlertReview.patient_id, literal_column("'review'"), func.count(), func.max(AlertReview.id),
                        literal_column("0")).group_by(AlertReview.patient_id))
    raw = _driver_frame(engine, union_all(*parts))
    raw.columns = ["patient_id", "kind", "n", "top", "versions"]
    wide = raw.pivot(index="patient_id", columns="kind", values=["n", "top", "versions"])
    wide.columns = [f"{kind}_{what}" for what, kind in wide.columns]
    columns = [f"{kind}_{what}" for kind in ("patient", "session", "checkin", "review") for what in ("n", "top", "versions")]
    return wide.reindex(columns=columns).fillna(0).astype("int64")


def changed_patients(before: pd.DataFrame, after: pd.DataFrame) -> list[str]:
    """Patients whose fingerprint differs between two `record_fingerprints` results (added and gone included)."""
    ids = before.index.union(after.index)
    old = before.reindex(index=ids, fill_value=0)  # no row = no records; a new patient's own row is never all 0
    new = after.reindex(index=ids, fill_value=0)
    return sorted(ids[(old != new).any(axis=1).to_numpy()])


def marked_line(notes: object, mark: str) -> str | None:
    """The first line of a note that begins with `mark` (surrounding spaces aside), or None."""
    if not isinstance(notes, str):
        return None
    return next((part.strip() for part in notes.split("\n") if part.strip().startswith(mark)), None)


def checkins_with_notes_containing(engine: Engine, prefix: str, *, since: datetime | None,
                                   patient_ids: Iterable[str] | None = None) -> pd.DataFrame:
    """Live check-ins (since a moment, of some patients, when given) whose notes contain `prefix`: a cheap pre-filter.

    Columns patient_id, reported_at, notes, and entered_at: when the line beginning with `prefix`
    first read as it does now (the check-in saved, or the amendment that wrote that line), which
    can be long after `reported_at` for a form typed in later. An amendment that left the line
    alone (a craving corrected) does not move it: the answer is no newer for that.
    """
    q = (select(CheckIn.id, CheckIn.patient_id, CheckIn.reported_at, CheckIn.notes, CheckIn.recorded_at,
                CheckIn.amended_at)
         .where(CheckIn.voided_at.is_(None), CheckIn.notes.contains(prefix, autoescape=True)))
    if since is not None:
        q = q.where(CheckIn.reported_at >= since)
    q = _where_patients(q, CheckIn, patient_ids)
    with engine.connect() as conn:
        rows = conn.execute(q).all()
    frame = pd.DataFrame(rows, columns=["id", "patient_id", "reported_at", "notes", "recorded_at", "amended_at"])
    for column in ("reported_at", "recorded_at", "amended_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    frame["entered_at"] = frame[["recorded_at", "amended_at"]].max(axis=1)
    for i, row in frame[frame["amended_at"].notna()].iterrows():  # few: amended check-ins with the mark
        line = marked_line(row["notes"], prefix)
        for version in reversed(revisions_frame(engine, "checkin", row["id"])["data"].tolist()):  # newest first
            if marked_line(version.get("notes"), prefix) != line:
                break
            # That version became current when it was recorded (version 1) or amended (later ones).
            frame.at[i, "entered_at"] = pd.to_datetime(version.get("amended_at") or version["recorded_at"], utc=True)
    return frame.drop(columns=["id", "recorded_at", "amended_at"])


def alert_reviews_frame(engine: Engine, patient_ids: Iterable[str] | None = None) -> pd.DataFrame:
    """Alert reviews, newest first."""
    q = _where_patients(select(AlertReview), AlertReview, patient_ids).order_by(AlertReview.reviewed_at.desc())
    with engine.connect() as conn:
        rows = conn.execute(q).mappings().all()
    columns = [c.name for c in AlertReview.__table__.columns]
    return pd.DataFrame([dict(r) for r in rows], columns=columns)


def patient_times(engine: Engine, patient_ids: Iterable[str] | None = None) -> pd.DataFrame:
    """Every stored time of these patients that an export can show (patient_id, at, UTC): each session and check-in,
    voided or not, when each was amended or voided, and each alert review; the whole set a de-identified export
    shifts, so one decision over it holds for every table of every export (ketawatch.exports.deidentify)."""
    parts = []
    for table, column in ((InfusionSession, InfusionSession.session_at), (CheckIn, CheckIn.reported_at),
                          (InfusionSession, InfusionSession.amended_at), (InfusionSession, InfusionSession.voided_at),
                          (CheckIn, CheckIn.amended_at), (CheckIn, CheckIn.voided_at),
                          (AlertReview, AlertReview.reviewed_at)):
        q = _where_patients(select(table.patient_id, column.label("at")), table, patient_ids).where(column.is_not(None))
        parts.append(q)
    with engine.connect() as conn:
        rows = conn.execute(union_all(*parts)).all()
    frame = pd.DataFrame(rows, columns=["patient_id", "at"])
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    return frame


def amended_versions(engine: Engine, record_type: str, patient_id: str) -> dict[int, int]:
    """The version of each live session or check-in of one patient that was amended (version 2 or more), by id, so
    its table can mark it: an amended craving read as first entered (clinician's browser review)."""
    table = {"session": InfusionSession, "checkin": CheckIn}[record_type]
    q = select(table.id, table.version).where(table.patient_id == patient_id, table.version > 1, table.voided_at.is_(None))
    with engine.connect() as conn:
        return {int(rid): int(version) for rid, version in conn.execute(q)}


def revisions_frame(engine: Engine, record_type: str, record_key: str | int) -> pd.DataFrame:
    """Earlier versions of one record, oldest first."""
    q = (
        select(RecordRevision)
        .where(RecordRevision.record_type == record_type, RecordRevision.record_key == str(record_key))
        .order_by(RecordRevision.version)
    )
    with engine.connect() as conn:
        rows = conn.execute(q).mappings().all()
    return pd.DataFrame([dict(r) for r in rows], columns=[c.name for c in RecordRevision.__table__.columns])


def amendments_since_first(engine: Engine, entity: str,
                           patient_ids: Iterable[str] | None = None) -> dict[str, tuple[dict, dict]]:
    """Each amended record's values (its own fields only) as first recorded and after its latest amendment, from its
    audit lines, so an export can say what was corrected in all, not only that something was, nor only the latest
    step (a dose corrected and then a note added showed only the note; code review).

    Filtered by patient (an indexed column), not by record: one bound value per record broke PostgreSQL's limit of
    65,535 for a whole caseload."""
    q = select(AuditEvent.entity_key, AuditEvent.detail).where(AuditEvent.action == "amend", AuditEvent.entity == entity)
    if patient_ids is not None:
        q = q.where(AuditEvent.patient_id.in_(list(patient_ids)))
    first: dict[str, dict] = {}
    last: dict[str, dict] = {}
    with engine.connect() as conn:
        for key, detail in conn.execute(q.order_by(AuditEvent.at, AuditEvent.id)):
            first.setdefault(key, detail.get("before") or {})
            last[key] = detail.get("after") or {}

    def fields(values: dict) -> dict:
        return {k: v for k, v in values.items() if k != "id" and k not in _TRACKING}

    return {key: (fields(first[key]), fields(last[key])) for key in first}


def audit_actors(engine: Engine) -> list[str]:
    """Everyone who appears in the audit trail (accounts, `cli:` users, setup jobs), for the Audit page's picker."""
    with engine.connect() as conn:
        return sorted(conn.execute(select(AuditEvent.actor).distinct()).scalars())


def audit_frame(
    engine: Engine,
    *,
    actor: str | None = None,
    action: str | None = None,
    patient_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    mentioning: str | None = None,
    limit: int = 5000,
) -> pd.DataFrame:
    """Audit lines, newest first, filtered as the Audit page asks; `mentioning` keeps lines whose detail holds that
    text as a JSON string (a patient id in an export's list), before the limit, so older ones are not cut off."""
    q = select(AuditEvent)
    if mentioning:  # the detail is stored as json.dumps wrote it, on SQLite and PostgreSQL alike
        q = q.where(cast(AuditEvent.detail, Text).contains(json.dumps(mentioning), autoescape=True))
    if actor:
        q = q.where(AuditEvent.actor == actor)
    if action:
        q = q.where(AuditEvent.action == action)
    if patient_id:
        q = q.where(AuditEvent.patient_id == patient_id)
    if since:
        q = q.where(AuditEvent.at >= since)
    if until:
        q = q.where(AuditEvent.at <= until)
    q = q.order_by(AuditEvent.id.desc()).limit(limit)
    with engine.connect() as conn:
        rows = conn.execute(q).mappings().all()
    return pd.DataFrame([dict(r) for r in rows], columns=[c.name for c in AuditEvent.__table__.columns])
