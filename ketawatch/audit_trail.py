"""The audit trail as an admin reads it: filtered lines (imports and exports found by any patient they touched) and a spreadsheet-safe CSV.

Pure logic with no Streamlit, so the Audit page and the tests share it. The trail itself is
append-only at the database (triggers of migration 0001); nothing here writes to it.
"""

from __future__ import annotations

import json
from datetime import datetime

import pandas as pd
from sqlalchemy import Engine

from ketawatch.change_words import field_words, value_words
from ketawatch.exports.formula_injection import neutralise
from store.queries import audit_frame

#: Actions written by the store (records, importer, reviews), the exports and the accounts.
ACTIONS = (
    "create", "amend", "void", "import", "import_refused", "export", "export_refused", "download_refused", "review", "view",
    "sign_in", "sign_in_failed", "sign_out",
    "user_create", "role_change", "password_reset", "password_change", "password_change_refused",
    "user_disable", "user_enable",
    "backup", "restore",
)
#: Actions whose single line may concern many patients (listed in detail["patients"]).
_MULTI_PATIENT = ("import", "export", "export_refused", "download_refused")
COLUMNS = ("id", "at", "actor", "action", "entity", "entity_key", "patient_id", "detail")
LIMIT = 5000


def _touches(detail: object, patient_id: str) -> bool:
    return isinstance(detail, dict) and patient_id in (detail.get("patients") or ())


def audit_lines(
    engine: Engine,
    *,
    actor: str | None = None,
    action: str | None = None,
    patient_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = LIMIT,
) -> pd.DataFrame:
    """Audit lines, newest first; a patient filter also finds the imports and exports that included the patient."""
    frame = audit_frame(engine, actor=actor or None, action=action or None, patient_id=patient_id or None,
                        since=since, until=until, limit=limit)
    if patient_id:
        extra = [
            audit_frame(engine, actor=actor or None, action=name, since=since, until=until, mentioning=patient_id,
                        limit=limit)
            for name in _MULTI_PATIENT
            if not action or action == name
        ]
        extra = [f[f["detail"].map(lambda d: _touches(d, patient_id))] for f in extra if len(f)]
        if extra:
            frame = pd.concat([frame, *extra]).drop_duplicates("id")
    return frame.sort_values("id", ascending=False).head(limit).reset_index(drop=True)[list(COLUMNS)]


#: Values KetaWatch itself writes as codes in a line's detail (a sign-in's reason and purpose), shown in words;
#: a reason someone typed is shown exactly as typed, underscores and all.
_CODES = frozenset({"wrong_password", "wrong_current_password", "unknown_account", "sso_unknown_identity",
                    "leave_patient_mode", "tablet_wrong_passwords"})


def describe_detail(detail: object) -> str:
    """The rest of a line's detail (reason, counts, format...) as 'name: value' pairs, without the before and after."""
    if not isinstance(detail, dict):
        return ""
    return "; ".join(f"{field_words(k)}: {v.replace('_', ' ') if isinstance(v, str) and v in _CODES else value_words(v)}"
                     for k, v in sorted(detail.items()) if k not in ("before", "after"))


def audit_csv_bytes(frame: pd.DataFrame) -> bytes:
    """The lines as UTF-8 CSV; every text cell that a spreadsheet could read as a formula gets a leading '."""
    out = pd.DataFrame({"id": frame["id"]})
    out["at"] = pd.to_datetime(frame["at"], utc=True).map(lambda t: t.isoformat() if not pd.isna(t) else "")
    for column in ("actor", "action", "entity", "entity_key", "patient_id"):
        out[column] = neutralise(frame[column])
    out["detail"] = neutralise(frame["detail"].map(lambda d: json.dumps(d, ensure_ascii=False, sort_keys=True)))
    return out.to_csv(index=False, lineterminator="\r\n").encode("utf-8")
