"""Amending and voiding sessions and check-ins from the patient page, and the history that keeps every version.

An edit never overwrites: `store.records` keeps the earlier version with who changed it, when and
why. The version a clinician opened is remembered in the session, so if a colleague saves the
same record first, the second save is refused with a clear message and both edits survive (the
colleague's in the database, this clinician's still in the form).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

import pandas as pd
import streamlit as st
from sqlalchemy import Engine

from dashboard import data
from dashboard.auth import SignedInUser, can_write
from dashboard.ui import (
    RECORD_TIMES,
    error_summary,
    fmt_datetime,
    problems_by_field,
    route_words,
    side_effect_words,
    staff_column,
    to_local,
    unusual_box,
    unusual_checkin,
    unusual_confirmed,
    unusual_session,
    words,
)
from ketawatch.risk.scoring import dose_per_kg, sds_total
from store import queries
from store.queries import marked_line
from store.records import (
    RecordConflict,
    RecordInvalid,
    RecordNotFound,
    amend_checkin,
    amend_session,
    void_checkin,
    void_session,
)
from store.settings import get_settings
from store.validation import CHECKIN_RULES, PATIENT_RULES, REASON_MAX_LENGTH, SESSION_RULES, Rule, Validator
from store.vocabulary import SAFETY_MARK, SDS_ITEMS, SEVERITIES

Kind = Literal["session", "checkin"]

_KINDS: dict[str, dict[str, Any]] = {
    "session": {"label": "session", "rules": SESSION_RULES, "time": "session_at", "amend": amend_session,
                "void": void_session, "frame": queries.sessions_frame},
    "checkin": {"label": "check-in", "rules": CHECKIN_RULES, "time": "reported_at", "amend": amend_checkin,
                "void": void_checkin, "frame": queries.checkins_frame},
}
_BOOL_WORDS = {None: "not recorded", True: "yes", False: "no"}


def _blank(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _typed(rule: Rule, value: Any) -> Any:
    """A stored value (from a frame or a revision snapshot) as the Python value a widget holds."""
    if rule.kind == "side_effects":  # as "effect:severity" items, the options of the picker
        if isinstance(value, (list, tuple)):
            return [f"{e}:{s}" for e, s in value]
        return [] if _blank(value) else [item.strip() for item in str(value).split(";") if item.strip()]
    if _blank(value):
        return None
    if rule.kind in ("datetime", "date_or_datetime"):
        return to_local(value).to_pydatetime()
    if rule.kind == "int":
        return int(value)
    if rule.kind == "number":
        return float(value)
    if rule.kind == "bool":
        return bool(value)
    return str(value)


def _fields(kind: str) -> dict[str, Rule]:
    return {name: rule for name, rule in _KINDS[kind]["rules"].items() if name != "patient_id"}


def _current(engine: Engine, kind: str, patient_id: str, record_id: int) -> dict[str, Any] | None:
    """The record as stored now, with its version and void state, read fresh from the store."""
    frame = _KINDS[kind]["frame"](engine, [patient_id], include_voided=True)
    row = frame[frame["id"] == int(record_id)]
    return None if row.empty else row.iloc[0].to_dict()


def _answer_scale(name: str) -> tuple[str, tuple[str, ...]] | None:
    """The question and answer words of an SDS item or a warning sign, as the check-in form asks it; None otherwise."""
    from seed_data.catalogue import instruments, warning_sign_answers, warning_signs

    if name in SDS_ITEMS:
        item = next(i for i in instruments()["sds"]["item"] if i["id"] == name)
        return item["wording"], tuple(item["answers"])
    sign = next((s for s in warning_signs() if s.id == name), None)
    return None if sign is None else (sign.patient_wording, tuple(warning_sign_answers()))


def _answer_words(name: str, value: int | None) -> str:
    """'1 · Sometimes': an answer with its words, so an amendment reads as the patient answered."""
    scale = _answer_scale(name)
    if value is None:
        return "not answered"
    return f"{value} · {scale[1][value]}" if scale is not None and 0 <= value < len(scale[1]) else str(value)


def _widget(rule: Rule, value: Any, key: str) -> Any:
    """One form widget for one field, labelled and bounded by the store's rule for it."""
    label = rule.label_with_unit
    scale = _answer_scale(rule.name)
    if scale is not None:  # an answer chosen by its words, as on Log check-in, not a bare number (clinician's review)
        options = [None, *range(len(scale[1]))]
        options += [value] if value not in options else []  # a stored value outside the scale stays visible
        return st.selectbox(label, options, index=options.index(value), key=key, help=scale[0],
                            format_func=lambda v: _answer_words(rule.name, v))
    if rule.kind in ("datetime", "date_or_datetime"):
        # One date-and-time widget, as on the logging pages; it holds clinic-local wall time.
        tz = get_settings().tz
        chosen = st.datetime_input(f"{rule.label} (clinic time)", value=value.replace(tzinfo=None) if value else None,
                                   key=key, format="YYYY-MM-DD", step=timedelta(minutes=1), **RECORD_TIMES,
                                   help=f"As the clinic's clock showed it ({tz.key}); stored in UTC.")
        return None if chosen is None else chosen.replace(tzinfo=tz)
    if rule.kind in ("int", "number"):
        # No min or max (see dashboard.ui.rule_number): the store refuses an out-of-range value in words.
        return st.number_input(label, value=value, step=1 if rule.kind == "int" else None, key=key)
    if rule.kind == "bool":
        return st.selectbox(label, options=[None, True, False], index=[None, True, False].index(value),
                            format_func=_BOOL_WORDS.get, key=key)
    if rule.kind == "choice":
        options = list(rule.choices)
        return st.selectbox(label, options=options, index=options.index(value) if value in options else None, key=key,
                            format_func=route_words if rule.name == "route" else words)
    if rule.kind == "side_effects":
        # One option per effect and severity: a single widget, so it works inside the form.
        from seed_data.catalogue import side_effects

        options = [f"{e.id}:{severity}" for e in side_effects() for severity in SEVERITIES]
        options += [item for item in value or [] if item not in options]  # an older entry stays visible
        return st.multiselect(label, options, default=value or [], format_func=side_effect_words, key=key,
                              placeholder="None recorded", help="One severity per effect.", select_all=False)
    return st.text_area(label, value=value or "", key=key)


