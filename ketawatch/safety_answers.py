"""PHQ-9 question 9 answers above 'not at all', carried as a marked line in the check-in's notes, found again for every screen.

The import format (CONTRACT section 2) holds the PHQ-9 total only. The check-in form therefore
writes a line beginning with `SAFETY_MARK` into the notes when question 9 is answered above 'not
at all'; this module finds those lines again, so the answer reaches the caseload, the alerts and
the patient's page until a follow-up is recorded (and for `RECENT_DAYS` days after it), not only the
screen of whoever saved the form.
"""

from __future__ import annotations

import re
from datetime import datetime

import pandas as pd

from store.queries import marked_line
from store.vocabulary import SAFETY_MARK, code_words
#: How long a followed-up answer stays in view (in blue) after its follow-up; the exports' look-back window too.
RECENT_DAYS = 14


#: How the notes line names question 9, newest first: the question asks about thoughts, and "self-harm" read as an act
#: (clinical review, 2026-12-01). Lines stored in an earlier wording are still recognised as the form's own.
QUESTION_9_WORDINGS = ("thoughts of being better off dead or of hurting themselves", "better off dead or self-harm")
#: Question 9 named in a heading, banner or box, in the notes line's words.
QUESTION_9 = f"PHQ-9 question 9 ({QUESTION_9_WORDINGS[0]})"


def safety_line(answers: list[str], wording: str = QUESTION_9_WORDINGS[0]) -> str:
    """The notes line for a check-in whose question 9 was answered with `answers` (in the instrument's words)."""
    said = ", ".join(f"'{answer}'" for answer in answers)
    return (f"{SAFETY_MARK} PHQ-9 question 9 ({wording}) answered {said}: "
            "a clinician to speak with the patient today.")


def safety_answers(checkins: pd.DataFrame, *, since: datetime | None = None,
                   until: datetime | None = None) -> pd.DataFrame:
    """Check-ins (reported between `since` and `until`, when given) with a safety line: patient_id, reported_at, line, newest first."""
    columns = ["patient_id", "reported_at", "line"] + (["entered_at"] if "entered_at" in checkins else [])
    if checkins.empty:
        return pd.DataFrame(columns=columns)
    notes = checkins["notes"].astype("string")
    keep = notes.str.contains(SAFETY_MARK, regex=False).fillna(False).to_numpy(dtype=bool)
    at = pd.to_datetime(checkins["reported_at"], utc=True)
    if since is not None:
        keep &= (at >= pd.Timestamp(since)).to_numpy(dtype=bool)
    if until is not None:
        keep &= (at <= pd.Timestamp(until)).to_numpy(dtype=bool)
    lines = notes.map(lambda text: marked_line(text, SAFETY_MARK)).astype(object)
    found = checkins.assign(line=lines)[keep & lines.notna().to_numpy(dtype=bool)]
    return found[columns].sort_values("reported_at", ascending=False, kind="stable").reset_index(drop=True)


def with_follow_ups(answers: pd.DataFrame, reviews: pd.DataFrame | None) -> pd.DataFrame:
    """`answers` with the follow-up recorded after each: followed_up_at, followed_up_by, follow_up_action and
    follow_up_note (empty when none), and further_steps: (when, action) of the patient's later follow-ups.

    A follow-up is an alert review listing `store.vocabulary.SAFETY_FOLLOW_UP`, made for the same
    patient after the answer reached the record (`entered_at`: when it was saved, or amended to
    hold the line; the check-in's own time when the frame has neither); the earliest such review
    counts. An answer typed in later, even one dated before a follow-up, waits for one of its own.
    """
    from store.vocabulary import is_safety_follow_up

    at, by, action, note = [pd.NaT] * len(answers), [None] * len(answers), [None] * len(answers), [None] * len(answers)
    further: list[tuple] = [()] * len(answers)
    if len(answers) and reviews is not None and len(reviews):
        ups = reviews[reviews["reasons"].map(is_safety_follow_up).astype(bool)]
        ups = ups.assign(reviewed_at=pd.to_datetime(ups["reviewed_at"], utc=True)).sort_values("reviewed_at", kind="stable")
        entered = answers["entered_at"] if "entered_at" in answers else answers["reported_at"]
        for i, (answer, known) in enumerate(zip(answers.itertuples(index=False), pd.to_datetime(entered, utc=True))):
            after = ups[(ups["patient_id"] == answer.patient_id) & (ups["reviewed_at"] >= known)]
            if len(after):
                first = after.iloc[0]
                at[i], by[i], action[i], note[i] = first["reviewed_at"], first["reviewed_by"], first.get("action"), first["note"]
                actions = after["action"] if "action" in after else pd.Series(None, index=after.index, dtype=object)
                further[i] = tuple(zip(after["reviewed_at"].iloc[1:], actions.iloc[1:]))
    return answers.assign(followed_up_at=pd.to_datetime(pd.Series(at, index=answers.index, dtype=object), utc=True),
                          followed_up_by=pd.Series(by, index=answers.index, dtype=object),
                          follow_up_action=pd.Series(action, index=answers.index, dtype=object),
                          follow_up_note=pd.Series(note, index=answers.index, dtype=object),
                          further_steps=pd.Series(further, index=answers.index, dtype=object))


