"""What a clinician would notice in the recent records that no rule counts, and what would make it count.

A green level beside a craving of 8 read as if the engine had missed it: each observation here says
what was seen and why it is not counted (a single high week, a sign seen once, a light answer on use
outside treatment, a high but stable SDS, a dose just raised without the patient asking, one early
session, a supporting observation alone), in the numbers of the rules in use. Where the next records
decide, it says so rather than reassure (clinical lead). It is computed from the same records and
rules as the level, as of the same date, so it is causal too; it never changes a level, never
repeats a counted reason, and leaves out what counted until a later record (the level history has
that). The look-back is each rule's own recent window (rules.toml).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ketawatch.risk.engine import evaluate
from ketawatch.risk.features import (
    FeatureTable, corroborated_signs, persistent_signs, sign_persist_checkins, weighty_specific_signs,
)
from ketawatch.risk.reasons import RULES, intervals_out_of, mainly_signs, relapse_context, sign_window
from ketawatch.risk.rules import RuleSettings, load_rules
from ketawatch.risk.wording import (
    answer_words,
    baseline_words,
    count_words,
    date_words,
    dates_of,
    join_words,
    list_dates,
    num,
    number_words,
    span_words,
    sud_note,
    values_words,
)
from seed_data.catalogue import dose_checks, warning_sign
from store.frames import Records

_CRAVING_RULES = {"craving_rising", "craving_high", "craving_drift"}
_USE_RULES = {"use_outside_treatment_reported", "use_outside_treatment_repeated"}
#: A supporting rule's request column and window, and the setting for how many requests make its amber rule.
_REQUESTS = {"dose_request_recent": ("dose_increase_request", "dose_request_from", "dose_requests_repeated"),
             "early_request_recent": ("early_request", "early_request_from", "interval_requests_repeated")}
#: How many of the latest complete SDS answers the SDS line lists: enough to show a dip or a climb (a display
#: length, not a threshold, so not a setting).
_SDS_COURSE = 5


@dataclass(frozen=True)
class NotCounted:
    """One thing seen in the recent record that no rule counts, with the dates it rests on and what would count."""

    rule_id: str  # the rule it would count under
    text: str
    evidence_dates: tuple[dt.date, ...]
    sign: str | None = None


def seen_not_counted(
    records: Records, patient_id: str, *, as_of: dt.date | None = None, rules: RuleSettings | None = None, tz: str
) -> list[NotCounted]:
    """The patient's recent observations that no rule counted as of `as_of` (default today in `tz`): supporting
    observations on a green level first, then check-ins, then sessions."""
    rules = rules or load_rules()
    as_of = pd.Timestamp.now(tz=tz).date() if as_of is None else as_of
    if isinstance(as_of, dt.datetime):
        as_of = as_of.date()
    ev = evaluate(records.for_patients([patient_id]), rules=rules, tz=tz, until=as_of)
    daily = ev.daily
    if not len(daily["code"]):
        return []
    position = len(daily["code"]) - 1  # one patient: their latest assessment date on or before `as_of`
    counted = {rule.id for rule in RULES if daily[f"rule_{rule.id}"][position]}
    c_row, s_row = int(daily["c_row"][position]), int(daily["s_row"][position])
    found: list[NotCounted] = []
    if daily["level_code"][position] == 0:  # supporting observations that hold, but alone raise no level
        short = rules.combination_amber_min_points - int(daily["points"][position])
        for reason in ev.reasons(np.array([position]), on_green=True)[0]:  # a relapse discount said in the reason
            text = f"{reason.text}: {_alone(reason.rule_id, ev.sessions, s_row, rules, short)}"
            found.append(NotCounted(reason.rule_id, text, reason.evidence_dates, reason.sign))
    if c_row >= 0:
        c = ev.checkins
        signs_held = {sign for sign in persistent_signs(rules) if daily[f"sign_{sign}"][position]}
        found += _craving(c, c_row, rules, counted)
        found += _signs(c, c_row, rules, signs_held, counted)
        found += _light_use(c, c_row, rules, counted)
        found += _sds(c, c_row, rules, counted)
        found += _nonspecific(c, c_row, rules, counted)
    if s_row >= 0:
        s = ev.sessions
        found += _dose(s, s_row, rules, counted)
        found += _intervals(s, s_row, rules, counted)
    return found


def _alone(rule_id: str, sessions: FeatureTable, row: int, rules: RuleSettings, short: int) -> str:
    """Why a supporting observation leaves the level green, and what would make it amber, from the level's own points
    (a relapse discount included) and the settings in use."""
    text = (f"on its own it does not raise the level; {number_words(short)} more supporting observation"
            f"{'' if short == 1 else 's'} of another kind would make it amber")
    if rule_id in _REQUESTS and row >= 0:
        column, window_from, repeated = _REQUESTS[rule_id]
        asked = int(sessions[column][sessions.rows_from(row, window_from)].astype(bool).sum())
        needed = getattr(rules, repeated) - asked
        text += (f", and so would {number_words(needed)} more such request{'' if needed == 1 else 's'} within "
                 f"{rules.requests_window_days} days")
    return text


def _window(table: FeatureTable, row: int, value: str, window: int) -> np.ndarray:
    """The patient's last `window` rows ending at `row` that have `value` recorded, oldest first."""
    rows = table.last_rows(row, window)
    return rows[~np.isnan(table[value][rows].astype("float64"))]


