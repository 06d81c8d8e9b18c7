"""Log check-in: the patient's self-report (craving, SDS, warning signs, PHQ-9) in the patient's own words.

Two views: the clinician's (pick a patient, set the date, or hand over a tablet) and patient mode,
which shows only this form for one patient until the clinician re-enters their password.
Validation is the store's: store.records.add_checkin for the check-in, and store.validation's
phq9_items_problems for the PHQ-9 answered item by item (all nine, none, or question 9 alone; a
paper total not below its question 9), which the import format, holding the total only, has no use for.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import streamlit as st

from dashboard import data, ui
from dashboard.auth import can_write, client_address, may_still_write, sign_out_tablet
from ketawatch import accounts
from ketawatch.risk.scoring import phq9_band
from ketawatch.safety_answers import SAFETY_MARK, safety_line
from seed_data.catalogue import instruments, warning_sign_answers, warning_signs
from store import records as store_records
from store.settings import get_settings
from store.validation import CHECKIN_RULES, Problem, Validator, phq9_items_problems, typed_notes_problems
from store.vocabulary import SDS_ITEMS, WARNING_SIGNS

P = "lc_"  # widget-key prefix of this page
INSTRUMENTS = instruments()
PHQ9_ITEMS = [item["id"] for item in INSTRUMENTS["phq9"]["item"]]
SAFETY_ITEMS = [item["id"] for item in INSTRUMENTS["phq9"]["item"] if item.get("safety_item")]
ANSWER_KEYS = (*SDS_ITEMS, *WARNING_SIGNS, *PHQ9_ITEMS)
LABELS = {name: rule.label for name, rule in CHECKIN_RULES.items()}
ENTRY_KEYS = ("craving", "notes", "phq9_total", *ANSWER_KEYS)
SAFETY_NOTICE_KEY = "checkin_safety_notice"

user = ui.signed_in_user()
patient_mode = st.session_state.get(ui.PATIENT_MODE_KEY)
if not can_write(user):
    st.title("Log check-in", anchor=False)
    ui.read_only_notice(user)
    st.stop()
engine = data.engine()


def _phq9_total() -> tuple[int | None, int]:
    """The PHQ-9 total when all nine items are answered, and how many are answered."""
    answers = [st.session_state.get(P + i) for i in PHQ9_ITEMS]
    given = [a for a in answers if a is not None]
    return (sum(given) if len(given) == len(PHQ9_ITEMS) else None), len(given)


def _safety_note() -> str | None:
    """A line kept in the check-in's notes when question 9 was answered above 'not at all'.

    The import format stores only the PHQ-9 total, so without this line the answer that needs a
    clinician the same day would live only on the screen of whoever saved the form; with it,
    ketawatch.safety_answers shows it on the caseload, the alerts and the patient's page.
    """
    scores = {i: st.session_state.get(P + i) for i in SAFETY_ITEMS}
    positive = {i: v for i, v in scores.items() if v}
    if not positive:
        return None
    answers = INSTRUMENTS["phq9"]["answers"]
    return safety_line([answers[v] for v in positive.values()])


def _phq9_problems(paper: bool) -> list[Problem]:
    """The store's rules for a PHQ-9 answered item by item (store.validation.phq9_items_problems)."""
    s = st.session_state
    return phq9_items_problems([s.get(P + i) for i in PHQ9_ITEMS], [i in SAFETY_ITEMS for i in PHQ9_ITEMS],
                               paper=paper, paper_total=s.get(P + "phq9_total"))


def _safety_warning() -> None:
    """Shown as soon as question 9 is answered above 'not at all', before the form is saved."""
    note = _safety_note()
    if note:
        st.warning(f"{note.removeprefix(SAFETY_MARK).strip()} Saving keeps this answer with the check-in, and it is shown "
                   "on the caseload, the alerts and the patient's page.", icon=":material/emergency:")