def _form_fields(fields: dict[str, Rule], before: dict[str, Any], base: str) -> dict[str, Any]:
    """The amend form's widgets: short fields three to a row, free text full width below them."""
    wide = [name for name, rule in fields.items() if rule.kind in ("text", "side_effects")]
    short = [name for name in fields if name not in wide]
    values = {}
    for start in range(0, len(short), 3):
        for column, name in zip(st.columns(3), short[start:start + 3]):
            with column:
                values[name] = _widget(fields[name], before[name], f"{base}_f_{name}")
    for name in wide:
        values[name] = _widget(fields[name], before[name], f"{base}_f_{name}")
    return values


def _same(rule: Rule, a: Any, b: Any) -> bool:
    if rule.kind == "side_effects":
        return sorted(a or []) == sorted(b or [])
    if rule.kind == "text":
        return (a or "") == (b or "")
    if rule.kind in ("datetime", "date_or_datetime") and a is not None and b is not None:
        return a.replace(second=0, microsecond=0) == b.replace(second=0, microsecond=0)
    return a == b


def _forget(base: str) -> None:
    """Drop one record's form state (every key is `{base}_...`, so record 1 never clears record 10)."""
    for key in [k for k in st.session_state if isinstance(k, str) and k.startswith(f"{base}_")]:
        del st.session_state[key]


def record_actions(engine: Engine, user: SignedInUser | None, kind: Kind, record: dict) -> None:
    """Amend and void buttons for one session or check-in (writers only), with a reason and conflict check."""
    if kind not in _KINDS:
        raise ValueError(f"kind must be 'session' or 'checkin', not {kind!r}")
    if not can_write(user):
        return
    spec = _KINDS[kind]
    record_id = int(record["id"])
    base = f"kw_amend_{kind}_{record_id}"
    if not _blank(record.get("voided_at")):
        st.caption(f"This {spec['label']} was voided; it stays in the history below.")
        return
    mode = st.session_state.get(f"{base}_mode")
    if mode is None:
        left, right = st.columns(2)
        if left.button(f"Amend this {spec['label']}", key=f"{base}_open_amend", icon=":material/edit:"):
            mode = "amend"
        if right.button(f"Void this {spec['label']}", key=f"{base}_open_void", icon=":material/block:"):
            mode = "void"
        if mode is None:
            return
        opened = _current(engine, kind, record["patient_id"], record_id)
        if opened is None or not _blank(opened.get("voided_at")):
            st.error(f"This {spec['label']} is no longer there to change: it was voided. Reload the page.")
            return
        st.session_state[f"{base}_mode"] = mode
        st.session_state[f"{base}_opened"] = opened
        st.rerun()  # so the two buttons go at once: one left beside the open form would do nothing
    opened = st.session_state[f"{base}_opened"]
    if mode == "amend":
        _amend_form(engine, user, kind, record_id, base, opened)
    else:
        _void_form(engine, user, kind, record_id, base, opened)
    if f"{base}_conflict" in st.session_state:
        _conflict_panel(engine, kind, opened, base)


