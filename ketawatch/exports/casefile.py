"""Gathering what an export shows, once: records, level, history, reviews, identified or de-identified.

De-identification happens here, before anything is computed: the risk engine, the charts and
the tables all run on the pseudonymised, date-shifted records, so no real date can slip through
a reason's wording ("craving rose ... 3 Mar to 17 Mar 2025") or a chart axis. Levels do not
depend on the calendar, only on intervals, which the shift keeps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

import pandas as pd
from sqlalchemy import Engine

from ketawatch.exports.deidentify import (
    Pseudonymiser, age_band, deidentify_records, deidentify_reviews, in_pseudonym_order, to_the_minute,
)
from ketawatch.accounts import staff_label, staff_names
from ketawatch.caseload import latest_reviews, reason_summary
from ketawatch.change_words import describe_changes, field_words
from ketawatch.safety_answers import answers_with_follow_ups, follow_up_text, without_free_text
from ketawatch.safety_answers import in_view as safety_in_view, one_per_patient
from store.frames import CHECKIN_DTYPES, SESSION_DTYPES, Records, conform
from store.queries import (
    alert_reviews_frame, amendments_since_first, checkins_frame, load_records, patient_times, patients_frame,
    sessions_frame,
)
from store.settings import get_settings
from store.vocabulary import UNDER_CARE_STATUSES


class PatientNotFound(LookupError):
    """No live patient with that id."""


def patient_not_found(engine: Engine, missing: list[str]) -> PatientNotFound:
    """The refusal for ids no patient has, naming the id that only its capitals or spaces kept apart ('kw-0014' for
    'KW-0014'), and nothing looser: a near id such as KW-0015 is another patient (IG review)."""
    known = {str(p).strip().lower(): str(p) for p in patients_frame(engine)["patient_id"]}
    shown = []
    for pid in missing:
        meant = known.get(pid.strip().lower())
        shown.append(f"{pid!r}" + (f" (did you mean {meant!r}?)" if meant and meant != pid else ""))
    return PatientNotFound(f"no patient with id {', '.join(shown)}")


@dataclass(frozen=True)
class Author:
    """Who made the export, as printed on it (a staff pseudonym in a de-identified export)."""

    username: str
    display_name: str | None
    role: str

    def shown(self, pseudonymiser: Pseudonymiser | None) -> str:
        """'Dr Ahmed (dr-ahmed, clinician)', or 'S-1a2b3c4d' when de-identified: no role, which in a small team can name
        the one person who holds it (IG review)."""
        if pseudonymiser is not None:
            return pseudonymiser.staff(self.username)
        name = f"{self.display_name} ({self.username}, {self.role})" if self.display_name else f"{self.username} ({self.role})"
        return name


@dataclass
class PatientCase:
    """One patient's export contents, already de-identified when `deidentified` is True."""

    patient: dict
    label: str
    records: Records
    start: date | None
    end: date
    level: str
    since: date | None
    reasons: list
    history: pd.DataFrame
    reviews: pd.DataFrame
    signals: dict[str, pd.DataFrame]
    deidentified: bool
    age_band: str | None
    #: When the file was made; None when de-identified (a reader who knows when a file was sent could read the
    #: patient's date shift off any export time it carried, shifted or not: IG review).
    generated_at: datetime | None
    generated_by: str
    tz: str
    #: PHQ-9 question 9 answers above 'not at all' in the period (reported_at, line), newest first.
    safety: pd.DataFrame | None = None
    #: Records of the period amended or voided since they were first recorded (see `corrections_of`).
    corrections: pd.DataFrame | None = None
    #: The voided sessions and check-ins of the period (their last values), for exports that must retract them.
    voided: Records | None = None
    #: (record, row id) -> a key for the record that outlives a change of its date (keyed when de-identified).
    record_keys: dict[tuple[str, int], str] | None = None
    #: Recent observations no rule counted as of `end` (ketawatch.risk.seen_not_counted), in the same records' dates.
    not_counted: list | None = None
    #: The level as shown at the end of each day the stored records changed, where it began, changed or differs from
    #: the replay in `history` (ketawatch.risk.as_seen.days_to_list), in the same dates as the records; reasons as rule ids,
    #: and `reason_titles` as the caseload words them (ketawatch.caseload.reason_summary).
    shown_then: pd.DataFrame | None = None
    #: Whether `end` was chosen at export; otherwise it is the day of export, which a de-identified file does not show.
    end_chosen: bool = True
    #: Username -> full name, to print staff as colleagues know them (identified files only; empty when de-identified).
    staff: dict[str, str] = field(default_factory=dict)

    @property
    def export_day_hidden(self) -> bool:
        """Whether `end` is the day of export in a de-identified file, which must not show it: shifted like the
        records, whoever knew when the file was sent could read the patient's shift off it (IG review)."""
        return self.deidentified and not self.end_chosen

    @property
    def as_of_text(self) -> str:
        """The date the level is as of, as the file may show it: de-identified, the day of export is not printed."""
        return "the day of export" if self.export_day_hidden else self.end.isoformat()

    @property
    def chart_end(self) -> date | None:
        """The last day the charts draw: `end`, or the latest record's day where the day of export is hidden (charts
        drawn to it showed the shifted day of export on their axis)."""
        return None if self.export_day_hidden else self.end

    def record_key(self, record: str, row_id: int) -> str:
        """The record's lasting key: a FHIR resource keeps its id when the record's time is amended."""
        return (self.record_keys or {}).get((record, int(row_id))) or f"{record}-{int(row_id)}"

    def amended_ids(self, record: str) -> set[int]:
        """Ids of the live sessions ('session') or check-ins ('check-in') that were amended."""
        if self.corrections is None or self.corrections.empty:
            return set()
        c = self.corrections[self.corrections["record"] == record]
        voided = set(c.loc[c["change"] == "voided", "record_id"].astype(int))  # amended, then voided: not live
        return set(c.loc[c["change"] == "amended", "record_id"].astype(int)) - voided

    @property
    def patient_key(self) -> str:
        """The id printed on the export: the clinic id, or the pseudonym."""
        return str(self.patient["patient_id"])

    def in_window(self, frame: pd.DataFrame, column: str = "date") -> pd.DataFrame:
        """Rows of a frame with a clinic-local `date` column that fall in the export's date range."""
        if frame.empty:
            return frame
        days = pd.to_datetime(frame[column]).dt.date
        keep = days <= self.end
        if self.start is not None:
            keep &= days >= self.start
        return frame[keep.to_numpy()].reset_index(drop=True)