def _unanswered(items) -> str:
    """'question 5', 'questions 5, 6 and 8': the numbers of the items still unanswered, as the form numbers them."""
    empty = [str(n) for n, item in enumerate(items, 1) if st.session_state.get(P + item) is None]
    listed = ", ".join(empty[:-1]) + " and " + empty[-1] if len(empty) > 1 else "".join(empty)
    return f"question{'s' if len(empty) > 1 else ''} {listed}"


def _form_problems(paper: bool) -> list[Problem]:
    """The form's own rules, which the import format has no use for: the PHQ-9 by item, and the notes as typed."""
    return _phq9_problems(paper) + typed_notes_problems(st.session_state.get(P + "notes"))


def _for_the_patient(problems: list[Problem]) -> list[Problem]:
    """The store's problems in the patient's words, each saying what they can do.

    A chosen answer cannot be un-chosen, so "answer all nine or none, or leave 1 to 8 empty" asked the patient for
    the impossible (nurse's review); they are told which questions are still empty, or to hand the tablet back.
    """
    worded = []
    for problem in problems:
        if problem.column == "craving":
            message = "Please choose a number for part 1."
        elif problem.column in SDS_ITEMS:
            message = f"Please also answer {_unanswered(SDS_ITEMS)} in part 2."
        elif problem.column == "phq9":
            message = f"Please also answer {_unanswered(PHQ9_ITEMS)} in part 4."
        elif problem.column == "notes" and SAFETY_MARK in problem.message:
            message = f"Please begin the line of your note that starts with {SAFETY_MARK} another way."
        else:  # nothing else a patient can get wrong with these buttons; staff read the store's words
            message = "Some answers could not be sent. Please hand the tablet to a member of staff."
        worded.append(Problem(problem.column, message))
    part = {"craving": 1, **{c: 2 for c in SDS_ITEMS}, "phq9": 4}
    return sorted(worded, key=lambda p: part.get(p.column, 5))  # in the order the patient meets the parts


def _raw(patient_id: str | None, reported_at) -> dict:
    """The answers in the store's column names (None = not answered)."""
    s = st.session_state
    total, _ = _phq9_total()
    if s.get(P + "paper") and not patient_mode:
        total = s.get(P + "phq9_total")
    notes = "\n".join(part for part in (_safety_note(), (s.get(P + "notes") or "").strip()) if part)
    raw = {"patient_id": patient_id, "reported_at": reported_at, "craving": s.get(P + "craving"), "phq9": total,
           "notes": notes or None}
    raw.update({c: s.get(P + c) for c in (*SDS_ITEMS, *WARNING_SIGNS)})
    return raw


def _typed() -> bool:
    """Whether any answer or the notes hold a value."""
    return any(st.session_state.get(P + key) not in (None, "") for key in ENTRY_KEYS)


def _clear_answers(*, paper_too: bool = True) -> bool:
    """Empty every answer and the notes, and set the paper toggle back (another patient's form starts as a fresh
    one; after a save the next form keeps the way of entering); True if any held a value."""
    s = st.session_state
    typed = _typed()
    for key in ENTRY_KEYS:
        s[P + key] = None
    if paper_too:
        s[P + "paper"] = False
    s[P + "errors"] = {}
    s.pop(P + "staff_errors", None)
    ui.refused_as_typed(P, None)
    s.pop(P + "confirm_clear", None)  # a question asked of this form, not of the next patient's
    s.pop(P + "unusual", None)
    return typed


def _unusual(patient_id: str | None, raw: dict) -> list[str]:
    """What the store's double check finds unusual in a valid check-in (a date long before the treatment start)."""
    plans = data.patients().set_index("patient_id")
    return ui.unusual_checkin(raw, plans.loc[patient_id]) if patient_id in plans.index else []


def _reported_at() -> datetime | None:
    """When the check-in was given: now on the tablet, else the date and time the clinician set (clinic time)."""
    if patient_mode:
        return datetime.now(timezone.utc)
    when = st.session_state.get(P + "when")
    return when.replace(tzinfo=ui.clinic_tz()) if when is not None else None


