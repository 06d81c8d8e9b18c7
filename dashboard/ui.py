"""Shared page furniture: level badges (icon + words, never colour alone), the decision-support
notice, safe display of user text, clinic-time formatting and form errors beside their fields."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Callable, Iterable
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st

from seed_data.catalogue import side_effect_words  # noqa: F401 - the pages' formatter, shared with the PDF
from store.settings import get_settings
from store.validation import Problem
from store.vocabulary import sentence_case

#: Bounds of a record's date or time box: wide on purpose. The browser drops a typed value outside a
#: widget's bounds without a word (a session typed as 2030 was saved at the time shown before), so the
#: boxes take any date a person could type and store.validation refuses a future one in words.
RECORD_TIMES = {"min_value": datetime(1900, 1, 1), "max_value": datetime(2199, 12, 31, 23, 59)}
RECORD_DATES = {"min_value": date(1900, 1, 1), "max_value": date(2199, 12, 31)}

#: The notice shown next to every level (DESIGN: KetaWatch supports clinical judgement).
DISCLAIMER = "The level supports clinical judgement; it does not diagnose."
#: Session-state key holding {"patient_id": ...} while a tablet is handed to a patient.
PATIENT_MODE_KEY = "patient_mode"
#: Session-state key for the patient page's patient (kept when moving between pages).
PATIENT_KEY = "selected_patient"


@dataclass(frozen=True)
class LevelLook:
    """How one risk level is shown: its name, what it asks of the clinician, and shape-distinct icons."""

    name: str
    meaning: str
    icon: str  # Material icon for st.badge / st.page_link
    symbol: str  # plain-text symbol for tables and charts (distinct shape per level)
    color: str  # st.badge colour


LEVELS: dict[str, LevelLook] = {
    "green": LevelLook("Green", "no warning pattern", ":material/check_circle:", "✓", "green"),
    "amber": LevelLook("Amber", "watch, review at the next visit", ":material/warning:", "⚠", "orange"),
    "red": LevelLook("Red", "review now", ":material/priority_high:", "‼", "red"),
}
UNKNOWN_LEVEL = LevelLook("Not assessed", "no records yet", ":material/help:", "?", "gray")


def level_look(level: str | None) -> LevelLook:
    """The look of a level, with a neutral one for a patient not yet assessed."""
    return LEVELS.get(str(level), UNKNOWN_LEVEL) if level is not None else UNKNOWN_LEVEL


def level_text(level: str | None) -> str:
    """A level as table text: symbol, name and meaning, e.g. '‼ Red: review now'.

    The symbols (✓ ⚠ ‼) differ in shape and exist in common system fonts, so the level reads
    without colour and without an emoji font.
    """
    look = level_look(level)
    return f"{look.symbol} {look.name}: {look.meaning}"


def level_short(level: str | None) -> str:
    """A level in a few words for tight places: '‼ Red', '⚠ Amber', '✓ Green'."""
    look = level_look(level)
    return f"{look.symbol} {look.name}"


#: A table cell's tint per level, translucent so that it reads on the light and the dark theme alike; the cell's
#: symbol and name still carry the level without colour.
_LEVEL_TINTS = {"red": "rgba(201, 42, 42, 0.22)", "amber": "rgba(230, 119, 0, 0.22)"}


def level_cell_style(cell: object) -> str:
    """CSS for a table's level cell as `level_short` writes it ('‼ Red'): tinted and bold for red and amber."""
    tint = next((t for level, t in _LEVEL_TINTS.items() if cell == level_short(level)), None)
    return f"background-color: {tint}; font-weight: 600" if tint else ""


def level_badge(level: str | None, *, since: date | None = None) -> None:
    """Show a level as a coloured badge with its own icon and words, and when it began."""
    look = level_look(level)
    label = f"{look.name}: {look.meaning}"
    if since is not None and not pd.isna(since):
        label += f" (since {fmt_date(since)})"
    st.badge(label, icon=look.icon, color=look.color)


def disclaimer() -> None:
    """The short notice that belongs beside every level."""
    st.caption(f":material/info: {DISCLAIMER}")


# ----- user text -----------------------------------------------------------------------------

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|>~:$<&=])")
#: Spaces and tabs that begin a line: four or a tab make a code block, after a blank line (security review).
_LEADING_SPACE = re.compile(r"(?m)^[ \t]+")