def local_day(instants: pd.Series, tz: str) -> pd.Series:
    """UTC instants as clinic-local `datetime.date` values."""
    if instants.empty:
        return pd.Series([], index=instants.index, dtype=object)
    return pd.to_datetime(instants, utc=True).dt.tz_convert(tz).dt.date


def dated_within(frame: pd.DataFrame, column: str, start: date | None, end: date, tz: str) -> pd.DataFrame:
    """Rows whose clinic-local date of `column` falls in [start, end] (from the first row when `start` is None)."""
    if frame.empty:
        return frame.reset_index(drop=True)
    day = local_day(frame[column], tz)
    keep = (day <= end) & ((day >= start) if start else True)
    return frame[keep.to_numpy(dtype=bool)].reset_index(drop=True)


def records_within(records: Records, start: date | None, end: date, tz: str) -> Records:
    """The sessions and check-ins dated (clinic-local) in [start, end]; the patients are kept whole."""
    return Records(records.patients, dated_within(records.sessions, "session_at", start, end, tz),
                   dated_within(records.checkins, "reported_at", start, end, tz))


def records_until(records: Records, end: date, tz: str) -> Records:
    """Only the records dated (clinic-local) on or before `end`, as the level as of `end` would see them."""
    return records_within(records, None, end, tz)