#: Where a saved amendment or void leaves its message for the next run, when the record may have left the list.
NOTICE_KEY = "kw_amend_notice"


def _finish(base: str, message: str) -> None:
    _forget(base)
    st.session_state[NOTICE_KEY] = message
    st.rerun()


def change_notice() -> None:
    """Say what the last amendment or void did; shown above the record list, since a voided record leaves it."""
    message = st.session_state.pop(NOTICE_KEY, None)
    if message:
        st.success(message, icon=":material/check_circle:")
        st.toast(message, icon=":material/check_circle:")


def _conflict_panel(engine: Engine, kind: str, opened: dict, base: str) -> None:
    """Say plainly that a colleague saved first, show their version, and keep this user's entries (until they restart)."""
    st.error(f"Not saved: {st.session_state[f'{base}_conflict']}", icon=":material/sync_problem:")
    now = _current(engine, kind, opened["patient_id"], int(opened["id"]))
    if now is not None:
        st.caption("The version saved by your colleague (your entries are still in the form above):")
        fields = _fields(kind)
        shown = {fields[n].label_with_unit: _shown(fields[n], now.get(n)) for n in fields}
        st.dataframe(pd.DataFrame({"Field": list(shown), "Now stored": list(shown.values())}), hide_index=True)
    if st.button("Start again from the stored version", key=f"{base}_restart"):
        _forget(base)
        st.rerun()


def _amend_form(engine: Engine, user: SignedInUser, kind: str, record_id: int, base: str, opened: dict) -> None:
    spec = _KINDS[kind]
    fields = _fields(kind)
    before = {name: _typed(rule, opened.get(name)) for name, rule in fields.items()}
    with st.form(f"{base}_form"):
        st.markdown(f"**Amend this {spec['label']}** (you opened version {int(opened['version'])})")
        values = _form_fields(fields, before, base)
        if kind == "checkin" and _holds_question_9(opened):
            st.caption(f"The notes' line beginning `{SAFETY_MARK}` is this check-in's PHQ-9 question 9 answer: keep it "
                       "(it may be corrected, not removed).")
        reason = st.text_input("Reason for the amendment (required, kept with the history)", key=f"{base}_reason",
                               max_chars=REASON_MAX_LENGTH)
        # Filled after this click is checked: drawn before it, the box still asked about a value already corrected
        # (255 mg, changed to 26 and saved without a reason; clinician's browser pass).
        unusual_slot = st.empty()
        save = st.form_submit_button("Save amendment", type="primary")
        cancel = st.form_submit_button("Cancel")
    try:
        if cancel:
            _forget(base)
            st.rerun()
        if not save:
            return
        changes = {name: values[name] for name, rule in fields.items() if not _same(rule, values[name], before[name])}
        if not changes:
            st.session_state.pop(f"{base}_unusual", None)  # no value left to ask about
            st.warning("Nothing was changed, so nothing was saved.")
            return
        if kind == "session":
            # The same second look as on Log session: an amendment to 500 mg IV, or to a heart rate of 27, is the same
            # slip of the keyboard. Only what the amendment changed is asked about.
            patient = data.patients().set_index("patient_id").loc[opened["patient_id"]]
            sessions = data.patient_records(opened["patient_id"]).sessions
            others = sessions[sessions["id"] != record_id]  # not the session being amended
            unusual = unusual_session({"patient_id": opened["patient_id"], **values}, patient, others, changed=set(changes))
            if not unusual_confirmed(f"{base}_", unusual):
                st.rerun()  # the form again, with the values to check and the tick box above its Save button
        else:  # a check-in moved long before the treatment start, as on Log check-in; a date put back asks nothing
            patient = data.patients().set_index("patient_id").loc[opened["patient_id"]]
            unusual = (unusual_checkin({"patient_id": opened["patient_id"], **values}, patient)
                       if "reported_at" in changes else [])
            if not unusual_confirmed(f"{base}_", unusual):
                st.rerun()
        try:
            saved = spec["amend"](engine, record_id, changes, actor=user.username, reason=reason,
                                  expected_version=int(opened["version"]), validator=Validator())
        except RecordInvalid as exc:
            labels = {name: rule.label for name, rule in spec["rules"].items()} | {"reason": "Reason"}
            error_summary(problems_by_field(exc.problems), labels)
        except (RecordConflict, RecordNotFound) as exc:
            st.session_state[f"{base}_conflict"] = str(exc)
        else:
            _finish(base, f"Amendment saved: this {spec['label']} is now version {saved.version}; "
                          "the earlier version is kept in the history.")
    finally:
        with unusual_slot.container():
            unusual_box(f"{base}_", "amendment")