#: Where Streamlit's markdown (GFM) would turn plain text into a link, even escaped: a web address
#: (http://, https://, www.; after any character but a letter or digit, '_' included) or an e-mail
#: address. A word joiner (U+2060, invisible, no line break)
#: goes in at that point only, so other text, such as an identifier, copies unchanged.
_AUTOLINK = re.compile(r"(?i)(?<![a-z0-9])(?:https?|ftp|mailto|xmpp)(?=:)|(?<![a-z0-9])www(?=\.)|(?<=[\w.+-])(?=@[\w-]+\.\w)")
_WORD_JOINER = "\u2060"
#: Where Streamlit could draw an icon or emoji (":material/verified:", ":material_verified:", ":skull:") from plain
#: text, even with its colons escaped: its markdown finds the code after escapes are undone, so an invisible joiner
#: after any colon that a letter or underscore follows breaks every such code (times like 10:30 are left alone).
_ICON_CODE = re.compile(r":(?=[A-Za-z_])")


#: Text that markdown leaves as it is when it stands in the middle of a label: letters, digits, spaces and plain
#: punctuation, no underscore, asterisk, bracket or backslash.
_PLAIN_MID_LABEL = re.compile(r"(?:[^\W_]|[ .,'·()/-])+")


def mid_label(text: object) -> str:
    """User text for the middle of a widget's label: as it is when markdown would leave it so, else `md_escape`d.

    A widget's accessible name is its raw label, so an escaped "KW\\-0014" was read out as "KW backslash 0014"
    (browser check of the Alerts labels); text that markdown could act on is still escaped.
    """
    plain = "" if text is None else str(text)
    return plain if _PLAIN_MID_LABEL.fullmatch(plain) else md_escape(plain)


def md_escape(text: object) -> str:
    """User text made inert inside markdown: no formatting, links (typed or bare addresses), HTML, icons or LaTeX."""
    if text is None or (not isinstance(text, str) and pd.isna(text)):
        return ""
    lines = str(text).replace("\r\n", "\n").replace("\r", "\n")  # every line break as one, for the rules below
    unlinked = _AUTOLINK.sub(lambda m: m.group(0) + _WORD_JOINER, lines)
    unlinked = _ICON_CODE.sub(":" + _WORD_JOINER, unlinked)
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", unlinked)
    # as no-break spaces, which markdown does not count as indentation: the text keeps its look
    escaped = _LEADING_SPACE.sub(lambda m: "\u00a0" * len(m.group(0).expandtabs(4)), escaped)
    return escaped.replace("\n", "  \n")


# ----- time ----------------------------------------------------------------------------------


def clinic_tz() -> ZoneInfo:
    """The clinic's time zone from the settings."""
    return get_settings().tz


def now_local() -> datetime:
    """The current time in the clinic's time zone."""
    return datetime.now(timezone.utc).astimezone(clinic_tz())


def to_local(value) -> pd.Timestamp | None:
    """A UTC instant (or naive UTC) as a clinic-local timestamp; None for missing."""
    if value is None or pd.isna(value):
        return None
    ts = pd.Timestamp(value)
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return ts.tz_convert(clinic_tz())


def fmt_datetime(value) -> str:
    """An instant in clinic time, e.g. '2026-11-22 14:05'; '' when missing."""
    ts = to_local(value)
    return "" if ts is None else ts.strftime("%Y-%m-%d %H:%M")


def fmt_date(value) -> str:
    """A calendar date as YYYY-MM-DD; '' when missing."""
    if value is None or (not isinstance(value, (date, datetime)) and pd.isna(value)):
        return ""
    if isinstance(value, pd.Timestamp) and pd.isna(value):
        return ""
    return pd.Timestamp(value).strftime("%Y-%m-%d")


def local_column(series: pd.Series) -> pd.Series:
    """A UTC datetime column converted to naive clinic-local time, for tables."""
    return series.dt.tz_convert(clinic_tz()).dt.tz_localize(None)


# ----- words for codes -----------------------------------------------------------------------


def words(code: object) -> str:
    """A vocabulary code in words: 'chronic_pain' -> 'Chronic pain', 'ptsd' -> 'PTSD' (store.vocabulary.code_words)."""
    from store.vocabulary import code_words

    if code is None or (not isinstance(code, str) and pd.isna(code)):
        return ""
    return code_words(str(code))