def load_patient_case(
    engine: Engine,
    patient_id: str,
    *,
    author: Author,
    start: date | None = None,
    end: date | None = None,
    deidentify: bool = False,
    pseudonymiser: Pseudonymiser | None = None,
    now: datetime | None = None,
) -> PatientCase:
    """Everything one patient's case-review export shows, for records up to `end` (default today)."""
    from ketawatch.risk import assess, level_history, load_rules, patient_signals, reason_ids, seen_not_counted
    from ketawatch.risk.as_seen import days_to_list, shown_then
    from store.known_then import record_timeline

    tz = get_settings().clinic_timezone
    now = now or datetime.now(timezone.utc)
    export_day = now.astimezone(get_settings().tz).date()
    end_chosen = end is not None
    end = end or export_day
    records = load_records(engine, [patient_id])
    if records.patients.empty:
        raise patient_not_found(engine, [patient_id])
    reviews = alert_reviews_frame(engine, [patient_id])
    if not reviews.empty:
        reviews = reviews[(local_day(reviews["reviewed_at"], tz) <= end).to_numpy(dtype=bool)]
    band = age_band(records.patients["birth_year"].iloc[0], export_day)
    key = patient_id
    shown_by = author.shown(None)
    safety = answers_with_follow_ups(engine, reviews, patient_ids=[patient_id])  # before de-identification drops notes
    corrections, voided = corrections_of(engine, [patient_id], records.patients)
    row_ids = [("session", int(i)) for frame in (records.sessions, voided.sessions) for i in frame["id"]]
    row_ids += [("check-in", int(i)) for frame in (records.checkins, voided.checkins) for i in frame["id"]]
    record_keys = {key: f"{key[0]}-{key[1]}" for key in row_ids}
    shown = days_to_list(shown_then(record_timeline(engine, [patient_id]), rules=load_rules(), tz=tz, until=end))
    shown = shown.drop(columns="patient_id")
    if start is not None:  # the days of the period only: it lists what differs on them (code review)
        # a Series, not a list: an empty list picks no columns, and a period ending before any change lost them all
        shown = shown[pd.Series([day >= start for day in shown["date"]], index=shown.index, dtype=bool)]
    # rule ids and titles only: a reason's full words carry the real dates, which a de-identified file must not; its
    # few words (a rule and a sign) carry none, and the PDF prints those (clinician's case-review reading)
    shown = shown.assign(reason_titles=shown["reasons"].map(reason_summary), reasons=shown["reasons"].map(reason_ids),
                         replay_reasons=shown["replay_reasons"].map(reason_ids))
    if deidentify:
        pseudonymiser = (pseudonymiser or Pseudonymiser.from_settings(engine)).keeping_order(
            patient_times(engine, [patient_id]), tz)
        shift = timedelta(days=pseudonymiser.offset_days(patient_id))
        start = start + shift if start else None
        end = end + shift
        records = deidentify_records(records, pseudonymiser, on=export_day, tz=tz)
        reviews = deidentify_reviews(reviews, pseudonymiser, tz=tz)
        key = pseudonymiser.patient(patient_id)
        shown_by = author.shown(pseudonymiser)
        safety = _deidentified_safety(safety, pseudonymiser, tz)
        corrections = deidentified_corrections(corrections, pseudonymiser, tz)
        voided = deidentify_records(voided, pseudonymiser, on=export_day, tz=tz)
        record_keys = {key: pseudonymiser.record(*key) for key in row_ids}
        shown = shown.assign(date=[day + shift for day in shown["date"]])
        # No export time at all, as in an export of several patients: shifted like the records, it gave the shift
        # away to anyone who knew when the file was sent (its e-mail, its file date; IG review).
        now = None
    records = records_until(records, end, tz)
    safety = dated_within(safety, "reported_at", start, end, tz)
    corrections = dated_within(corrections, "record_at", start, end, tz)
    voided = records_within(voided, start, end, tz)
    assessment = assess(records, as_of=end, tz=tz).iloc[0]
    history = level_history(records, tz=tz)
    history = history[history["patient_id"].astype(str) == key].drop(columns="patient_id")
    history = _history_from(history, start)
    signals = patient_signals(records, key, tz=tz)
    patient = records.patients.iloc[0].to_dict()
    label = key if deidentify else (f"{patient['display_name']} ({key})" if _present(patient.get("display_name")) else key)
    return PatientCase(
        patient=patient,
        label=label,
        records=records,
        start=start,
        end=end,
        level=str(assessment["level"]),
        since=assessment["since"],
        reasons=list(assessment["reasons"]),
        not_counted=seen_not_counted(records, key, as_of=end, tz=tz),
        history=history.reset_index(drop=True),
        reviews=reviews.reset_index(drop=True),
        signals=signals,
        deidentified=deidentify,
        age_band=band,
        generated_at=now,
        generated_by=shown_by,
        tz=tz,
        safety=safety,
        corrections=corrections,
        voided=voided,
        record_keys=record_keys,
        shown_then=shown.reset_index(drop=True),
        end_chosen=end_chosen,
        staff={} if deidentify else staff_names(engine),
    )


