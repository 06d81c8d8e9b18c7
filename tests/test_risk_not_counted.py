"""What was seen but not counted: each look-alike's page says what it shows and why it does not count, and a signal
that does count is never also listed as not counted."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

import ketawatch.risk as risk
from ketawatch.risk.wording import day_words
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
    assert note.text == (f"Craving 8 of 10 on {week(4).day} Feb 2025 (7 or more counts as high; the patient's baseline "
                         "is 1, 4 or more counts as a rise); 1 and 2 at the 2 check-ins since: not counted, as it did "
                         "not hold at 2 check-ins in a row over at least 5 days")


def test_a_high_craving_at_the_latest_check_in_says_the_next_one_decides_and_it_then_counts():
    """Not "one high week is not a trend" before the next week is in: KW-0014 was red 8 days later (clinical lead)."""
    base = [1, 1, 1, 1, 1, 5]
    rec = records([patient()], iv_course("p1", [0.5] * 10), checkins("p1", base))
    (note,) = seen(rec)
    assert note.rule_id == "craving_rising"
    assert note.text.endswith("(7 or more counts as high; the patient's baseline is 1, 4 or more counts as a rise): "
                              "the next check-in on or after 15 Feb 2025 decides; 4 or more again would count (2 check-ins in a row over at least 5 days)")
    assert "trend" not in note.text
    held = records([patient()], iv_course("p1", [0.5] * 10), checkins("p1", [*base, 4]))
    assert "craving_rising" in risk.reason_ids(assessed(held)["reasons"])
    assert not [n for n in seen(held) if n.rule_id.startswith("craving")]
    sud = records([patient(sud=True)], iv_course("p1", [0.5] * 10), checkins("p1", base))
    assert "both lowered for a history of substance use disorder" in seen(sud)[0].text


def test_a_sign_seen_once_is_named_until_it_persists():
    once = records([patient()], iv_course("p1", [0.5] * 10), checkins("p1", [1] * 6, secrecy=[0, 0, 0, 0, 0, 2]))
    (note,) = seen(once)
    assert (note.rule_id, note.sign) == ("specific_sign_persistent", "secrecy")
    assert "on 1 of the last 3 check-ins" in note.text and "not counted until it is seen on 2 of the last 3" in note.text
    twice = records([patient()], iv_course("p1", [0.5] * 10), checkins("p1", [1] * 7, secrecy=[0, 0, 0, 0, 0, 2, 2]))
    assert [r.sign for r in assessed(twice)["reasons"] if r.rule_id == "specific_sign_persistent"] == ["secrecy"]
    assert not [n for n in seen(twice) if n.sign == "secrecy"]


def test_a_high_stable_sds_is_not_counted_and_a_new_rise_waits_for_the_next_answer():
    stable = records([patient()], iv_course("p1", [0.5] * 10), checkins("p1", [1] * 6, **sds(6, 6, 6, 7, 6, 7)))
    note = about("sds_high_rising", seen(stable))
    assert "but less than 3 points above the patient's own baseline of 6" in note.text
    assert "the last 5 complete answers were 6, 6, 7, 6 and 7" in note.text
    assert ": a high SDS that has not risen is not counted" in note.text
    rising = records([patient()], iv_course("p1", [0.5] * 10), checkins("p1", [1] * 6, **sds(1, 1, 1, 1, 1, 6)))
    note = about("sds_high_rising", seen(rising))
    assert "and 5 points above the patient's baseline of 1" in note.text
    assert ": the next complete answer on or after 15 Feb 2025 decides; high and risen again would count (2 complete answers in a row over at least 5 days)" in note.text
    too_soon = records([patient()], iv_course("p1", [0.5] * 10), checkins("p1", [1] * 2, **sds(6, 6)))
    note = about("sds_high_rising", seen(too_soon))
    assert "the patient's own baseline is not set yet (their first 3 complete answers)" in note.text


def _sds_items(control: int, reliance: int) -> dict:
    """SDS answers whose control items (1, 3 and 4) sum to `control` and reliance items (2 and 5) to `reliance`."""
    c = [control // 3 + (1 if k < control % 3 else 0) for k in range(3)]
    return {"sds_1": c[0], "sds_3": c[1], "sds_4": c[2], "sds_2": reliance // 2, "sds_5": reliance - reliance // 2}


def test_reliance_is_named_only_where_the_reliance_items_carry_the_sds():
    """A stable SDS of 6 read "reliance on treatment" while the loss-of-control items gave 5 of 9 (clinical lead)."""
    def note_for(control, reliance):
        rows = checkins("p1", [1] * 6, **_sds_items(control, reliance))
        return about("sds_high_rising", seen(records([patient()], iv_course("p1", [0.5] * 10), rows))).text

    assert note_for(1, 5).endswith("give 1 of 9, the two that also rise with reliance on treatment 5 of 6")
    assert note_for(5, 1).endswith("give 5 of 9")
    assert note_for(3, 3).endswith("give 3 of 9")  # half and half: reliance does not carry it


def test_an_sds_not_answered_since_is_said():
    rows = checkins("p1", [1] * 7, **sds(1, 1, 1, 1, 1, 6, 0))
    for item in ("sds_1", "sds_2", "sds_3", "sds_4", "sds_5"):
        rows[-1][item] = None
    note = about("sds_high_rising", seen(records([patient()], iv_course("p1", [0.5] * 10), rows)))
    assert "; not answered in full at the check-in since: not counted until it holds at 2" in note.text


def test_a_light_answer_on_use_outside_treatment_is_shown():
    """KW-0001 answered 'a little' to seeking the effect, and the page showed it nowhere (clinical lead). Seeking is
    a specific sign since 2026-12-01 (a light answer feeds the specific-sign drift); use outside treatment is asked."""
    light = checkins("p1", [1] * 6, non_prescribed_use=[0] * 5 + [1])
    note = about("use_outside_treatment_reported", seen(records([patient()], iv_course("p1", [0.5] * 10), light)))
    assert note.sign == "non_prescribed_use" and note.evidence_dates == (week(5),)
    assert note.text.endswith(": not counted; 'clearly' or more once would count as use outside treatment reported "
                              "(amber on its own)") and "answered 'a little' on" in note.text
    clearly = records([patient()], iv_course("p1", [0.5] * 10),
                      checkins("p1", [1] * 6, non_prescribed_use=[0] * 5 + [2]))
    assert "use_outside_treatment_reported" in risk.reason_ids(assessed(clearly)["reasons"])
    assert not [n for n in seen(clearly) if n.sign == "non_prescribed_use"]


def test_a_dose_just_raised_without_asking_reads_as_titration_and_an_old_one_is_not_repeated():
    rec = records([patient(plan_dose=None)], esketamine_course("p1", [56] * 10 + [84]), checkins("p1", [1] * 7))
    assert assessed(rec)["level"] == "green"
    note = about("dose_above_plan_after_request", seen(rec))
    assert note.text.startswith("Dose raised from 56 to 84 mg on ")
    assert "above 56 mg, the median of the first 3 intranasal sessions" in note.text and "%" not in note.text
    assert "did not ask for a higher dose" in note.text and "titration" in note.text
    # months at 84 mg: a titration long done is not news at every visit (clinical lead)
    old = records([patient(plan_dose=None)], esketamine_course("p1", [56] * 3 + [84] * 10), checkins("p1", [1] * 7))
    assert not [n for n in seen(old) if n.rule_id == "dose_above_plan_after_request"]
    iv = about("dose_above_plan_after_request",
               seen(records([patient()], iv_course("p1", [0.5] * 9 + [0.75]), checkins("p1", [1] * 7))))
    assert iv.text.startswith("Dose raised from 0.50 to 0.75 mg/kg on ")
    assert "50% above the planned 0.50 mg/kg" in iv.text


def test_a_dose_far_above_the_plan_is_never_read_as_titration():
    """500 mg IV for 75.5 kg (6.62 mg/kg against a plan of 0.75) read as 'the clinician's titration' (browser pass)."""
    rec = records([patient()], iv_course("p1", [0.5] * 9 + [6.62]), checkins("p1", [1] * 7))
    note = about("dose_above_plan_after_request", seen(rec))
    assert note.text.startswith("Dose raised from 0.50 to 6.62 mg/kg on ")
    assert ("1224% above the planned 0.50 mg/kg; 13.2 times the plan: check the record (a typing error, or a dose "
            "outside the plan)") in note.text
    assert "titration" not in note.text
    # against the median of the first sessions (no plan), too: no form check is claimed, the figure is said
    unplanned = about("dose_above_plan_after_request", seen(records(
        [patient(plan_dose=None)], iv_course("p1", [0.5] * 9 + [1.2]), checkins("p1", [1] * 7))))
    assert "2.4 times that median: check the record" in unplanned.text and "double-check" not in unplanned.text
    # at twice the plan exactly, a titration still reads as one (the form's double-check begins above it)
    twice = about("dose_above_plan_after_request",
                  seen(records([patient()], iv_course("p1", [0.5] * 9 + [1.0]), checkins("p1", [1] * 7))))
    assert "read as the clinician's titration" in twice.text