def record_summary(kind: Kind, record: dict) -> str:
    """What tells one record from its neighbours at a glance, beside its time: a session's route and dose, a
    check-in's scores ("IV 35 mg (0.50 mg/kg)", "craving 4, SDS 3, PHQ-9 12")."""
    def given(name: str) -> bool:
        return not _blank(record.get(name))

    if kind == "session":
        text = f"{route_words(record['route'])} {float(record['dose_mg']):g} mg"
        per_kg = dose_per_kg(record["dose_mg"], record.get("weight_kg"), record["route"])
        return text + (f" ({per_kg:.2f} mg/kg)" if pd.notna(per_kg) else "")
    parts = [f"craving {int(record['craving'])}"]
    sds = sds_total(pd.DataFrame([{item: record.get(item) for item in SDS_ITEMS}], dtype="float64")).iloc[0]
    if pd.notna(sds):  # all five answered
        parts.append(f"SDS {int(sds)}")
    if given("phq9"):
        parts.append(f"PHQ-9 {int(record['phq9'])}")
    if _holds_question_9(record):
        parts.append("PHQ-9 question 9 answered above 'not at all'")
    return ", ".join(parts)


def _holds_question_9(record: dict) -> bool:
    """Whether a check-in carries the question 9 line the pages' red banner comes from."""
    notes = record.get("notes")
    return isinstance(notes, str) and marked_line(notes, SAFETY_MARK) is not None


def _void_form(engine: Engine, user: SignedInUser, kind: str, record_id: int, base: str, opened: dict) -> None:
    spec = _KINDS[kind]
    with st.form(f"{base}_void_form"):
        st.markdown(f"**Void this {spec['label']}** of {fmt_datetime(opened.get(spec['time']))}: "
                    f"{record_summary(kind, opened)} (version {int(opened['version'])}). It stays in the history, "
                    "marked void, with your reason.")
        if kind == "checkin" and _holds_question_9(opened):
            st.warning("This check-in holds a PHQ-9 question 9 answer above 'not at all'. Voiding it takes the answer, "
                       "and its red banner, off every screen, followed up or not. Void it only if it was never this "
                       "patient's (entered in error); if the patient gave that answer, record the follow-up instead.",
                       icon=":material/emergency:")
        reason = st.text_input("Reason for voiding (required)", key=f"{base}_void_reason", max_chars=REASON_MAX_LENGTH)
        save = st.form_submit_button(f"Void {spec['label']}", type="primary")
        cancel = st.form_submit_button("Cancel")
    if cancel:
        _forget(base)
        st.rerun()
    if not save:
        return
    try:
        spec["void"](engine, record_id, actor=user.username, reason=reason,
                     expected_version=int(opened["version"]), validator=Validator())
    except RecordInvalid as exc:
        error_summary(problems_by_field(exc.problems), {"reason": "Reason"})
    except (RecordConflict, RecordNotFound) as exc:
        st.session_state[f"{base}_conflict"] = str(exc)
    else:
        _finish(base, f"The {spec['label']} of {fmt_datetime(opened.get(spec['time']))} is voided: it no longer counts "
                      "in levels or exports, and stays under 'Amended and voided records' with your reason.")


# ----- history -------------------------------------------------------------------------------