def _save(patient_id: str | None) -> None:
    """Button callback: check with the store's rules, save, or keep each problem for its question."""
    s = st.session_state
    if not may_still_write(user):
        return
    reported_at = _reported_at()
    raw = _raw(patient_id, reported_at)
    problems = _form_problems(paper=bool(s.get(P + "paper")) and not patient_mode)
    if problems:  # report the store's own problems in the same pass; it stays the one rule set
        problems += Validator().checkin(raw)[1]
    elif not patient_mode and not ui.unusual_confirmed(P, _unusual(patient_id, raw)):
        s[P + "errors"] = {}
        s.pop(P + "saved", None)
        st.toast("Not saved yet: please check the date shown above the Save button.", icon=":material/help:")
        return
    else:
        try:
            store_records.add_checkin(engine, raw, actor=user.username)
        except store_records.RecordInvalid as exc:
            problems = exc.problems
    if problems:
        # The patient reads their own words; staff coming back read the store's, which name every problem exactly.
        s[P + "staff_errors"] = ui.problems_by_field(problems, no_patient_chosen=patient_id is None)
        s[P + "errors"] = (ui.problems_by_field(_for_the_patient(problems)) if patient_mode else s[P + "staff_errors"])
        ui.refused_as_typed(P, raw)
        s.pop(P + "saved", None)
        # The form stays scrolled at its button; the list of problems is at the top.
        st.toast("Your answers are not sent yet: see the note under the Send button." if patient_mode else
                 f"Nothing was saved: {len(problems)} problem(s), listed at the top and beside each question.",
                 icon=":material/block:")
        return
    safety = any((s.get(P + i) or 0) > 0 for i in SAFETY_ITEMS)
    if safety:
        s[SAFETY_NOTICE_KEY] = {"patient_id": patient_id, "at": ui.fmt_datetime(reported_at),
                                "answered": _safety_note().removeprefix(SAFETY_MARK).strip()}
    _clear_answers(paper_too=False)
    ui.drop_draft_notice(P)
    s[P + "saved"] = {"patient_id": patient_id, "at": ui.fmt_datetime(reported_at), "safety": safety}
    if not patient_mode:
        # The question 9 warning is at the top of the page; the toast is where the clinician is, at Save (accessibility
        # review: with a magnifier, the warning was out of view).
        # The question first: a toast shows three lines before "view more" (browser check).
        st.toast(("Question 9 was answered above 'Not at all': speak with the patient today (the red message at the "
                  "top of the page). " if safety else "")
                 + f"Check-in saved for {ui.md_escape(patient_id)} at {s[P + 'saved']['at']}.",
                 icon=":material/emergency:" if safety else ":material/check_circle:",
                 duration="infinite" if safety else "short")
        ui.record_time_now(P)  # the next check-in is most often another patient's, now: not this one's time again


def _leave_patient_mode() -> None:
    """Button callback: only the signed-in clinician's password ends patient mode.

    A wrong password here does not lock the clinician's account (the patient may be the one typing); after the
    sign-in limit's number of wrong ones in a row, the page run signs the tablet out instead (`patient_view`).
    """
    s = st.session_state
    if accounts.confirm_at_tablet(engine, user.username, s.get(P + "password") or "", address=client_address()):
        s.pop(ui.PATIENT_MODE_KEY, None)
        s.pop(P + "exit_error", None)  # the patient's "saved" stays: staff see it on coming back
        s.pop(P + "exit_failures", None)
    else:
        s[P + "exit_failures"] = s.get(P + "exit_failures", 0) + 1
        s[P + "exit_error"] = "The password is not right. Try again."
    s[P + "password"] = ""


def _answer_radio(key: str, question: str, answers, errors, *, help: str | None = None) -> None:
    """One 0-3 question with its answers in words; unanswered until the patient picks one."""
    st.radio(question, range(len(answers)), key=P + key, format_func=lambda i: answers[i], index=None,
             horizontal=True, help=help)
    ui.field_error(errors, key)