def test_a_dose_raised_after_asking_says_the_next_session_decides():
    """KW-0001: the rise since the request was already there; only the next session was missing (clinical lead)."""
    rec = records([patient()], iv_course("p1", [0.5] * 9 + [0.7], asked_more=(9,)), checkins("p1", [1] * 7))
    note = about("dose_above_plan_after_request", seen(rec))
    assert note.text.endswith("): the next session decides; above plan again would count (2 sessions in a row)")
    held = records([patient()], iv_course("p1", [0.5] * 9 + [0.7, 0.7], asked_more=(9,)), checkins("p1", [1] * 7))
    assert "dose_above_plan_after_request" in risk.reason_ids(assessed(held)["reasons"])
    already = records([patient()], iv_course("p1", [0.5] * 8 + [0.7, 0.7], asked_more=(9,)), checkins("p1", [1] * 7))
    assert ("but the dose is not 10% above the 0.70 mg/kg before the request: not counted"
            in about("dose_above_plan_after_request", seen(already)).text)


def test_a_supporting_observation_on_a_green_level_says_what_would_make_it_amber():
    rec = records([patient()], iv_course("p1", [0.5] * 9, asked_more=(8,)), checkins("p1", [1] * 7))
    assert assessed(rec)["level"] == "green" and assessed(rec)["reasons"] == []
    (note,) = seen(rec)
    assert note.rule_id == "dose_request_recent"
    assert "asked for a higher dose at 1 of the last 6 sessions, all in the 90 days up to " in note.text
    assert note.text.endswith(": on its own it does not raise the level; one more supporting observation of another "
                              "kind would make it amber, and so would one more such request within 90 days")


