"""What a clinician would notice in the recent records that no rule counts, and what would make it count.

A green level beside a craving of 8 read as if the engine had missed it: each observation here says
what was seen and why it is not counted (a single high week, a sign seen once, a light answer on use
outside treatment, a high but stable SDS, a dose just raised without the patient asking, one early
session, a supporting observation alone), in the numbers of the rules in use. Where the next record
decides, it says so rather than reassure (clinical lead). It reads the same evaluation as the level,
as of the same date, so it is causal too; it never changes a level and never repeats a counted
reason. The look-back is each rule's own recent window (rules.toml).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ketawatch.risk.engine import evaluate
from ketawatch.risk.features import FeatureTable, corroborating_signs, persistent_signs, weighty_specific_signs
from ketawatch.risk.reasons import (
    POINTS,
    RULES,
    _answer,
    _baseline,
    _check_ins,
    _dates_of,
    _date,
    _join,
    _list_dates,
    _num,
    _sign_window,
    _span,
    _sud_note,
    _values,
)
from ketawatch.risk.rules import RuleSettings, load_rules
from ketawatch.risk.scoring import nonspecific_signs
from seed_data.catalogue import instruments, warning_sign
from store.frames import Records

_CRAVING_RULES = {"craving_rising", "craving_high", "craving_drift"}
_USE_RULES = {"use_outside_treatment_reported", "use_outside_treatment_repeated"}
#: A supporting rule's request column and the amber rule another such request would complete.
_REQUESTS = {"dose_request_recent": ("dose_increase_request", "dose_request_from", "dose_requests_repeated"),
             "early_request_recent": ("early_request", "early_request_from", "interval_requests_repeated")}


@dataclass(frozen=True)
class NotCounted:
    """One thing seen in the recent record that no rule counts, with the dates it rests on and what would count."""

    rule_id: str  # the rule it would count under
    text: str
    evidence_dates: tuple[dt.date, ...]
    sign: str | None = None


def sud_history_note(rules: RuleSettings | None = None) -> str:
    """What a history of substance use disorder does to the rules, for beside the patient's 'SUD history: Yes'."""
    rules = rules or load_rules()
    return (f"graded thresholds lowered to {round(rules.sud_sensitivity * 100)}% of the clinic's, so signals count "
            "sooner; never a reason on its own")


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
        for reason in ev.reasons(np.array([position]), on_green=True)[0]:
            text = f"{reason.text}: {_alone(reason.rule_id, ev.sessions, s_row, rules)}"
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


def _alone(rule_id: str, sessions: FeatureTable, row: int, rules: RuleSettings) -> str:
    """Why a supporting observation leaves a level green, and what would make it amber, from the settings in use."""
    more = rules.combination_amber_min_points - POINTS["weak"]
    text = (f"on its own it does not raise the level; {_count_words(more)} more supporting observation"
            f"{'' if more == 1 else 's'} of another kind would make it amber")
    if rule_id in _REQUESTS and row >= 0:
        column, window_from, repeated = _REQUESTS[rule_id]
        asked = int(sessions[column][sessions.rows_from(row, window_from)].astype(bool).sum())
        needed = getattr(rules, repeated) - asked
        text += (f", and so would {_count_words(needed)} more such request{'' if needed == 1 else 's'} within "
                 f"{rules.requests_window_days} days")
    return text


def _count_words(n: int) -> str:
    return {1: "one", 2: "two", 3: "three"}.get(int(n), str(int(n)))


def _window(table: FeatureTable, row: int, value: str, window: int) -> np.ndarray:
    """The patient's last `window` rows ending at `row` that have `value` recorded, oldest first."""
    rows = table.last_rows(row, window)
    return rows[~np.isnan(table[value][rows].astype("float64"))]