ROUTE_WORDS = {"iv": "IV infusion", "im": "IM injection", "intranasal": "Intranasal", "oral": "Oral",
               "sublingual": "Sublingual"}


def route_words(route: object) -> str:
    """A route code as clinicians say it."""
    return ROUTE_WORDS.get(str(route), words(route))


# ----- form errors ---------------------------------------------------------------------------


#: A missing patient on a form whose patient is chosen from a list, not typed: said as what to do there.
NO_PATIENT_CHOSEN = "Choose the patient first (type an ID or a name in the Patient box)"


def problems_by_field(problems: Iterable[Problem], *, no_patient_chosen: bool = False) -> dict[str, list[str]]:
    """Group validation problems by the column they concern, so each shows beside its widget.

    `no_patient_chosen`: the form's patient picker is empty; the store's "Patient ID is required" would name a box
    that is not on the form.
    """
    grouped: dict[str, list[str]] = {}
    for problem in problems:
        message = NO_PATIENT_CHOSEN if no_patient_chosen and problem.column == "patient_id" else problem.message
        grouped.setdefault(problem.column, []).append(message)
    return grouped


def field_error(errors: dict[str, list[str]], *columns: str) -> None:
    """Show the messages for these columns directly under the widget that was just drawn (icon + words)."""
    for column in columns:
        for message in errors.get(column, []):
            st.markdown(f":red[:material/error: {md_escape(message)}]")


def error_summary(errors: dict[str, list[str]], labels: dict[str, str] | None = None, *, corrected: int = 0) -> None:
    """The list of problems at the top of a form (each message names its field); nothing was saved. `corrected`:
    how many refused fields have been changed since (their problems are checked again at the next Save)."""
    again = (f"{corrected} field{'s' if corrected > 1 else ''} changed since the last Save will be checked again "
             "when you save.")
    if not errors:
        if corrected:
            st.info(f"Nothing was saved yet. {again}", icon=":material/info:")
        return
    lines = [f"- {md_escape(msg)}" for msgs in errors.values() for msg in msgs]
    st.error("Nothing was saved. Please correct:\n\n" + "\n".join(lines) + (f"\n\n{again}" if corrected else ""),
             icon=":material/block:")


def refused_as_typed(prefix: str, raw: dict | None) -> None:
    """Keep the values a Save refused (None: forget them), for `standing_errors` to tell which were changed since."""
    if raw is None:
        st.session_state.pop(prefix + "refused", None)
    else:
        st.session_state[prefix + "refused"] = dict(raw)


def standing_errors(prefix: str, errors: dict[str, list[str]], raw: dict, live=(), groups=()) -> tuple[dict[str, list[str]], int]:
    """The last Save's problems as they stand now, and how many of the refused fields (or field groups) were changed.

    A problem stayed in red under a field after it was corrected, until the next Save (nurse's review). A field still
    as refused keeps its problem; a changed one shows what the store's checks (`live`, the problems of the values now)
    still find in it, or nothing. `groups` are fields checked together (the five SDS items, a blood pressure pair):
    the SDS problem names one missing item, and answering that one hid it while another was still empty (code review).
    """
    refused = st.session_state.get(prefix + "refused") or {}
    now = problems_by_field(list(live))

    def unit(column: str) -> tuple[str, ...]:
        return next((tuple(g) for g in groups if column in g), (column,))

    def changed(fields: tuple[str, ...]) -> bool:
        return all(f in refused and f in raw for f in fields) and any(raw[f] != refused[f] for f in fields)

    kept: dict[str, list[str]] = {}
    units = {unit(column): changed(unit(column)) for column in errors}
    for fields, was_changed in units.items():
        source = now if was_changed else errors
        kept.update({f: source[f] for f in fields if f in source})
    return kept, sum(units.values())


