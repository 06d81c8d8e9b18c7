"""Amend and void with a reason, history kept, and optimistic concurrency: when two clinicians edit one record,
the second is told and nothing of the first is lost (store level on both backends; UI level with two AppTests)."""

from __future__ import annotations

import datetime as dt
import threading

import pandas as pd

import pytest
from sqlalchemy.exc import OperationalError

from store import records
from store.db import open_database
from store.importer import import_folder
from store.queries import checkins_frame, patients_frame, revisions_frame, sessions_frame
from store.validation import SESSION_RULES
from tests.access_support import RECORD_PAGE, app_from, cheap_hashes, make_user, sign_in  # noqa: F401 - autouse fixture
from tests.store_support import CHECKIN, SESSION, write_folder


@pytest.fixture
def one_of_each(engine, validator, tmp_path):
    """A patient with one session and one check-in; returns (engine, session id, check-in id)."""
    import_folder(engine, write_folder(tmp_path / "in"), actor="setup", validator=validator)
    return engine, int(sessions_frame(engine)["id"].iloc[0]), int(checkins_frame(engine)["id"].iloc[0])


KINDS = {
    "session": (records.amend_session, records.void_session, sessions_frame, "dose_mg", 40.0, float(SESSION["dose_mg"])),
    "checkin": (records.amend_checkin, records.void_checkin, checkins_frame, "craving", 7, int(CHECKIN["craving"])),
}


def stored(engine, frame_of, record_id, field):
    frame = frame_of(engine, include_voided=True)
    return frame.loc[frame["id"] == record_id].iloc[0][field]


# ----- store level ---------------------------------------------------------------------------


def test_an_older_record_that_a_newer_rule_would_refuse_can_still_be_corrected_and_is_not_rewritten(one_of_each, validator):
    """A note saved before control characters were refused, and a time saved with a fraction of a second: correcting
    the craving keeps both exactly as they were, and a new control character is still refused."""
    from sqlalchemy import select, update

    from store.models import CheckIn

    engine, _, checkin_id = one_of_each
    with engine.begin() as conn:  # as an older KetaWatch stored them
        at = conn.execute(select(CheckIn.reported_at).where(CheckIn.id == checkin_id)).scalar_one()
        conn.execute(update(CheckIn).where(CheckIn.id == checkin_id)
                     .values(notes="Felt ok\x1b[0m", reported_at=at + dt.timedelta(microseconds=500_000)))
    records.amend_checkin(engine, checkin_id, {"craving": 3}, actor="cleo", reason="typo", expected_version=1,
                          validator=validator)
    after = checkins_frame(engine).set_index("id").loc[checkin_id]
    assert after["notes"] == "Felt ok\x1b[0m" and int(after["craving"]) == 3
    assert pd.Timestamp(after["reported_at"]).microsecond == 500_000
    with pytest.raises(records.RecordInvalid, match="control character"):
        records.amend_checkin(engine, checkin_id, {"notes": "again\x07"}, actor="cleo", reason="typo",
                              expected_version=2, validator=validator)


def _trail_and_history(engine, kind, record_id) -> tuple[int, int]:
    from store.queries import audit_frame

    return len(audit_frame(engine, action="amend")), len(revisions_frame(engine, kind, record_id))


@pytest.mark.parametrize("kind, changes", [
    ("patient", {"indication": "depression", "sud_history": "no"}),
    ("session", {"dose_mg": float(SESSION["dose_mg"])}),
    ("session", {"side_effects": ";".join(reversed(SESSION["side_effects"].split(";")))}),  # the same, other order
    ("checkin", {"craving": int(CHECKIN["craving"]), "notes": CHECKIN["notes"]}),
])
def test_an_amendment_that_changes_nothing_is_refused_and_writes_nothing(one_of_each, validator, kind, changes):
    """Before, the store made a new version with no field different: the history said "1 change", the trail held a
    false amendment, and a colleague editing the same record met a conflict. The pages checked this; any caller now."""
    engine, session_id, checkin_id = one_of_each
    amend = {"patient": records.amend_patient, "session": records.amend_session, "checkin": records.amend_checkin}[kind]
    key = {"patient": "KW-T1", "session": session_id, "checkin": checkin_id}[kind]
    before = _trail_and_history(engine, kind, key)
    with pytest.raises(records.NothingChanged, match=f"Nothing differs from the stored {kind.replace('checkin', 'check-in')}"):
        amend(engine, key, changes, actor="cleo", reason="checked", expected_version=1, validator=validator)
    assert _trail_and_history(engine, kind, key) == before
    saved = amend(engine, key, {"notes" if kind != "patient" else "display_name": "changed"}, actor="cleo",
                  reason="checked", expected_version=1, validator=validator)
    assert saved.version == 2  # the same version number was still free: nothing was written before