def _craving(table: FeatureTable, row: int, rules: RuleSettings, counted: set[str]) -> list[NotCounted]:
    """A high or risen craving answer among the recent check-ins that has not held (yet)."""
    if counted & _CRAVING_RULES:
        return []
    win = _window(table, row, "craving", rules.signs_window_checkins)
    craving, baseline = table["craving"][win], table["craving_baseline"][win]
    high = craving >= table["thr_craving_high"][win]
    risen = ~np.isnan(baseline) & (craving - baseline >= table["thr_craving_rise"][win])
    hit = win[high | risen]
    if not len(hit):
        return []
    last = hit[-1]
    is_high = bool(table["craving"][last] >= table["thr_craving_high"][last])
    counts = [math.ceil(table["thr_craving_high"][last] - 1e-9)]
    why = [f"{counts[0]} or more counts as high"]
    if not np.isnan(table["craving_baseline"][last]):
        counts.append(math.ceil(table["craving_baseline"][last] + table["thr_craving_rise"][last] - 1e-9))
        why.append(f"the patient's baseline is {_baseline(table['craving_baseline'][last])}, {counts[1]} or more "
                   "counts as a rise")
    if _sud_note(table, last, "craving_high"):
        why.append("both lowered for a history of substance use disorder")
    seen = f"Craving {_values(table['craving'][hit])} of 10 on {_list_dates(table['day'][hit])} ({'; '.join(why)})"
    after = win[win > last]
    if len(after):
        text = (f"{seen}; {_values(table['craving'][after])} at the {_check_ins(len(after)).removeprefix('1 ')} since: "
                f"not counted, as it did not hold at {rules.craving_persist_checkins} check-ins in a row")
    else:  # the latest answer: the next check-in decides, which is no reassurance
        text = (f"{seen}: the next check-in decides; {min(counts)} or more again would count "
                f"({rules.craving_persist_checkins} check-ins in a row)")
    return [NotCounted("craving_high" if is_high else "craving_rising", text, _dates_of(table, hit))]


def _signs(table: FeatureTable, row: int, rules: RuleSettings, held: set[str], counted: set[str]) -> list[NotCounted]:
    """A specific warning sign answered 'clearly' in the recent check-ins, but not often enough to count yet.

    A sign that a counted drift or corroboration reason already quotes is left out: "not counted" beside it would
    contradict that reason.
    """
    if "specific_burden_drift" in counted:
        held = held | set(weighty_specific_signs(rules))
    if "corroborating_sign" in counted:
        held = held | _corroborating(table, row, rules)
    found = []
    for sign in persistent_signs(rules):
        if sign in held:
            continue
        _, hit, text = _sign_window(table, row, rules, sign, rules.signs_window_checkins)
        if len(hit):
            found.append(NotCounted(
                "specific_sign_persistent",
                f"{text}: not counted until it is seen on {rules.signs_persist_checkins} of the last "
                f"{rules.signs_window_checkins} check-ins", _dates_of(table, hit), sign))
    return found


def _corroborating(table: FeatureTable, row: int, rules: RuleSettings) -> set[str]:
    """The signs the counted corroboration reason quotes (answered lightly often enough in its window)."""
    window = table.last_rows(row, rules.corroboration_window_checkins)
    return {sign for sign in corroborating_signs(rules)
            if (table[sign][window].astype("float64") >= rules.corroboration_sign_min_score).sum()
            >= rules.corroboration_persist_checkins}


def _light_use(table: FeatureTable, row: int, rules: RuleSettings, counted: set[str]) -> list[NotCounted]:
    """A lighter answer ('a little') on use or seeking outside treatment, which no rule counts on its own."""
    if counted & _USE_RULES:
        return []
    quoted = _corroborating(table, row, rules) if "corroborating_sign" in counted else set()
    found = []
    for sign in rules.use_signs:
        if sign in quoted:
            continue
        win = table.last_rows(row, rules.corroboration_window_checkins)
        scores = table[sign][win].astype("float64")
        hit = win[(scores >= rules.corroboration_sign_min_score) & (scores < rules.signs_min_score)]
        if len(hit):
            found.append(NotCounted(
                "use_outside_treatment_reported",
                f"{warning_sign(sign).label}: answered '{_answer(rules.corroboration_sign_min_score)}' on "
                f"{_list_dates(table['day'][hit])}: not counted; '{_answer(rules.signs_min_score)}' or more once "
                "would be amber (use outside treatment reported)", _dates_of(table, hit), sign))
    return found