CORRECTION_COLUMNS = ["patient_id", "record", "record_id", "record_at", "change", "what_changed", "changed_at",
                      "changed_by", "reason"]


def corrections_of(engine: Engine, patient_ids: list[str] | None, patients: pd.DataFrame) -> tuple[pd.DataFrame, Records]:
    """The patients' (default everyone's) amended and voided sessions and check-ins, and the voided records.

    A record amended several times has one row for its latest amendment (when, by whom, why) and
    every field corrected since it was first recorded ("Dose (mg): 35.0 -> 40.0; Notes changed"), and
    one more if it was then voided; every earlier version is kept in the database (record_revision)
    and the audit trail.
    """
    tz = get_settings().clinic_timezone
    parts, voided = [], {}
    for record, entity, frame, at, dtypes in (
        ("session", "session", sessions_frame(engine, patient_ids, include_voided=True, with_tracking=True), "session_at",
         SESSION_DTYPES),
        ("check-in", "checkin", checkins_frame(engine, patient_ids, include_voided=True, with_tracking=True),
         "reported_at", CHECKIN_DTYPES),
    ):
        is_void = frame["voided_at"].notna().to_numpy(dtype=bool) if len(frame) else []
        changed = frame[is_void | frame["amended_at"].notna().to_numpy(dtype=bool)] if len(frame) else frame
        voided[record] = conform(frame[is_void], dtypes) if len(frame) else conform(None, dtypes)
        if changed.empty:
            continue
        amendments = amendments_since_first(engine, entity, patient_ids)
        # A record amended and then voided has a row for each: with the void alone, the PDF a meeting keeps lost the
        # amendment and the value it corrected (clinician's browser pass).
        for change, rows, when, by, why in (
            ("amended", changed[changed["amended_at"].notna().to_numpy(dtype=bool)], "amended_at", "amended_by",
             "amendment_reason"),
            ("voided", changed[changed["voided_at"].notna().to_numpy(dtype=bool)], "voided_at", "voided_by",
             "void_reason"),
        ):
            if rows.empty:
                continue
            what = ([_what_changed(*amendments.get(str(key), ({}, {})), tz) or pd.NA for key in rows["id"]]
                    if change == "amended" else [pd.NA] * len(rows))
            parts.append(pd.DataFrame({
                "patient_id": rows["patient_id"].astype("string"),
                "record": record,
                "record_id": rows["id"].astype("Int64"),
                "record_at": pd.to_datetime(rows[at], utc=True),
                "change": change,
                "what_changed": pd.array(what, dtype="string"),
                "changed_at": pd.to_datetime(rows[when], utc=True),
                "changed_by": rows[by].astype("string"),
                "reason": rows[why].astype("string"),
            }))
    corrections = (pd.concat(parts, ignore_index=True).sort_values(["record_at", "changed_at"], kind="stable")
                   .reset_index(drop=True) if parts else pd.DataFrame(columns=CORRECTION_COLUMNS))
    return corrections, Records(patients, voided["session"], voided["check-in"])


