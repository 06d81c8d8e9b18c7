"""What a clinician would notice in the recent records that no rule counts, and what would make it count.

A green level beside a craving of 8 read as if the engine had missed it: each observation here says
what was seen and why it is not counted (one high week, a sign seen once, a high but stable SDS, a
dose titrated without the patient asking), in the numbers of the rules in use. It reads the same
evaluation as the level, as of the same date, so it is causal too; it never changes a level and
never repeats a counted reason. The look-back is each rule's own window (rules.toml).
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
    RULES,
    _baseline,
    _check_ins,
    _dates_of,
    _date,
    _join,
    _list_dates,
    _num,
    _sign_window,
    _values,
)
from ketawatch.risk.rules import RuleSettings, load_rules
from ketawatch.risk.scoring import nonspecific_signs
from seed_data.catalogue import instruments, warning_sign
from store.frames import Records

_CRAVING_RULES = {"craving_rising", "craving_high", "craving_drift"}
_SUPPORTING = "supporting evidence, counted beside other signals, but on its own it does not raise the level"


@dataclass(frozen=True)
class NotCounted:
    """One thing seen in the recent record that no rule counts, with the dates it rests on and what would count."""

    rule_id: str | None  # the rule it would count under (None for the SUD history, which no rule counts)
    text: str
    evidence_dates: tuple[dt.date, ...]
    sign: str | None = None


def seen_not_counted(
    records: Records, patient_id: str, *, as_of: dt.date | None = None, rules: RuleSettings | None = None, tz: str
) -> list[NotCounted]:
    """The patient's recent observations that no rule counted as of `as_of` (default today in `tz`), check-ins first."""
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
        found += [NotCounted(r.rule_id, f"{r.text}: {_SUPPORTING}", r.evidence_dates, r.sign)
                  for r in ev.reasons(np.array([position]), on_green=True)[0]]
    if c_row >= 0:
        c = ev.checkins
        signs_held = {sign for sign in persistent_signs(rules) if daily[f"sign_{sign}"][position]}
        found += _craving(c, c_row, rules, counted)
        found += _signs(c, c_row, rules, signs_held, counted)
        found += _sds(c, c_row, rules, counted)
        found += _nonspecific(c, c_row, rules, counted)
    if s_row >= 0:
        s = ev.sessions
        found += _dose(s, s_row, rules, counted)
        found += _intervals(s, s_row, rules, counted)
    if bool(ev.patients["sud_history"].iloc[0]):
        found.append(NotCounted(None, (
            "History of substance use disorder: for this patient the rules' graded thresholds (craving, SDS, "
            f"warning-sign burden, dose above plan) are {round(rules.sud_sensitivity * 100)}% of the clinic's, so a "
            "signal counts sooner; the history is never a reason on its own"), ()))
    return found


def _window(table: FeatureTable, row: int, value: str, window: int) -> np.ndarray:
    """The patient's last `window` rows ending at `row` that have `value` recorded, oldest first."""
    rows = table.last_rows(row, window)
    return rows[~np.isnan(table[value][rows].astype("float64"))]


def _craving(table: FeatureTable, row: int, rules: RuleSettings, counted: set[str]) -> list[NotCounted]:
    """A high or risen craving answer in the recent check-ins that has not held: one bad week is not a trend."""
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
    why = []
    is_high = bool(table["craving"][last] >= table["thr_craving_high"][last])
    if is_high:
        why.append(f"{math.ceil(table['thr_craving_high'][last] - 1e-9)} or more counts as high")
    if not np.isnan(table["craving_baseline"][last]):
        threshold = table["craving_baseline"][last] + table["thr_craving_rise"][last]
        why.append(f"the patient's baseline is {_baseline(table['craving_baseline'][last])}, "
                   f"{math.ceil(threshold - 1e-9)} or more counts as a rise")
    after = win[win > last]
    if len(after):
        since = (f"; {_values(table['craving'][after])} at the {_check_ins(len(after)).removeprefix('1 ')} since: not "
                 f"counted, as it did not hold at {rules.craving_persist_checkins} check-ins in a row")
    else:
        since = f": not counted until it holds at {rules.craving_persist_checkins} check-ins in a row"
    text = (
        f"Craving {_values(table['craving'][hit])} of 10 on {_list_dates(table['day'][hit])} ({'; '.join(why)})"
        f"{since} (one high week is not a trend)"
    )
    return [NotCounted("craving_high" if is_high else "craving_rising", text, _dates_of(table, hit))]