def rule_number(rule, key: str, errors: dict[str, list[str]], *, label: str | None = None, help: str | None = None,
                step: float | None = None, fmt: str | None = None) -> float | int | None:
    """A number box whose label, unit and limits come from the store's validation rule, with its errors under it.

    Empty means "not recorded". The box has no min or max on purpose: the browser silently drops
    a typed value outside them (SpO2 9 became "not recorded" and the session saved). Every value
    reaches store.validation, which refuses it with the field's range in words.
    """
    whole = rule.kind == "int"
    unit = f" ({rule.unit})" if rule.unit else ""
    value = st.number_input(
        (label or rule.label) + unit + (" *" if rule.required else ""),
        value=None,
        key=key,
        step=(1 if whole else (step or 0.1)),
        format=fmt or ("%d" if whole else "%.1f"),
        help=help,
        placeholder="not recorded" if not rule.required else "required",
    )
    field_error(errors, rule.name)
    return value


def staff_column(usernames: pd.Series, names: dict[str, str]) -> pd.Series:
    """Usernames as colleagues know them: 'Ann Lee (ann.lee)' (ketawatch.accounts.staff_label, as the PDFs say them)."""
    from ketawatch.accounts import staff_label

    return usernames.map(lambda username: staff_label(username, names))


def alert_reopened_because(*, due_again: bool, review_again_days: int) -> str:
    """Why a reviewed alert waits again, in the same words on the Alerts page and the patient page."""
    if due_again:
        return (f"{review_again_days} or more days ago, and still amber or red: due for review again (every "
                f"{review_again_days} days while it lasts)")
    return "reopened by a new reason, a higher level or a new episode"


def alert_review_status(last_reviewed_at, *, due_again: bool, review_again_days: int) -> str:
    """The Alerts card's line on the last review: never, or when and why the alert waits again."""
    if last_reviewed_at is None or pd.isna(last_reviewed_at):
        return "Never reviewed."
    because = alert_reopened_because(due_again=due_again, review_again_days=review_again_days)
    return f"Last reviewed {fmt_datetime(last_reviewed_at)}{';' if not due_again else ','} {because}."


def last_decision(review: pd.Series, names: dict[str, str]) -> str:
    """The latest review's decision as plain text ('Dose reduced, by Ann Lee (ann.lee): "seen today..."'), so a
    reopened alert shows what was decided last time."""
    who = staff_column(pd.Series([review.get("reviewed_by")]), names).iloc[0]
    note = review.get("reviewed_note")
    said = f': "{note}"' if isinstance(note, str) and note.strip() else ""
    return f"Last decision: {words(review.get('reviewed_action'))}, by {who}{said}"


def patient_label(patients: pd.DataFrame):
    """A function that shows a patient id as 'ID · name (status)' in pickers (plain text, never markdown)."""
    names = dict(zip(patients["patient_id"], patients["display_name"]))
    status = dict(zip(patients["patient_id"], patients["status"]))

    def label(pid: str | None) -> str:
        if pid is None:
            return ""
        name = names.get(pid)
        text = f"{pid} · {name}" if isinstance(name, str) and name else str(pid)
        if status.get(pid) not in (None, "active") and not pd.isna(status.get(pid)):
            text += f" ({status[pid]})"
        return text

    return label


def patient_in_view() -> str | None:
    """The patient the pages keep in view: the `?patient=` link's, else the one last opened on any page."""
    return st.query_params.get("patient") or st.session_state.get(PATIENT_KEY)


def patient_picker(patients: pd.DataFrame, *, key: str, label: str = "Patient", only_active: bool = False) -> str | None:
    """Choose a patient (type to search id or name).

    The choice follows the `?patient=` link and the patient last opened on any page, and choosing
    here updates both, so moving between pages keeps the same person in view.
    """
    frame = patients[patients["status"] == "active"] if only_active else patients
    ids = frame["patient_id"].astype(str).tolist()
    wanted = patient_in_view()
    if wanted in ids and st.session_state.get(key) != wanted:
        st.session_state[key] = wanted
    elif st.session_state.get(key) not in ids:
        st.session_state[key] = None

    def _remember() -> None:
        chosen = st.session_state.get(key)
        st.session_state[PATIENT_KEY] = chosen
        if chosen is None:
            st.query_params.pop("patient", None)
        else:
            st.query_params["patient"] = chosen

    choice = st.selectbox(label, ids, key=key, format_func=patient_label(frame), on_change=_remember,
                          placeholder="Choose a patient: type an ID or a name")
    if choice is not None:
        st.session_state[PATIENT_KEY] = choice
    return choice


