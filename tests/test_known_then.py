"""The records as they were stored at an instant, rebuilt from real writes (entered, amended, voided) on both backends."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from ketawatch.risk import load_rules
from ketawatch.risk.as_seen import shown_then
from store import records
from store.known_then import record_timeline
from store.validation import Validator

TZ = "Europe/London"


def at(text: str) -> dt.datetime:
    return pd.Timestamp(text, tz="UTC").to_pydatetime()


def clock(text: str) -> Validator:
    return Validator(now=at(text), tz=TZ)


def _patient(engine, pid="KT-1", **extra):
    raw = {"patient_id": pid, "indication": "depression", "sud_history": "no", "treatment_start": "2026-08-01",
           "planned_dose_mg_per_kg": "0.5", **extra}
    records.add_patient(engine, raw, actor="nurse", validator=clock("2026-08-01 08:00"))


def test_each_instant_gets_the_version_stored_then_and_nothing_entered_later_or_voided_before(engine):
    _patient(engine)
    _patient(engine, "KT-2")  # another patient's corrections stay theirs
    checkin = records.add_checkin(engine, {"patient_id": "KT-1", "reported_at": "2026-09-01T10:00", "craving": "2"},
                                  actor="nurse", validator=clock("2026-09-03 09:00"))  # typed in two days late
    records.amend_checkin(engine, checkin.id, {"craving": "6"}, actor="nurse", reason="misread the form",
                          expected_version=1, validator=clock("2026-09-05 09:00"))
    records.void_checkin(engine, checkin.id, actor="nurse", reason="belongs to another patient", expected_version=2,
                         validator=clock("2026-09-08 09:00"))
    session = records.add_session(engine, {"patient_id": "KT-1", "session_at": "2026-09-02T10:00", "route": "iv",
                                           "dose_mg": "35", "weight_kg": "70", "side_effects": "nausea:mild"},
                                  actor="nurse", validator=clock("2026-09-02 12:00"))
    records.amend_session(engine, session.id, {"dose_mg": "40", "side_effects": "nausea:moderate;headache:mild"},
                          actor="nurse", reason="pump record", expected_version=1, validator=clock("2026-09-04 12:00"))
    records.amend_patient(engine, "KT-1", {"planned_dose_mg_per_kg": "0.75"}, actor="doctor", reason="titration",
                          expected_version=1, validator=clock("2026-09-06 12:00"))
    other = records.add_checkin(engine, {"patient_id": "KT-2", "reported_at": "2026-09-01T10:00", "craving": "1"},
                                actor="nurse", validator=clock("2026-09-01 11:00"))
    records.amend_checkin(engine, other.id, {"craving": "9"}, actor="nurse", reason="typo", expected_version=1,
                          validator=clock("2026-09-02 11:00"))

    timeline = record_timeline(engine, ["KT-1"])

    def craving(instant):
        return timeline.as_known_at(at(instant)).checkins["craving"].tolist()

    assert craving("2026-09-03 08:59") == []  # dated 1 Sep, but not yet entered
    assert craving("2026-09-03 09:00") == [2.0]
    assert craving("2026-09-05 08:59") == [2.0]
    assert craving("2026-09-05 09:00") == [6.0]
    assert craving("2026-09-08 08:59") == [6.0]
    assert craving("2026-09-08 09:00") == []  # voided
    assert timeline.as_known_now().checkins.empty

    def session(instant):
        s = timeline.as_known_at(at(instant)).sessions
        return list(zip(s["dose_mg"], s["side_effects"]))

    assert session("2026-09-02 11:59") == []
    assert session("2026-09-03 00:00") == [(35.0, "nausea:mild")]
    assert sorted(session("2026-09-04 12:00")[0][1].split(";")) == ["headache:mild", "nausea:moderate"]
    assert session("2026-09-04 12:00")[0][0] == 40.0

    def plan(instant):
        return timeline.as_known_at(at(instant)).patients["planned_dose_mg_per_kg"].tolist()

    assert plan("2026-07-31 00:00") == []
    assert plan("2026-09-06 11:59") == [0.5]
    assert plan("2026-09-06 12:00") == [0.75]
    assert set(timeline.checkins["patient_id"]) == {"KT-1"}
    assert len(timeline.checkins) == 2  # the entered version and the corrected one; the void repeats the latter
    assert len(record_timeline(engine, ["KT-2"]).checkins) == 2


def enter_a_craving_typo_corrected_later(engine, pid: str = "KT-1") -> None:
    """Weekly check-ins each entered an hour after it was given; the last (14 Sep) typed 6 for 2, corrected on 16 Sep."""
    _patient(engine, pid)
    ids = []
    for week, craving in enumerate([1, 1, 2, 1, 1, 5, 6]):
        when = pd.Timestamp("2026-08-03 09:00", tz="UTC") + pd.Timedelta(days=7 * week)
        saved = records.add_checkin(engine, {"patient_id": pid, "reported_at": when.isoformat(), "craving": str(craving)},
                                    actor="nurse", validator=Validator(now=(when + pd.Timedelta(hours=1)).to_pydatetime(), tz=TZ))
        ids.append(saved.id)
    records.amend_checkin(engine, ids[-1], {"craving": "2"}, actor="nurse", reason="typed 6 for 2", expected_version=1,
                          validator=clock("2026-09-16 10:00"))


def test_the_level_shown_on_a_day_comes_from_what_was_stored_by_its_end(engine):
    """A craving typed in wrongly shows amber that day; corrected two days later, today's replay of that day is green."""
    enter_a_craving_typo_corrected_later(engine)
    shown = shown_then(record_timeline(engine, ["KT-1"]), rules=load_rules(), tz=TZ, until=dt.date(2026, 11, 30))
    day = shown.set_index("date").loc[dt.date(2026, 9, 14)]
    assert (day["level"], day["replay_level"]) == ("amber", "green")
    assert shown.set_index("date").loc[dt.date(2026, 9, 16), "level"] == "green"
    assert int(shown["differs"].sum()) == 1


def test_a_version_saved_with_a_fraction_of_a_second_beside_whole_seconds_is_read(engine):
    """Check-ins saved to the microsecond by earlier versions of KetaWatch keep the fraction when amended; read beside a
    whole-second one, pandas guessed one format for both and the patient's page and PDF failed (code review)."""
    from sqlalchemy import update

    from store.models import CheckIn

    _patient(engine)
    first = records.add_checkin(engine, {"patient_id": "KT-1", "reported_at": "2026-09-01T10:00", "craving": "2"},
                                actor="nurse", validator=clock("2026-09-01 11:00"))
    second = records.add_checkin(engine, {"patient_id": "KT-1", "reported_at": "2026-09-08T10:00", "craving": "3"},
                                 actor="nurse", validator=clock("2026-09-08 11:00"))
    with engine.begin() as conn:  # as an older version stored it
        conn.execute(update(CheckIn).where(CheckIn.id == first.id).values(reported_at=at("2026-09-01 10:00:00.123456")))
    for saved in (first, second):
        records.amend_checkin(engine, saved.id, {"craving": "4"}, actor="nurse", reason="misread", expected_version=1,
                              validator=clock("2026-09-10 09:00"))
    before = record_timeline(engine, ["KT-1"]).as_known_at(at("2026-09-09 12:00")).checkins
    assert sorted(before["reported_at"].dt.microsecond) == [0, 123456]
    assert sorted(before["craving"]) == [2.0, 3.0]
