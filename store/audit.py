"""Writing the append-only audit trail: every write, export, import and sign-in leaves a line here."""

from __future__ import annotations

import json
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime, timezone
from typing import Any, Iterable, Iterator

from sqlmodel import Session

from store.models import AuditEvent

#: How this process's writes arrive, when not through the dashboard: "cli:<OS user>" for the command line.
_CHANNEL: ContextVar[str | None] = ContextVar("audit_channel", default=None)


@contextmanager
def written_through(channel: str) -> Iterator[None]:
    """Within the block, every audit line written says `via`: who ran the command, whatever `--as` names.

    `--as` is taken on trust (whoever runs the command already has the database), so the line
    says how it was written and by which login, beside the account it names.
    """
    token = _CHANNEL.set(channel)
    try:
        yield
    finally:
        _CHANNEL.reset(token)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    return value


def snapshot(record: Any, fields: Iterable[str] | None = None) -> dict[str, Any]:
    """The JSON-safe values of a table row, for 'before' and 'after' in the trail and in revisions."""
    data = record.model_dump() if hasattr(record, "model_dump") else dict(record)
    if fields is not None:
        data = {k: data.get(k) for k in fields}
    return _jsonable(data)


def record_event(
    db: Session,
    *,
    actor: str,
    action: str,
    entity: str | None = None,
    entity_key: Any = None,
    patient_id: str | None = None,
    before: dict | None = None,
    after: dict | None = None,
    at: datetime | None = None,
    **detail: Any,
) -> AuditEvent:
    """Add one audit line to the caller's transaction, so it commits (or rolls back) with the change itself."""
    payload = dict(detail)
    channel = _CHANNEL.get()
    if channel is not None:
        payload.setdefault("via", channel)
    if before is not None:
        payload["before"] = before
    if after is not None:
        payload["after"] = after
    event = AuditEvent(
        at=at or datetime.now(timezone.utc),
        actor=actor,
        action=action,
        entity=entity,
        entity_key=None if entity_key is None else str(entity_key),
        patient_id=patient_id,
        detail=json.loads(json.dumps(_jsonable(payload), default=str)),
    )
    db.add(event)
    return event


def record_view(engine, *, actor: str, entity: str, entity_key: str | None = None, patient_id: str | None = None,
                address: str | None = None, at: datetime | None = None, **detail: Any) -> None:
    """One line saying who opened which record, or which part of the trail, so the clinic can answer "who has
    looked at this patient" (`patient_id`) and "who has read the audit trail"."""
    from store.db import for_writing

    detail = {k: v for k, v in {**detail, "address": address}.items() if v is not None}
    with Session(for_writing(engine)) as db, db.begin():
        record_event(db, actor=actor, action="view", entity=entity, entity_key=entity_key, patient_id=patient_id,
                     at=at, **detail)


def record_patient_view(engine, *, actor: str, patient_id: str, page: str, address: str | None = None,
                        at: datetime | None = None) -> None:
    """One line saying who opened a patient's record and on which page."""
    record_view(engine, actor=actor, entity="patient", entity_key=patient_id, patient_id=patient_id, address=address,
                at=at, page=page)
