"""Writing clinical records: add, amend with a reason, void with a reason; never overwrite or delete.

Every function validates with `store.validation`, writes its audit line in the same transaction,
and uses the row's `version` for optimistic concurrency: an edit based on an out-of-date copy
raises `RecordConflict` and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from store.audit import record_event, snapshot
from store.db import for_writing
from store.models import AlertReview, CheckIn, InfusionSession, Patient, RecordRevision, SideEffectEvent
from store.validation import Problem, Validator, look_alike_message, reason_problems, review_problems, same_looking_id


class RecordInvalid(Exception):
    """The input breaks one or more rules; nothing was written."""

    def __init__(self, problems: list[Problem]):
        super().__init__("; ".join(p.message for p in problems))
        self.problems = problems


class NothingChanged(RecordInvalid):
    """An amendment whose values are the stored ones: a new version saying nothing would only mislead the history."""


class RecordConflict(Exception):
    """Someone else changed or voided the record since it was opened; nothing was written."""


class RecordNotFound(Exception):
    """No such record."""


@dataclass(frozen=True)
class _Kind:
    name: str  # record_type in revisions and entity in the audit
    table: type
    key: str  # primary key attribute
    validate: str  # Validator method
    time_field: str | None
    label: str


PATIENT = _Kind("patient", Patient, "patient_id", "patient", None, "patient")
SESSION = _Kind("session", InfusionSession, "id", "session", "session_at", "session")
CHECKIN = _Kind("checkin", CheckIn, "id", "checkin", "reported_at", "check-in")


def _now(validator: Validator) -> datetime:
    return validator.now.astimezone(timezone.utc)


def _validated(kind: _Kind, raw: Mapping[str, Any], validator: Validator) -> dict[str, Any]:
    clean, problems = getattr(validator, kind.validate)(raw)
    if problems:
        raise RecordInvalid(problems)
    return clean


def _require_patient(db: Session, patient_id: str) -> Patient:
    patient = db.get(Patient, patient_id)
    if patient is None or patient.voided_at is not None:
        raise RecordInvalid([Problem("patient_id", f"Patient {patient_id} is not in KetaWatch; add the patient first")])
    return patient


def stored_ids_ignoring_case(db: Session, patient_ids: Iterable[str]) -> list[str]:
    """Stored patient ids equal to any of `patient_ids` but for upper or lower case (the form's and the importer's look-alike check)."""
    lowered = sorted({pid.lower() for pid in patient_ids})
    found: list[str] = []
    for start in range(0, len(lowered), 900):  # within SQLite's limit of bound parameters
        chunk = lowered[start : start + 900]
        found.extend(db.execute(select(Patient.patient_id).where(func.lower(Patient.patient_id).in_(chunk))).scalars())
    return found


def _refuse_look_alike(db: Session, patient_id: str) -> None:
    """Refuse a new patient id that differs from a stored one only in case: 'kw-0001' beside 'KW-0001' splits one
    person's records between two entries in every picker."""
    twin = same_looking_id(patient_id, stored_ids_ignoring_case(db, [patient_id]))
    if twin is not None:
        raise RecordInvalid([Problem("patient_id", look_alike_message(patient_id, twin))])


def _collision(kind: _Kind, clean: dict[str, Any], validator: Validator) -> RecordInvalid:
    if kind is PATIENT:
        return RecordInvalid([Problem("patient_id", f"Patient ID {clean['patient_id']} is already in use")])
    when = clean[kind.time_field].astimezone(validator.tz).strftime("%Y-%m-%d %H:%M")
    return RecordInvalid(
        [Problem(kind.time_field, f"A {kind.label} for this patient at {when} is already recorded; amend that one instead")]
    )


def _side_effect_rows(db: Session, session_id: int) -> list[SideEffectEvent]:
    q = select(SideEffectEvent).where(SideEffectEvent.session_id == session_id, SideEffectEvent.superseded_at.is_(None))
    return list(db.exec(q).scalars())


def _snapshot(db: Session, kind: _Kind, record: Any) -> dict[str, Any]:
    data = snapshot(record)
    if kind is SESSION:
        data["side_effects"] = [[se.effect, se.severity] for se in _side_effect_rows(db, record.id)]
    return data


