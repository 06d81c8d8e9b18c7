"""The level as shown at the time: each day rebuilt from the records as they were stored then, beside today's replay."""

from __future__ import annotations

import datetime as dt

import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from ketawatch.risk import assess, load_rules, reason_ids
from ketawatch.risk import as_seen
from ketawatch.risk.as_seen import _end_of_day, days_to_list, shown_then
from store.frames import CHECKIN_DTYPES, PATIENT_DTYPES, SESSION_DTYPES, Records, conform
from store.known_then import RecordTimeline
from tests.test_risk_properties import FAST, START, ZONES, record_sets

#: Havana and Santiago change their clocks at midnight, where a day's end is found (code review).
AS_SEEN_ZONES = (*ZONES, "America/Havana", "America/Santiago")

RULES = load_rules()
UNTIL = (START + pd.Timedelta(days=200)).date()


def _versions(frame: pd.DataFrame, dtypes: dict, known_from, known_until) -> pd.DataFrame:
    out = conform(frame, dtypes)
    out["known_from"] = pd.to_datetime(pd.Series(list(known_from), dtype=object), utc=True)
    out["known_until"] = pd.to_datetime(pd.Series(list(known_until), dtype=object), utc=True)
    return out


@st.composite
def timelines(draw) -> RecordTimeline:
    """A record set whose records were entered on their day or days later; some sessions and check-ins were corrected,
    some voided, and some patients' plan or substance-use history changed."""
    rec = draw(record_sets())
    late = st.sampled_from([pd.Timedelta(minutes=30), pd.Timedelta(hours=20), pd.Timedelta(days=3), pd.Timedelta(days=12)])
    p_until, p_later = [], []
    for i in range(len(rec.patients)):
        changed = draw(st.sampled_from([None, None, START + pd.Timedelta(days=draw(st.integers(0, 150)), hours=9)]))
        p_until.append(changed)
        if changed is not None:  # the plan and history as corrected from then on, or only who is responsible
            row = rec.patients.iloc[[i]].copy()
            row["clinician"] = "dr-new"
            if draw(st.booleans()):
                row["sud_history"] = ~row["sud_history"]
                row["planned_interval_days"] = draw(st.sampled_from([7.0, 28.0]))
            p_later.append((row, changed))
    patients = _versions(rec.patients, PATIENT_DTYPES, [START - pd.Timedelta(days=1)] * len(rec.patients), p_until)
    if p_later:
        patients = pd.concat([patients, _versions(pd.concat([r for r, _ in p_later]), PATIENT_DTYPES,
                                                  [at for _, at in p_later], [None] * len(p_later))], ignore_index=True)
    s_from = [at + draw(late) for at in rec.sessions["session_at"]]
    s_until, s_later = [], []
    for i, entered in enumerate(s_from):
        fate = draw(st.sampled_from(["kept", "kept", "voided", "corrected"]))
        s_until.append(None if fate == "kept" else entered + pd.Timedelta(days=2))
        if fate == "corrected":
            row = rec.sessions.iloc[[i]].copy()
            row["dose_mg"] = row["dose_mg"] * 2
            row["dose_increase_request"] = True
            s_later.append((row, entered + pd.Timedelta(days=2)))
    sessions = _versions(rec.sessions, SESSION_DTYPES, s_from, s_until)
    if s_later:
        sessions = pd.concat([sessions, _versions(pd.concat([r for r, _ in s_later]), SESSION_DTYPES,
                                                  [at for _, at in s_later], [None] * len(s_later))], ignore_index=True)
    c_from = [at + draw(late) for at in rec.checkins["reported_at"]]
    c_until, corrected, corrected_from = [], [], []
    for i, entered in enumerate(c_from):
        fate = draw(st.sampled_from(["kept", "kept", "voided", "corrected"]))
        if fate == "kept":
            c_until.append(None)
            continue
        ended = entered + draw(late)
        c_until.append(ended)
        if fate == "corrected":  # the correction's version, from the moment the first one ended
            row = rec.checkins.iloc[[i]].copy()
            row["craving"] = draw(st.integers(0, 10))
            corrected.append(row)
            corrected_from.append(ended)
    checkins = _versions(rec.checkins, CHECKIN_DTYPES, c_from, c_until)
    if corrected:
        checkins = pd.concat([checkins, _versions(pd.concat(corrected), CHECKIN_DTYPES, corrected_from,
                                                  [None] * len(corrected))], ignore_index=True)
    return RecordTimeline(patients, sessions, checkins)


def _rows(frame: pd.DataFrame) -> list:
    return [(r.patient_id, r.date, r.level, _summary(r.reasons), r.replay_level, r.differs) for r in frame.itertuples()]


def _summary(reasons) -> tuple:
    return tuple((r.rule_id, r.text) for r in reasons)