def save_for(action: str, patients: pd.DataFrame, pid: str | None) -> str:
    """The Save button's words with the patient the record goes to: the forms open on the patient last opened, so the
    button at the foot of a long form says whose record it saves (a wrong-patient safeguard; clinician's review)."""
    if pid is None:
        return action
    return f"{action} for {mid_label(patient_label(patients)(pid))}"


def signed_in_user():
    """The signed-in user, asking for sign-in again here: a page file run on its own must not skip it."""
    from dashboard.auth import require_user

    return require_user()


def read_only_notice(user) -> None:
    """Explain to a reviewer why there is no form here."""
    role = getattr(user, "role", "unknown")
    st.info(f"Your role ({role}) can read the records but not add or change them.", icon=":material/lock:")


def show_table(frame: pd.DataFrame, *, key: str, column_config: dict | None = None, **kwargs):
    """A read-only table where "not recorded" shows as a dash (not 'None').

    User text is shown by the data grid as plain text, never as markdown or HTML.
    """
    return st.dataframe(frame, hide_index=True, key=key, column_config=column_config, placeholder="–", **kwargs)


def new_password_inputs(label: str = "Password", *, repeat_label: str = "Repeat the password",
                        key: str | None = None) -> tuple[str, str]:
    """A new password typed twice (hidden; the browser is told it is new), inside the caller's form."""
    hint = f" (at least {get_settings().min_password_length} characters)"  # a new password of any form
    password = st.text_input(label + hint, type="password", autocomplete="new-password", key=key and f"{key}_new")
    repeat = st.text_input(repeat_label, type="password", autocomplete="new-password", key=key and f"{key}_repeat")
    return password, repeat


def passwords_match(password: str, repeat: str) -> bool:
    """After the form is sent: the two typings agree, or the clinician is told plainly that they do not."""
    if password != repeat:
        st.error("The two passwords differ. Type the same password twice.")
        return False
    return True


_ENTRY_COPY = "entries copy: "


def copy_entries(prefix: str, *, skip: tuple[str, ...] = ()) -> None:
    """After a run of a form's page: a copy of its values, which `restore_entries` puts back when the clinician comes
    back from another page (Streamlit drops a widget's value once its page is left, so a half-entered session
    vanished without a word).

    `skip` names what must be left alone: the form's keyed buttons (a button's value cannot be set) and anything not
    worth keeping, such as a password. Re-saving every value before each run (Streamlit's documented clean-up
    interruption) did the same, but sent each box's stored value back to the browser on every run, and a run that
    ended while the next box was being typed into put that box back to "not recorded": a nurse tabbing fast through
    the vital signs lost one in 3 of 4 tries.
    """
    st.session_state[_ENTRY_COPY + prefix] = {
        k: v for k, v in st.session_state.items() if isinstance(k, str) and k.startswith(prefix) and k not in skip}


def restore_entries(prefix: str) -> None:
    """Before the form's page runs: what `copy_entries` kept and the session no longer holds, put back."""
    for key, value in st.session_state.get(_ENTRY_COPY + prefix, {}).items():
        if key not in st.session_state:
            st.session_state[key] = value


def record_time_now(prefix: str) -> None:
    """A form's record time set to now and remembered as its default: while the clinician leaves it as it is, it
    follows the clock (a form opened an hour ago does not save an hour-old time); once changed, it is kept."""
    now = now_local().replace(tzinfo=None, second=0, microsecond=0)
    st.session_state[prefix + "when"] = st.session_state[prefix + "when_default"] = now


def record_time_set(prefix: str) -> bool:
    """Whether the clinician changed the form's record time from the one it was given."""
    return st.session_state.get(prefix + "when") not in (None, st.session_state.get(prefix + "when_default"))


def record_time_follows_clock(prefix: str) -> None:
    """Before the form is drawn: a record time left as it was given moves to now; one the clinician set is kept."""
    if not record_time_set(prefix):
        record_time_now(prefix)