#: Free text an amendment may have corrected away (a name typed in the wrong patient's notes): said to have changed,
#: never quoted again in an export (code review).
_NOT_QUOTED = ("notes",)


def _what_changed(before: dict, after: dict, tz: str) -> str:
    """'Dose (mg): 35.0 -> 40.0; Notes changed': every field corrected since the record was first made, times in clinic
    time, free text named but not quoted."""
    unquoted = [name for name in _NOT_QUOTED if before.get(name) != after.get(name)]
    before, after = ({k: v for k, v in _clinic_times(values, tz).items() if k not in _NOT_QUOTED}
                     for values in (before, after))
    words = [describe_changes({"before": before, "after": after}), *(f"{field_words(name)} changed" for name in unquoted)]
    return "; ".join(w for w in words if w)


def _clinic_times(values: dict, tz: str) -> dict:
    """A record's stored values with each time (ISO, UTC, as the audit trail keeps it) as the clinic reads it,
    '2026-08-11 10:00', so a corrected session time reads as on the page."""
    def shown(value):
        if isinstance(value, str) and "T" in value and value[:4].isdigit():
            try:
                moment = pd.Timestamp(value)
            except ValueError:
                return value
            if moment.tzinfo is not None:
                return moment.tz_convert(tz).strftime("%Y-%m-%d %H:%M")
        return value

    return {name: shown(value) for name, value in values.items()}


def deidentified_corrections(corrections: pd.DataFrame, pseudonymiser: Pseudonymiser, tz: str) -> pd.DataFrame:
    """Corrections under the pseudonym and date shift, staff pseudonymised, without the reason or what changed (free
    text, and times not shifted)."""
    if corrections.empty:
        return corrections
    owners = corrections["patient_id"].astype(str)
    # In pseudonym order, as every other de-identified sheet: the real order of records across patients (code review,
    # IG) tied pseudonyms to each other's dates.
    return in_pseudonym_order(corrections.assign(
        record_at=pseudonymiser.shift(corrections["record_at"], owners, tz),
        changed_at=to_the_minute(pseudonymiser.shift(corrections["changed_at"], owners, tz)),
        changed_by=pseudonymiser.staff_of(corrections["changed_by"]),
        reason=pd.Series(pd.NA, index=corrections.index, dtype="string"),
        what_changed=pd.Series(pd.NA, index=corrections.index, dtype="string"),  # free text and unshifted times in it
        patient_id=pseudonymiser.patients_of(owners),
    ), ["patient_id", "record_at"])


def _deidentified_safety(safety: pd.DataFrame, pseudonymiser: Pseudonymiser, tz: str) -> pd.DataFrame:
    """Safety answers under the patient's pseudonym and date shift, in the form's fixed words (never typed text);
    a follow-up keeps its shifted time and what was done, under the clinician's pseudonym and without its note."""
    safety = safety.drop(columns=[c for c in ("entered_at",) if c in safety])  # a real time: it would give the shift away
    if safety.empty:
        return safety
    owners = safety["patient_id"].astype(str)
    at = pd.to_datetime(safety["reported_at"], utc=True)
    out = safety.assign(
        reported_at=pseudonymiser.shift(at, owners, tz),
        line=safety["line"].map(without_free_text),
        patient_id=pseudonymiser.patients_of(owners),
    )
    if "followed_up_at" in safety:
        done = safety["followed_up_at"].notna().to_numpy(dtype=bool)
        shifted = pd.Series(pd.NaT, index=safety.index, dtype="datetime64[ns, UTC]")
        if done.any():
            shifted[done] = pseudonymiser.shift(pd.to_datetime(safety["followed_up_at"][done], utc=True), owners[done],
                                                tz).to_numpy()
        by = pd.Series(None, index=safety.index, dtype=object)
        by[done] = pseudonymiser.staff_of(safety["followed_up_by"][done]).to_numpy()
        out = out.assign(followed_up_at=shifted, followed_up_by=by,
                         follow_up_note=pd.Series(None, index=safety.index, dtype=object))
    return out