def _signs(table: FeatureTable, row: int, rules: RuleSettings, held: set[str], counted: set[str]) -> list[NotCounted]:
    """A specific warning sign answered 'clearly' in the recent check-ins, but not often enough to count yet.

    A sign that a counted drift or corroboration reason already quotes is left out: "not counted" beside it would
    contradict that reason.
    """
    if "specific_burden_drift" in counted:
        held = held | set(weighty_specific_signs(rules))
    if "corroborating_sign" in counted:
        window = table.last_rows(row, rules.corroboration_window_checkins)
        held = held | {sign for sign in corroborating_signs(rules)
                       if (table[sign][window].astype("float64") >= rules.corroboration_sign_min_score).sum()
                       >= rules.corroboration_persist_checkins}
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


def _sds(table: FeatureTable, row: int, rules: RuleSettings, counted: set[str]) -> list[NotCounted]:
    """A high SDS that has not risen from the patient's own baseline (reliance on treatment), or has not held yet."""
    if "sds_high_rising" in counted:
        return []
    answered = _window(table, row, "sds_total", rules.signs_window_checkins)
    if not len(answered) or table["sds_total"][answered[-1]] < table["thr_sds"][answered[-1]]:
        return []
    last = answered[-1]
    total, baseline = table["sds_total"][last], table["sds_baseline"][last]
    seen = f"SDS total {_num(total)} of 15 on {_date(table['day'][last])}, at or above the threshold of {_num(table['thr_sds'][last])}"
    if np.isnan(baseline):
        why = (f"not counted until the patient's own baseline is set (their first {rules.baseline_checkins} complete "
               "answers): a high SDS from the start of treatment is mostly reliance on it")
    elif total - baseline < table["thr_sds_rise"][last]:
        why = (f"but less than {_num(table['thr_sds_rise'][last])} points above the patient's own baseline of "
               f"{_baseline(baseline)}: a high SDS that has not risen reads as reliance on treatment and is not counted")
    else:
        why = (f"and {_num(total - baseline)} points above the patient's baseline of {_baseline(baseline)}: not counted "
               f"until it holds at {rules.sds_persist_checkins} complete answers in a row")
    return [NotCounted("sds_high_rising", f"{seen}, {why}", _dates_of(table, np.array([last])))]


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
        + (f", mainly {mainly}" if mainly else "")
        + f": not counted until the rise holds at {rules.nonspecific_persist_checkins} check-ins in a row (and then "
        "amber at most: a depressive relapse and PTSD raise them too)"
    )
    step = instruments()["phq9"]["reliable_change"]
    low, now = float(table["phq9_low"][last]), float(table["phq9_last"][last])
    if not np.isnan(low) and now - low >= step:
        text += f"; PHQ-9 rose from {_num(low)} to {_num(now)}"
    return [NotCounted("nonspecific_signs_rising", text, _dates_of(table, hit))]


def _dose(table: FeatureTable, row: int, rules: RuleSettings, counted: set[str]) -> list[NotCounted]:
    """A dose above the plan that the patient did not ask for (titration), or that has not held since they asked."""
    if "dose_above_plan_after_request" in counted or not table["dose_above_met"][row]:
        return []
    unit = table["dose_unit"][row]
    decimals = 2 if unit == "mg/kg" else 0
    dose, reference = float(table["dose_measure"][row]), float(table["dose_reference"][row])
    percent = round((round(dose, decimals) / round(reference, decimals) - 1) * 100)
    against = (f"the planned {reference:.{decimals}f} {unit}" if table["dose_reference_is_plan"][row]
               else f"{reference:.{decimals}f} {unit}, the median of the first {rules.baseline_sessions} "
                    f"{table['route'][row]} sessions")
    win = table.rows_from(row, "dose_request_from")
    asked = win[table["dose_increase_request"][win].astype(bool)]
    seen = f"Dose {dose:.{decimals}f} {unit} on {_date(table['day'][row])}, {percent}% above {against}"
    if not len(asked):
        why = (f"not counted: the patient did not ask for a higher dose at the last {len(win)} sessions within "
               f"{rules.requests_window_days} days, so it reads as the clinician's titration")
    else:
        why = (f"after the patient asked for more ({_list_dates(table['day'][asked])}): not counted until the dose has "
               f"stayed above plan at {rules.dose_persist_sessions} sessions in a row and risen at least "
               f"{round(rules.dose_step_fraction * 100)}% from before the request")
    return [NotCounted("dose_above_plan_after_request", f"{seen}; {why}",
                       _dates_of(table, np.concatenate([asked, [row]]).astype("int64")))]


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
    text = (
        f"{len(hit)} of the last {len(win)} intervals between sessions {'was' if len(hit) == 1 else 'were'} shorter than "
        f"{round(rules.interval_early_fraction * 100)}% of the {plan} {_num(reference)} days: "
        f"{_values(table['interval_days'][hit])} days (sessions on {_list_dates(table['day'][hit])}); not counted until "
        f"{rules.interval_early_sessions} of the last {rules.interval_window_sessions} are"
    )
    return [NotCounted("interval_shrinking", text, _dates_of(table, hit))]