def _not_sent_yet(errors: dict[str, list[str]], corrected: int) -> None:
    """The patient's own list of what is missing, and the way out: the tablet goes back to staff. Once all is
    answered it still says the answers wait for Send: the list going away read as "done" (browser check)."""
    if errors:
        lines = "\n".join(f"- {ui.md_escape(m)}" for msgs in errors.values() for m in msgs)
        st.warning(f"Your answers are not sent yet.\n\n{lines}\n\nIf you would rather not answer a question, please "
                   "hand the tablet to a member of staff.", icon=":material/info:")
    elif corrected:
        st.info("Your answers are not sent yet: press Send when you are ready.", icon=":material/send:")


def _answers_in_words(items, column: str) -> str:
    """'Severity of Dependence Scale, answered in part (not scored): item 1 Often, item 2 Sometimes': the answers a
    cleared part held, for the notes."""
    instrument = INSTRUMENTS["sds" if column == "sds" else "phq9"]
    numbers = {item["id"]: n for n, item in enumerate(instrument["item"], 1)}
    given = []
    for item in items:
        value = st.session_state.get(P + item)
        if value is not None:
            words = next(i for i in instrument["item"] if i["id"] == item).get("answers", instrument.get("answers"))
            given.append(f"{'item' if column == 'sds' else 'question'} {numbers[item]} {words[value]}")
    name = "Severity of Dependence Scale" if column == "sds" else "PHQ-9"
    return f"{name}, answered in part (not scored): {', '.join(given)}." if given else ""


def _clear_part(items, column: str) -> None:
    """Button callback: these answers emptied into the notes, and the problems said of them gone with them: 'Clear part
    2' threw away 'getting out of your control: Often', the answer that matters most, when a patient would not finish
    the scale (clinician's browser review)."""
    kept = _answers_in_words(items, column)
    if kept:
        notes = (st.session_state.get(P + "notes") or "").rstrip()
        st.session_state[P + "notes"] = f"{notes}\n{kept}" if notes else kept
    for item in items:
        st.session_state[P + item] = None
    for kept in ("errors", "staff_errors"):
        for key in [column, *items]:
            st.session_state.get(P + kept, {}).pop(key, None)


def _clear_part_button(items, label: str, column: str, *, complete: bool) -> None:
    """For staff, when a part is half answered: an answer chosen cannot be un-chosen, and the part must be whole or
    empty (PHQ-9: or question 9 alone, which this keeps)."""
    if any(st.session_state.get(P + i) is not None for i in items) and not complete:
        st.button(label, key=P + f"clear_{column}", on_click=_clear_part, args=(items, column), type="tertiary",
                  icon=":material/backspace:",
                  help=("Empties these answers, so the check-in can be saved without a total; the answers given are "
                        "kept in words in the notes" + ("; question 9 is kept as it is" if column == "phq9" else "")))