def _history_from(history: pd.DataFrame, start: date | None) -> pd.DataFrame:
    """Level changes from `start` on, plus the level already in force on `start`."""
    if start is None or history.empty:
        return history
    days = pd.to_datetime(history["date"]).dt.date
    before = history[(days < start).to_numpy(dtype=bool)].tail(1)
    return pd.concat([before, history[(days >= start).to_numpy(dtype=bool)]])


def _present(value) -> bool:
    return value is not None and not (isinstance(value, float) and pd.isna(value)) and value is not pd.NA and str(value) != ""


# ----- caseload -----------------------------------------------------------------------------------


@dataclass
class CaseloadExport:
    """The amber and red patients for a team meeting, already de-identified when asked."""

    rows: pd.DataFrame
    as_of: date
    deidentified: bool
    generated_at: datetime
    generated_by: str
    patient_ids: list[str]
    counts: dict[str, int]
    #: Discharged patients left out (the caseload page and the alerts show those still under care).
    discharged: int = 0
    #: Username -> full name, to print staff as colleagues know them (identified files only; empty when de-identified).
    staff: dict[str, str] = field(default_factory=dict)
    #: Patients under care whose latest PHQ-9 is a reliable worsening on their lowest, whatever their level
    #: (patient_id, display_name, level, phq9_latest): a relapse beside a green level (clinician's browser pass).
    mood_worse: pd.DataFrame = field(default_factory=pd.DataFrame)