def follow_form_patient(prefix: str, pid: str | None, entry_keys, clear_entries, prefill=None) -> None:
    """Keep a data-entry form with its patient, and each patient's unsaved entries with that patient.

    The picker follows the patient last opened on any page, so a form left half filled in can come back with
    another patient chosen. What was typed for the first patient (the values under `entry_keys()`, and a record
    time set by hand) is then put aside as that patient's draft, the form is emptied (`clear_entries()`, which says
    whether anything was typed) and given the new patient's own draft if there is one; `prefill()`, when given, fills
    in the new patient's usual values first. The clinician is told either way. Nothing typed for one patient can be
    saved to another, and a look at another chart no longer costs the typing. Drafts end with the sign-out.
    """
    state = st.session_state
    was_for = state.get(prefix + "form_for")
    if pid is not None and pid != was_for:
        drafts = state.setdefault(prefix + "drafts", {})
        kept_for = None
        if was_for is not None:
            draft = {key: state[key] for key in entry_keys() if key in state}
            if record_time_set(prefix):
                draft[prefix + "when"] = state[prefix + "when"]
            if clear_entries() or prefix + "when" in draft:
                drafts[was_for], kept_for = draft, was_for
            record_time_now(prefix)
        if prefill is not None:
            prefill()
        restored = drafts.pop(pid, None)
        if restored:
            state.update(restored)
        state[prefix + "form_for"] = pid
        state[prefix + "moved"] = {"from": kept_for, "to": pid, "restored": bool(restored)}
    moved = state.get(prefix + "moved")
    put_aside = moved["from"] if moved and moved["to"] == pid else None
    back = bool(moved and moved["to"] == pid and moved["restored"])
    if put_aside:
        earlier = ", with what was typed for them earlier" if back else ""
        st.info(f"This form is now for {md_escape(pid)}{earlier}. What was typed for {md_escape(put_aside)} is kept: "
                f"choose {md_escape(put_aside)} again to go on with it.", icon=":material/info:")
    elif back:
        st.info(f"What was typed for {md_escape(pid)} earlier is back in the form.", icon=":material/info:")
    waiting = sorted(k for k in state.get(prefix + "drafts", {}) if k not in (pid, put_aside))  # not named twice
    if waiting:
        st.caption("Unsaved entries kept for " + ", ".join(md_escape(k) for k in waiting) + ": choose the patient to "
                   "go on with them. Signing out discards them.")


def drop_draft_notice(prefix: str) -> None:
    """After a save: the form's notice about whose entries moved where no longer applies."""
    st.session_state.pop(prefix + "moved", None)


def saved_notice_for(prefix: str) -> dict | None:
    """The form's last "saved" confirmation, unless another patient is now in view: above that patient's form it
    would read as theirs."""
    saved = st.session_state.get(prefix + "saved")
    if saved and (patient_in_view() or st.session_state.get(prefix + "patient")) not in (None, saved["patient_id"]):
        st.session_state.pop(prefix + "saved")
        return None
    return saved


def reason_list(reasons, *, new_since_review: Iterable[str] = ()) -> None:
    """A level's reasons, each an observation with what it counts for, the dates it rests on and, for a warning
    sign, the seed passage behind it; the same on the patient page and on Alerts, where a reason the last review
    did not list is marked new.

    The rule id stays in view, in plain text, for matching a reason to the README, the PDF and `ketawatch flags`.
    """
    from ketawatch.risk import evidence_note, reason_role
    from seed_data.catalogue import seed_citation

    new = set(new_since_review)
    for number, reason in enumerate(reasons, 1):
        mark = " **(new since the last review)**" if reason.rule_id in new else ""
        st.markdown(f"{number}\\. {md_escape(reason.text)}{mark}")
        evidence = evidence_note(reason)
        st.caption(sentence_case(reason_role(reason.level, reason.discounted)) + (f" · evidence quoted: {evidence}" if evidence else "")
                   + f" · rule {md_escape(reason.rule_id)}")
        if reason.quotation:
            st.caption(f"Seed passage, {md_escape(seed_citation(reason.source))}: “{md_escape(reason.quotation)}”")


def not_counted_list(seen) -> None:
    """What the rules saw but did not count (ketawatch.risk.seen_not_counted), each with its dates in its own words."""
    for item in seen:
        st.markdown(f"- {md_escape(item.text)}")


def dose_against_plan(per_kg: float, planned: float | None) -> str | None:
    """The dose's difference from the planned mg/kg in whole percent ("+12% against the plan"); none when it rounds to 0.

    A rounding to 0 would read "-0%" or "+0%" with an arrow, as if the dose were off the plan.
    """
    if planned is None or not planned:
        return None
    percent = round((per_kg / planned - 1) * 100)
    return None if percent == 0 else f"{percent:+d}% against the plan"