def _since_held(table: FeatureTable, rows: np.ndarray, *rules: str) -> np.ndarray:
    """The rows after the last one where any of these rules held: what counted then is the level history's to tell,
    and "did not hold" of it would be false (code review)."""
    held = np.logical_or.reduce([np.asarray(table[f"rule_{r}"][rows], dtype=bool) for r in rules])
    return rows[np.arange(len(rows)) > (np.flatnonzero(held)[-1] if held.any() else -1)]


def _trailing(flags: np.ndarray) -> int:
    """How many of the last values are True in a row."""
    n = 0
    while n < len(flags) and flags[len(flags) - 1 - n]:
        n += 1
    return n


def _spans_days(persist: int, min_days: int) -> bool:
    """Whether a run of `persist` answers must span `min_days` days to count ([persistence] min_days)."""
    return persist > 1 and min_days > 1


def _over_days(persist: int, min_days: int) -> str:
    """' over at least 5 days' where answers must span days to persist, else ''."""
    return f" over at least {min_days} days" if _spans_days(persist, min_days) else ""


def _days_apart(persist: int, min_days: int) -> str:
    """', the first and last at least 5 days apart' where several check-ins must be seen, else ''."""
    return f", the first and last at least {min_days} days apart" if _spans_days(persist, min_days) else ""


def _still_needed(held: int, persist: int, noun: str, would: str, min_days: int = 1,
                  first_day: int | None = None) -> str:
    """'the next check-in decides; 4 or more again would count', or how many more it takes when more than one; with
    `min_days` (the span a run of answers needs, `[persistence]`), a run long enough but too short in days waits for
    an answer on or after `first_day` (the run's first) plus that many days, said as a date: "the next check-in
    decides" was false of one two days later (code review), and "5 days after the first of these" left the reader to
    work out which (clinician's browser review)."""
    over_days = _over_days(persist, min_days)
    after = (f"on or after {date_words(first_day + min_days)}" if first_day is not None
             else f"at least {min_days} days after the first of these")
    if over_days and held >= persist:
        return f"{would} again at a {noun} {after} would count ({persist} {noun}s in a row{over_days})"
    remaining = max(persist - held, 1)
    if remaining == 1 and over_days:  # the next one within the days would not count either (clinician's second review)
        return (f"the next {noun} {after} decides; {would} again would count ({persist} {noun}s in a row"
                f"{over_days})")
    if remaining == 1:
        return f"the next {noun} decides; {would} again would count ({persist} {noun}s in a row{over_days})"
    return f"{would} at the next {remaining} {noun}s would count ({persist} in a row{over_days})"


