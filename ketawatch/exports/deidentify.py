"""De-identification for every export format, so a case can leave the clinic without naming anyone.

One keyed hash (HMAC-SHA256 with `pseudonym_secret`) per patient gives both a stable pseudonym
("P-" + 10 hex characters) and a date offset, so the same patient gets the same pseudonym and the
same shift in every export made with the same secret, and nobody without the secret can reverse
either. The rules:

- names and clinic ids are replaced by the pseudonym; the birth year becomes a 10-year age band
  at the export date; free-text notes (session, check-in, alert review) are dropped, except that
  a check-in keeps its PHQ-9 question 9 line in the form's fixed words; clinician and reviewer
  usernames become staff pseudonyms ("S-" + 8 hex characters);
- every date and time of a patient moves by the same whole number of days, between 30 and 364
  days into the past. The shift is applied to the clinic-local wall-clock time, so a session keeps
  its local date-and-time pattern and every interval between a patient's records is kept exactly.
  Shifting only backwards (a 335-day window, as wide as a symmetric +/-167 days) means a shifted
  record is never in the future, so de-identified CSV files still pass the importer's checks; the
  minimum of 30 days keeps the shift from being nearly nothing, and staying under 365 days keeps
  a shifted date from landing on the same day and month a year earlier.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field, replace
from datetime import date, datetime

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from store.app_settings import database_secret
from store.frames import Records
from store.settings import DEFAULT_PSEUDONYM_SECRET, get_settings

#: Written as the time of a de-identified file: beside its shifted dates, a real time (or any time of the export)
#: would give the shifts away.
NO_TIME = datetime(1980, 1, 1)

PATIENT_PREFIX = "P-"
STAFF_PREFIX = "S-"
#: Shifts are drawn from -MAX_SHIFT_DAYS .. -MIN_SHIFT_DAYS.
MIN_SHIFT_DAYS = 30
MAX_SHIFT_DAYS = 364
#: Ages from this one up are reported as one open band ("90+"), as small old age groups identify.
OPEN_AGE_BAND = 90


def age_band(birth_year, on: date) -> str | None:
    """The 10-year age band ("30-39", "90+") of someone born in `birth_year` on the date `on`; None if unknown.

    The age is computed from the year alone (on - birth year), which is exact to within one year
    and all that a year of birth allows.
    """
    if birth_year is None or pd.isna(birth_year):
        return None
    age = on.year - int(birth_year)
    if age >= OPEN_AGE_BAND:
        return f"{OPEN_AGE_BAND}+"
    low = max(age, 0) // 10 * 10
    return f"{low}-{low + 9}"


@dataclass(frozen=True)
class Pseudonymiser:
    """Stable pseudonyms and date offsets from one secret key, the same for every export."""

    secret: str = field(repr=False)  # never in a traceback or a log line
    #: Patients moved by exact 24-hour days in every table of this export (`keeping_order`), not by wall-clock days.
    by_exact_days: frozenset[str] = field(default=frozenset(), repr=False)

    @classmethod
    def from_settings(cls, engine: Engine) -> "Pseudonymiser":
        """Keyed with `KETAWATCH_PSEUDONYM_SECRET`; left at its public default, with a random key kept in the database.

        A key anyone can read would let them recompute the pseudonym of a guessable clinic id
        (KW-0001...) and undo the date shift, so the default is never used as a key.
        """
        secret = get_settings().pseudonym_secret
        if secret == DEFAULT_PSEUDONYM_SECRET:
            secret = database_secret(engine)
        return cls(secret)

    def _digest(self, kind: str, value: str) -> bytes:
        return hmac.new(self.secret.encode("utf-8"), f"{kind}:{value}".encode("utf-8"), hashlib.sha256).digest()

    def patient(self, patient_id: str) -> str:
        """The patient's pseudonym, "P-" followed by 10 hex characters."""
        return PATIENT_PREFIX + self._digest("patient", str(patient_id)).hex()[:10]

    def offset_days(self, patient_id: str) -> int:
        """The patient's date shift in days (negative), from the same keyed hash as the pseudonym."""
        digest = self._digest("patient", str(patient_id))
        span = MAX_SHIFT_DAYS - MIN_SHIFT_DAYS + 1
        return -(MIN_SHIFT_DAYS + int.from_bytes(digest[8:12], "big") % span)

    def staff(self, username) -> str | None:
        """A clinician's or reviewer's pseudonym, "S-" followed by 8 hex characters; None for no one."""
        if username is None or pd.isna(username) or str(username).strip() == "":
            return None
        return STAFF_PREFIX + self._digest("staff", str(username)).hex()[:8]

    def record(self, record: str, row_id: int) -> str:
        """A stable key for one stored record that does not give away its database row number."""
        return self._digest("record", f"{record}|{int(row_id)}").hex()[:16]

    # ----- vectorised helpers over frames

    def patients_of(self, patient_ids: pd.Series) -> pd.Series:
        """Pseudonyms for a column of patient ids (computed once per distinct id)."""
        return _mapped(patient_ids, self.patient).astype("string")

    def offsets_of(self, patient_ids: pd.Series) -> pd.Series:
        """Day offsets (int64) for a column of patient ids."""
        return _mapped(patient_ids, self.offset_days).astype("int64")

    def staff_of(self, usernames: pd.Series) -> pd.Series:
        """Staff pseudonyms for a column of usernames; missing stays missing."""
        return _mapped(usernames, self.staff).astype("string")

    def keeping_order(self, times: pd.DataFrame, tz: str) -> "Pseudonymiser":
        """This pseudonymiser, having decided once, from every stored time of each patient (`store.queries.
        patient_times`: patient_id, at), who moves by exact days.

        Decided table by table, a patient whose records would meet on a 23-hour day moved by exact days in that table
        and by wall-clock days in the others, an hour apart (IG review, code review). Decided over every time an
        export can show, no table can break the order on its own, so every table of every export made from the same
        stored records moves the patient alike. (A record added later that meets another on such a day moves that
        patient by exact days from then on, in every export.)
        """
        if times.empty:
            return self
        instants = pd.to_datetime(times["at"], utc=True).reset_index(drop=True)
        owners = times["patient_id"].astype(str).reset_index(drop=True)
        wall, _ = _both_shifts(instants, self.offsets_of(owners), tz)
        broken = _order_broken(instants, wall, owners)
        return replace(self, by_exact_days=self.by_exact_days | frozenset(owners[broken]))

    def shift(self, instants: pd.Series, patient_ids: pd.Series, tz: str) -> pd.Series:
        """UTC instants of these patients moved by each one's shift (`shift_instants`), alike in every table."""
        owners = patient_ids.astype(str)
        return shift_instants(instants, self.offsets_of(owners), tz, owners, exact_owners=self.by_exact_days)