def _add(engine: Engine, kind: _Kind, raw: Mapping[str, Any], actor: str, validator: Validator | None) -> Any:
    validator = validator or Validator()
    clean = _validated(kind, raw, validator)
    effects = clean.pop("side_effects", [])
    now = _now(validator)
    try:
        with Session(for_writing(engine), expire_on_commit=False) as db, db.begin():
            if kind is not PATIENT:
                _require_patient(db, clean["patient_id"])
            else:
                _refuse_look_alike(db, clean["patient_id"])
            record = kind.table(**clean, recorded_at=now, recorded_by=actor, version=1)
            db.add(record)
            db.flush()
            for effect, severity in effects:
                db.add(SideEffectEvent(session_id=record.id, effect=effect, severity=severity))
            key = getattr(record, kind.key)
            record_event(
                db,
                actor=actor,
                action="create",
                entity=kind.name,
                entity_key=key,
                patient_id=clean["patient_id"],
                after={**snapshot(record), **({"side_effects": effects} if kind is SESSION else {})},
                at=now,
            )
    except IntegrityError as exc:
        raise _collision(kind, {**clean}, validator) from exc
    return record


def _load_current(db: Session, kind: _Kind, key: Any, expected_version: int) -> Any:
    record = db.get(kind.table, key)
    if record is None:
        raise RecordNotFound(f"No {kind.label} {key}")
    if record.voided_at is not None:
        raise RecordConflict(f"This {kind.label} was voided by {record.voided_by}; it can no longer be changed")
    if record.version != expected_version:
        raise RecordConflict(
            f"This {kind.label} was changed by {record.amended_by or record.recorded_by} while you were editing "
            f"(now version {record.version}, you opened version {expected_version}). Reopen it to see their change; "
            "nothing of yours or theirs was lost."
        )
    return record


def _bump(db: Session, kind: _Kind, record: Any, expected_version: int, values: dict[str, Any]) -> None:
    """Write `values` only if the row is still at `expected_version` (optimistic concurrency)."""
    table = kind.table.__table__
    pk = getattr(table.c, kind.key)
    result = db.execute(
        update(table)
        .where(pk == getattr(record, kind.key), table.c.version == expected_version)
        .values(**values, version=expected_version + 1)
    )
    if result.rowcount != 1:
        raise RecordConflict(f"This {kind.label} was changed by someone else at the same moment; reopen it and try again")


def _require_reason(reason: str | None, what: str) -> str:
    problems = reason_problems(reason, what)
    if problems:
        raise RecordInvalid(problems)
    return (reason or "").strip()


def _amend(
    engine: Engine, kind: _Kind, key: Any, raw: Mapping[str, Any], *, actor: str, reason: str, expected_version: int,
    validator: Validator | None,
) -> Any:
    validator = validator or Validator()
    unexplained = reason_problems(reason, "amendment")  # said together with the values' problems, not one per Save
    reason = (reason or "").strip()
    now = _now(validator)
    try:
        with Session(for_writing(engine), expire_on_commit=False) as db, db.begin():
            record = _load_current(db, kind, key, expected_version)
            before = _snapshot(db, kind, record)
            merged = {**{k: v for k, v in before.items()}, **raw}
            if kind is SESSION and "side_effects" not in raw:
                merged["side_effects"] = [tuple(x) for x in before["side_effects"]]
            try:
                clean = _validated(kind, merged, validator.for_amending(before))
            except RecordInvalid as exc:
                raise RecordInvalid([*unexplained, *exc.problems]) from None
            if unexplained:
                raise RecordInvalid(unexplained)
            if clean["patient_id"] != getattr(record, "patient_id"):
                raise RecordInvalid([Problem("patient_id", "A record cannot be moved to another patient; void it and record it again")])
            compared = [*clean, "side_effects"] if kind is SESSION else list(clean)
            effects = clean.pop("side_effects", None)
            db.add(
                RecordRevision(
                    record_type=kind.name, record_key=str(key), version=record.version, data=before,
                    changed_at=now, changed_by=actor, change="amend", reason=reason,
                )
            )
            values = {k: v for k, v in clean.items() if k != kind.key}
            _bump(db, kind, record, expected_version, {**values, "amended_at": now, "amended_by": actor, "amendment_reason": reason})
            if kind is SESSION:
                for se in _side_effect_rows(db, record.id):
                    se.superseded_at = now
                    db.add(se)
                for effect, severity in effects or []:
                    db.add(SideEffectEvent(session_id=record.id, effect=effect, severity=severity))
            db.flush()
            db.refresh(record)
            after = _snapshot(db, kind, record)
            if all(_stored_alike(before.get(name), after.get(name)) for name in compared):  # rolls the writes back
                raise NothingChanged([Problem("reason", f"Nothing differs from the stored {kind.label}, so nothing "
                                                        "was saved")])
            record_event(
                db, actor=actor, action="amend", entity=kind.name, entity_key=key, patient_id=record.patient_id,
                before=before, after=after, reason=reason, at=now,
            )
    except IntegrityError as exc:
        raise _collision(kind, clean, validator) from exc
    return record