def _craving(table: FeatureTable, row: int, rules: RuleSettings, counted: set[str]) -> list[NotCounted]:
    """A high or risen craving answer among the recent check-ins that has not held (yet)."""
    if counted & _CRAVING_RULES:
        return []
    rows = table.patient_rows(row)
    rows = rows[~np.isnan(table["craving"][rows])]
    met = table["craving_high_met"][rows] | table["craving_raw_rise_met"][rows]  # the features' own tests, not a copy
    win = _since_held(table, rows[-rules.signs_window_checkins:], "craving_rising", "craving_high")
    hit = win[met[np.isin(rows, win)]]
    if not len(hit):
        return []
    last = hit[-1]
    is_high = bool(table["craving"][last] >= table["thr_craving_high"][last])
    counts = [math.ceil(table["thr_craving_high"][last] - 1e-9)]
    why = [f"{counts[0]} or more counts as high"]
    if not np.isnan(table["craving_baseline"][last]):
        counts.append(math.ceil(table["craving_baseline"][last] + table["thr_craving_rise"][last] - 1e-9))
        why.append(f"the patient's baseline is {baseline_words(table['craving_baseline'][last])}, {counts[1]} or more "
                   "counts as a rise")
    if sud_note(table, last, "craving_high"):
        why.append(f"{'both ' if len(why) > 1 else ''}lowered for a history of substance use disorder")
    seen = f"Craving {values_words(table['craving'][hit])} of 10 on {list_dates(table['day'][hit])} ({'; '.join(why)})"
    after = win[win > last]
    if len(after):
        text = (f"{seen}; {values_words(table['craving'][after])} at the {count_words(len(after), 'check-in')} since: "
                f"not counted, as it did not hold at {rules.craving_persist_checkins} check-ins in a row"
                f"{_over_days(rules.craving_persist_checkins, rules.persistence_min_days)}")
    else:  # the latest answer: the next check-ins decide, which is no reassurance
        held = _trailing(met)
        text = f"{seen}: " + _still_needed(held, rules.craving_persist_checkins, "check-in", f"{min(counts)} or more",
                                           rules.persistence_min_days,
                                           int(table["day"][rows[len(rows) - held]]) if held else None)
    return [NotCounted("craving_high" if is_high else "craving_rising", text, dates_of(table, hit))]


def _signs(table: FeatureTable, row: int, rules: RuleSettings, held: set[str], counted: set[str]) -> list[NotCounted]:
    """A specific warning sign answered 'clearly' in the recent check-ins, but not often enough to count yet.

    A sign that a counted drift or corroboration reason already quotes is left out: "not counted" beside it would
    contradict that reason.
    """
    if "specific_burden_drift" in counted:
        held = held | set(weighty_specific_signs(rules))
    if "corroborating_sign" in counted:
        held = held | set(corroborated_signs(table, row, rules))
    found = []
    for sign in persistent_signs(rules):
        if sign in held:
            continue
        _, hit, text = sign_window(table, row, rules, sign, rules.signs_window_checkins)
        if len(hit):
            persist = sign_persist_checkins(sign, rules)
            found.append(NotCounted(
                "specific_sign_persistent",
                f"{text}: not counted until it is seen on {persist} of the last {rules.signs_window_checkins} "
                f"check-ins{_days_apart(persist, rules.persistence_min_days)}",
                dates_of(table, hit), sign))
    return found


