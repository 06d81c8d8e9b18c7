"""Every version of a patient's records with the time span it was the stored one, so a past day can be rebuilt as it was known.

The level history replays each date from the record as it stands now; a check-in typed in a week
late, a corrected dose or a voided session change that replay. What a clinician saw on a day was
computed from what had been entered by then, in the form it had then: the current rows give their
latest version, `RecordRevision` keeps each earlier one (written as the version ended), and the
tracking columns say when each began and ended.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterable

import pandas as pd
from sqlalchemy import Engine, String, cast, select

from store.frames import CHECKIN_DTYPES, PATIENT_DTYPES, SESSION_DTYPES, Records, conform
from store.models import CheckIn, InfusionSession, RecordRevision
from store.queries import checkins_frame, patients_frame, sessions_frame

#: Columns every version frame carries beside its record's own: the instant it became the stored
#: version and the instant it stopped being one (NaT while it still is).
SPAN = ("known_from", "known_until")


@dataclass(frozen=True)
class RecordTimeline:
    """All versions of some patients' records, each with the span of time in which it was the stored one."""

    patients: pd.DataFrame
    sessions: pd.DataFrame
    checkins: pd.DataFrame

    def as_known_at(self, instant: datetime | pd.Timestamp) -> Records:
        """The records as they were stored at `instant`: entered by then, in the version of then, not yet voided."""
        at = pd.Timestamp(instant)
        if at.tzinfo is None:
            raise ValueError("as_known_at needs a timezone-aware instant")

        def known(frame: pd.DataFrame) -> pd.DataFrame:
            held = (frame["known_from"] <= at) & (frame["known_until"].isna() | (frame["known_until"] > at))
            return frame[held.to_numpy(dtype=bool)].drop(columns=list(SPAN))

        return Records(
            conform(known(self.patients), PATIENT_DTYPES),
            conform(known(self.sessions), SESSION_DTYPES),
            conform(known(self.checkins), CHECKIN_DTYPES),
        )

    def as_known_now(self) -> Records:
        """The records as they are stored now: each record's latest version, voided ones left out."""

        def current(frame: pd.DataFrame) -> pd.DataFrame:
            return frame[frame["known_until"].isna().to_numpy(dtype=bool)].drop(columns=list(SPAN))

        return Records(*(conform(current(f), d) for f, d in (
            (self.patients, PATIENT_DTYPES), (self.sessions, SESSION_DTYPES), (self.checkins, CHECKIN_DTYPES))))

    def changed_at(self) -> pd.DataFrame:
        """Every instant at which a patient's stored records changed (patient_id, at), oldest first."""
        parts = []
        for frame in (self.patients, self.sessions, self.checkins):
            for column in SPAN:
                parts.append(pd.DataFrame({"patient_id": frame["patient_id"].astype(str), "at": frame[column]}))
        out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["patient_id", "at"])
        out["at"] = pd.to_datetime(out["at"], utc=True)
        return out.dropna().drop_duplicates().sort_values(["patient_id", "at"], kind="stable").reset_index(drop=True)


def _instant(values) -> pd.Series:
    return pd.to_datetime(pd.Series(values, dtype=object), utc=True, format="ISO8601")


def _current_versions(current: pd.DataFrame, dtypes: dict[str, str]) -> pd.DataFrame:
    """The stored rows (voided ones too) as their latest version: from their last amendment, or entry, to their void."""
    out = conform(current, dtypes)
    out["known_from"] = _instant(current["amended_at"].where(current["amended_at"].notna(), current["recorded_at"]))
    out["known_until"] = _instant(current["voided_at"])
    return out


def _earlier_versions(revisions: pd.DataFrame, dtypes: dict[str, str]) -> pd.DataFrame:
    """Amended-away versions from their revision rows: each from its own entry or amendment to the amendment that ended it.

    A void's revision repeats the version that was voided, which the current row already holds."""
    amended = revisions[revisions["change"] == "amend"]
    rows = []
    for data in amended["data"]:
        row = {c: data.get(c) for c in dtypes}
        if "side_effects" in dtypes:  # stored as [effect, severity] pairs; the frames carry the import format's text
            row["side_effects"] = ";".join(f"{effect}:{severity}" for effect, severity in data.get("side_effects") or []) or None
        rows.append(row)
    raw = pd.DataFrame(rows, columns=list(dtypes))
    for column, dtype in dtypes.items():  # stored as ISO text, with or without a fraction of a second: parsed as such
        if dtype.startswith("datetime64"):
            raw[column] = pd.to_datetime(raw[column], utc=dtype.endswith("UTC]"), format="ISO8601")
    out = conform(raw, dtypes)
    out["known_from"] = _instant([data.get("amended_at") or data.get("recorded_at") for data in amended["data"]])
    out["known_until"] = _instant(list(amended["changed_at"]))
    return out


def _revisions(engine: Engine, record_type: str, keys) -> pd.DataFrame:
    q = (select(RecordRevision.record_key, RecordRevision.version, RecordRevision.data, RecordRevision.changed_at,
                RecordRevision.change)
         .where(RecordRevision.record_type == record_type, RecordRevision.record_key.in_(keys))
         .order_by(RecordRevision.record_key, RecordRevision.version))
    with engine.connect() as conn:
        rows = conn.execute(q).all()
    return pd.DataFrame(rows, columns=["record_key", "version", "data", "changed_at", "change"])


def record_timeline(engine: Engine, patient_ids: Iterable[str]) -> RecordTimeline:
    """Every version of the given patients' records (voided and amended-away ones too), each with its span.

    Meant for a few patients at a time (one patient's page, one case review): a caseload's every
    version of every record is a different order of size. Revisions are chosen by patient through a
    subquery, not by one bound value per record."""
    ids = list(patient_ids)
    parts = {}
    for name, current, dtypes, table in (
        ("patient", patients_frame(engine, ids, with_tracking=True), PATIENT_DTYPES, None),  # never voided
        ("session", sessions_frame(engine, ids, include_voided=True), SESSION_DTYPES, InfusionSession),
        ("checkin", checkins_frame(engine, ids, include_voided=True), CHECKIN_DTYPES, CheckIn),
    ):
        keys = ids if table is None else select(cast(table.id, String)).where(table.patient_id.in_(ids))
        earlier = _earlier_versions(_revisions(engine, name, keys), dtypes)
        versions = [_current_versions(current, dtypes), *([earlier] if len(earlier) else [])]
        parts[name] = pd.concat(versions, ignore_index=True)
    return RecordTimeline(parts["patient"], parts["session"], parts["checkin"])
