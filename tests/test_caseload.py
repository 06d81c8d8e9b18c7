"""The caseload table and the alert-review rule (ketawatch.caseload): worst first, due dates, latest scores, reopening."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ketawatch.caseload import (
    CASELOAD_COLUMNS,
    caseload_table,
    level_counts,
    reason_ids,
    reason_summary,
    unreviewed_alerts,
)
from ketawatch.risk import Reason, assess
from store.frames import Records
from store.settings import Settings

TZ = "Europe/London"
TODAY = dt.date(2026, 11, 22)
AGAIN = Settings.model_fields["review_again_days"].default  # KETAWATCH_REVIEW_AGAIN_DAYS as shipped


def _reason(rule_id: str, level: str = "amber", text: str | None = None) -> Reason:
    return Reason(rule_id=rule_id, level=level, text=text or f"observation {rule_id}", evidence_dates=(TODAY,))


def _patients(*rows: dict) -> pd.DataFrame:
    base = {"indication": "depression", "sud_history": False, "treatment_start": "2026-01-01", "status": "active"}
    return pd.DataFrame([{**base, **r} for r in rows])


def _assessment(rows: list[tuple[str, str, dt.date | None, list]]) -> pd.DataFrame:
    return pd.DataFrame({
        "patient_id": [r[0] for r in rows],
        "as_of": [TODAY] * len(rows),
        "level": [r[1] for r in rows],
        "since": [r[2] for r in rows],
        "reasons": pd.Series([r[3] for r in rows], dtype=object),
    })


def _reviews(rows: list[tuple[str, str, str, str]]) -> pd.DataFrame:
    """(patient_id, reviewed_at ISO UTC, level, ';'-joined reasons)."""
    return pd.DataFrame({
        "patient_id": [r[0] for r in rows],
        "reviewed_at": pd.to_datetime([r[1] for r in rows], utc=True),
        "level": [r[2] for r in rows],
        "reasons": [r[3] for r in rows],
        "action": ["discussed_with_patient"] * len(rows),
    })


@pytest.fixture
def three_patients() -> Records:
    patients = _patients(
        {"patient_id": "G", "planned_interval_days": 14, "display_name": "Green One", "clinician": "cleo"},
        {"patient_id": "A", "planned_interval_days": 7},
        {"patient_id": "R", "planned_interval_days": None},
    )
    sessions = pd.DataFrame({
        "patient_id": ["G", "G", "A"],
        # 23:30 UTC on 1 Nov is still 1 Nov in London (GMT); 23:30 UTC on 10 Oct is 11 Oct 00:30 in London (BST).
        "session_at": ["2026-10-20T09:00Z", "2026-11-01T23:30Z", "2026-10-10T23:30Z"],
        "route": ["iv", "iv", "intranasal"],
        "dose_mg": [35, 36, 56],
        "weight_kg": [70, 70, None],
    })
    checkins = pd.DataFrame({
        "patient_id": ["G", "G", "G", "A"],
        "reported_at": ["2026-10-01T10:00Z", "2026-10-08T10:00Z", "2026-10-15T10:00Z", "2026-10-15T10:00Z"],
        "craving": [1, 2, 3, 5],
        "sds_1": [0, 1, None, 1], "sds_2": [0, 1, None, 1], "sds_3": [0, 1, None, 1], "sds_4": [0, 1, None, 1],
        "sds_5": [0, 1, None, 1],
        "phq9": [20, None, None, 12],
    })
    return Records.of(patients, sessions, checkins)


def test_worst_level_first_then_longest_standing(three_patients):
    assessment = _assessment([
        ("G", "green", dt.date(2026, 10, 1), []),
        ("A", "amber", dt.date(2026, 11, 1), [_reason("craving_rising")]),
        ("R", "red", dt.date(2026, 11, 10), [_reason("use_outside_treatment_repeated", "red"), _reason("craving_high")]),
    ])
    table = caseload_table(three_patients, assessment, tz=TZ, today=TODAY, review_again_days=AGAIN)
    assert list(table.columns) == list(CASELOAD_COLUMNS)
    assert table["patient_id"].tolist() == ["R", "A", "G"]
    assert table.loc[0, "reason_ids"] == ["use_outside_treatment_repeated", "craving_high"]
    assert table.loc[0, "reason_titles"] == "Use outside treatment, repeated · Craving high"
    assert level_counts(table) == {"green": 1, "amber": 1, "red": 1}


def test_within_a_level_those_not_yet_reviewed_come_first(three_patients):
    """A red patient reviewed this morning need not sit above one nobody has looked at yet."""
    red = [_reason("use_outside_treatment_repeated", "red")]
    assessment = _assessment([("G", "red", dt.date(2026, 10, 1), red), ("A", "red", dt.date(2026, 11, 1), red),
                              ("R", "red", dt.date(2026, 11, 10), red)])
    reviews = _reviews([("G", "2026-11-21T09:00:00Z", "red", "use_outside_treatment_repeated")])
    table = caseload_table(three_patients, assessment, tz=TZ, today=TODAY, review_again_days=AGAIN, reviews=reviews)
    assert table[["patient_id", "needs_review"]].values.tolist() == [["A", True], ["R", True], ["G", False]]


def test_a_question_9_follow_up_is_not_a_review_of_the_level():
    """Recorded after a real review, it must neither close a new alert nor stand as the last review in exports."""
    from ketawatch.exports.casefile import _with_last_review
    from store.vocabulary import SAFETY_FOLLOW_UP

    red = [_reason("use_outside_treatment_repeated", "red"), _reason("craving_high")]
    assessment = _assessment([("R", "red", dt.date(2026, 11, 1), red)])
    reviews = _reviews([("R", "2026-11-02T09:00:00Z", "red", "use_outside_treatment_repeated"),
                        ("R", "2026-11-21T09:00:00Z", "red", f"craving_high;{SAFETY_FOLLOW_UP}")])
    reviews["reviewed_by"] = ["dr-level", "dr-safety"]
    pending = unreviewed_alerts(assessment, reviews, tz=TZ, review_again_days=AGAIN)
    assert pending["new_reasons"].tolist() == [["craving_high"]], "craving_high was listed only by the follow-up"
    assert str(pending["last_reviewed_at"].iloc[0]).startswith("2026-11-02")
    last = _with_last_review(assessment[["patient_id"]], reviews, TZ)
    assert last["last_review_by"].tolist() == ["dr-level"]


def test_next_session_due_from_the_plan_in_clinic_dates(three_patients):
    assessment = _assessment([("G", "green", None, []), ("A", "green", None, []), ("R", "green", None, [])])
    table = caseload_table(three_patients, assessment, tz=TZ, today=TODAY, review_again_days=AGAIN).set_index("patient_id")
    assert table.loc["G", "next_session_due"] == pd.Timestamp("2026-11-15")  # 1 Nov + 14 days
    assert bool(table.loc["G", "session_overdue"]) is True
    assert table.loc["A", "next_session_due"] == pd.Timestamp("2026-10-18")  # 11 Oct local + 7 days
    assert pd.isna(table.loc["R", "next_session_due"])  # no plan, no session
    assert bool(table.loc["R", "session_overdue"]) is False
    assert table.loc["A", "last_session_route"] == "intranasal"


@pytest.mark.parametrize("status", ["paused", "discharged"])
def test_a_patient_not_in_active_treatment_has_no_session_due_or_overdue(three_patients, status):
    """A paused patient was listed, and counted, as overdue (clinician's browser pass)."""
    patients = three_patients.patients.assign(status=lambda f: f["status"].where(f["patient_id"] != "G", status))
    held = Records(patients, three_patients.sessions, three_patients.checkins)
    table = caseload_table(held, assess(held, as_of=TODAY, tz=TZ), tz=TZ, today=TODAY,
                           review_again_days=AGAIN).set_index("patient_id")
    assert pd.isna(table.loc["G", "next_session_due"]) and not bool(table.loc["G", "session_overdue"])
    assert bool(table.loc["A", "session_overdue"]) is True  # still active: still due


def test_a_reliable_worsening_of_phq9_is_marked_whatever_the_level(three_patients):
    """The patient page's 'reliable worsening', on the caseload: PHQ-9 19 beside a green tick read as 'fine'."""
    checkins = pd.concat([three_patients.checkins, Records.of(checkins=pd.DataFrame({
        "patient_id": ["G", "A"], "reported_at": ["2026-10-22T10:00Z", "2026-10-22T10:00Z"], "craving": [1, 1],
        "phq9": [14, 16]})).checkins], ignore_index=True)
    checkins.loc[0, "phq9"] = 8  # G: 8 then 14, six points up (reliable); A: 12 then 16, four (not)
    rec = Records(three_patients.patients, three_patients.sessions, checkins)
    table = caseload_table(rec, assess(rec, as_of=TODAY, tz=TZ), tz=TZ, today=TODAY,
                           review_again_days=AGAIN).set_index("patient_id")
    assert table["phq9_worse"].to_dict() == {"G": True, "A": False, "R": False}
    assert table.loc["G", "level"] == "green"


def test_latest_scores_skip_unanswered_and_incomplete(three_patients):
    assessment = _assessment([("G", "green", None, []), ("A", "green", None, []), ("R", "green", None, [])])
    table = caseload_table(three_patients, assessment, tz=TZ, today=TODAY, review_again_days=AGAIN).set_index("patient_id")
    assert table.loc["G", "craving_history"] == [1.0, 2.0, 3.0]
    assert table.loc["G", "craving_latest"] == 3
    assert table.loc["G", "sds_latest"] == 5  # 15 Oct had no SDS; 8 Oct was 5 x 1
    assert table.loc["G", "phq9_latest"] == 20
    assert table.loc["R", "craving_history"] == []
    assert np.isnan(table.loc["R", "sds_latest"])


def test_the_caseload_names_every_reason_in_a_few_words_and_says_which_only_support():
    """The full observations, cut to fit the column, showed half of the first one (clinical lead)."""
    reasons = [_reason("use_outside_treatment_repeated", "red"), _reason("craving_rising"),
               Reason("specific_sign_persistent", "amber", "Secrecy ...", (TODAY,), sign="secrecy"),
               _reason("early_requests_repeated"), _reason("early_request_recent", "weak"),
               Reason("corroborating_sign", "weak", "Irritable ...", (TODAY,), sign="irritable_when_not_using")]
    assert reason_summary(reasons) == (
        "Use outside treatment, repeated · Craving rising · Secrecy about ketamine use, persistent · Asked to come "
        "earlier, repeatedly · Recent early request (supporting) · Irritable or anxious when not using beside craving "
        "(supporting)")
    assert reason_summary([]) == ""
    assert reason_ids([_reason("y", "red"), _reason("x"), _reason("x")]) == ["y", "x"]  # engine order, once each


class TestUnreviewedAlerts:
    """A review covers the reasons and level it saw; anything new reopens the alert."""

    since = dt.date(2026, 11, 10)

    def _amber(self, *ids: str) -> pd.DataFrame:
        return _assessment([("P", "amber", self.since, [_reason(i) for i in ids]), ("Q", "green", self.since, [])])

    def test_never_reviewed_is_pending_and_green_never_is(self):
        pending = unreviewed_alerts(self._amber("craving_rising"), None, tz=TZ, review_again_days=AGAIN)
        assert pending["patient_id"].tolist() == ["P"]
        assert pending.loc[0, "new_reasons"] == ["craving_rising"]

    def test_review_of_the_same_reasons_closes_it(self):
        reviews = _reviews([("P", "2026-11-12T10:00Z", "amber", "craving_rising")])
        assert unreviewed_alerts(self._amber("craving_rising"), reviews, tz=TZ, review_again_days=AGAIN).empty

    def test_a_new_rule_id_reopens_it(self):
        reviews = _reviews([("P", "2026-11-12T10:00Z", "amber", "craving_rising")])
        pending = unreviewed_alerts(self._amber("craving_rising", "early_requests_repeated"), reviews, tz=TZ, review_again_days=AGAIN)
        assert pending.loc[0, "new_reasons"] == ["early_requests_repeated"]

    def test_only_the_latest_review_counts(self):
        reviews = _reviews([
            ("P", "2026-11-12T10:00Z", "amber", "craving_rising;early_requests_repeated"),
            ("P", "2026-11-14T10:00Z", "amber", "craving_rising"),
        ])
        assert len(unreviewed_alerts(self._amber("craving_rising", "early_requests_repeated"), reviews, tz=TZ, review_again_days=AGAIN)) == 1

    def test_pending_alerts_come_in_the_caseload_order_worst_then_longest_standing(self):
        rows = [("A", "amber", dt.date(2026, 11, 1), [_reason("craving_rising")]),
                ("B", "red", dt.date(2026, 11, 20), [_reason("craving_rising")]),
                ("C", "red", dt.date(2026, 10, 5), [_reason("craving_rising")]),
                ("D", "amber", dt.date(2026, 9, 1), [_reason("craving_rising")])]
        assert unreviewed_alerts(_assessment(rows), None, tz=TZ, review_again_days=AGAIN)["patient_id"].tolist() == ["C", "B", "D", "A"]

    def test_a_higher_level_reopens_it(self):
        reviews = _reviews([("P", "2026-11-12T10:00Z", "amber", "craving_rising")])
        red = _assessment([("P", "red", self.since, [_reason("craving_rising")])])
        assert len(unreviewed_alerts(red, reviews, tz=TZ, review_again_days=AGAIN)) == 1

    def test_a_new_episode_after_the_review_reopens_it(self):
        reviews = _reviews([("P", "2026-11-05T10:00Z", "amber", "craving_rising")])  # before `since`
        assert len(unreviewed_alerts(self._amber("craving_rising"), reviews, tz=TZ, review_again_days=AGAIN)) == 1

    @pytest.mark.parametrize("days_ago, waits", [(AGAIN - 1, False), (AGAIN, True), (AGAIN + 90, True)])
    def test_a_review_this_old_comes_back_while_the_level_lasts_with_the_same_reasons(self, days_ago, waits):
        """A red level acknowledged once stayed "reviewed" for as long as its reasons stayed the same (clinician
        review): a review KETAWATCH_REVIEW_AGAIN_DAYS old no longer covers it."""
        reviewed = pd.Timestamp(TODAY - dt.timedelta(days=days_ago)).tz_localize("Europe/London") + pd.Timedelta(hours=10)
        reviews = _reviews([("P", reviewed.isoformat(), "red", "craving_rising")])
        red = _assessment([("P", "red", TODAY - dt.timedelta(days=days_ago + 5), [_reason("craving_rising")])])
        pending = unreviewed_alerts(red, reviews, tz=TZ, review_again_days=AGAIN)
        assert pending["patient_id"].tolist() == (["P"] if waits else [])
        if waits:  # it says why: nothing new, only the review's age
            assert bool(pending.loc[0, "due_again"]) and pending.loc[0, "new_reasons"] == []
        shorter = unreviewed_alerts(red, reviews, tz=TZ, review_again_days=days_ago)  # the clinic's own setting rules
        assert shorter["patient_id"].tolist() == ["P"]

    def test_the_age_of_a_review_is_counted_in_clinic_days(self):
        """A review at 23:30 UTC in summer is made the next clinic day (00:30 in London): counted from the UTC day, it
        came back a day early (code review)."""
        july = dt.date(2026, 7, 29)
        reviews = _reviews([("P", "2026-07-01T23:30Z", "red", "craving_rising")])  # 2 July in the clinic
        red = _assessment([("P", "red", dt.date(2026, 6, 1), [_reason("craving_rising")])]).assign(as_of=july)
        assert unreviewed_alerts(red, reviews, tz=TZ, review_again_days=AGAIN).empty  # 27 clinic days
        later = red.assign(as_of=july + dt.timedelta(days=1))
        assert unreviewed_alerts(later, reviews, tz=TZ, review_again_days=AGAIN)["patient_id"].tolist() == ["P"]

    def test_an_assessment_without_its_date_is_refused_not_read_as_never_due(self):
        with pytest.raises(ValueError, match="needs its as_of column"):
            unreviewed_alerts(self._amber("craving_rising").drop(columns="as_of"), None, tz=TZ, review_again_days=AGAIN)

    def test_an_alert_reopened_by_a_new_reason_is_not_called_due_again(self):
        reviews = _reviews([("P", "2026-09-01T10:00Z", "amber", "craving_rising")])
        pending = unreviewed_alerts(_assessment([("P", "amber", dt.date(2026, 8, 30), [_reason("craving_rising"),
                                                                                       _reason("tolerance")])]),
                                    reviews, tz=TZ, review_again_days=AGAIN)
        assert not pending.loc[0, "due_again"] and pending.loc[0, "new_reasons"] == ["tolerance"]

    def test_red_is_listed_before_amber(self):
        both = _assessment([("A", "amber", self.since, [_reason("x")]), ("R", "red", self.since, [_reason("y")])])
        assert unreviewed_alerts(both, None, tz=TZ, review_again_days=AGAIN)["patient_id"].tolist() == ["R", "A"]


@settings(max_examples=40, deadline=None)
@given(cravings=st.lists(st.one_of(st.none(), st.integers(0, 10)), min_size=0, max_size=30),
       points=st.integers(1, 15))
def test_sparkline_is_the_last_recorded_cravings_in_order(cravings, points):
    days = pd.date_range("2026-01-01", periods=len(cravings), freq="D", tz="UTC")
    records = Records.of(
        _patients({"patient_id": "P"}),
        None,
        pd.DataFrame({"patient_id": ["P"] * len(cravings), "reported_at": days,
                      "craving": pd.array(cravings, dtype="Float64")}),
    )
    table = caseload_table(records, _assessment([("P", "green", None, [])]), tz=TZ, today=TODAY, review_again_days=AGAIN, craving_points=points)
    recorded = [float(c) for c in cravings if c is not None]
    assert table.loc[0, "craving_history"] == recorded[-points:]
    if recorded:
        assert table.loc[0, "craving_latest"] == recorded[-1]


def test_caseload_of_the_demo_cohort_agrees_with_the_engine():
    """The table built from real engine output: one row per patient, same levels, reasons as rule ids."""
    from seed_data.cohort import demo_cohort

    cohort = demo_cohort(end=TODAY - dt.timedelta(days=1))
    records = Records.of(cohort.patients, cohort.sessions, cohort.checkins)
    assessment = assess(records, as_of=TODAY, tz=TZ)
    table = caseload_table(records, assessment, tz=TZ, today=TODAY, review_again_days=AGAIN)
    assert len(table) == len(records.patients)
    merged = table.merge(assessment, on="patient_id", suffixes=("", "_engine"))
    assert (merged["level"] == merged["level_engine"]).all()
    assert all(set(ids) == {r.rule_id for r in rs} for ids, rs in zip(merged["reason_ids"], merged["reasons"]))
    ranks = table["level"].map({"green": 0, "amber": 1, "red": 2}).to_numpy()
    assert (np.diff(ranks) <= 0).all(), "worst level first"
    assert (table.loc[table["level"] == "green", "reason_titles"] == "").all()
    flagged = table[table["level"] != "green"]
    assert (flagged["reason_titles"] != "").all()
    # one title per reason, none of them the bare rule id (every rule has words)
    assert all(len(t.split(" · ")) >= len(ids) and not set(t.split(" · ")) & set(ids)
               for t, ids in zip(flagged["reason_titles"], flagged["reason_ids"]))