def _light_use(table: FeatureTable, row: int, rules: RuleSettings, counted: set[str]) -> list[NotCounted]:
    """A lighter answer ('a little') on use outside treatment, which no rule counts on its own."""
    if counted & _USE_RULES:
        return []
    often = set(corroborated_signs(table, row, rules))  # light often enough to support a craving signal
    quoted = often if "corroborating_sign" in counted else set()
    win = table.last_rows(row, rules.corroboration_window_checkins)
    found = []
    for sign in rules.use_signs:
        if sign in quoted:
            continue
        scores = table[sign][win].astype("float64")
        hit = win[(scores >= rules.corroboration_sign_min_score) & (scores < rules.signs_min_score)]
        if len(hit):
            found.append(NotCounted(
                "use_outside_treatment_reported",
                f"{warning_sign(sign).label}: answered '{answer_words(rules.corroboration_sign_min_score)}' on "
                f"{list_dates(table['day'][hit])}: not counted" + (_why_not_supporting(counted) if sign in often else "")
                + f"; '{answer_words(rules.signs_min_score)}' or more once would count as use outside treatment "
                "reported (amber on its own)", dates_of(table, hit), sign))
    return found


def _why_not_supporting(counted: set[str]) -> str:
    """Why light answers that support a craving signal elsewhere do not here: the same evidence read as counted for one
    patient and not for another, with nothing to say why (clinician review)."""
    if not counted & _CRAVING_RULES:
        return " (answered this often it supports a craving signal, and there is none now)"
    stronger = [rule.id for rule in RULES if rule.family == "checklist" and rule.id in counted]
    if stronger:
        return (f" on its own: the warning-sign checklist already counts through "
                f"{_TITLES_IN_TEXT.get(stronger[0], stronger[0])} above, and each kind of evidence counts once")
    return ""


#: How a counted checklist rule is named inside a line ("the checklist drift above").
_TITLES_IN_TEXT = {"specific_sign_persistent": "a persistent warning sign",
                   "specific_burden_drift": "the checklist drift"}


def _sds(table: FeatureTable, row: int, rules: RuleSettings, counted: set[str]) -> list[NotCounted]:
    """A high SDS that has not risen from the patient's own baseline, or has not held yet, with its recent course."""
    if "sds_high_rising" in counted:
        return []
    answered = _window(table, row, "sds_total", rules.signs_window_checkins)
    if not len(answered) or table["sds_total"][answered[-1]] < table["thr_sds"][answered[-1]]:
        return []
    last = answered[-1]
    if table["rule_sds_high_rising"][last]:  # it counted at that answer: the level history says so
        return []
    total, baseline = table["sds_total"][last], table["sds_baseline"][last]
    rise = table["thr_sds_rise"][last]
    text = (f"SDS total {num(total)} of 15 on {date_words(table['day'][last])}, at or above the threshold of "
            f"{num(table['thr_sds'][last])}{sud_note(table, last, 'sds_threshold')}")
    rows = table.patient_rows(row)
    unanswered = int((rows > last).sum())  # check-ins since the latest complete answer
    if np.isnan(baseline):
        text += f"; the patient's own baseline is not set yet (their first {rules.baseline_checkins} complete answers)"
        verdict = "not counted until it is"
    elif total - baseline < rise:
        text += f" but less than {num(rise)} points above the patient's own baseline of {baseline_words(baseline)}"
        verdict = "a high SDS that has not risen is not counted"
    else:
        text += f" and {num(total - baseline)} points above the patient's baseline of {baseline_words(baseline)}"
        run = table.answered_run(last, "sds_total", "sds_met")
        over_days = _over_days(rules.sds_persist_checkins, rules.persistence_min_days)
        verdict = _still_needed(len(run), rules.sds_persist_checkins, "complete answer", "high and risen",
                                rules.persistence_min_days, int(table["day"][run[0]]) if len(run) else None)
        if unanswered:
            verdict = f"not counted until it holds at {rules.sds_persist_checkins} complete answers in a row{over_days}"
    complete = rows[~np.isnan(table["sds_total"][rows])]
    course = complete[complete <= last][-_SDS_COURSE:]
    if len(course) > 1:  # a dip or a climb reads differently from the same number alone (clinical lead)
        text += (f"; the last {len(course)} complete answers were "
                 f"{join_words([num(v) for v in table['sds_total'][course]])}, {span_words(table['day'][course])}")
    if unanswered:
        text += f"; not answered in full at the {count_words(unanswered, 'check-in')} since"
    control = float(table["sds_control"][last])
    text += f": {verdict}; the items on loss of control, worry and wishing to stop give {num(control)} of 9"
    if total - control > control:  # reliance named only where its two items carry the score (clinical lead)
        text += f", the two that also rise with reliance on treatment {num(total - control)} of 6"
    return [NotCounted("sds_high_rising", text, dates_of(table, np.array([last])))]


