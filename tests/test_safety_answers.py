"""The PHQ-9 question 9 line of a check-in's notes, found again for the caseload, alerts and patient page."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd

from ketawatch.safety_answers import RECENT_DAYS, SAFETY_MARK, safety_answers, safety_line
from store.queries import checkins_with_notes_containing
from store.records import add_checkin, add_patient
from tests.store_support import PATIENT

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)
RECENT = NOW - timedelta(days=RECENT_DAYS)  # as the banner looks back


def _checkins(*rows: tuple[str, int, str | None]) -> pd.DataFrame:
    return pd.DataFrame({"patient_id": [r[0] for r in rows],
                         "reported_at": pd.to_datetime([NOW - timedelta(days=r[1]) for r in rows], utc=True),
                         "notes": pd.Series([r[2] for r in rows], dtype="string")})


def test_only_recent_check_ins_with_a_safety_line_are_found_newest_first_with_their_line():
    line = safety_line(["Several days"])
    found = safety_answers(_checkins(
        ("A", 1, f"Slept badly.\n{line}"),  # the line need not come first
        ("B", 3, line),
        ("C", RECENT_DAYS + 1, line),  # too long ago
        ("D", 0, "Mentioned [Safety] plans at work"),  # the mark inside a sentence is not the line
        ("E", 0, None),
    ), since=RECENT)
    assert list(found["patient_id"]) == ["A", "B"]
    assert list(found["line"]) == [line, line] and line.startswith(SAFETY_MARK)


def test_no_check_ins_give_an_empty_frame_with_the_columns():
    assert list(safety_answers(_checkins(), since=RECENT).columns) == ["patient_id", "reported_at", "line"]


def test_the_store_pre_filter_finds_the_mark_literally_on_both_databases(engine, validator):
    add_patient(engine, dict(PATIENT), actor="t", validator=validator)
    for days, notes in ((1, safety_line(["Nearly every day"])), (2, "50% better [Safe] week"), (3, None)):
        add_checkin(engine, {"patient_id": PATIENT["patient_id"], "craving": 1,
                             "reported_at": (NOW - timedelta(days=days)).isoformat(), "notes": notes},
                    actor="t", validator=validator)
    marked = checkins_with_notes_containing(engine, SAFETY_MARK, since=NOW - timedelta(days=RECENT_DAYS))
    assert len(marked) == 1 and marked["notes"].iloc[0].startswith(SAFETY_MARK)
    assert len(safety_answers(marked, since=RECENT)) == 1
    assert len(checkins_with_notes_containing(engine, SAFETY_MARK, since=None, patient_ids=[PATIENT["patient_id"]])) == 1
    assert checkins_with_notes_containing(engine, SAFETY_MARK, since=None, patient_ids=["someone else"]).empty


def test_an_answer_is_followed_up_by_the_first_follow_up_review_of_that_patient_made_after_it():
    from ketawatch.safety_answers import with_follow_ups
    from store.vocabulary import SAFETY_FOLLOW_UP

    at = lambda text: pd.Timestamp(text, tz="UTC")  # noqa: E731
    answers = pd.DataFrame({"patient_id": ["A", "A", "B"],
                            "reported_at": [at("2026-11-20 10:00"), at("2026-11-10 10:00"), at("2026-11-15 10:00")],
                            "line": ["[Safety] x", "[Safety] y", "[Safety] z"]})
    reviews = pd.DataFrame({
        "patient_id": ["A", "A", "A", "B"],
        "reviewed_at": [at("2026-11-12 09:00"), at("2026-11-11 09:00"), at("2026-11-21 09:00"), at("2026-11-16 09:00")],
        "reviewed_by": ["late", "first", "newest", "other"],
        "reasons": [SAFETY_FOLLOW_UP, SAFETY_FOLLOW_UP, "craving_rising", f"craving_high;{SAFETY_FOLLOW_UP}"],
        "note": ["n1", "n0", "not a follow-up", "n2"],
    })
    out = with_follow_ups(answers, reviews)
    # 20 Nov: the only later review is a level review, so it waits; 10 Nov: the first follow-up after it; B: its own.
    assert out["followed_up_by"].tolist() == [None, "first", "other"]
    assert out["follow_up_note"].tolist() == [None, "n0", "n2"]
    assert out["followed_up_at"].isna().tolist() == [True, False, False]
    assert with_follow_ups(answers, None)["followed_up_at"].isna().all()


def test_an_answer_typed_in_after_a_follow_up_waits_although_it_is_dated_before_it():
    """A paper form entered on Wednesday with Monday's time was never seen by whoever followed up on Tuesday."""
    from ketawatch.safety_answers import with_follow_ups
    from store.vocabulary import SAFETY_FOLLOW_UP

    at = lambda text: pd.Timestamp(text, tz="UTC")  # noqa: E731
    answers = pd.DataFrame({"patient_id": ["A", "A"], "reported_at": [at("2026-11-16 16:00"), at("2026-11-16 08:00")],
                            "line": ["[Safety] paper", "[Safety] tablet"],
                            "entered_at": [at("2026-11-18 11:00"), at("2026-11-16 08:01")]})
    reviews = pd.DataFrame({"patient_id": ["A"], "reviewed_at": [at("2026-11-17 09:00")], "reviewed_by": ["dr-a"],
                            "reasons": [SAFETY_FOLLOW_UP], "note": ["spoke with them"]})
    assert with_follow_ups(answers, reviews)["followed_up_by"].tolist() == [None, "dr-a"]


