"""What was seen but not counted: each look-alike's page says what it shows and why it does not count, and a signal
that does count is never also listed as not counted."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

import ketawatch.risk as risk
from tests.test_risk_properties import FAST, ZONES, record_sets
from tests.test_risk_rules import START, checkins, esketamine_course, iv_course, patient, records, sds, week

LATER = dt.date(2025, 12, 31)


def seen(rec, as_of=LATER, **kwargs):
    return risk.seen_not_counted(rec, "p1", as_of=as_of, tz="UTC", **kwargs)


def about(rule_id, found):
    """The one observation of `found` about `rule_id` (the SDS helper's spread also scores the control items)."""
    (note,) = [n for n in found if n.rule_id == rule_id]
    return note


def assessed(rec, as_of=LATER):
    return risk.assess(rec, as_of=as_of, tz="UTC").iloc[0]


def test_single_craving_spike_is_named_with_the_weeks_after_it():
    rec = records([patient()], iv_course("p1", [0.5] * 10), checkins("p1", [1, 1, 1, 1, 8, 1, 2], phq9=8))
    assert assessed(rec)["level"] == "green"
    (note,) = seen(rec)
    assert note.rule_id == "craving_high"
    assert note.evidence_dates == (week(4),)
    assert note.text.startswith(f"Craving 8 of 10 on {week(4).day} Feb 2025 (7 or more counts as high; the patient's "
                                "baseline is 1, 4 or more counts as a rise); 1 and 2 at the 2 check-ins since: not "
                                "counted, as it did not hold at 2 check-ins in a row")


def test_a_high_craving_at_the_latest_check_in_is_counted_at_the_next_high_one():
    base = [1, 1, 1, 1, 1, 8]
    rec = records([patient()], iv_course("p1", [0.5] * 10), checkins("p1", base))
    (note,) = seen(rec)
    assert "not counted until it holds at 2 check-ins in a row" in note.text
    held = records([patient()], iv_course("p1", [0.5] * 10), checkins("p1", [*base, 8]))
    assert "craving_high" in risk.reason_ids(assessed(held)["reasons"])
    assert not [n for n in seen(held) if n.rule_id and n.rule_id.startswith("craving")]


def test_a_sign_seen_once_is_named_until_it_persists():
    once = records([patient()], iv_course("p1", [0.5] * 10), checkins("p1", [1] * 6, secrecy=[0, 0, 0, 0, 0, 2]))
    (note,) = seen(once)
    assert (note.rule_id, note.sign) == ("specific_sign_persistent", "secrecy")
    assert "on 1 of the last 3 check-ins" in note.text and "not counted until it is seen on 2 of the last 3" in note.text
    twice = records([patient()], iv_course("p1", [0.5] * 10), checkins("p1", [1] * 7, secrecy=[0, 0, 0, 0, 0, 2, 2]))
    assert [r.sign for r in assessed(twice)["reasons"] if r.rule_id == "specific_sign_persistent"] == ["secrecy"]
    assert not [n for n in seen(twice) if n.sign == "secrecy"]


def test_a_high_stable_sds_reads_as_reliance_and_a_new_rise_waits_for_the_next_answer():
    stable = records([patient()], iv_course("p1", [0.5] * 10), checkins("p1", [1] * 6, **sds(6, 6, 6, 7, 6, 7)))
    note = about("sds_high_rising", seen(stable))
    assert "less than 3 points above the patient's own baseline of 6" in note.text and "reliance" in note.text
    rising = records([patient()], iv_course("p1", [0.5] * 10), checkins("p1", [1] * 6, **sds(1, 1, 1, 1, 1, 6)))
    note = about("sds_high_rising", seen(rising))
    assert "5 points above the patient's baseline of 1: not counted until it holds at 2" in note.text
    too_soon = records([patient()], iv_course("p1", [0.5] * 10), checkins("p1", [1] * 2, **sds(6, 6)))
    note = about("sds_high_rising", seen(too_soon))
    assert "until the patient's own baseline is set (their first 3 complete answers)" in note.text


def test_a_dose_above_plan_without_asking_reads_as_titration():
    rec = records([patient(plan_dose=None)], esketamine_course("p1", [56] * 10 + [84]), checkins("p1", [1] * 7))
    assert assessed(rec)["level"] == "green"
    (note,) = seen(rec)
    assert note.rule_id == "dose_above_plan_after_request"
    assert note.text.startswith("Dose 84 mg on ") and "50% above 56 mg, the median of the first 3 intranasal" in note.text
    assert "did not ask for a higher dose" in note.text and "titration" in note.text


def test_a_supporting_observation_on_a_green_level_is_shown_as_supporting():
    rec = records([patient()], iv_course("p1", [0.5] * 9, asked_more=(8,)), checkins("p1", [1] * 7))
    assert assessed(rec)["level"] == "green" and assessed(rec)["reasons"] == []
    (note,) = seen(rec)
    assert note.rule_id == "dose_request_recent"
    assert "asked for a higher dose at 1 of the last 6 sessions" in note.text
    assert "on its own it does not raise the level" in note.text


def test_one_early_session_is_named_but_two_are_counted():
    gaps = [21, 21, 12, 21]
    rec = records([patient()], iv_course("p1", [0.5] * 10, gaps=gaps), checkins("p1", [1] * 7))
    (note,) = seen(rec)
    assert note.rule_id == "interval_shrinking" and "12 days" in note.text and "not counted until 2 of the last 3" in note.text
    shrinking = records([patient()], iv_course("p1", [0.5] * 10, gaps=[21, 21, 12, 12]), checkins("p1", [1] * 7))
    assert "interval_shrinking" in risk.reason_ids(assessed(shrinking)["reasons"])
    assert not [n for n in seen(shrinking) if n.rule_id == "interval_shrinking"]


def test_an_sud_history_is_said_never_to_be_a_reason():
    rec = records([patient(sud=True)], iv_course("p1", [0.5] * 10), checkins("p1", [1] * 7))
    (note,) = seen(rec)
    assert note.rule_id is None and "never a reason on its own" in note.text and "75%" in note.text
    assert seen(records([patient()], iv_course("p1", [0.5] * 10), checkins("p1", [1] * 7))) == []


def test_it_is_causal():
    rec = records([patient()], iv_course("p1", [0.5] * 10), checkins("p1", [1, 1, 1, 1, 8, 8, 1]))
    on = week(4)
    assert seen(rec, as_of=on) == seen(records([patient()], iv_course("p1", [0.5] * 10), checkins("p1", [1, 1, 1, 1, 8])),
                                       as_of=on)
    assert seen(rec, as_of=START - dt.timedelta(days=1)) == []


@FAST
@given(rec=record_sets(), tz=st.sampled_from(ZONES), as_of_days=st.integers(-5, 160))
def test_never_lists_what_a_reason_counts(rec, tz, as_of_days):
    """Any record set: no error, the same answer twice, and nothing listed that the level's own reasons count."""
    as_of = dt.date(2025, 3, 1) + dt.timedelta(days=as_of_days)
    levels = risk.assess(rec, as_of=as_of, tz=tz).set_index("patient_id")
    for pid in levels.index:
        found = risk.seen_not_counted(rec, pid, as_of=as_of, tz=tz)
        assert found == risk.seen_not_counted(rec, pid, as_of=as_of, tz=tz)
        level, reasons = levels.loc[pid, "level"], levels.loc[pid, "reasons"]
        counted = {(r.rule_id, r.sign) for r in reasons}
        assert not [n for n in found if (n.rule_id, n.sign) in counted]
        if level != "green":  # a supporting observation is a reason there, listed once
            assert not [n for n in found if n.text.endswith("on its own it does not raise the level")]
        assert all(n.text and "nan" not in n.text for n in found)


def test_a_sign_a_counted_drift_quotes_is_not_called_not_counted():
    # SUD history lowers the drift alarm: tolerance answered "clearly" once already counts in the specific-sign drift.
    rec = records([patient(sud=True)], iv_course("p1", [0.5] * 10),
                  checkins("p1", [1] * 7, tolerance=[0, 0, 0, 0, 0, 0, 2]))
    shown = risk.reason_ids(assessed(rec)["reasons"]) + [n.rule_id for n in seen(rec)]  # a reason, or supporting on green
    assert "specific_burden_drift" in shown
    assert not [n for n in seen(rec) if n.sign == "tolerance"]