def load_caseload(
    engine: Engine,
    *,
    author: Author,
    as_of: date | None = None,
    deidentify: bool = False,
    pseudonymiser: Pseudonymiser | None = None,
    now: datetime | None = None,
) -> CaseloadExport:
    """Every amber and red patient still under care (active or paused), and any with a PHQ-9 question 9 answer in
    the last two weeks, with level, since when, reasons, that answer and the last review (worst first).

    Identified: one `assess` and `caseload_table` over everyone. De-identified: the same
    patients, each re-assessed on its own shifted records so the reasons' dates are shifted too.
    """
    from ketawatch.caseload import caseload_table, level_counts, reason_ids
    from ketawatch.risk import assess

    tz = get_settings().clinic_timezone
    now = now or datetime.now(timezone.utc)
    as_of = as_of or now.astimezone(get_settings().tz).date()
    records = records_until(load_records(engine), as_of, tz)
    reviews = alert_reviews_frame(engine)
    if not reviews.empty:
        reviews = reviews[(local_day(reviews["reviewed_at"], tz) <= as_of).to_numpy(dtype=bool)]
    assessment = assess(records, as_of=as_of, tz=tz)
    table = caseload_table(records, assessment, tz=tz, today=as_of, reviews=reviews,
                           review_again_days=get_settings().review_again_days)
    under_care = table["status"].isin(UNDER_CARE_STATUSES).to_numpy(dtype=bool)  # as the Alerts page and the caseload
    # A PHQ-9 question 9 answer not yet followed up (or followed up in the last two weeks) puts the patient on the
    # list whatever the level or status, as the dashboard's banner does: a patient discharged just after answering
    # it still needs someone to call.
    until = min(now, pd.Timestamp(as_of + timedelta(days=1), tz=tz).to_pydatetime())
    recent = one_per_patient(safety_in_view(engine, now=until, reviews=reviews))
    answered = table["patient_id"].astype(str).isin(recent["patient_id"].astype(str)).to_numpy(dtype=bool)
    # Those the list would have shown had they been under care: amber or red, and not listed for question 9.
    alerting = table["level"].isin(["amber", "red"]).to_numpy(dtype=bool)
    discharged = int((~under_care & ~answered & alerting).sum())
    counts = level_counts(table[under_care])
    flagged = table[(alerting & under_care) | answered]
    flagged = flagged.reset_index(drop=True)
    worse = table[under_care & table["phq9_worse"].to_numpy(dtype=bool)]
    mood_worse = worse[["patient_id", "display_name", "level", "phq9_latest"]].reset_index(drop=True)
    real_ids = flagged["patient_id"].astype(str).tolist()
    reasons_by_patient = assessment.set_index(assessment["patient_id"].astype(str))["reasons"]
    flagged["reasons"] = [reasons_by_patient.get(pid, []) for pid in real_ids]
    shown_by = author.shown(None)
    if deidentify and real_ids:
        # moved alike in every export of theirs: decided from all their stored times, not those up to `as_of`
        pseudonymiser = (pseudonymiser or Pseudonymiser.from_settings(engine)).keeping_order(
            patient_times(engine, real_ids), tz)
        sub = records.for_patients(real_ids)
        shifted = deidentify_records(sub, pseudonymiser, on=as_of, tz=tz)
        rows = []
        for pid in real_ids:  # one assessment per flagged patient: each has its own shifted "as of"
            key = pseudonymiser.patient(pid)
            own_as_of = as_of + timedelta(days=pseudonymiser.offset_days(pid))
            one = assess(shifted.for_patients([key]), as_of=own_as_of, tz=tz).iloc[0]
            rows.append({"patient_id": key, "level": one["level"], "since": one["since"], "reasons": list(one["reasons"]), "as_of": own_as_of})
        shifted_rows = pd.DataFrame(rows)
        flagged["patient_id"] = shifted_rows["patient_id"].to_numpy()
        flagged["level"] = shifted_rows["level"].to_numpy()
        flagged["level_since"] = pd.to_datetime(shifted_rows["since"]).to_numpy()
        flagged["reasons"] = shifted_rows["reasons"].to_numpy()
        flagged["display_name"] = pd.NA
        flagged["clinician"] = pseudonymiser.staff_of(flagged["clinician"]).to_numpy()
        reviews = deidentify_reviews(reviews[reviews["patient_id"].isin(real_ids)], pseudonymiser, tz=tz)
        # Worst first, not yet reviewed first, then by pseudonym, as a meeting works through them; not by the real
        # "since" date, as the identified order does: row for row, that order would match the identified one.
        rank = flagged["level"].map({"red": 0, "amber": 1}).fillna(2)
        reviewed = ~flagged["needs_review"].fillna(False).astype(bool)
        order = sorted(range(len(flagged)),
                       key=lambda i: (rank.iloc[i], reviewed.iloc[i], str(flagged["patient_id"].iloc[i])))
        flagged = flagged.iloc[order].reset_index(drop=True)
        real_ids = [real_ids[i] for i in order]
        recent = _deidentified_safety(recent, pseudonymiser, tz)
    if deidentify:  # pseudonyms, no names, in pseudonym order (no dates here to shift)
        pseudonymiser = pseudonymiser or Pseudonymiser.from_settings(engine)
        shown_by = author.shown(pseudonymiser)
        mood_worse = in_pseudonym_order(mood_worse.assign(
            patient_id=pseudonymiser.patients_of(mood_worse["patient_id"].astype(str)),
            display_name=pd.Series(pd.NA, index=mood_worse.index, dtype="string")), ["patient_id"])
    staff = {} if deidentify else staff_names(engine)
    if staff and len(recent):  # "by Demo Clinician (demo-clinician)" in the meeting's file, as on screen
        recent = recent.assign(followed_up_by=recent["followed_up_by"].map(lambda who: staff_label(who, staff)
                                                                          if isinstance(who, str) else who))
    said = [f"{day:%Y-%m-%d}: {line}" for day, line in zip(local_day(recent["reported_at"], tz), recent["line"])]
    answered_by = recent["patient_id"].astype(str)
    flagged["safety_answer"] = flagged["patient_id"].astype(str).map(dict(zip(answered_by, said))).astype("string")
    flagged["safety_follow_up"] = flagged["patient_id"].astype(str).map(
        dict(zip(answered_by, [follow_up_text(r, tz) for r in recent.itertuples(index=False)]))).astype("string")
    flagged["reason_ids"] = [";".join(reason_ids(r)) for r in flagged["reasons"]]
    flagged = _with_last_review(flagged, reviews, tz)
    return CaseloadExport(
        rows=flagged,
        as_of=as_of,
        deidentified=deidentify,
        generated_at=now,
        generated_by=shown_by,
        patient_ids=real_ids,
        counts=counts,
        discharged=discharged,
        staff=staff,
        mood_worse=mood_worse,
    )