def test_an_amendment_may_correct_a_question_9_answer_but_not_remove_it(one_of_each, validator):
    """The notes line is the answer's only record; removed by an amendment of the note around it, the answer and its
    red banner left every screen with no follow-up recorded (a new engineer's review)."""
    from ketawatch.safety_answers import in_view, safety_line

    engine, _, checkin_id = one_of_each
    answered = safety_line(["Several days"]) + "\nslept bdly"
    records.amend_checkin(engine, checkin_id, {"notes": answered}, actor="cleo", reason="paper form's question 9",
                          expected_version=1, validator=validator)
    waiting = in_view(engine, now=validator.now)
    assert len(waiting) == 1
    with pytest.raises(records.RecordInvalid, match=r"The notes hold a PHQ-9 question 9 answer \(the line beginning "
                                                    r"\[Safety\]\); an amendment may not remove it"):
        records.amend_checkin(engine, checkin_id, {"notes": "slept badly"}, actor="cleo", reason="typo",
                              expected_version=2, validator=validator)
    assert stored(engine, checkins_frame, checkin_id, "version") == 2
    corrected = safety_line(["More than half the days"]) + "\nslept badly"
    records.amend_checkin(engine, checkin_id, {"notes": corrected}, actor="cleo", reason="typo and the answer",
                          expected_version=2, validator=validator)
    assert in_view(engine, now=validator.now)["line"].tolist() == [safety_line(["More than half the days"])]


def test_a_question_9_follow_up_names_a_safety_step_and_a_level_review_a_treatment_step(one_of_each):
    """The follow-up form offered only dependence-review actions (dose held...); each kind now has its own list."""
    from store.vocabulary import SAFETY_FOLLOW_UP

    engine, _, _ = one_of_each
    pid = str(sessions_frame(engine)["patient_id"].iloc[0])
    follow_up = dict(patient_id=pid, level="green", reasons=[SAFETY_FOLLOW_UP], note="seen today", actor="cleo")
    saved = records.add_alert_review(engine, action="safety_plan_made", **follow_up)
    assert saved.action == "safety_plan_made"
    with pytest.raises(records.RecordInvalid, match="Choose an action from the list"):
        records.add_alert_review(engine, action="dose_held", **follow_up)
    with pytest.raises(records.RecordInvalid, match="Choose an action from the list"):
        records.add_alert_review(engine, patient_id=pid, level="amber", reasons=["craving_high"],
                                 action="safety_plan_made", note=None, actor="cleo")


def test_the_history_of_a_patient_shows_only_what_was_changed_in_words(one_of_each, validator):
    """An indication corrected: the history listed the untouched treatment start as changed ('2026-01-02' against
    the frame's '2026-01-02 00:00:00'), and showed the indication as its code."""
    from dashboard.amend import changed_records
    from store.queries import patients_frame

    engine, _, _ = one_of_each
    pid = str(patients_frame(engine)["patient_id"].iloc[0])
    records.amend_patient(engine, pid, {"indication": "bipolar_depression"}, actor="cleo", reason="corrected",
                          expected_version=1, validator=validator)
    [(label, table)] = [c for c in changed_records(engine, pid) if c[0].startswith("Patient details")]
    changed = [c for c in table.columns if c not in ("Version", "What happened next")]
    assert len(changed) == 1 and table[changed[0]].tolist()[-1] == "Bipolar depression", table.to_dict("list")