def follow_up_text(answer, tz: str) -> str:
    """How an export says what became of one answer (a row of `with_follow_ups`): when, by whom, what was done, the note.

    A de-identified export has already dropped the note (free text) and put a pseudonym in place of the name.
    """
    if pd.isna(answer.followed_up_at):
        return "none recorded"
    when = pd.Timestamp(answer.followed_up_at).tz_convert(tz)
    action = answer.follow_up_action
    done = f", {code_words(action, capital=False)}" if isinstance(action, str) and action else ""
    note = answer.follow_up_note
    said = f": {' '.join(note.split())}" if isinstance(note, str) and note.strip() else ""
    return f"{when:%Y-%m-%d %H:%M} by {answer.followed_up_by}{done}{said}"


def answers_with_follow_ups(engine, reviews: pd.DataFrame | None = None, *, since: datetime | None = None,
                            until: datetime | None = None, patient_ids=None) -> pd.DataFrame:
    """The question 9 answers in the store (reported between `since` and `until`, of `patient_ids`, when given),
    each with its follow-up (`with_follow_ups`): the one read the pages and the exports share.

    `reviews` are the alert reviews to look in (an export passes those up to its own end date);
    without them, the answering patients' reviews are read.
    """
    from store.queries import alert_reviews_frame, checkins_with_notes_containing

    marked = checkins_with_notes_containing(engine, SAFETY_MARK, since=since, patient_ids=patient_ids)
    answers = safety_answers(marked, since=since, until=until)
    if reviews is None and len(answers):
        reviews = alert_reviews_frame(engine, sorted(set(answers["patient_id"])))
    return with_follow_ups(answers, reviews)


def in_view(engine, *, now: datetime, reviews: pd.DataFrame | None = None) -> pd.DataFrame:
    """The answers the pages and the caseload export show as of `now`: every one still waiting for a follow-up,
    however long ago it was given or however far back it was dated (a form typed in late), and those followed up
    in the `RECENT_DAYS` days before `now`.

    An answer must never leave the screens because time passed: only a recorded follow-up ends its red banner.
    `reviews` as for `answers_with_follow_ups` (an export as of a past date passes those made by then).
    """
    answers = answers_with_follow_ups(engine, reviews, until=now)
    recent = answers["followed_up_at"] >= pd.Timestamp(now) - pd.Timedelta(days=RECENT_DAYS)
    return answers[answers["followed_up_at"].isna() | recent.fillna(False)].reset_index(drop=True)


def one_per_patient(answers: pd.DataFrame) -> pd.DataFrame:
    """One answer per patient for a caseload-wide list: the newest still waiting for a follow-up, else the newest.

    Taking the newest by date alone hid a waiting answer behind a newer, followed-up one (a paper form typed in
    after the follow-up but dated before it), so the patient read as followed up.
    """
    newest_first = answers.sort_values("reported_at", ascending=False, kind="stable")
    waiting_first = newest_first["followed_up_at"].notna().to_numpy(dtype=bool).argsort(kind="stable")
    return newest_first.iloc[waiting_first].drop_duplicates("patient_id")


#: What a de-identified export says when a safety line is not one the check-in form wrote. It keeps the mark, so a
#: de-identified folder imported elsewhere still shows the answer in the alerts and the caseload; without it such an
#: answer dropped out there (export review).
UNSTANDARD_WORDING = (f"{SAFETY_MARK} PHQ-9 question 9 ({QUESTION_9_WORDINGS[0]}) answered above 'not at all' "
                      "(see the identified record)")


def without_free_text(line: str) -> str:
    """The line itself when the form wrote it from the instrument's answer words; otherwise a fixed sentence.

    A de-identified export may show the standard line (it holds no free text), never a line a
    clinician typed, which could hold a name.
    """
    from seed_data.catalogue import instruments

    answer_words = instruments()["phq9"]["answers"][1:]
    answers = re.findall(r"'([^']*)'", line)
    if answers and all(a in answer_words for a in answers) and line in {safety_line(answers, w) for w in QUESTION_9_WORDINGS}:
        return line
    return UNSTANDARD_WORDING