def test_one_early_session_is_named_but_two_are_counted():
    gaps = [21, 21, 12, 21]
    rec = records([patient()], iv_course("p1", [0.5] * 10, gaps=gaps), checkins("p1", [1] * 7))
    (note,) = seen(rec)
    assert note.rule_id == "interval_shrinking" and "12 days (the session on " in note.text
    assert note.text.endswith("; not counted until 2 of the last 3 are this short")
    shrinking = records([patient()], iv_course("p1", [0.5] * 10, gaps=[21, 21, 12, 12]), checkins("p1", [1] * 7))
    assert "interval_shrinking" in risk.reason_ids(assessed(shrinking)["reasons"])
    assert not [n for n in seen(shrinking) if n.rule_id == "interval_shrinking"]
    asked = records([patient()], iv_course("p1", [0.5] * 10, gaps=gaps, early=(8,)), checkins("p1", [1] * 7))
    note = about("interval_shrinking", seen(asked))  # the same event as the request beside it, said so
    assert "; the patient asked to have it early, as the request above says;" in note.text


def test_an_sud_history_is_no_observation_but_stands_beside_the_history():
    rec = records([patient(sud=True)], iv_course("p1", [0.5] * 10), checkins("p1", [1] * 7))
    assert seen(rec) == []
    assert risk.sud_history_note(risk.load_rules()) == ("graded thresholds lowered to 75% of the clinic's, so signals count sooner; never "
                                       "a reason on its own")


def test_what_counted_and_then_stopped_is_not_called_not_counted():
    """Craving 7 and 7 had made the level amber; the line said it "did not hold at 2 check-ins in a row" (code review).
    What counted is the level history's to tell; a new high answer after it is named."""
    stopped = records([patient()], iv_course("p1", [0.5] * 10), checkins("p1", [3, 3, 3, 3, 7, 7, 0]))
    assert "amber" in set(risk.daily_levels(stopped, tz="UTC")["level"])
    assert not [n for n in seen(stopped) if n.rule_id.startswith("craving")]
    again = records([patient()], iv_course("p1", [0.5] * 10), checkins("p1", [3, 3, 3, 3, 7, 7, 0, 8]))
    (note,) = [n for n in seen(again) if n.rule_id.startswith("craving")]
    assert note.evidence_dates == (week(7),) and f"the next check-in on or after {day_words(week(7) + dt.timedelta(days=5))} decides" in note.text