def _shown(rule: Rule, value: Any) -> str:
    """One stored value as plain table text, the same whether it came from a frame or a JSON snapshot."""
    typed = _typed(rule, value)
    if typed is None or typed == "" or typed == []:
        return ""
    if rule.kind == "side_effects":
        return side_effect_words(typed)
    if rule.kind in ("datetime", "date_or_datetime"):
        return fmt_datetime(typed)
    if rule.kind == "date":  # a frame holds a Timestamp, a snapshot the date's text: the same day reads the same
        return pd.Timestamp(typed).strftime("%Y-%m-%d")
    if rule.kind == "choice":
        return route_words(typed) if rule.name == "route" else words(typed)
    if rule.kind == "bool":
        return _BOOL_WORDS[typed]
    if rule.kind == "number":
        return f"{typed:g}"
    if _answer_scale(rule.name) is not None:
        return _answer_words(rule.name, typed)
    return str(typed)


def history_table(engine: Engine, record_type: str, key: Any, current: dict, rules: dict[str, Rule],
                  staff: dict[str, str] | None = None) -> pd.DataFrame:
    """Every version of one record, one row each, with what happened next and only the fields that changed.

    `staff` (username -> name) names who changed it as colleagues know them, as the other tables do.
    """
    revisions = queries.revisions_frame(engine, record_type, key)
    fields = {n: r for n, r in rules.items() if n != "patient_id"}
    who = staff_column(revisions["changed_by"], staff or {}) if len(revisions) else revisions["changed_by"]
    rows = []
    for rev, by in zip(revisions.itertuples(index=False), who):
        done = "amended" if rev.change == "amend" else "voided"
        rows.append({"Version": int(rev.version),
                     "What happened next": f"{done} by {by} on {fmt_datetime(rev.changed_at)}: {rev.reason}",
                     **{r.label_with_unit: _shown(r, rev.data.get(n)) for n, r in fields.items()}})
    # The last row is the record as it stands: after a void, it says so once ("since then"), not as a second void.
    state = "since then: void, not used in levels or exports" if not _blank(current.get("voided_at")) else "current version"
    rows.append({"Version": int(current["version"]), "What happened next": state,
                 **{r.label_with_unit: _shown(r, current.get(n)) for n, r in fields.items()}})
    table = pd.DataFrame(rows)
    if state == "current version":  # amended: the fields that changed between versions
        shown = [r.label_with_unit for r in fields.values() if table[r.label_with_unit].nunique() > 1]
    else:  # voided: what the record held, so a reader can tell which one it was
        shown = [r.label_with_unit for r in fields.values() if (table[r.label_with_unit] != "").any()]
    return table[["Version", "What happened next", *shown]]


def changed_records(engine: Engine, patient_id: str, staff: dict[str, str] | None = None) -> list[tuple[str, pd.DataFrame]]:
    """Each amended or voided record of one patient (patient details first) as a heading and its version table.

    `staff` (username -> full name) is the page's own list, so a renamed colleague is named anew with every other
    page; without it the accounts are read here.
    """
    from ketawatch.accounts import list_users

    found = []
    staff = {u.username: u.display_name for u in list_users(engine)} if staff is None else staff
    patient = queries.patients_frame(engine, [patient_id], with_tracking=True)
    if not patient.empty and int(patient.iloc[0]["version"]) > 1:
        row = patient.iloc[0].to_dict()
        found.append((f"Patient details: {int(row['version']) - 1} change(s)",
                      history_table(engine, "patient", patient_id, row, PATIENT_RULES, staff)))
    for kind, spec in _KINDS.items():
        frame = spec["frame"](engine, [patient_id], include_voided=True)
        changed = frame[(frame["version"] > 1) | frame["voided_at"].notna()]
        for row in changed.to_dict("records"):
            status = "voided" if not _blank(row.get("voided_at")) else "amended"
            label = f"{spec['label'].capitalize()} of {fmt_datetime(row[spec['time']])}: {status}"
            found.append((label, history_table(engine, kind, row["id"], row, spec["rules"], staff)))
    return found


def record_history(changes: list[tuple[str, pd.DataFrame]]) -> None:
    """The patient's amended and voided records, each with every earlier version and the reasons.

    Plain headings and tables (no expanders), so the page may put the whole history inside one expander.
    """
    for label, table in changes:
        st.markdown(f"**{label}**")
        st.dataframe(table, hide_index=True,  # room for who, when and why (the reason was cut short)
                     column_config={"Version": st.column_config.NumberColumn(width=70),
                                    "What happened next": st.column_config.TextColumn(width=620)})
    if not changes:
        st.caption("No record of this patient has been amended or voided.")