@FAST
@given(timeline=timelines(), tz=st.sampled_from(AS_SEEN_ZONES))
def test_each_day_shows_what_its_stored_records_give_and_the_replay_what_todays_give(timeline, tz):
    """The one vectorised evaluation equals assessing, day by day, the records as stored at that day's end (in slices of
    days too)."""
    whole = shown_then(timeline, rules=RULES, tz=tz, until=UNTIL)
    default, as_seen.CHUNK_DAYS = as_seen.CHUNK_DAYS, 1
    try:
        sliced = shown_then(timeline, rules=RULES, tz=tz, until=UNTIL)
    finally:
        as_seen.CHUNK_DAYS = default
    assert _rows(sliced) == _rows(whole)
    shown = whole.set_index(["patient_id", "date"])
    now = timeline.as_known_now()
    expected = set()
    changes = timeline.changed_at()
    days = pd.DataFrame({"patient_id": changes["patient_id"],
                         "day": changes["at"].dt.tz_convert(tz).dt.date}).drop_duplicates()
    for pid, day in days.itertuples(index=False):
        if day > UNTIL:
            continue
        end = _end_of_day(pd.Series([pd.Timestamp(day)]), tz).iloc[0] - pd.Timedelta(microseconds=1)
        then = assess(timeline.as_known_at(end).for_patients([pid]), as_of=day, rules=RULES, tz=tz).iloc[0]
        if then["since"] is None:  # nothing assessable stored yet: no row
            assert (pid, day) not in shown.index
            continue
        expected.add((pid, day))
        row = shown.loc[(pid, day)]
        assert row["level"] == then["level"]
        assert _summary(row["reasons"]) == _summary(then["reasons"])
        replay = assess(now.for_patients([pid]), as_of=day, rules=RULES, tz=tz).iloc[0]
        assert row["replay_level"] == (replay["level"] if replay["since"] is not None else "not assessed")
        assert reason_ids(row["replay_reasons"]) == reason_ids(replay["reasons"])
        assert row["differs"] == (row["level"] != row["replay_level"])
    assert set(shown.index) == expected


@FAST
@given(rec=record_sets(), tz=st.sampled_from(ZONES))
def test_records_entered_on_their_day_and_never_changed_show_what_the_replay_gives(rec, tz):
    """With nothing late, corrected or voided, what was shown is the replay, on every day."""
    entered = list  # each at the very moment it is dated: its own day in every zone
    timeline = RecordTimeline(
        _versions(rec.patients, PATIENT_DTYPES, [START - pd.Timedelta(days=1)] * len(rec.patients), [None] * len(rec.patients)),
        _versions(rec.sessions, SESSION_DTYPES, entered(rec.sessions["session_at"]), [None] * len(rec.sessions)),
        _versions(rec.checkins, CHECKIN_DTYPES, entered(rec.checkins["reported_at"]), [None] * len(rec.checkins)),
    )
    shown = shown_then(timeline, rules=RULES, tz=tz, until=UNTIL)
    assert not shown["differs"].any()
    assert (shown["level"] == shown["replay_level"]).all()


def _weekly(cravings, start="2026-08-03 09:00") -> Records:
    patient = pd.DataFrame([{"patient_id": "P1", "indication": "depression", "sud_history": False,
                             "treatment_start": "2026-08-01"}])
    times = [pd.Timestamp(start, tz="UTC") + pd.Timedelta(days=7 * i) for i in range(len(cravings))]
    return Records.of(patient, None, pd.DataFrame({"patient_id": "P1", "reported_at": times, "craving": cravings}))


def test_a_craving_corrected_down_two_days_later_was_amber_on_the_day_and_is_green_in_the_replay():
    """The clinician saw amber on 14 Sep; the typo's correction makes today's replay of that date green."""
    rising = _weekly([1, 1, 2, 1, 1, 5, 6])
    typo_fixed = _weekly([1, 1, 2, 1, 1, 5, 2])
    assert assess(rising, as_of=dt.date(2026, 9, 14), rules=RULES, tz="Europe/London")["level"].iloc[0] == "amber"
    assert assess(typo_fixed, as_of=dt.date(2026, 9, 14), rules=RULES, tz="Europe/London")["level"].iloc[0] == "green"
    each_own_day = [t + pd.Timedelta(hours=1) for t in rising.checkins["reported_at"]]
    corrected_at = pd.Timestamp("2026-09-16 10:00", tz="UTC")
    timeline = RecordTimeline(
        _versions(rising.patients, PATIENT_DTYPES, [pd.Timestamp("2026-08-01", tz="UTC")], [None]),
        _versions(rising.sessions, SESSION_DTYPES, [], []),
        _versions(pd.concat([rising.checkins, typo_fixed.checkins.tail(1)]), CHECKIN_DTYPES,
                  [*each_own_day, corrected_at], [None] * 6 + [corrected_at, None]),
    )
    shown = shown_then(timeline, rules=RULES, tz="Europe/London", until=dt.date(2026, 11, 30)).set_index("date")
    assert list(shown.index) == [dt.date(2026, 8, 3) + dt.timedelta(days=7 * i) for i in range(7)] + [dt.date(2026, 9, 16)]
    sep14, sep16 = shown.loc[dt.date(2026, 9, 14)], shown.loc[dt.date(2026, 9, 16)]
    assert (sep14["level"], sep14["replay_level"], bool(sep14["differs"])) == ("amber", "green", True)
    assert reason_ids(sep14["reasons"]) == ["craving_rising", "craving_drift"]
    assert (sep16["level"], sep16["replay_level"], bool(sep16["differs"])) == ("green", "green", False)
    listed = days_to_list(shown.reset_index())
    assert list(listed["date"]) == [dt.date(2026, 8, 3), dt.date(2026, 9, 14), dt.date(2026, 9, 16)]  # first, change, back