def checkin_form(patient_id: str, *, patient_facing: bool) -> None:
    """The questionnaire itself, in patient-friendly words, with the PHQ-9 total computed as it is filled."""
    s = st.session_state
    errors: dict[str, list[str]] = (s.get(P + "errors", {}) if patient_facing
                                    else s.get(P + "staff_errors", s.get(P + "errors", {})))
    # A problem whose answer has been changed since the refused Save is not shown as if it stood (nurse's review);
    # on the tablet the time is the moment of sending, so it is compared as it was.
    refused = s.get(P + "refused") or {}
    when = s.get(P + "when")
    at = refused.get("reported_at") if patient_facing or when is None else when.replace(tzinfo=ui.clinic_tz())
    now = _raw(patient_id, at)
    live = (_form_problems(paper=bool(s.get(P + "paper")) and not patient_facing) + Validator().checkin(now)[1]
            if errors else [])  # checked again only while a refused Save's problems are shown
    errors, corrected = ui.standing_errors(P, errors, now, live=_for_the_patient(live) if patient_facing else live,
                                           groups=[fields for fields, _ in Validator().row_checks("checkins")])
    if not patient_facing:  # the patient's list is beside Send: a block added up here pushed the form out of view
        ui.error_summary(errors, LABELS, corrected=corrected)
        if errors and _safety_note():  # the answer that matters most is not saved: say so where staff look first
            answered = [s.get(P + i) is not None for i in PHQ9_ITEMS if i not in SAFETY_ITEMS]
            half = any(answered) and not all(answered) and not s.get(P + "paper")
            st.error("Not saved yet: the patient answered PHQ-9 question 9 above 'Not at all'. Correct the problems "
                     "above and save, so the whole team sees it." + (" To keep question 9 without a total, 'Clear "
                     "questions 1 to 8' in part 4 empties the others." if half else ""), icon=":material/emergency:")
    you = "you" if patient_facing else "the patient"

    craving = INSTRUMENTS["craving"]
    anchors = {a["score"]: a["label"] for a in craving["anchor"]}
    with st.container(border=True):
        st.subheader("1. Craving", anchor=False)
        st.pills(craving["patient_wording"], list(range(craving["min"], craving["max"] + 1)), key=P + "craving",
                 selection_mode="single", format_func=lambda v: f"{v} · {anchors[v]}" if v in anchors else str(v))
        st.caption(" · ".join(f"{k} = {v}" for k, v in anchors.items()))
        ui.field_error(errors, "craving")

    sds = INSTRUMENTS["sds"]
    with st.container(border=True):
        st.subheader("2. Your ketamine use" if patient_facing else "2. Severity of Dependence Scale", anchor=False)
        st.caption(sds["stem"] + " Answer all five, or leave all five empty.")
        for number, item in enumerate(sds["item"], 1):
            _answer_radio(item["id"], f"{number}. {item['wording']}", item["answers"], errors)
        if not patient_facing:
            _clear_part_button(SDS_ITEMS, "Clear part 2", "sds",
                               complete=all(st.session_state.get(P + i) is not None for i in SDS_ITEMS))

    answers = warning_sign_answers()
    with st.container(border=True):
        st.subheader("3. The past two weeks" if patient_facing else "3. Warning-sign checklist", anchor=False)
        for number, sign in enumerate(warning_signs(), 1):
            _answer_radio(sign.id, f"{number}. {sign.patient_wording}", answers, errors,
                          help=None if patient_facing else f"Clinician label: {sign.label}")

    phq = INSTRUMENTS["phq9"]
    with st.container(border=True):
        st.subheader("4. Mood (PHQ-9)", anchor=False)
        paper = False
        if not patient_facing:
            paper = st.toggle("Paper form: enter the PHQ-9 total, and question 9", key=P + "paper")
        safety = next(item for item in phq["item"] if item.get("safety_item"))
        if paper:
            total_box, _ = st.columns([1, 3])
            with total_box:
                ui.rule_number(CHECKIN_RULES["phq9"], P + "phq9_total", errors, label="PHQ-9 total")
            st.radio(f"Question 9 on the paper form: {safety['wording']}", range(phq["item_min"], phq["item_max"] + 1),
                     key=P + safety["id"], index=None,
                     horizontal=True, format_func=lambda i: phq["answers"][i],
                     help="Kept with the check-in, so that an answer above 'Not at all' reaches the whole team.")
        else:
            st.caption(phq["stem"])
            for number, item in enumerate(phq["item"], 1):
                st.radio(f"{number}. {item['wording']}", range(phq["item_min"], phq["item_max"] + 1), key=P + item["id"],
                         index=None, horizontal=True,
                         format_func=lambda i: phq["answers"][i])
            total, answered = _phq9_total()
            if total is not None:
                band = "" if patient_facing else f" ({phq9_band(total)})"
                st.markdown(f"**PHQ-9 total: {total} of {phq['total_max']}{band}**")
            else:
                st.caption(f"{answered} of 9 answered; the total appears when all nine are answered. Question 9 "
                           "may be answered on its own.")
            ui.field_error(errors, "phq9")
            if not patient_facing:
                _clear_part_button([i for i in PHQ9_ITEMS if i not in SAFETY_ITEMS], "Clear questions 1 to 8", "phq9",
                                   complete=total is not None)
        if not patient_facing:
            _safety_warning()

    st.text_area("Anything else you would like your care team to know?" if patient_facing else LABELS["notes"],
                 key=P + "notes", max_chars=CHECKIN_RULES["notes"].max_length, height=90)
    ui.field_error(errors, "notes")
    ui.unusual_question(P, lambda: [] if patient_facing else _unusual(patient_id, _raw(patient_id, _reported_at())),
                        "check-in")
    st.button("Send my answers" if patient_facing else ui.save_for("Save check-in", data.patients(), patient_id),
              type="primary", icon=":material/send:",
              on_click=_save, args=(patient_id,), key=P + "save")
    if patient_facing:  # under Send, where the patient is when they press it (the top is a long scroll away)
        _not_sent_yet(errors, corrected)
    if not patient_facing:
        st.caption(f"Craving is required; every other question may be left empty if {you} did not answer it.")