def test_a_correction_that_leaves_the_question_9_line_alone_keeps_its_follow_up(engine, validator):
    """Correcting the craving of a followed-up check-in must not make the answer look new and unattended."""
    from ketawatch.safety_answers import safety_answers, with_follow_ups
    from store.queries import alert_reviews_frame
    from store.records import add_alert_review, amend_checkin
    from store.validation import Validator
    from store.vocabulary import SAFETY_FOLLOW_UP

    def answers():
        marked = checkins_with_notes_containing(engine, SAFETY_MARK, since=None)
        return with_follow_ups(safety_answers(marked), alert_reviews_frame(engine))

    add_patient(engine, dict(PATIENT), actor="t", validator=validator)
    saved = add_checkin(engine, {"patient_id": PATIENT["patient_id"], "craving": 6, "notes": f"Tired.\n{safety_line(['Several days'])}",
                                 "reported_at": (NOW - timedelta(days=2)).isoformat()},
                        actor="t", validator=Validator(now=NOW - timedelta(days=2)))
    add_alert_review(engine, patient_id=PATIENT["patient_id"], level="green", reasons=[SAFETY_FOLLOW_UP],
                     action="discussed_with_patient", note="called", actor="dr", now=NOW - timedelta(days=1))
    amend_checkin(engine, saved.id, {"craving": 5, "notes": f"Tired, slept badly.\n{safety_line(['Several days'])}"},
                  actor="t", reason="typo", expected_version=1, validator=Validator(now=NOW))
    [found] = answers().itertuples()
    assert found.followed_up_by == "dr" and found.entered_at == pd.Timestamp(NOW - timedelta(days=2))
    # A correction that changes the answer itself makes it a new one, waiting for its own follow-up.
    amend_checkin(engine, saved.id, {"notes": safety_line(["Nearly every day"])}, actor="t", reason="misread the form",
                  expected_version=2, validator=Validator(now=NOW + timedelta(hours=1)))
    [found] = answers().itertuples()
    assert pd.isna(found.followed_up_at) and found.entered_at == pd.Timestamp(NOW + timedelta(hours=1))


def test_an_answer_stays_in_view_until_followed_up_however_old_or_back_dated_and_two_weeks_after(engine, validator):
    """Only a recorded follow-up ends the red banner: a two-week window on the check-in's date let an unattended
    answer leave every screen, and a form typed in 16 days late never showed at all."""
    from ketawatch.safety_answers import in_view
    from store.records import add_alert_review
    from store.validation import Validator
    from store.vocabulary import SAFETY_FOLLOW_UP

    def answer(pid: str, dated: int, entered: int, followed: int | None = None) -> None:
        add_patient(engine, dict(PATIENT, patient_id=pid), actor="t", validator=validator)
        add_checkin(engine, {"patient_id": pid, "craving": 2, "notes": safety_line(["Several days"]),
                             "reported_at": (NOW - timedelta(days=dated)).isoformat()},
                    actor="t", validator=Validator(now=NOW - timedelta(days=entered)))
        if followed is not None:
            add_alert_review(engine, patient_id=pid, level="green", reasons=[SAFETY_FOLLOW_UP],
                             action="safety_plan_made", note="seen", actor="dr", now=NOW - timedelta(days=followed))

    answer("OLD-WAITING", dated=40, entered=40)
    answer("TYPED-LATE", dated=16, entered=0)
    answer("FOLLOWED-LONG-AGO", dated=40, entered=40, followed=30)
    answer("FOLLOWED-LATELY", dated=20, entered=20, followed=RECENT_DAYS - 1)
    shown = in_view(engine, now=NOW)
    assert sorted(shown["patient_id"]) == ["FOLLOWED-LATELY", "OLD-WAITING", "TYPED-LATE"]
    waiting = shown[shown["followed_up_at"].isna()]
    assert sorted(waiting["patient_id"]) == ["OLD-WAITING", "TYPED-LATE"]


def test_an_action_in_an_export_s_follow_up_reads_as_words_with_its_capitals():
    from ketawatch.safety_answers import follow_up_text

    row = pd.DataFrame({"followed_up_at": [pd.Timestamp("2026-11-20 10:00", tz="UTC")], "followed_up_by": ["dr"],
                        "follow_up_action": ["gp_informed"], "follow_up_note": ["  letter   sent "]}).iloc[0]
    assert follow_up_text(row, "Europe/London") == "2026-11-20 10:00 by dr, GP informed: letter sent"