def test_a_longer_persistence_setting_is_counted_out_in_the_wording():
    """With 3 check-ins in a row asked for, one high answer does not make "the next check-in decides" (code review)."""
    rules = risk.load_rules(craving_persist_checkins=3)
    rec = records([patient()], iv_course("p1", [0.5] * 10), checkins("p1", [1, 1, 1, 1, 1, 8]))
    (note,) = seen(rec, rules=rules)
    assert note.text.endswith(": 4 or more at the next 2 check-ins would count (3 in a row over at least 5 days)")


def test_two_supporting_requests_under_a_relapse_say_what_they_count_for():
    """The early request counts nothing while PHQ-9 has reliably worsened: "one more would make it amber" was false."""
    rec = records([patient()], iv_course("p1", [0.5] * 10, early=(9,), asked_more=(8,)),
                  checkins("p1", [1] * 7, phq9=[5, 5, 5, 5, 5, 5, 14]))
    assert assessed(rec)["level"] == "green"
    early = about("early_request_recent", seen(rec))
    assert "; it counts one point less while PHQ-9 is 6 or more points above the patient's best" in early.text
    assert "; one more supporting observation of another kind would make it amber" in early.text  # the dose request's
    assert "; one more supporting observation" in about("dose_request_recent", seen(rec)).text


def test_a_dose_on_a_new_route_is_not_read_against_the_old_route():
    """After intranasal sessions the first IV one read 'raised from 56.00 mg/kg to 0.75 mg/kg' (code review)."""
    nasal = esketamine_course("p1", [56] * 4)
    iv = [dict(row, route="iv", dose_mg=52.5, weight_kg=70.0) for row in iv_course("p1", [0.75] * 12)[10:]]
    rec = records([patient()], nasal + iv, checkins("p1", [1] * 7))
    note = about("dose_above_plan_after_request", seen(rec))
    assert note.text.startswith("Dose 0.75 mg/kg at the first iv session, ") and "56" not in note.text


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
            assert not [n for n in found if "on its own it does not raise the level" in n.text]
        assert all(n.text and "nan" not in n.text for n in found)
        assert all(d <= as_of for n in found for d in n.evidence_dates)
        # nothing named as not counted on a date its own rule (for craving: any craving rule) held
        days = risk.daily_levels(rec, tz=tz)
        days = days[(days["patient_id"] == pid) & (days["date"] <= as_of)]
        held = {d: set(risk.reason_ids(r)) for d, r in zip(days["date"], days["reasons"])}
        for n in found:
            family = {"craving_high", "craving_rising"} if n.rule_id.startswith("craving") else {n.rule_id}
            if n.rule_id in {"craving_high", "craving_rising", "nonspecific_signs_rising", "interval_shrinking",
                             "sds_high_rising"}:
                assert not [d for d in n.evidence_dates if held.get(d, set()) & family], (n, held)


def test_a_sign_a_counted_drift_quotes_is_not_called_not_counted():
    # SUD history lowers the drift alarm: tolerance answered "clearly" once already counts in the specific-sign drift.
    rec = records([patient(sud=True)], iv_course("p1", [0.5] * 10),
                  checkins("p1", [1] * 7, tolerance=[0, 0, 0, 0, 0, 0, 2]))
    shown = risk.reason_ids(assessed(rec)["reasons"]) + [n.rule_id for n in seen(rec)]  # a reason, or supporting on green
    assert "specific_burden_drift" in shown
    assert not [n for n in seen(rec) if n.sign == "tolerance"]


def test_light_use_answers_say_why_they_do_not_support_here_when_they_do_elsewhere():
    """'a little' twice in three check-ins counted as supporting for one patient and 'not counted' for another, with
    nothing to say why (clinician review): no craving signal, or the checklist already counting."""
    def line(craving, tolerance):
        rec = records([patient()], checkin_rows=checkins("p1", craving, non_prescribed_use=[0, 0, 0, 0, 0, 1, 1],
                                                          tolerance=tolerance))
        return [n.text for n in risk.seen_not_counted(rec, "p1", as_of=week(6), tz="UTC") if n.sign == "non_prescribed_use"]

    (quiet,) = line([1] * 7, 0)
    assert "not counted (answered this often it supports a craving signal, and there is none now)" in quiet
    (beside,) = line([1, 1, 1, 5, 5, 6, 6], [0, 0, 0, 2, 2, 2, 2])
    assert "not counted on its own: the warning-sign checklist already counts through a persistent warning sign" in beside
    assert line([1, 1, 1, 5, 5, 6, 6], 0) == []  # counted as a corroborating sign, so not listed as not counted