def patient_view(patient_id: str) -> None:
    """Patient mode: the check-in only, then thanks; the staff exit asks for the clinician's password."""
    tries = st.session_state.get(P + "exit_failures", 0)
    if tries >= get_settings().lockout_attempts:  # the whole tab is signed out: guessing goes on only at the door
        sign_out_tablet(tries)
        st.rerun()
    names = data.patients().set_index("patient_id")["display_name"]
    name = names.get(patient_id)
    st.title("Your check-in", anchor=False)
    who = ui.md_escape(name if isinstance(name, str) and name else patient_id)
    st.markdown(f"For {who}. Your answers go to your care team. There are no right or wrong answers.")
    saved = st.session_state.get(P + "saved")
    if saved and saved.get("patient_id") == patient_id:
        st.success("Thank you, your answers are saved. Please hand the tablet back to a member of staff.",
                   icon=":material/check_circle:")
        if saved.get("safety"):
            st.warning("Please talk to a member of the clinic team about how you are feeling before you leave today.",
                       icon=":material/support_agent:")
    else:
        checkin_form(patient_id, patient_facing=True)
    st.divider()
    with st.expander("For staff: return to KetaWatch", icon=":material/lock:"):
        st.text_input(f"Password for {user.username}", type="password", key=P + "password")
        st.button("Return to the clinician view", on_click=_leave_patient_mode, key=P + "leave")
        if st.session_state.get(P + "exit_error"):
            st.error(st.session_state[P + "exit_error"])


def _no_longer_waiting(notice: dict) -> bool:
    """Whether the patient a safety notice names has no question 9 answer waiting for a follow-up any more (one was
    recorded, or the check-in voided). Kept up, the notice told the next patient's form that a follow-up was still
    owed (clinician's browser pass)."""
    answers = data.safety_answers()
    waiting = (answers["patient_id"] == notice["patient_id"]) & answers["followed_up_at"].isna()
    return not bool(waiting.any())