def _mapped(values: pd.Series, function) -> pd.Series:
    """Apply `function` to each distinct non-missing value only, then map back (hashing is per id, not per row)."""
    distinct = pd.unique(values.dropna())
    table = {value: function(value) for value in distinct}
    return values.map(table)


def shift_instants(instants: pd.Series, offsets: pd.Series, tz: str, owners: pd.Series,
                   exact_owners: frozenset[str] = frozenset()) -> pd.Series:
    """UTC instants moved by whole days of clinic-local wall-clock time (so a 10:00 session stays at 10:00).

    A time that falls into the spring-forward gap on its new day (01:20 when clocks jump from 01:00
    to 02:00) is read in the hour before the change, so it shows an hour later (02:20). On a 23-hour
    day that can put two of a patient's records on the same instant or in the wrong order; such a
    patient (grouped by `owners`), and every patient in `exact_owners` (decided from all of their
    records by `Pseudonymiser.keeping_order`), is shifted by exact 24-hour days instead, which keeps
    every interval and the order, at the cost of an hour on the clock across a clock change.
    """
    if instants.empty:
        return instants
    wall, exact = _both_shifts(instants, offsets, tz)
    broken = _order_broken(instants, wall, owners) | owners.astype(str).isin(exact_owners).to_numpy(dtype=bool)
    return wall.where(~broken, exact)


def _both_shifts(instants: pd.Series, offsets: pd.Series, tz: str) -> tuple[pd.Series, pd.Series]:
    """The instants moved by wall-clock days (see `shift_instants`) and by exact 24-hour days."""
    days = pd.to_timedelta(offsets.to_numpy(dtype="int64"), unit="D")
    local = instants.dt.tz_convert(tz).dt.tz_localize(None)
    moved = (local + days).dt.tz_localize(tz, ambiguous=np.zeros(len(local), dtype=bool), nonexistent=pd.Timedelta(hours=1))
    wall = moved.dt.tz_convert("UTC").astype(instants.dtype)
    exact = (instants + days).astype(instants.dtype)
    return wall, exact


def to_the_minute(instants: pd.Series) -> pd.Series:
    """A time the system stamped (a review, a correction) without its seconds: to the thousandth of a second, a
    shifted stamp could be matched to its audit line or log entry, which carry the real date (security review)."""
    return instants.dt.floor("min")