def test_a_control_character_in_a_review_note_or_a_reason_is_refused_in_words_on_both_databases(one_of_each, validator):
    """PostgreSQL cannot store a NUL: without the check these ended in a driver error."""
    engine, session_id, _ = one_of_each
    pid = str(sessions_frame(engine)["patient_id"].iloc[0])
    with pytest.raises(records.RecordInvalid, match="The note holds a control character"):
        records.add_alert_review(engine, patient_id=pid, level="amber", reasons=["craving_high"],
                                 action="discussed_with_patient", note="called\x00 her", actor="cleo")
    with pytest.raises(records.RecordInvalid, match="The reason for the void holds a control character"):
        records.void_session(engine, session_id, actor="cleo", reason="dup\x00", expected_version=1, validator=validator)
    # The forms' limits hold in the store too, whatever calls it.
    with pytest.raises(records.RecordInvalid, match="The note: 2001 characters, but at most 2000 are allowed"):
        records.add_alert_review(engine, patient_id=pid, level="amber", reasons=["craving_high"],
                                 action="discussed_with_patient", note="n" * 2001, actor="cleo")
    with pytest.raises(records.RecordInvalid, match="The reason for the void: 501 characters, but at most 500"):
        records.void_session(engine, session_id, actor="cleo", reason="r" * 501, expected_version=1, validator=validator)
    assert stored(engine, sessions_frame, session_id, "version") == 1


@pytest.mark.parametrize("kind", KINDS)
def test_the_second_of_two_edits_from_the_same_version_is_refused_and_the_first_is_kept(one_of_each, validator, kind):
    engine, session_id, checkin_id = one_of_each
    amend, _void, frame_of, field, new, old = KINDS[kind]
    record_id = session_id if kind == "session" else checkin_id
    amend(engine, record_id, {field: new}, actor="alice", reason="corrected", expected_version=1, validator=validator)
    with pytest.raises(records.RecordConflict, match="changed by alice while you were editing"):
        amend(engine, record_id, {"notes": "bob's note"}, actor="bob", reason="note", expected_version=1, validator=validator)
    assert stored(engine, frame_of, record_id, field) == new
    assert stored(engine, frame_of, record_id, "version") == 2
    # Bob reopens (version 2) and saves: both edits now stand, and version 1 is in the history
    amend(engine, record_id, {"notes": "bob's note"}, actor="bob", reason="note", expected_version=2, validator=validator)
    assert stored(engine, frame_of, record_id, field) == new
    assert stored(engine, frame_of, record_id, "notes") == "bob's note"
    history = revisions_frame(engine, kind, record_id)
    assert list(history["version"]) == [1, 2] and list(history["changed_by"]) == ["alice", "bob"]
    assert history.iloc[0]["data"][field] == old and history.iloc[1]["data"][field] == new


@pytest.mark.parametrize("kind", KINDS)
def test_a_void_needs_a_reason_and_a_voided_record_cannot_be_changed(one_of_each, validator, kind):
    engine, session_id, checkin_id = one_of_each
    amend, void, frame_of, field, new, old = KINDS[kind]
    record_id = session_id if kind == "session" else checkin_id
    for reason in ("", "   "):
        with pytest.raises(records.RecordInvalid, match="reason"):
            void(engine, record_id, actor="alice", reason=reason, expected_version=1, validator=validator)
        with pytest.raises(records.RecordInvalid, match="reason"):
            amend(engine, record_id, {field: new}, actor="alice", reason=reason, expected_version=1, validator=validator)
    assert stored(engine, frame_of, record_id, "version") == 1
    void(engine, record_id, actor="alice", reason="entered twice", expected_version=1, validator=validator)
    with pytest.raises(records.RecordConflict, match="voided by alice"):
        amend(engine, record_id, {field: new}, actor="bob", reason="x", expected_version=2, validator=validator)
    assert stored(engine, frame_of, record_id, field) == old
    assert stored(engine, frame_of, record_id, "void_reason") == "entered twice"
    assert record_id not in set(frame_of(engine)["id"])  # gone from live records, kept in history


def test_an_amendment_without_a_reason_and_with_a_wrong_value_is_told_both_at_once(one_of_each, validator):
    """The amend form said the missing reason on one Save and the diastolic above systolic only on the next (clinician
    review)."""
    engine, session_id, _ = one_of_each
    with pytest.raises(records.RecordInvalid) as refused:
        records.amend_session(engine, session_id, {"sbp_pre": 128, "dbp_pre": 182}, actor="alice", reason="",
                              expected_version=1, validator=validator)
    columns = [p.column for p in refused.value.problems]
    assert columns[0] == "reason" and "dbp_pre" in columns, refused.value.problems
    assert stored(engine, sessions_frame, session_id, "version") == 1