def _with_last_review(rows: pd.DataFrame, reviews: pd.DataFrame, tz: str) -> pd.DataFrame:
    """Add each patient's latest review of their level (when, by whom, at which level, what was done): `latest_reviews`."""
    out = rows.copy()
    latest = latest_reviews(reviews)
    ids = out["patient_id"].astype(str)
    at = pd.to_datetime(ids.map(latest["reviewed_at"]), utc=True)
    out["last_review_at"] = at.dt.tz_convert(tz).dt.tz_localize(None)
    out["last_review_by"] = ids.map(latest["reviewed_by"]).astype("string")
    out["last_review_level"] = ids.map(latest["reviewed_level"]).astype("string")
    out["last_review_action"] = ids.map(latest["reviewed_action"]).astype("string")
    return out


def caseload_csv_frame(export: CaseloadExport) -> pd.DataFrame:
    """The caseload rows as plain columns for CSV: dates as ISO text, reasons as sentences, one per line.

    A reason's own wording may hold "; ", so reasons are one per line, each ending with its rule id
    (one rule can give several reasons, such as two persistent signs). A de-identified file has no
    `as_of`: the real date beside the shifted ones would give each shift away.
    """
    rows = export.rows
    reasons = ["\n".join(f"{r.text} ({r.rule_id})" for r in rs) for rs in rows["reasons"]]
    since = pd.to_datetime(rows["level_since"]).dt.strftime("%Y-%m-%d")
    last = pd.to_datetime(rows["last_review_at"]).dt.strftime("%Y-%m-%d %H:%M")
    return pd.DataFrame(
        {
            **({} if export.deidentified else {"as_of": pd.Series(export.as_of.isoformat(), index=rows.index,
                                                                    dtype="string")}),
            "patient_id": rows["patient_id"].astype("string"),
            "display_name": rows["display_name"].astype("string"),
            "clinician": rows["clinician"].astype("string"),
            "level": rows["level"].astype("string"),
            "level_since": since.astype("string"),
            "reason_ids": rows["reason_ids"].astype("string"),
            "reasons": pd.Series(reasons, index=rows.index, dtype="string"),
            "last_review_at": last.astype("string"),
            "last_review_by": rows["last_review_by"].astype("string"),
            "last_review_level": rows["last_review_level"].astype("string"),
            "last_review_action": rows["last_review_action"].astype("string"),
            "needs_review": rows["needs_review"].map({True: "yes", False: "no"}).astype("string"),
            "phq9_question_9": rows["safety_answer"].astype("string"),
            "phq9_question_9_follow_up": rows["safety_follow_up"].astype("string"),
            "phq9_reliably_worse": rows["phq9_worse"].map({True: "yes", False: "no"}).astype("string"),
        }
    )