def reviewed_level(reviews: pd.DataFrame) -> pd.Series:
    """A review table's 'Level': the level reviewed, or "Question 9 follow-up" for one, which reviews no level
    (its stored level read as if someone had checked the patient's level and found no concern)."""
    from store.vocabulary import is_safety_follow_up

    follow_up = reviews["reasons"].map(is_safety_follow_up).astype(bool)
    return reviews["level"].map(level_text).where(~follow_up, "PHQ-9 question 9 follow-up")


def reviewed_reasons(reasons: pd.Series) -> pd.Series:
    """A review table's 'Reasons reviewed': rule ids, or what a question 9 follow-up is, since it reviews no level."""
    from store.vocabulary import reviewed_reasons_text

    return reasons.map(reviewed_reasons_text)


def safety_banner(answers: pd.DataFrame, *, label=None, can_follow_up: bool = True) -> None:
    """PHQ-9 question 9 answers: in red above everything else until followed up, then in blue for two weeks.

    `answers` is `data.safety_answers()`, or one patient's rows of it; `label` names each patient
    (a caseload-wide banner, by their newest answer still waiting, else their newest: `one_per_patient`); without it
    the banner shows each check-in's
    own safety line, and `can_follow_up` says whether the form to record a follow-up is below it (writers only).
    A recorded follow-up (dashboard.safety_follow_up) moves an answer out of the red.
    """
    from ketawatch.safety_answers import RECENT_DAYS, one_per_patient

    if answers.empty:
        return
    done = answers["followed_up_at"].notna() if "followed_up_at" in answers else pd.Series(False, index=answers.index)
    from ketawatch.safety_answers import QUESTION_9 as question

    def followed(r, with_note: bool = True) -> str:
        note = (f": {md_escape(r.follow_up_note)}" if with_note and isinstance(r.follow_up_note, str) and r.follow_up_note
                else "")
        done = f" ({words(r.follow_up_action)})" if isinstance(r.follow_up_action, str) and r.follow_up_action else ""
        steps = getattr(r, "further_steps", ()) or ()
        then = "; then " + ", ".join(f"{words(a)} on {fmt_datetime(t)}" for t, a in steps) if len(steps) else ""
        return f"followed up by {md_escape(r.followed_up_by)} on {fmt_datetime(r.followed_up_at)}{done}{note}{then}"

    if label is None:
        waiting = [f"- Check-in of {fmt_datetime(r.reported_at)}: {md_escape(r.line)}"
                   for r, d in zip(answers.itertuples(), done) if not d]
        seen = [f"- Check-in of {fmt_datetime(r.reported_at)}: {followed(r)}" for r, d in zip(answers.itertuples(), done) if d]
        head = f"**{question} answered above 'not at all'**"
    else:
        newest = one_per_patient(answers)
        unattended = newest[newest["followed_up_at"].isna()]
        waiting = [f"- {md_escape(label(r.patient_id))}: check-in of {fmt_datetime(r.reported_at)}"
                   for r in unattended.itertuples()]
        # Who, when and what was done, without the clinician's note: the caseload-wide banner is on every page anyone
        # opens first, the reviewer's too, for two weeks (clinician's browser pass); the patient's page has the note.
        seen = [f"- {md_escape(label(r.patient_id))}: check-in of {fmt_datetime(r.reported_at)}, "
                f"{followed(r, with_note=False)}" for r in newest[newest["followed_up_at"].notna()].itertuples()]
        head = f"**{len(waiting)} patient(s) answered {question} above 'not at all', with no follow-up recorded yet**"
    if waiting:
        here = "record the follow-up below" if can_follow_up else "a clinician or admin records the follow-up here"
        todo = (f"a clinician to speak with the patient, then {here}" if label is None else
                "a clinician to speak with each patient, then record the follow-up on the patient's page")
        st.error(f"{head}: {todo}. Shown until a follow-up is recorded.\n\n" + "\n".join(waiting),
                 icon=":material/emergency:")
        if label is not None:  # one click to where the follow-up is recorded
            who = list(unattended["patient_id"])
            for box, pid in zip(st.columns(min(len(who), 4)) * (len(who) // 4 + 1), who):
                box.page_link("views/patient.py", label=f"Open {md_escape(pid)}", icon=":material/person:",
                              query_params={"patient": pid})
    if seen:
        st.info(f"**PHQ-9 question 9: followed up** (shown for {RECENT_DAYS} days after the follow-up)\n\n"
                + "\n".join(seen), icon=":material/task_alt:")


def unusual_confirmed(prefix: str, unusual: list[str]) -> bool:
    """True when nothing is unusual, or the clinician has ticked that they checked exactly these values.

    Otherwise the values are kept for `unusual_box` to show, and False means "do not save yet". The
    tick box's key is made from the messages (which name the values and the patient's plan), so a
    tick given for one set of values never carries over to another.
    """
    if not unusual:
        st.session_state.pop(prefix + "unusual", None)
        return True
    if st.session_state.get(prefix + "unusual") == unusual and st.session_state.get(_confirm_key(prefix, unusual)):
        return True
    st.session_state[prefix + "unusual"] = unusual
    return False


def unusual_box(prefix: str, record: str = "session") -> None:
    """The allowed-but-unusual values waiting for a second look, with the tick box that lets them be saved."""
    unusual = st.session_state.get(prefix + "unusual")
    if not unusual:
        return
    st.warning("Not saved yet. These values are allowed but unusual; please check them:\n\n"
               + "\n".join(f"- {md_escape(message)}" for message in unusual), icon=":material/help:")
    st.checkbox(f"I have checked these values: save the {record} as entered", key=_confirm_key(prefix, unusual))


def unusual_question(prefix: str, still_unusual: Callable[[], list[str]], record: str = "session") -> None:
    """The unusual-values box above a form's Save button, while the form still holds what it asks about: corrected since
    Save, the box would quote values no longer in the form (clinician review), and Save checks them again."""
    waiting = st.session_state.get(prefix + "unusual")
    if waiting and still_unusual() != waiting:
        st.session_state.pop(prefix + "unusual")
    if st.session_state.get(prefix + "unusual"):
        with st.container(border=True):
            unusual_box(prefix, record)


def _confirm_key(prefix: str, unusual: list[str]) -> str:
    return prefix + "confirm_" + hashlib.sha256("\n".join(unusual).encode()).hexdigest()[:16]


def _weighed(other_sessions: pd.DataFrame) -> list[tuple[datetime, float | None]]:
    """Other sessions as (time, weight in kg or None), as the store's checks take them."""
    return [(t.to_pydatetime(), None if pd.isna(w) else float(w))
            for t, w in zip(other_sessions["session_at"], other_sessions["weight_kg"])]


def weight_question(raw: dict, other_sessions: pd.DataFrame) -> list[str]:
    """The store's question about a weight far from the one before (pounds?), whatever else the form holds."""
    from store.validation import Validator

    return [p.message for p in Validator().weight_question(raw, other_sessions=_weighed(other_sessions))]


def unusual_checkin(raw: dict, patient: pd.Series) -> list[str]:
    """The store's double check of a check-in against one patient's treatment start (a row of `data.patients()`)."""
    from store.validation import Validator

    start = None if pd.isna(patient["treatment_start"]) else pd.Timestamp(patient["treatment_start"]).date()
    return [p.message for p in Validator().unusual_checkin(raw, treatment_start=start)]


def unusual_session(raw: dict, patient: pd.Series, other_sessions: pd.DataFrame, *,
                    changed: set[str] | None = None) -> list[str]:
    """The store's double check of a session against one patient's plan (a row of `data.patients()`) and other sessions.

    `changed`, for an amendment: only what rests on the fields changed is asked about (a heart rate amended to 27 is;
    an old, unchanged one is not asked about again when only the notes change).
    """
    from store.validation import Validator

    start = None if pd.isna(patient["treatment_start"]) else pd.Timestamp(patient["treatment_start"]).date()
    planned = None if pd.isna(patient["planned_dose_mg_per_kg"]) else float(patient["planned_dose_mg_per_kg"])
    return [p.message for p in Validator().unusual_session(raw, treatment_start=start, planned_mg_per_kg=planned,
                                                           other_sessions=_weighed(other_sessions), changed=changed)]