def _order_broken(before: pd.Series, after: pd.Series, owners: pd.Series) -> np.ndarray:
    """Per record: does its patient have two records whose order or distinctness the shift changed?"""
    frame = pd.DataFrame({"owner": owners.to_numpy(), "before": before.to_numpy(), "after": after.to_numpy()})
    frame = frame.sort_values(["owner", "before"], kind="stable")
    same_owner = frame["owner"].eq(frame["owner"].shift())
    step_before = frame["before"].diff()
    step_after = frame["after"].diff()
    bad = same_owner & ((step_after < pd.Timedelta(0)) | ((step_before > pd.Timedelta(0)) & (step_after <= pd.Timedelta(0))))
    bad_owners = set(frame.loc[bad, "owner"])
    return owners.isin(bad_owners).to_numpy() if bad_owners else np.zeros(len(owners), dtype=bool)


def shift_dates(dates: pd.Series, offsets: pd.Series) -> pd.Series:
    """Naive midnight dates moved by whole days."""
    return (dates + pd.to_timedelta(offsets.to_numpy(dtype="int64"), unit="D")).astype(dates.dtype)


def question_9_lines_only(notes: pd.Series) -> pd.Series:
    """Check-in notes reduced to their PHQ-9 question 9 line in the form's fixed words, and nothing else.

    A research file without it would silently miss every answer about thoughts of death or
    self-harm (the import format has no column for it); the rest of a note is free text.
    """
    from ketawatch.safety_answers import SAFETY_MARK, without_free_text
    from store.queries import marked_line

    def kept(text):
        line = marked_line(text, SAFETY_MARK)
        return without_free_text(line) if line else pd.NA
    return notes.map(kept).astype("string")


def deidentify_records(records: Records, pseudonymiser: Pseudonymiser, *, on: date, tz: str | None = None) -> Records:
    """The same records with pseudonyms, shifted dates, age bands and no notes or staff names.

    The patients frame gains an `age_band` column (at `on`, the export date) and loses the
    birth year; everything the risk engine and the charts read is kept, so levels and charts
    computed from the result match the original apart from the dates.
    """
    tz = tz or get_settings().clinic_timezone
    p = records.patients.copy()
    p["age_band"] = pd.Series([age_band(y, on) for y in p["birth_year"]], index=p.index, dtype="string")
    p["treatment_start"] = shift_dates(p["treatment_start"], pseudonymiser.offsets_of(p["patient_id"]))
    p["display_name"] = pd.Series(pd.NA, index=p.index, dtype="string")
    p["birth_year"] = np.nan
    p["clinician"] = pseudonymiser.staff_of(p["clinician"])
    p["patient_id"] = pseudonymiser.patients_of(p["patient_id"])

    s = records.sessions.copy()
    s["session_at"] = pseudonymiser.shift(s["session_at"], s["patient_id"], tz)
    s["notes"] = pd.Series(pd.NA, index=s.index, dtype="string")
    s["patient_id"] = pseudonymiser.patients_of(s["patient_id"])

    c = records.checkins.copy()
    c["reported_at"] = pseudonymiser.shift(c["reported_at"], c["patient_id"], tz)
    c["notes"] = question_9_lines_only(c["notes"])
    c["patient_id"] = pseudonymiser.patients_of(c["patient_id"])
    # In pseudonym order: in the clinic's order, row n of a many-patient file would still be patient KW-000n.
    return Records(in_pseudonym_order(p, ["patient_id"]), in_pseudonym_order(s, ["patient_id", "session_at"]),
                   in_pseudonym_order(c, ["patient_id", "reported_at"]))


def in_pseudonym_order(frame: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Rows by pseudonym, then time: left in their real order, they would tie pseudonyms to clinic ids and dates."""
    return frame.sort_values(by, kind="stable").reset_index(drop=True) if len(frame) else frame


def deidentify_reviews(reviews: pd.DataFrame, pseudonymiser: Pseudonymiser, *, tz: str | None = None) -> pd.DataFrame:
    """Alert reviews with the patient's pseudonym and date shift, the reviewer pseudonymised and the note dropped."""
    tz = tz or get_settings().clinic_timezone
    out = reviews.copy()
    if out.empty:
        out["note"] = pd.Series(dtype="string")
        return out
    at = pd.to_datetime(out["reviewed_at"], utc=True)
    out["reviewed_at"] = to_the_minute(pseudonymiser.shift(at, out["patient_id"], tz))
    out["reviewed_by"] = pseudonymiser.staff_of(out["reviewed_by"])
    out["note"] = pd.Series(pd.NA, index=out.index, dtype="string")
    out["patient_id"] = pseudonymiser.patients_of(out["patient_id"])
    # By pseudonym, as the records: the real order of reviews across patients would link rows to clinic ids.
    return in_pseudonym_order(out, ["patient_id", "reviewed_at"])