def _sds(table: FeatureTable, row: int, rules: RuleSettings, counted: set[str]) -> list[NotCounted]:
    """A high SDS that has not risen from the patient's own baseline, or has not held yet, with its recent course."""
    if "sds_high_rising" in counted:
        return []
    answered = _window(table, row, "sds_total", rules.signs_window_checkins)
    if not len(answered) or table["sds_total"][answered[-1]] < table["thr_sds"][answered[-1]]:
        return []
    last = answered[-1]
    total, baseline = table["sds_total"][last], table["sds_baseline"][last]
    rise = table["thr_sds_rise"][last]
    text = (f"SDS total {_num(total)} of 15 on {_date(table['day'][last])}, at or above the threshold of "
            f"{_num(table['thr_sds'][last])}{_sud_note(table, last, 'sds_threshold')}")
    rows = table.patient_rows(row)
    unanswered = int((rows > last).sum())  # check-ins since the latest complete answer
    if np.isnan(baseline):
        text += f"; the patient's own baseline is not set yet (their first {rules.baseline_checkins} complete answers)"
        verdict = "not counted until it is"
    elif total - baseline < rise:
        text += f" but less than {_num(rise)} points above the patient's own baseline of {_baseline(baseline)}"
        verdict = "a high SDS that has not risen is not counted"
    else:
        text += f" and {_num(total - baseline)} points above the patient's baseline of {_baseline(baseline)}"
        verdict = (f"not counted until it holds at {rules.sds_persist_checkins} complete answers in a row" if unanswered
                   else f"the next complete answer decides ({rules.sds_persist_checkins} in a row count)")
    complete = rows[~np.isnan(table["sds_total"][rows])]
    course = complete[complete <= last][-5:]
    if len(course) > 1:  # a dip or a climb reads differently from the same number alone (clinical lead)
        text += (f"; the last {len(course)} complete answers were "
                 f"{_join([_num(v) for v in table['sds_total'][course]])}, {_span(table['day'][course])}")
    if unanswered:
        text += f"; not answered in full at the {_check_ins(unanswered).removeprefix('1 ')} since"
    text += f": {verdict}"
    control = float(table["sds_control"][last])
    text += f"; the items on loss of control, worry and wishing to stop give {_num(control)} of 9"
    if control < float(table["thr_sds_control"][last]):  # reliance only where the reliance items carry the score
        text += ", so the score comes mostly from the two that also rise with reliance on treatment"
    return [NotCounted("sds_high_rising", text, _dates_of(table, np.array([last])))]


def _nonspecific(table: FeatureTable, row: int, rules: RuleSettings, counted: set[str]) -> list[NotCounted]:
    """Non-specific signs (sleep, appetite, withdrawal, dissociation) risen at a recent check-in without holding."""
    if "nonspecific_signs_rising" in counted:
        return []
    win = _window(table, row, "nonspecific_burden", rules.signs_window_checkins)
    hit = win[table["nonspecific_met"][win].astype(bool)]
    if not len(hit):
        return []
    last = hit[-1]
    scores = sorted(((float(table[s][last]), s) for s in nonspecific_signs() if float(table[s][last]) > 0),
                    key=lambda item: -item[0])
    mainly = _join([f"{warning_sign(s).label.lower()} ({_num(v)})" for v, s in scores[:3]])
    text = (
        f"Non-specific warning signs rose from a baseline burden of {_baseline(table['nonspecific_baseline'][last])} "
        f"to {_values(table['nonspecific_burden'][hit])} on {_list_dates(table['day'][hit])}"
        + (f", mainly {mainly}" if mainly else "") + _sud_note(table, last, "nonspecific_rise")
        + f": not counted until the rise holds at {rules.nonspecific_persist_checkins} check-ins in a row (and then "
        "amber at most: a depressive relapse and PTSD raise them too)"
    )
    step = instruments()["phq9"]["reliable_change"]
    low, now = float(table["phq9_low"][last]), float(table["phq9_last"][last])
    if not np.isnan(low) and now - low >= step:
        rows = table.patient_rows(last)
        on = rows[~np.isnan(table["phq9"][rows].astype("float64"))][-1]
        text += f"; PHQ-9 rose from {_num(low)} to {_num(now)} (on {_date(table['day'][on])})"
    return [NotCounted("nonspecific_signs_rising", text, _dates_of(table, hit))]