def clinician_view() -> None:
    """Choose the patient and when, then fill in the form or hand the tablet over."""
    st.title("Log check-in", anchor=False)
    notice = st.session_state.get(SAFETY_NOTICE_KEY)
    if notice and _no_longer_waiting(notice):  # followed up, or the check-in voided: it said a follow-up was owed
        st.session_state.pop(SAFETY_NOTICE_KEY, None)
        notice = None
    if notice:
        # As red as the banner on the patient's page, with the answer and the way there (nurse's review: it was amber)
        st.error(
            f"Check-in of {ui.md_escape(notice['patient_id'])} at {notice['at']}: "
            f"{ui.md_escape(notice.get('answered', 'PHQ-9 question 9 answered above Not at all.'))} Then record the "
            "follow-up on the patient's page (its red banner stays there until you do).",
            icon=":material/emergency:",
        )
        go, hide, _ = st.columns([2, 2, 4], vertical_alignment="center")
        go.page_link("views/patient.py", label=f"Open {ui.md_escape(notice['patient_id'])}", icon=":material/person:",
                     query_params={"patient": notice["patient_id"]})
        if hide.button("Hide this message", key=P + "safety_ack",
                       help="Hides this reminder only: it records nothing. The follow-up is recorded on the patient's page."):
            st.session_state.pop(SAFETY_NOTICE_KEY, None)
            st.rerun()
    saved = ui.saved_notice_for(P)
    if saved:
        st.success(f"Check-in saved for {ui.md_escape(saved['patient_id'])} at {saved['at']}.", icon=":material/check_circle:")
        level = data.patient_level(saved["patient_id"])["level"]
        if saved.get("safety"):
            st.caption("Dependence-risk level now (the question 9 answer is followed up on its own, as above):")
        ui.level_badge(level)
        ui.disclaimer()
        # as after Log session: the way to what was counted and what was seen but not (browser check)
        st.page_link("views/patient.py", label=f"Open {ui.md_escape(saved['patient_id'])}", icon=":material/person:",
                     query_params={"patient": saved["patient_id"]})
    patients = data.patients()
    if patients.empty:
        st.info("No patients yet. Add one on the Patients and plans page first.")
        return
    errors: dict[str, list[str]] = st.session_state.get(P + "errors", {})
    cols = st.columns([1, 1], vertical_alignment="bottom")  # the tablet button below: in a third column at 1024 px
    # it read "Hand the tablet to t…" and the patient picker "Choose a patient: type" (browser check)
    with cols[0]:
        ui.record_time_follows_clock(P)  # a time the clinician set survives a look at another page
        pid = ui.patient_picker(patients, key=P + "patient", label="Patient *")
        ui.follow_form_patient(P, pid, lambda: [P + key for key in (*ENTRY_KEYS, "paper")], _clear_answers)
        ui.field_error(errors, "patient_id")
    with cols[1]:
        st.datetime_input(f"{LABELS['reported_at']} * (clinic time)", key=P + "when", step=timedelta(minutes=1),
                          format="YYYY-MM-DD", **ui.RECORD_TIMES)
        ui.field_error(errors, "reported_at")
    typed = _typed()  # the patient answers on a fresh form: what was typed here would be lost without a word
    if st.button("Hand the tablet to the patient", icon=":material/tablet:", disabled=pid is None or typed,
                 help="Save or remove the answers typed here first: the patient starts on an empty form."
                 if typed else "Patient mode shows only this questionnaire; your password brings you back."):
        st.session_state[ui.PATIENT_MODE_KEY] = {"patient_id": pid}
        _clear_answers()
        st.session_state.pop(P + "saved", None)
        st.rerun()
    if pid is not None:  # below the row: in its bottom-aligned column it pushed the fields down
        # Drawn before anything is typed too (the button disabled): appearing at the first answer, it moved every
        # question below it, and the keyboard's focus fell off the answer just given (accessibility review).
        hint, clear = st.columns([3, 1], vertical_alignment="center")  # [5, 1] cut it to "Clear the f…" at 1280 px
        hint.caption("To hand the tablet to the patient, save the answers typed here, or clear them." if typed else
                     "Nothing typed yet: the tablet can be handed to the patient.")
        if clear.button("Clear the form", key=P + "clear", icon=":material/ink_eraser:", disabled=not typed):
            if _safety_note():  # one click must not lose the answer that needs a clinician today (nurse's review)
                st.session_state[P + "confirm_clear"] = True
            else:
                _clear_answers()
                st.rerun()
        if st.session_state.get(P + "confirm_clear") and not _safety_note():
            st.session_state.pop(P + "confirm_clear")  # the answer it asked about is gone: the question goes too
        if st.session_state.get(P + "confirm_clear"):
            st.error("This form holds an unsaved answer to PHQ-9 question 9 above 'Not at all'. Cleared, it is "
                     "lost: nobody else will see it. Save the check-in instead (question 9 may be saved on its own).",
                     icon=":material/emergency:")
            keep, drop, _ = st.columns([2, 2, 4])
            if keep.button("Keep the answers", key=P + "keep", type="primary"):
                st.session_state.pop(P + "confirm_clear", None)
                st.rerun()
            if drop.button("Clear anyway", key=P + "clear_anyway"):
                st.session_state.pop(P + "confirm_clear", None)
                _clear_answers()
                st.rerun()
    if pid is None:
        st.info("Choose a patient to fill in their check-in.")
        return
    checkin_form(pid, patient_facing=False)


if patient_mode:
    patient_view(patient_mode["patient_id"])
else:
    clinician_view()