def _stored_alike(before: Any, after: Any) -> bool:
    """Whether two snapshot values are the same record content (side effects in any order)."""
    if isinstance(before, list) and isinstance(after, list):
        return sorted(map(tuple, before)) == sorted(map(tuple, after))
    return before == after


def _void(engine: Engine, kind: _Kind, key: Any, *, actor: str, reason: str, expected_version: int,
          validator: Validator | None) -> Any:
    validator = validator or Validator()
    reason = _require_reason(reason, "void")
    now = _now(validator)
    with Session(for_writing(engine), expire_on_commit=False) as db, db.begin():
        record = _load_current(db, kind, key, expected_version)
        before = _snapshot(db, kind, record)
        db.add(
            RecordRevision(
                record_type=kind.name, record_key=str(key), version=record.version, data=before,
                changed_at=now, changed_by=actor, change="void", reason=reason,
            )
        )
        _bump(db, kind, record, expected_version, {"voided_at": now, "voided_by": actor, "void_reason": reason})
        record_event(
            db, actor=actor, action="void", entity=kind.name, entity_key=key, patient_id=record.patient_id,
            before=before, reason=reason, at=now,
        )
        db.flush()
        db.refresh(record)
    return record


def add_patient(engine: Engine, raw: Mapping[str, Any], *, actor: str, validator: Validator | None = None) -> Patient:
    """Register a patient and their treatment plan."""
    return _add(engine, PATIENT, raw, actor, validator)


def amend_patient(engine: Engine, patient_id: str, changes: Mapping[str, Any], *, actor: str, reason: str,
                  expected_version: int, validator: Validator | None = None) -> Patient:
    """Change a patient's details, plan or status, keeping the earlier version."""
    return _amend(engine, PATIENT, patient_id, changes, actor=actor, reason=reason,
                  expected_version=expected_version, validator=validator)


def add_session(engine: Engine, raw: Mapping[str, Any], *, actor: str, validator: Validator | None = None) -> InfusionSession:
    """Record one administered dose with its vitals, side effects and the patient's requests."""
    return _add(engine, SESSION, raw, actor, validator)


def amend_session(engine: Engine, session_id: int, changes: Mapping[str, Any], *, actor: str, reason: str,
                  expected_version: int, validator: Validator | None = None) -> InfusionSession:
    """Correct a session, keeping the earlier version and who changed it, when and why."""
    return _amend(engine, SESSION, session_id, changes, actor=actor, reason=reason,
                  expected_version=expected_version, validator=validator)


def void_session(engine: Engine, session_id: int, *, actor: str, reason: str, expected_version: int,
                 validator: Validator | None = None) -> InfusionSession:
    """Mark a session entered in error; it stays in the history with the reason."""
    return _void(engine, SESSION, session_id, actor=actor, reason=reason, expected_version=expected_version,
                 validator=validator)


def add_checkin(engine: Engine, raw: Mapping[str, Any], *, actor: str, validator: Validator | None = None) -> CheckIn:
    """Record one self-report check-in."""
    return _add(engine, CHECKIN, raw, actor, validator)


def amend_checkin(engine: Engine, checkin_id: int, changes: Mapping[str, Any], *, actor: str, reason: str,
                  expected_version: int, validator: Validator | None = None) -> CheckIn:
    """Correct a check-in, keeping the earlier version."""
    return _amend(engine, CHECKIN, checkin_id, changes, actor=actor, reason=reason,
                  expected_version=expected_version, validator=validator)


def void_checkin(engine: Engine, checkin_id: int, *, actor: str, reason: str, expected_version: int,
                 validator: Validator | None = None) -> CheckIn:
    """Mark a check-in entered in error; it stays in the history with the reason."""
    return _void(engine, CHECKIN, checkin_id, actor=actor, reason=reason, expected_version=expected_version,
                 validator=validator)


def add_alert_review(
    engine: Engine, *, patient_id: str, level: str, reasons: list[str], action: str, note: str | None, actor: str,
    now: datetime | None = None,
) -> AlertReview:
    """Record that a clinician reviewed a patient's level and reasons, and what they did about it."""
    problems = review_problems(level=level, reasons=reasons, action=action, note=note)
    if problems:
        raise RecordInvalid(problems)
    now = now or datetime.now(timezone.utc)
    with Session(for_writing(engine), expire_on_commit=False) as db, db.begin():
        _require_patient(db, patient_id)
        review = AlertReview(
            patient_id=patient_id, reviewed_at=now, reviewed_by=actor, level=level,
            reasons=";".join(reasons), action=action, note=(note or "").strip() or None,
        )
        db.add(review)
        db.flush()
        record_event(db, actor=actor, action="review", entity="alert_review", entity_key=review.id,
                     patient_id=patient_id, after=snapshot(review), at=now)
    return review