def _dose(table: FeatureTable, row: int, rules: RuleSettings, counted: set[str]) -> list[NotCounted]:
    """A dose raised above the plan within the recent sessions, and what is still missing for the dose rule to count.

    Only while the rise is recent (within the interval rule's window of sessions): a titration months old read as
    new at every visit (clinical lead).
    """
    if "dose_above_plan_after_request" in counted or not table["dose_above_met"][row]:
        return []
    run = table.answered_run(row, "dose_measure", "dose_above_met", cap=len(table.patient_rows(row)))
    if len(run) > rules.interval_window_sessions:
        return []
    unit = table["dose_unit"][row]
    decimals = 2 if unit == "mg/kg" else 0
    dose, reference = float(table["dose_measure"][row]), float(table["dose_reference"][row])
    first = run[0]
    earlier = first - 1 if first > table.patient_rows(row)[0] else -1
    previous = float(table["dose_measure"][earlier]) if earlier >= 0 else math.nan
    from_dose = "" if math.isnan(previous) else f" from {previous:.{decimals}f} {unit}"
    if table["dose_reference_is_plan"][row]:
        percent = round((round(dose, decimals) / round(reference, decimals) - 1) * 100)
        against = f"{percent}% above the planned {reference:.{decimals}f} {unit}"
    else:  # fixed-dose routes step between licensed doses (esketamine 28, 56, 84 mg): no percentage
        against = (f"above {reference:.{decimals}f} {unit}, the median of the first {rules.baseline_sessions} "
                   f"{table['route'][row]} sessions")
    seen = f"Dose raised{from_dose} to {dose:.{decimals}f} {unit} on {_date(table['day'][first])}, {against}"
    if len(run) > 1:
        seen += f" ({_check_ins(len(run)).removeprefix('1 ').replace('check-in', 'session')} at that level or above)"
    win = table.rows_from(row, "dose_request_from")
    asked = win[table["dose_increase_request"][win].astype(bool)]
    if not len(asked):
        why = (f"the patient did not ask for a higher dose at the last {len(win)} sessions within "
               f"{rules.requests_window_days} days: read as the clinician's titration, not counted")
    else:
        before = float(table["dose_before_request"][row])
        if math.isnan(before):
            why = (f"the patient asked for more ({_list_dates(table['day'][asked])}), but the dose before the request "
                   "is not known (no weight recorded then): not counted")
        elif dose < before * (1 + rules.dose_step_fraction):
            why = (f"the patient asked for more ({_list_dates(table['day'][asked])}), but the dose is not "
                   f"{round(rules.dose_step_fraction * 100)}% above the {before:.{decimals}f} {unit} before the "
                   "request: not counted")
        else:
            was = "" if previous == before else f", from {before:.{decimals}f} {unit} before the request"
            why = (f"after the patient asked for more ({_list_dates(table['day'][asked])}){was}: the next session "
                   f"decides; above plan again would count ({rules.dose_persist_sessions} sessions in a row)")
    return [NotCounted("dose_above_plan_after_request", f"{seen}; {why}",
                       _dates_of(table, np.concatenate([asked, run]).astype("int64")))]


def _intervals(table: FeatureTable, row: int, rules: RuleSettings, counted: set[str]) -> list[NotCounted]:
    """An early session among the recent ones, too few to count as the intervals shrinking."""
    if "interval_shrinking" in counted:
        return []
    win = table.last_rows(row, rules.interval_window_sessions)
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
        asked_early = f"; the patient asked to have the one on {_list_dates(table['day'][asked])} early{above}"
    else:
        asked_early = ""
    text = (
        f"{len(hit)} of the last {len(win)} intervals between sessions {'was' if one else 'were'} shorter than "
        f"{round(rules.interval_early_fraction * 100)}% of the {plan} {_num(reference)} days: "
        f"{_values(table['interval_days'][hit])} days (the session{'' if one else 's'} on "
        f"{_list_dates(table['day'][hit])}){asked_early}; not counted until "
        f"{rules.interval_early_sessions} of the last {rules.interval_window_sessions} are"
    )
    return [NotCounted("interval_shrinking", text, _dates_of(table, hit))]