def _nonspecific(table: FeatureTable, row: int, rules: RuleSettings, counted: set[str]) -> list[NotCounted]:
    """Non-specific signs (sleep, appetite, withdrawal, dissociation) risen at a recent check-in without holding."""
    if "nonspecific_signs_rising" in counted:
        return []
    win = _since_held(table, _window(table, row, "nonspecific_burden", rules.signs_window_checkins),
                      "nonspecific_signs_rising")
    hit = win[table["nonspecific_met"][win].astype(bool)]
    if not len(hit):
        return []
    last = hit[-1]
    text = (
        f"Non-specific warning signs rose from a baseline burden of {baseline_words(table['nonspecific_baseline'][last])} "
        f"to {values_words(table['nonspecific_burden'][hit])} on {list_dates(table['day'][hit])}"
        + mainly_signs(table, last) + sud_note(table, last, "nonspecific_rise") + relapse_context(table, row)
        + f": not counted until the rise holds at {rules.nonspecific_persist_checkins} check-ins in a row"
        + f"{_over_days(rules.nonspecific_persist_checkins, rules.persistence_min_days)} (and then "
        "amber at most: a depressive relapse and PTSD raise them too)"
    )
    return [NotCounted("nonspecific_signs_rising", text, dates_of(table, hit))]