def test_simultaneous_saves_from_the_same_version_let_exactly_one_through(one_of_each, validator, request):
    engine, session_id, _ = one_of_each
    writers = 6
    barrier = threading.Barrier(writers)
    outcomes: list[str] = []

    def save(i: int) -> None:
        barrier.wait()
        try:
            records.amend_session(engine, session_id, {"dose_mg": 40 + i}, actor=f"clinician{i}", reason="race",  # each differs from 35
                                  expected_version=1, validator=validator)
            outcomes.append("saved")
        except records.RecordConflict:
            outcomes.append("conflict")
        except OperationalError:
            outcomes.append("database error")

    threads = [threading.Thread(target=save, args=(i,)) for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict"] * (writers - 1) + ["saved"]
    assert stored(engine, sessions_frame, session_id, "version") == 2
    assert len(revisions_frame(engine, "session", session_id)) == 1


# ----- UI level ------------------------------------------------------------------------------


@pytest.fixture
def ui_records(tmp_path):
    """The configured database with one patient's session and check-in, and two clinicians and a reviewer."""
    engine = open_database()
    import_folder(engine, write_folder(tmp_path / "ui"), actor="setup")
    people = {name: make_user(engine, role, username=name)
              for name, role in (("alice", "clinician"), ("bob", "clinician"), ("rhea", "reviewer"))}
    return engine, int(sessions_frame(engine)["id"].iloc[0]), int(checkins_frame(engine)["id"].iloc[0]), people


def page_for(user):
    at = sign_in(app_from(RECORD_PAGE), user)
    at.run()
    assert not at.exception
    return at


def open_form(people, kind: str, record_id: int, mode: str = "amend", who: str = "alice"):
    """The patient page as `who` with one record's amend or void form open; returns (the page, its key base)."""
    base = f"kw_amend_{kind}_{record_id}"
    at = page_for(people[who])
    at.button(key=f"{base}_open_{mode}").click().run()
    return at, base


def submit(at, form_key: str, label: str):
    return at.button(key=f"FormSubmitter:{form_key}-{label}").click().run()


def test_two_clinicians_amending_one_session_the_second_sees_a_conflict_and_nothing_is_lost(ui_records):
    engine, sid, _, people = ui_records
    base = f"kw_amend_session_{sid}"
    alice, bob = page_for(people["alice"]), page_for(people["bob"])
    alice.button(key=f"{base}_open_amend").click().run()
    bob.button(key=f"{base}_open_amend").click().run()
    dose = alice.number_input(key=f"{base}_f_dose_mg")
    rule = SESSION_RULES["dose_mg"]
    # No bounds on the box: the browser would drop a typed value past them; the one set of rules judges it
    assert dose.label == "Dose (mg)" and dose.min is None and dose.max is None and rule.high == 1000
    dose.set_value(40.0)
    alice.text_input(key=f"{base}_reason").input("dose misread from the chart")
    submit(alice, f"{base}_form", "Save amendment")
    assert not alice.exception and "now version 2" in alice.success[0].value

    bob.text_area(key=f"{base}_f_notes").input("Bob's observation")
    bob.text_input(key=f"{base}_reason").input("added observation")
    submit(bob, f"{base}_form", "Save amendment")
    assert not bob.exception
    assert any("changed by alice while you were editing" in e.value for e in bob.error)
    assert bob.text_area(key=f"{base}_f_notes").value == "Bob's observation"  # Bob's entry is still in his form
    assert stored(engine, sessions_frame, sid, "dose_mg") == 40.0  # Alice's change is kept
    assert stored(engine, sessions_frame, sid, "notes") == SESSION["notes"]

    bob.button(key=f"{base}_restart").click().run()
    bob.button(key=f"{base}_open_amend").click().run()
    assert bob.number_input(key=f"{base}_f_dose_mg").value == 40.0  # he now edits Alice's version
    bob.text_area(key=f"{base}_f_notes").input("Bob's observation")
    bob.text_input(key=f"{base}_reason").input("added observation")
    submit(bob, f"{base}_form", "Save amendment")
    assert "now version 3" in bob.success[0].value
    assert (stored(engine, sessions_frame, sid, "dose_mg"), stored(engine, sessions_frame, sid, "notes")) == (40.0, "Bob's observation")


def test_an_amended_value_out_of_range_is_refused_in_the_words_of_the_rule(ui_records):
    engine, sid, _, people = ui_records
    at, base = open_form(people, "session", sid, "amend")
    at.number_input(key=f"{base}_f_dose_mg").set_value(5000.0)
    at.text_input(key=f"{base}_reason").input("dose corrected")
    submit(at, f"{base}_form", "Save amendment")
    assert any("Dose" in e.value and "at most 1000 mg" in e.value for e in at.error), [e.value for e in at.error]
    assert stored(engine, sessions_frame, sid, "version") == 1 and stored(engine, sessions_frame, sid, "dose_mg") != 5000


def test_an_amendment_to_an_unusual_dose_is_saved_only_once_the_clinician_confirms_it(ui_records):
    """The Log session double check holds for an amendment too: 500 mg by IV is as likely a slip here."""
    engine, sid, _, people = ui_records
    at, base = open_form(people, "session", sid, "amend")
    at.selectbox(key=f"{base}_f_route").set_value("iv")
    at.number_input(key=f"{base}_f_weight_kg").set_value(50.0)
    at.number_input(key=f"{base}_f_dose_mg").set_value(500.0)
    at.text_input(key=f"{base}_reason").input("dose as charted")
    submit(at, f"{base}_form", "Save amendment")
    assert stored(engine, sessions_frame, sid, "version") == 1
    warning = " ".join(w.value for w in at.warning).replace("\\", "")
    assert "Not saved yet" in warning and "Dose: 500 mg for 50 kg is 10.00 mg/kg" in warning
    next(c for c in at.checkbox if c.label.startswith("I have checked these values")).check()
    submit(at, f"{base}_form", "Save amendment")
    assert not at.exception and "now version 2" in at.success[0].value
    assert stored(engine, sessions_frame, sid, "dose_mg") == 500.0


def test_the_question_about_an_unusual_dose_goes_once_the_dose_is_corrected(ui_records):
    """Corrected from 500 to 50 mg and saved without a reason, the form still asked about 500 mg beside the refusal
    (clinician's browser pass): what it asks about is the value in the box."""
    engine, sid, _, people = ui_records
    at, base = open_form(people, "session", sid, "amend")
    at.selectbox(key=f"{base}_f_route").set_value("iv")
    at.number_input(key=f"{base}_f_weight_kg").set_value(50.0)
    at.number_input(key=f"{base}_f_dose_mg").set_value(500.0)
    submit(at, f"{base}_form", "Save amendment")
    assert "Dose: 500 mg for 50 kg" in " ".join(w.value for w in at.warning).replace("\\", "")
    at.number_input(key=f"{base}_f_dose_mg").set_value(50.0)
    submit(at, f"{base}_form", "Save amendment")  # no reason: refused for that alone
    assert any("Give a reason" in e.value for e in at.error), [e.value for e in at.error]
    assert not [w for w in at.warning if "Not saved yet" in w.value], [w.value for w in at.warning]
    assert not [c for c in at.checkbox if c.label.startswith("I have checked these values")]
    assert stored(engine, sessions_frame, sid, "version") == 1


def test_a_check_in_moved_months_before_the_treatment_start_is_asked_about(ui_records):
    """As on Log check-in: a slip in the month would make it the patient's baseline (clinician's browser pass)."""
    engine, _, cid, people = ui_records
    start = pd.Timestamp(patients_frame(engine)["treatment_start"].iloc[0]).date()
    at, base = open_form(people, "checkin", cid, "amend")
    at.datetime_input(key=f"{base}_f_reported_at").set_value(dt.datetime.combine(start - dt.timedelta(days=90), dt.time(9)))
    at.text_input(key=f"{base}_reason").input("date as on the paper form")
    submit(at, f"{base}_form", "Save amendment")
    assert stored(engine, checkins_frame, cid, "version") == 1
    assert "90 days before this patient's treatment start" in " ".join(w.value for w in at.warning)
    next(c for c in at.checkbox if c.label.startswith("I have checked these values")).check()
    submit(at, f"{base}_form", "Save amendment")
    assert not at.exception and stored(engine, checkins_frame, cid, "version") == 2


def test_the_question_about_a_check_in_date_goes_once_the_date_is_put_back(ui_records):
    """Put back to its own date and saved without a reason, the form still asked about the date it no longer held
    (code review)."""
    engine, _, cid, people = ui_records
    start = pd.Timestamp(patients_frame(engine)["treatment_start"].iloc[0]).date()
    at, base = open_form(people, "checkin", cid, "amend")
    own = at.datetime_input(key=f"{base}_f_reported_at").value
    at.datetime_input(key=f"{base}_f_reported_at").set_value(dt.datetime.combine(start - dt.timedelta(days=90), dt.time(9)))
    submit(at, f"{base}_form", "Save amendment")
    assert "90 days before" in " ".join(w.value for w in at.warning)
    at.datetime_input(key=f"{base}_f_reported_at").set_value(own)
    at.text_area(key=f"{base}_f_notes").input("as on the paper form")
    submit(at, f"{base}_form", "Save amendment")  # no reason: refused for that alone
    assert any("Give a reason" in e.value for e in at.error), [e.value for e in at.error]
    assert not [w for w in at.warning if "Not saved yet" in w.value], [w.value for w in at.warning]
    assert stored(engine, checkins_frame, cid, "version") == 1


def test_an_amended_vital_sign_is_asked_about_and_an_unchanged_one_is_not_asked_again(ui_records):
    """A heart rate amended to 27 is the same slip as one typed on Log session; once it is confirmed and stored, a
    later amendment of the notes alone does not ask about it again."""
    engine, sid, _, people = ui_records
    at, base = open_form(people, "session", sid, "amend")
    at.number_input(key=f"{base}_f_hr_pre").set_value(27)
    at.text_input(key=f"{base}_reason").input("as on the monitor strip")
    submit(at, f"{base}_form", "Save amendment")
    assert stored(engine, sessions_frame, sid, "version") == 1
    warning = " ".join(w.value for w in at.warning).replace("\\", "")
    assert "Heart rate before dosing: 27 /min is below 40 /min" in warning
    next(c for c in at.checkbox if c.label.startswith("I have checked these values")).check()
    submit(at, f"{base}_form", "Save amendment")
    assert not at.exception and stored(engine, sessions_frame, sid, "hr_pre") == 27
    at, base = open_form(people, "session", sid, "amend")
    at.text_area(key=f"{base}_f_notes").input("Bradycardic at baseline, known to cardiology")
    at.text_input(key=f"{base}_reason").input("note added")
    submit(at, f"{base}_form", "Save amendment")
    assert not at.exception and "now version 3" in at.success[0].value  # saved at once: nothing new to check


def test_voiding_from_the_page_needs_a_reason_and_shows_in_the_history(ui_records):
    engine, _, cid, people = ui_records
    at, base = open_form(people, "checkin", cid, "void")
    submit(at, f"{base}_void_form", "Void check-in")
    assert any("Give a reason" in e.value for e in at.error)
    assert stored(engine, checkins_frame, cid, "voided_at") is None
    at.text_input(key=f"{base}_void_reason").input("entered for the wrong patient")
    submit(at, f"{base}_void_form", "Void check-in")
    assert not at.exception and "voided" in at.success[0].value
    history = [m.value for m in at.markdown if m.value.startswith("**Check-in of")]
    assert history and history[0].endswith(": voided**")
    table = at.dataframe[-1].value
    assert "voided by Alice (alice) on " in table["What happened next"].iloc[0]  # named as colleagues know her
    assert any(c.startswith("Craving") for c in table.columns), "a voided record's values stay readable in its history"
    assert "entered for the wrong patient" in table["What happened next"].iloc[0]
    assert table["What happened next"].iloc[-1] == "since then: void, not used in levels or exports"  # not a 2nd void


@pytest.mark.parametrize("opened", ["amend", "void"])
def test_an_open_form_has_no_amend_or_void_button_beside_it(ui_records, opened):
    """Both buttons go in the run that opens a form: a button left showing beside it would do nothing when clicked."""
    _, sid, _, people = ui_records
    at, base = open_form(people, "session", sid, opened)
    keys = {b.key for b in at.button}
    assert f"{base}_open_amend" not in keys and f"{base}_open_void" not in keys
    assert any(f.key == f"{base}_{'form' if opened == 'amend' else 'void_form'}" for f in at.get("form"))


def test_an_amended_check_in_shows_both_versions_in_the_history(ui_records):
    engine, _, cid, people = ui_records
    at, base = open_form(people, "checkin", cid, "amend")
    at.number_input(key=f"{base}_f_craving").set_value(6)
    at.text_input(key=f"{base}_reason").input("patient corrected the answer")
    submit(at, f"{base}_form", "Save amendment")
    assert stored(engine, checkins_frame, cid, "craving") == 6
    table = at.dataframe[-1].value
    assert list(table["Version"]) == [1, 2]
    assert list(table["Craving"]) == [CHECKIN["craving"], "6"]
    assert "amended by Alice (alice) on " in table["What happened next"].iloc[0]
    assert "PHQ-9 total" not in table.columns  # only the fields that changed


def test_sds_items_and_warning_signs_are_amended_by_their_answer_words(ui_records):
    """They were bare number boxes: a clinician correcting a paper form had to know that 2 means 'Often' (clinician's
    review)."""
    engine, _, cid, people = ui_records
    at, base = open_form(people, "checkin", cid, "amend")
    sds = at.selectbox(key=f"{base}_f_sds_2")
    assert sds.value == 1 and sds.options[2] == "1 · Sometimes"  # opens on what is stored, shown in words
    assert "missing a dose" in sds.help
    secrecy = at.selectbox(key=f"{base}_f_secrecy")
    assert secrecy.options == ["not answered", "0 · Not at all", "1 · A little", "2 · Clearly",
                               "3 · Severely or nearly every day"]
    sds.set_value(2)
    at.text_input(key=f"{base}_reason").input("misread the paper form")
    submit(at, f"{base}_form", "Save amendment")
    assert stored(engine, checkins_frame, cid, "sds_2") == 2
    table = at.dataframe[-1].value
    assert list(table["Severity of Dependence Scale item 2"]) == ["1 · Sometimes", "2 · Often"]


def test_side_effects_are_amended_by_picking_effect_and_severity_not_by_typing(ui_records):
    engine, sid, _, people = ui_records
    at, base = open_form(people, "session", sid, "amend")
    picker = at.multiselect(key=f"{base}_f_side_effects")
    assert sorted(picker.value) == sorted(SESSION["side_effects"].split(";"))  # opens on what is stored
    assert "Headache (severe)" in picker.options  # shown in words, as in the sessions table
    # Two severities for one effect: the store's rule says so, and nothing is saved.
    picker.set_value(["nausea:mild", "nausea:severe"])
    at.text_input(key=f"{base}_reason").input("nausea worse than charted")
    submit(at, f"{base}_form", "Save amendment")
    assert any("Nausea is listed twice; keep one severity" in e.value for e in at.error)
    assert stored(engine, sessions_frame, sid, "version") == 1
    at.multiselect(key=f"{base}_f_side_effects").set_value(["nausea:severe", "headache:moderate"])
    submit(at, f"{base}_form", "Save amendment")
    assert not at.exception and "now version 2" in at.success[0].value
    assert sorted(stored(engine, sessions_frame, sid, "side_effects").split(";")) == ["headache:moderate", "nausea:severe"]
    table = at.dataframe[-1].value
    assert list(table["Version"]) == [1, 2]
    assert table["Side effects"].iloc[0] == "Nausea (mild), Dizziness (moderate)"  # the stored order, in words


def test_a_session_time_is_amended_in_clinic_time_with_one_date_and_time_field(ui_records):
    engine, sid, _, people = ui_records
    at, base = open_form(people, "session", sid, "amend")
    when = at.datetime_input(key=f"{base}_f_session_at")
    assert when.value == dt.datetime(2026, 1, 5, 10, 0)  # opens on the stored time, as the clinic's wall clock shows it
    when.set_value(dt.datetime.now() + dt.timedelta(days=2))
    at.text_input(key=f"{base}_reason").input("time typed wrongly")
    submit(at, f"{base}_form", "Save amendment")
    assert any("future" in e.value for e in at.error)  # refused by the store's rule, nothing saved
    assert stored(engine, sessions_frame, sid, "version") == 1
    at.datetime_input(key=f"{base}_f_session_at").set_value(dt.datetime(2026, 6, 1, 9, 30))  # British Summer Time
    submit(at, f"{base}_form", "Save amendment")
    assert not at.exception and "now version 2" in at.success[0].value
    assert stored(engine, sessions_frame, sid, "session_at") == pd.Timestamp("2026-06-01T08:30", tz="UTC")
    at.button(key=f"{base}_open_amend").click().run()  # opened again in summer: clinic time, not UTC
    assert at.datetime_input(key=f"{base}_f_session_at").value == dt.datetime(2026, 6, 1, 9, 30)


def test_a_reviewer_gets_no_way_to_amend_or_void(ui_records):
    at = page_for(ui_records[3]["rhea"])
    assert [b.label for b in at.button] == []  # no amend/void buttons and no form submit buttons at all
    assert at.subheader, "the records themselves are still shown to the reviewer"