def _dose(table: FeatureTable, row: int, rules: RuleSettings, counted: set[str]) -> list[NotCounted]:
    """A dose above the plan within the recent sessions, and what is still missing for the dose rule to count.

    Only while the rise is recent (within the interval rule's window of recent sessions, 3 by default): a
    titration months old read as new at every visit (clinical lead).
    """
    if "dose_above_plan_after_request" in counted or not table["dose_above_met"][row]:
        return []
    run = table.answered_run(row, "dose_measure", "dose_above_met", cap=len(table.patient_rows(row)))
    if len(run) > rules.interval_window_sessions or table["rule_dose_above_plan_after_request"][run].any():
        return []
    unit = table["dose_unit"][row]
    decimals = 2 if unit == "mg/kg" else 0
    dose, reference = float(table["dose_measure"][row]), float(table["dose_reference"][row])
    first = run[0]
    same_route = [r for r in table.patient_rows(first)[:-1] if table["route"][r] == table["route"][row]]
    previous = float(table["dose_measure"][same_route[-1]]) if same_route else math.nan
    if table["dose_reference_is_plan"][row]:
        percent = round((round(dose, decimals) / round(reference, decimals) - 1) * 100)
        against = f"{percent}% above the planned {reference:.{decimals}f} {unit}"
    else:  # fixed-dose routes step between licensed doses (esketamine 28, 56, 84 mg): no percentage
        against = (f"above {reference:.{decimals}f} {unit}, the median of the first {rules.baseline_sessions} "
                   f"{table['route'][row]} sessions")
    if not same_route:
        seen = f"Dose {dose:.{decimals}f} {unit} at the first {table['route'][row]} session, {date_words(table['day'][first])}"
    elif math.isnan(previous):
        seen = f"Dose {dose:.{decimals}f} {unit} from {date_words(table['day'][first])} (the one before not recorded)"
    else:
        seen = f"Dose raised from {previous:.{decimals}f} to {dose:.{decimals}f} {unit} on {date_words(table['day'][first])}"
    seen += f", {against}"
    if len(run) > 1:
        seen += f" ({count_words(len(run), 'session')} at that level or above)"
    win = table.rows_from(row, "dose_request_from")
    asked = win[table["dose_increase_request"][win].astype(bool)]
    # More than the clinic's "times the plan" of dosing.toml (the factor Log session asks about above a planned mg/kg)
    far_above = dose > dose_checks().above_plan_factor * reference
    if not len(asked) and far_above:  # 6.62 mg/kg against 0.75 read as "the clinician's titration" (browser pass)
        times = "the plan" if table["dose_reference_is_plan"][row] else "that median"
        why = (f"{dose / reference:.1f} times {times}: check the record (a typing error, or a dose outside the plan); "
               "the patient did not ask for a higher dose at the last "
               f"{count_words(len(win), 'session')} within {rules.requests_window_days} days, so it is not counted as a "
               "dependence signal")
    elif not len(asked):
        why = (f"the patient did not ask for a higher dose at the last {count_words(len(win), 'session')} within "
               f"{rules.requests_window_days} days: read as the clinician's titration, not counted")
    else:
        before = float(table["dose_before_request"][row])
        if math.isnan(before):
            why = (f"the patient asked for more ({list_dates(table['day'][asked])}), but the dose before the request "
                   "is not recorded: not counted")
        elif dose < before * (1 + rules.dose_step_fraction):
            why = (f"the patient asked for more ({list_dates(table['day'][asked])}), but the dose is not "
                   f"{round(rules.dose_step_fraction * 100)}% above the {before:.{decimals}f} {unit} before the "
                   "request: not counted")
        else:
            was = "" if previous == before else f", from {before:.{decimals}f} {unit} before the request"
            why = (f"after the patient asked for more ({list_dates(table['day'][asked])}){was}: "
                   + _still_needed(len(run), rules.dose_persist_sessions, "session",
                                   "above plan" if table["dose_reference_is_plan"][row] else "above that median"))
    return [NotCounted("dose_above_plan_after_request", f"{seen}; {why}",
                       dates_of(table, np.concatenate([asked, run]).astype("int64")))]


def _intervals(table: FeatureTable, row: int, rules: RuleSettings, counted: set[str]) -> list[NotCounted]:
    """An early session among the recent ones, too few to count as the intervals shrinking."""
    if "interval_shrinking" in counted:
        return []
    recent = table.last_rows(row, rules.interval_window_sessions)
    win = _since_held(table, recent, "interval_shrinking")
    hit = win[table["early_interval"][win].astype(bool)]
    if not len(hit):
        return []
    reference = float(table["reference_interval_days"][row])
    plan = "planned" if not np.isnan(float(table["planned_interval_days"][row])) else "patient's usual"
    asked = hit[table["early_request"][hit].astype(bool)]
    one = len(hit) == 1
    above = ", as the request above says" if counted & {"early_request_recent", "early_requests_repeated"} else ""
    if len(asked) == len(hit):  # the same event as the request listed above, not a second one (clinical lead)
        asked_early = f"; the patient asked to have {'it' if one else 'them'} early{above}"
    elif len(asked):
        asked_early = f"; the patient asked to have the one on {list_dates(table['day'][asked])} early{above}"
    else:
        asked_early = ""
    text = (
        f"{intervals_out_of(len(hit), len(recent), rules)} {'was' if one else 'were'} shorter than {round(rules.interval_early_fraction * 100)}% of the {plan} "
        f"{num(reference)} days: {values_words(table['interval_days'][hit])} days (the session{'' if one else 's'} on "
        f"{list_dates(table['day'][hit])}){asked_early}; not counted until "
        f"{rules.interval_early_sessions} of the last {rules.interval_window_sessions} are this short"
    )
    return [NotCounted("interval_shrinking", text, dates_of(table, hit))]
