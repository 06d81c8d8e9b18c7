"""The rule identifiers and the one-line, checkable observation behind each flag.

The identifiers are stable (the CLI prints them). What each rule means, and how the rules add up
to a level, is written once, for users, in the README's "Rule ids" section, whose table a test
keeps in step with `RULES`; its numbers are the defaults of seed_data/rules.toml.
`combination_note` says how reasons add up from the settings in use, for the page and the PDF.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, replace

import numpy as np

from ketawatch.risk.features import FeatureTable, corroborated_signs, weighty_specific_signs
from ketawatch.risk.rules import RuleSettings
from ketawatch.risk.scoring import nonspecific_signs, sds_control_items, sign_weights
from ketawatch.risk.wording import (
    EPOCH,
    answer_words,
    baseline_words,
    date_words,
    dates_of,
    join_words,
    last_checkins_words,
    length_words,
    list_dates,
    num,
    number_words,
    out_of,
    scores_on,
    span_words,
    sud_note,
    times_words,
    values_words,
)
from seed_data.catalogue import instruments, warning_sign, warning_sign_answers
from store.vocabulary import sentence_case


@dataclass(frozen=True)
class Reason:
    """One observation that raised a patient's level, with the numbers and dates a clinician can check."""

    rule_id: str
    level: str  # what the rule supports on its own: "red", "amber", or "weak" (adds evidence, never a level alone)
    text: str
    evidence_dates: tuple[dt.date, ...]
    sign: str | None = None
    quotation: str | None = None
    source: str | None = None
    discounted: bool = False  # counted one point less (a request to come earlier while PHQ-9 is reliably worse)


@dataclass(frozen=True)
class RuleInfo:
    """A rule's stable id, the level it supports alone ("weak": none, it only adds evidence), its family, and its data."""

    id: str
    level: str
    family: str | None
    records: str  # "checkins" or "sessions"


#: Every rule, most important first (the order reasons are listed in).
RULES: tuple[RuleInfo, ...] = (
    RuleInfo("use_outside_treatment_repeated", "red", "use", "checkins"),
    RuleInfo("use_outside_treatment_reported", "amber", "use", "checkins"),
    RuleInfo("craving_rising", "amber", "craving", "checkins"),
    RuleInfo("craving_high", "amber", "craving", "checkins"),
    RuleInfo("specific_sign_persistent", "amber", "checklist", "checkins"),
    RuleInfo("dose_increase_requests", "amber", "dose", "sessions"),
    RuleInfo("dose_above_plan_after_request", "amber", "dose", "sessions"),
    RuleInfo("early_requests_repeated", "amber", "frequency", "sessions"),
    RuleInfo("interval_shrinking", "amber", None, "sessions"),
    RuleInfo("sds_high_rising", "amber", None, "checkins"),
    RuleInfo("nonspecific_signs_rising", "amber", None, "checkins"),
    RuleInfo("craving_drift", "weak", "craving", "checkins"),
    RuleInfo("specific_burden_drift", "weak", "checklist", "checkins"),
    RuleInfo("sds_control_items", "weak", "control", "checkins"),
    RuleInfo("dose_request_recent", "weak", "dose", "sessions"),
    RuleInfo("early_request_recent", "weak", "frequency", "sessions"),
    # Corroborating signs count only while the craving family has a signal and their own has none: last.
    RuleInfo("corroborating_sign", "weak", "checklist", "checkins"),
    RuleInfo("corroborating_sds_control", "weak", "control", "checkins"),
)
RULE_IDS = tuple(rule.id for rule in RULES)
_LEVEL_OF = {rule.id: rule.level for rule in RULES}
_RECORDS_OF = {rule.id: rule.records for rule in RULES}
#: How a reason's level reads beside it on the patient page and in the PDF.
_ROLE = {
    "red": "red on its own",
    "amber": "amber on its own",
    "weak": "supporting: adds weight, never raises a level on its own",
}
#: The same for a request to come earlier counted one point less (engine.py: a depressive relapse looks like that).
_DISCOUNTED_ROLE = {
    "amber": "amber on its own; one point less towards red while PHQ-9 is reliably worse",
    "weak": "supporting, but adds nothing while PHQ-9 is reliably worse",
}
#: Evidence points of a family's strongest signal: an amber-level rule, or a weak supporting one. The unit in which
#: rules.toml's [combination] counts; not a threshold, so not a setting (a clinic's file keeps working).
POINTS = {"amber": 2, "weak": 1}




def combination_note(rules: RuleSettings) -> str:
    """How reasons add up to a level, in words, from the rule settings in use (a clinic's own file included), for the
    patient page and the PDF: the note must never describe other numbers than the levels were computed with."""
    lighter = warning_sign_answers()[min(3, max(0, int(rules.corroboration_sign_min_score)))].lower()
    kinds = number_words(rules.combination_red_min_families)
    red_alone = (f"use outside treatment reported on {number_words(rules.use_red_checkins)} of the last "
                 f"{number_words(rules.use_window_checkins)} check-ins is red on its own")
    # from the settings, so a clinic that moves a sign between the checklist and use outside treatment is told so
    names = [warning_sign(s).label.split(":")[0].lower() for s in weighty_specific_signs(rules)]
    signs = ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else "".join(names)
    return (
        f"How the reasons add up: {red_alone}. Otherwise red needs evidence of at least {kinds} kinds (craving; "
        + (f"{signs}; " if signs else "") + "dose requests; requests to come earlier; the SDS control items; use outside "
        f"treatment) adding up to {rules.combination_red_min_points} points: within a kind the strongest "
        f"observation counts, an amber-level one {POINTS['amber']} points and a supporting one {POINTS['weak']}. "
        "While a craving signal holds (a rise, high craving or a drift), a lighter answer of another kind (the same sign "
        f"'{lighter}' {times_words(rules.corroboration_persist_checkins)} in {number_words(rules.corroboration_window_checkins)} "
        f"check-ins, the SDS control items at {rules.corroboration_sds_control:g}) corroborates it as a supporting "
        f"observation. While PHQ-9 is {rules.interval_relapse_phq9_rise:g} or more points above the patient's best, "
        "requests to come earlier count one point less (a relapse looks like that). The patient's requests alone "
        "count as one kind unless they persist or the treatment has already changed (shorter intervals, a dose "
        "above plan after asking). Shorter intervals, a high SDS, irritability, other substances and non-specific "
        "signs support amber only. Amber needs one amber-level observation, or supporting ones adding up to "
        f"{rules.combination_amber_min_points} points from different kinds."
    )


def sud_history_note(rules: RuleSettings) -> str:
    """What a history of substance use disorder does to the rules, from the settings in use, for beside the patient's
    'SUD history: Yes' on the page and in the PDF: it is no observation, so not among the reasons or those seen."""
    return (f"graded thresholds lowered to {round(rules.sud_sensitivity * 100)}% of the clinic's, so signals count "
            "sooner; never a reason on its own")


#: Each rule in a few words, for a table cell where the full observation cannot fit (the caseload); `{sign}` is the
#: warning sign's name. Supporting ones say so: they never raise a level alone.
_TITLES = {
    "use_outside_treatment_repeated": "Use outside treatment, repeated",
    "use_outside_treatment_reported": "Use outside treatment reported",
    "craving_rising": "Craving rising",
    "craving_high": "Craving high",
    "specific_sign_persistent": "{sign}, persistent",
    "dose_increase_requests": "Asked for higher doses",
    "dose_above_plan_after_request": "Dose above plan after asking",
    "early_requests_repeated": "Asked to come earlier, repeatedly",
    "interval_shrinking": "Intervals shrinking",
    "sds_high_rising": "SDS high and rising",
    "nonspecific_signs_rising": "Non-specific signs rising",
    "craving_drift": "Craving drifting up",
    "specific_burden_drift": "Checklist drifting up",
    "sds_control_items": "SDS control items",
    "dose_request_recent": "Recent dose request",
    "early_request_recent": "Recent early request",
    "corroborating_sign": "{sign} beside craving",
    "corroborating_sds_control": "SDS control items beside craving",
}


def reason_title(reason: Reason) -> str:
    """A reason in a few words ("Craving rising", "Tolerance, persistent", "Recent early request (supporting)") for the
    caseload, whose column cut the full observations to the first half of the first one (clinical lead)."""
    return _title(reason.rule_id, reason.sign, reason.level)


def rule_title(rule_id: str) -> str:
    """A rule in a few words from its id alone, for an alert review, which stores only the ids it acknowledged: the
    ids were unreadable in a clinician's case-review reading of the PDF. An id no rule has is kept as it is."""
    return _title(rule_id, None, _LEVEL_OF.get(rule_id, ""))


def _title(rule_id: str, sign: str | None, level: str) -> str:
    """The few words of `_TITLES`, the sign named, "(supporting)" after a rule that never raises a level alone."""
    # The checklist's own label, as the patient page and the PDF name the sign ("Tolerance", not "tolerance")
    named = warning_sign(sign).label.split(":")[0] if sign else "a warning sign"
    title = sentence_case(_TITLES.get(rule_id, rule_id).format(sign=named))
    return f"{title} (supporting)" if level == "weak" else title


def reason_role(level: str, discounted: bool = False) -> str:
    """What a reason's level means for the patient's level, in words ("amber on its own", "supporting: ..."); a
    discounted supporting one adds nothing, which "adds weight" beside it contradicted (browser check)."""
    if discounted:
        return _DISCOUNTED_ROLE.get(level, _ROLE.get(level, level))
    return _ROLE.get(level, level)


FAMILIES = ("use", "craving", "checklist", "dose", "frequency", "control")
#: Families that are the patient asking for more: on their own one line of evidence (engine.py).
REQUEST_FAMILIES = ("dose", "frequency")
#: Rules that hold only while the craving family has a signal: lighter answers that corroborate it (engine.py).
CORROBORATING = ("corroborating_sign", "corroborating_sds_control")
assert RULE_IDS[-len(CORROBORATING) :] == CORROBORATING, "the engine gates them on every other rule's points"


def reason_ids(reasons: list[Reason]) -> list[str]:
    """The distinct rule ids of a list of reasons in the engine's order (worst first), as the CLI, caseload and exports list them."""
    return list(dict.fromkeys(reason.rule_id for reason in reasons or []))


def build_reasons(rule_id: str, table: FeatureTable, row: int, rules: RuleSettings, signs: tuple[str, ...] = ()) -> list[Reason]:
    """The reasons for `rule_id` holding at feature row `row` (one per warning sign for sign rules)."""
    build = _BUILDERS[rule_id]
    if rule_id == "specific_sign_persistent":
        return [build(table, row, rules, sign) for sign in signs]
    if rule_id == "corroborating_sign":
        return [build(table, row, rules, sign) for sign in corroborated_signs(table, row, rules)]
    if rule_id.startswith("use_outside_treatment"):
        window = table.last_rows(row, rules.use_window_checkins)
        present = [sign for sign in rules.use_signs if (table[sign][window].astype("float64") >= rules.signs_min_score).any()]
        return [build(table, row, rules, sign) for sign in present]
    return [build(table, row, rules, None)]


# --- text helpers of the builders ---------------------------------------------------------------






def evidence_note(reason: Reason) -> str:
    """How much of the record the reason quotes, and over how long: 'check-ins on 3 days, 12 Oct to 9 Nov 2026
    (4 weeks)'.

    A red resting on two check-ins a week apart reads differently from one held for two months; the dates alone
    made the reader count them (clinical lead). The span, not every date: the observation above lists them, and a
    second list repeated it (browser check). Evidence dates are days, so two records on one day count once.
    """
    noun = "session" if _RECORDS_OF.get(reason.rule_id) == "sessions" else "check-in"
    days = sorted((d - EPOCH).days for d in reason.evidence_dates)
    if not days:
        return ""
    if len(days) == 1:
        return f"{noun} of {date_words(days[0])}"
    return f"{noun}s on {len(days)} days, {span_words(np.array(days))}"










def _held_since(table: FeatureTable, row: int, value: str, met: str, shown: np.ndarray, noun: str = "check-in") -> str:
    """'; it has held at every check-in since 14 Sep 2026 (10 in all)', when it goes back further than the answers shown.

    The answers quoted stop at the last few, so without this a reason read as if the pattern began
    with them, weeks after the level did.
    """
    full = table.answered_run(row, value, met, cap=len(table.patient_rows(row)))
    if len(full) <= len(shown):
        return ""
    return f"; it has held at every {noun} since {date_words(table['day'][full[0]])} ({len(full)} in all)"




# --- builders -----------------------------------------------------------------------------------


def _craving(kind: str):
    def build(table: FeatureTable, row: int, rules: RuleSettings, sign: str | None) -> Reason:
        if kind == "rising" and not table["craving_raw_rise_held"][row]:
            return _craving_trend(table, row, rules)
        met = "craving_raw_rise_met" if kind == "rising" else "craving_high_met"
        run = table.answered_run(row, "craving", met)
        last = run[-1]
        values, span = values_words(table["craving"][run]), span_words(table["day"][run])
        if kind == "rising":
            baseline, rise = table["craving_baseline"][last], table["thr_craving_rise"][last]
            text = (
                f"Craving rose from a baseline of {baseline_words(baseline)} to {values} of 10 "
                f"on {last_checkins_words(table, row, run, 'craving')}, {span}; "
                # Answered in whole numbers: a rise of 2.25 above a baseline of 1 means 4 or more.
                f"{math.ceil(baseline + rise - 1e-9)} or more counts as a rise ({num(rise)} points above the baseline"
                + (", lowered for a history of substance use disorder" if sud_note(table, last, "craving_rise_points")
                   else "")
                + f"); the recent average, weighted towards the latest answers, is {table['craving_ewma'][last]:.1f}"
                + _held_since(table, row, "craving", met, run)
            )
        else:
            text = (
                f"Craving {values} of 10 on {last_checkins_words(table, row, run, 'craving')}, {span}; "
                # Craving is answered in whole numbers: a threshold of 5.25 means 6 or more.
                f"{math.ceil(table['thr_craving_high'][last])} or more counts as high" + sud_note(table, last, "craving_high")
                + _held_since(table, row, "craving", met, run)
            )
        return Reason(f"craving_{kind}", "amber", text, dates_of(table, run))

    return build


def _craving_trend(table: FeatureTable, row: int, rules: RuleSettings) -> Reason:
    """A rise that counts on the smoothed average, said as such: the answers behind it can be low, even the latest
    (a fact-check read 'rose to between 0 and 5' after craving had fallen back to 0)."""
    met = "craving_trend_rise_met"
    run = table.answered_run(row, "craving", met)
    last = run[-1]
    baseline, rise = float(table["craving_baseline"][last]), float(table["thr_craving_ewma_rise"][last])
    average, latest = float(table["craving_ewma"][last]), float(table["craving"][last])
    text = (
        f"Craving's recent average, weighted towards the latest answers, rose from a baseline of "
        f"{baseline_words(baseline)} to {average:.1f} of 10; {baseline_words(baseline + rise)} or more counts as a rise "
        f"when it holds at {rules.craving_ewma_persist_checkins} check-ins in a row ({num(rise)} points above the "
        "baseline" + (", lowered for a history of substance use disorder"
                      if sud_note(table, last, "craving_ewma_rise_points") else "")
        + f"); answers on {last_checkins_words(table, row, run, 'craving')}, {span_words(table['day'][run])}: "
        + values_words(table["craving"][run])
        # what the average still carries: the answers quoted and the few before them (an older answer weighs a quarter
        # less each check-in)
        + _lone_answers(table, max(int(run[0]) - rules.craving_ewma_persist_checkins, last - int(table["pos"][last])), last)
        + (f"; the latest answer, {num(latest)}, is under {baseline_words(baseline + rise)}, so the average falls if "
           "answers stay that low" if latest < baseline + rise else "")
        + _held_since(table, row, "craving", met, run)
    )
    return Reason("craving_rising", "amber", text, dates_of(table, run))


def _lone_answers(table: FeatureTable, first: int, last: int) -> str:
    """'; a lone high answer enters the average as one rise: 8 on 22 Jul 2026 counted as 4', so the average can be
    checked against the answers quoted: those from `first` (the rows the average still carries) to `last`."""
    rows = np.arange(first, last + 1)
    answers, counted = table["craving"][rows].astype("float64"), table["craving_trend_input"][rows].astype("float64")
    one_rise = table["craving_baseline"][rows].astype("float64") + table["thr_craving_rise"][rows].astype("float64")
    lone = rows[(answers > counted) & np.isclose(counted, one_rise)]
    if not len(lone):
        return ""
    shown = join_words([f"{num(table['craving'][r])} on {date_words(table['day'][r])} counted as "
                        f"{num(table['craving_trend_input'][r])}" for r in lone[-2:]])
    if len(lone) == 1:
        return f"; a lone high answer enters the average as one rise: {shown}"
    return f"; lone high answers enter the average as one rise each: {shown}"


def _drift_baseline(table: FeatureTable, row: int) -> str:
    """'1.0', or '0.0 (the drift counts from at least 0.5)' when the rules' floor applied."""
    baseline, counted = table["craving_baseline"][row], table["craving_drift_baseline"][row]
    if counted > baseline:
        return f"{baseline_words(baseline)} (the drift counts from at least {baseline_words(counted)})"
    return baseline_words(baseline)


def _drift_reference(table: FeatureTable, row: int) -> str:
    """What each craving answer is measured above: 'the baseline', or the floor ('0.5') when the floor applied, so the
    sum can be checked by hand (a clinician adding from the baseline of 0 got 9, not the 8 shown; clinician review)."""
    baseline, counted = table["craving_baseline"][row], table["craving_drift_baseline"][row]
    return baseline_words(counted) if counted > baseline else "the baseline"


def _sds(table: FeatureTable, row: int, rules: RuleSettings, sign: str | None) -> Reason:
    run = table.answered_run(row, "sds_total", "sds_met")
    last = run[-1]
    text = (
        f"SDS total {values_words(table['sds_total'][run])} of 15 on the last {len(run)} complete answers, {span_words(table['day'][run])}: "
        f"at or above the threshold of {num(table['thr_sds'][last])} and at least "
        f"{num(table['thr_sds_rise'][last])} points above the patient's baseline of {baseline_words(table['sds_baseline'][last])}"
        + sud_note(table, last, "sds_threshold")
        + _held_since(table, row, "sds_total", "sds_met", run, noun="complete answer")
    )
    return Reason("sds_high_rising", "amber", text, dates_of(table, run))


def _nonspecific(table: FeatureTable, row: int, rules: RuleSettings, sign: str | None) -> Reason:
    run = table.answered_run(row, "nonspecific_burden", "nonspecific_met")
    last = run[-1]
    text = (
        f"Non-specific warning signs rose from a baseline burden of {baseline_words(table['nonspecific_baseline'][last])} "
        f"to {values_words(table['nonspecific_burden'][run])} on {last_checkins_words(table, row, run, 'the checklist')}, "
        f"{span_words(table['day'][run])}" + mainly_signs(table, last) + relapse_context(table, row)
    )
    return Reason("nonspecific_signs_rising", "amber", text, dates_of(table, run))


def with_relapse_discount(reason: Reason, rules: RuleSettings, best: float, latest: float) -> Reason:
    """A request to come earlier, said to count one point less while PHQ-9 has reliably worsened: 'supporting: adds
    weight' beside it read as if it added weight when it added none (browser check); with this patient's PHQ-9, since
    the rule alone read as general advice (clinician review)."""
    return replace(reason, discounted=True, text=f"{reason.text}; it counts one point less while PHQ-9 is "
                                f"{num(rules.interval_relapse_phq9_rise)} or more points above the patient's best, "
                                f"as it is now (latest PHQ-9 {num(latest)}, {num(latest - best)} above the best of "
                                f"{num(best)}): "
                                "asking to come earlier is also how a depressive relapse presents")


def mainly_signs(table: FeatureTable, row: int) -> str:
    """', mainly sleep disturbance (3) and appetite change (2)': the non-specific signs behind a rise, highest first."""
    scores = sorted(((float(table[s][row]), s) for s in nonspecific_signs() if float(table[s][row]) > 0),
                    key=lambda item: -item[0])
    mainly = join_words([f"{warning_sign(s).label.lower()} ({num(v)})" for v, s in scores[:3]])
    return f", mainly {mainly}" if mainly else ""


def relapse_context(table: FeatureTable, row: int) -> str:
    """'; PHQ-9 also rose from 3 to 10, which a depressive relapse would also explain', when it reliably did."""
    step = instruments()["phq9"]["reliable_change"]
    low, now = float(table["phq9_low"][row]), float(table["phq9_last"][row])
    if np.isnan(low) or now - low < step:
        return ""
    return f"; PHQ-9 also rose from {num(low)} to {num(now)}, which a depressive relapse would also explain"


def sign_window(
    table: FeatureTable, row: int, rules: RuleSettings, sign: str, window: int, min_score: float | None = None
) -> tuple[np.ndarray, np.ndarray, str]:
    """Rows of the window where `sign` was present (at `min_score`, default "clearly"), and the wording of that observation."""
    min_score = rules.signs_min_score if min_score is None else min_score
    win = table.last_rows(row, window)
    hit = win[table[sign][win].astype("float64") >= min_score]
    text = (
        f"{warning_sign(sign).label}: answered '{answer_words(min_score)}' or more on "
        f"{out_of(len(hit), len(win), window, 'check-in')} ({scores_on(table, sign, hit)})"
    )
    return win, hit, text


def _with_source(rule_id: str, level: str, text: str, dates, sign: str) -> Reason:
    entry = warning_sign(sign)
    return Reason(rule_id, level, text, dates, sign=sign, quotation=entry.quotation, source=entry.source)


def _specific_sign(table: FeatureTable, row: int, rules: RuleSettings, sign: str | None) -> Reason:
    _, hit, text = sign_window(table, row, rules, sign, rules.signs_window_checkins)
    return _with_source("specific_sign_persistent", "amber", text, dates_of(table, hit), sign)


def _use(repeated: bool):
    rule_id = "use_outside_treatment_repeated" if repeated else "use_outside_treatment_reported"

    def build(table: FeatureTable, row: int, rules: RuleSettings, sign: str | None) -> Reason:
        win, hit, text = sign_window(table, row, rules, sign, rules.use_window_checkins)
        total = int(table["use_present"][win].sum())
        if repeated and total != len(hit):
            text += f"; use outside treatment reported on {total} of these check-ins in all"
        if not repeated and total >= rules.use_red_checkins:  # enough reports, too close together (code review)
            reported = win[table["use_present"][win].astype(bool)]
            days = int(table["day"][reported[-1]] - table["day"][reported[0]])
            text += (f"; the reports are {length_words(days)} apart, less than the {rules.persistence_min_days} days "
                     "that make them repeated reports rather than one report of the same weeks")
        return _with_source(rule_id, "red" if repeated else "amber", text, dates_of(table, hit), sign)

    return build


def _requests(rule_id: str, column: str, window_from: str, what: str):
    def build(table: FeatureTable, row: int, rules: RuleSettings, sign: str | None) -> Reason:
        win = table.rows_from(row, window_from)
        hit = win[table[column][win].astype(bool)]
        text = f"The patient asked for {what} at {_request_window(len(hit), len(win), table['day'][row], rules)}"
        text += f" ({list_dates(table['day'][hit])})"
        return Reason(rule_id, _LEVEL_OF[rule_id], text, dates_of(table, hit))

    return build


def _request_window(hits: int, shown: int, latest_day, rules: RuleSettings) -> str:
    """'2 of the last 3 sessions, all in the 90 days up to 1 May 2026': the window counts back from the latest session,
    which a reader on a later day took for 90 days back from today (fact-check)."""
    days = f"in the {rules.requests_window_days} days up to {date_words(latest_day)}"
    return f"the only session {days}" if shown == 1 else f"{hits} of the last {shown} sessions, all {days}"


def _dose_above(table: FeatureTable, row: int, rules: RuleSettings, sign: str | None) -> Reason:
    run = table.answered_run(row, "dose_measure", "dose_above_met")
    last = run[-1]
    unit = table["dose_unit"][last]
    decimals = 2 if unit == "mg/kg" else 0
    shown = [round(float(v), decimals) for v in table["dose_measure"][run]]
    reference = round(float(table["dose_reference"][last]), decimals)
    percent = round((shown[-1] / reference - 1) * 100)
    if table["dose_reference_is_plan"][last]:
        against = f"the planned {reference:.{decimals}f} {unit}"
    else:
        first = f"the first {rules.baseline_sessions} {table['route'][last]} sessions"
        against = f"{reference:.{decimals}f} {unit}, the median of {first}"
    win = table.rows_from(row, "dose_request_from")
    asked = win[table["dose_increase_request"][win].astype(bool)]
    text = (
        f"Dose {join_words([f'{v:.{decimals}f}' for v in shown])} {unit} at the last {len(run)} sessions, {span_words(table['day'][run])}; "
        f"the latest is {percent}% above {against}, raised from {float(table['dose_before_request'][last]):.{decimals}f} {unit} "
        f"after the patient asked for a higher dose ({list_dates(table['day'][asked])})"
    )
    return Reason("dose_above_plan_after_request", "amber", text, dates_of(table, np.concatenate([asked, run])))


def _interval(table: FeatureTable, row: int, rules: RuleSettings, sign: str | None) -> Reason:
    win = table.last_rows(row, rules.interval_window_sessions)
    hit = win[table["early_interval"][win].astype(bool)]
    reference = float(table["reference_interval_days"][row])
    plan = "planned" if not np.isnan(float(table["planned_interval_days"][row])) else "patient's usual"
    text = (
        f"{intervals_out_of(len(hit), len(win), rules)} {'was' if len(hit) == 1 else 'were'} shorter than "
        f"{round(rules.interval_early_fraction * 100)}% of the {plan} {num(reference)} days: "
        f"{values_words(table['interval_days'][hit])} days (sessions on {list_dates(table['day'][hit])})"
    )
    return Reason("interval_shrinking", "amber", text, dates_of(table, hit))


def intervals_out_of(hits: int, shown: int, rules: RuleSettings) -> str:
    """'2 of the last 3 intervals between sessions', to begin a sentence: the counted reason and the one not counted."""
    return sentence_case(out_of(hits, shown, rules.interval_window_sessions, "interval between sessions",
                                "intervals between sessions"))


def _drift_text(table: FeatureTable, last: int, total: str, alarm: str, allowance: float, cap: float, unit: str,
                value: str, above: str = "the baseline") -> str:
    """'small rises kept adding up: each check-in adds what is more than 1 point above the baseline (at most 2),
    and since the rises began on 6 Sep 2026 that comes to 4 (3 or more counts)': every number needed to check it,
    the start included, since the answers quoted can be fewer than those the sum holds (fact-check)."""
    start = _drift_start(table, last, total, value)
    added = (f"since the rises began on {date_words(table['day'][start])} that comes to" if start != last else
             f"the check-in of {date_words(table['day'][last])} alone adds")  # one step: not "kept adding up"
    return (
        f"{'small rises kept adding up' if start != last else 'a rise large enough on its own'}: each check-in adds "
        f"what is more than {num(allowance)} {unit} above {above} (at most {num(cap)}), and {added} "
        f"{num(round(float(table[total][last]), 2))} ({num(table[alarm][last])} or more counts)"
    )


def _drift_start(table: FeatureTable, last: int, total: str, value: str) -> int:
    """The first answered row after the sum last stood at 0: where the rises it holds began."""
    rows = table.patient_rows(last)
    zero = np.flatnonzero(table[total][rows].astype("float64") <= 0)
    after = rows[zero[-1] + 1:] if len(zero) else rows
    answered = after[~np.isnan(table[value][after].astype("float64"))]
    return int(answered[0]) if len(answered) else last


def _craving_drift(table: FeatureTable, row: int, rules: RuleSettings, sign: str | None) -> Reason:
    run = table.answered_run(row, "craving", "craving_drift_met", cap=8)
    last = run[-1]
    text = (
        f"Craving {values_words(table['craving'][run])} of 10 on {last_checkins_words(table, row, run, 'craving')}, "
        f"{span_words(table['day'][run])}, "
        f"against a baseline of {_drift_baseline(table, last)}: "
        + _drift_text(table, last, "craving_drift", "thr_craving_drift", rules.craving_drift_allowance,
                      rules.craving_drift_cap, "point", "craving", above=_drift_reference(table, last))
        + sud_note(table, last, "craving_drift_alarm")
    )
    return Reason("craving_drift", "weak", text, dates_of(table, run))


def _specific_drift(table: FeatureTable, row: int, rules: RuleSettings, sign: str | None) -> Reason:
    run = table.answered_run(row, "specific_burden", "specific_drift_met", cap=8)
    last = run[-1]
    weights = sign_weights()
    present = []
    signs = sorted(weighty_specific_signs(rules), key=lambda s: -weights[s])
    for s in signs:
        scores = table[s][run].astype("float64")
        if np.nanmax(np.append(scores, 0)) >= 1:  # each sign answered once, with its weight (126 words said it twice)
            present.append(f"{warning_sign(s).label.lower()} x {num(weights[s])} "
                           f"({values_words([0 if np.isnan(v) else v for v in scores])})")
    scale = join_words([f"{warning_sign(s).label.lower()} x {num(weights[s])}" for s in signs])
    text = (
        f"Specific warning-sign burden (each answer 0-3 times its sign's weight) "
        f"{values_words(table['specific_burden'][run])} on {last_checkins_words(table, row, run, 'the checklist')}, "
        f"{span_words(table['day'][run])}, against a baseline of {baseline_words(table['specific_baseline'][last])}; "
        + (f"answered: {join_words(present[:3])}" if present else f"weights: {scale}")
        + "; "
        + _drift_text(table, last, "specific_drift", "thr_signs_drift", rules.signs_drift_allowance,
                      rules.signs_drift_cap, "weighted points", "specific_burden")
        + sud_note(table, last, "signs_drift_alarm")
    )
    return Reason("specific_burden_drift", "weak", text, dates_of(table, run))


def _sds_control(table: FeatureTable, row: int, rules: RuleSettings, sign: str | None) -> Reason:
    run = table.answered_run(row, "sds_control", "sds_control_met", cap=1)
    last = run[-1]
    items = sds_control_items()
    scores = join_words([num(table[item][last]) for item in items])
    text = (
        f"SDS items on use getting out of control, worry about use and wishing to stop scored {scores} "
        f"({num(table['sds_control'][last])} of 9) {span_words(table['day'][run])}; "
        f"{num(table['thr_sds_control'][last])} or more counts (items that do not rise with therapeutic reliance)"
        + sud_note(table, last, "sds_control_threshold")
    )
    return Reason("sds_control_items", "weak", text, dates_of(table, run))


#: The condition as the rules have it (a craving signal of any kind), not "craving above baseline": a drift holds on
#: after the latest answer is back at the baseline (fact-check).
_WHILE_CRAVING = "counts as supporting evidence only while a craving signal holds (a craving rise, high craving or a craving drift)"


def _corroborating_sign(table: FeatureTable, row: int, rules: RuleSettings, sign: str | None) -> Reason:
    _, hit, text = sign_window(
        table, row, rules, sign, rules.corroboration_window_checkins, rules.corroboration_sign_min_score
    )
    return _with_source("corroborating_sign", "weak", f"{text}; {_WHILE_CRAVING}", dates_of(table, hit), sign)


def _corroborating_sds_control(table: FeatureTable, row: int, rules: RuleSettings, sign: str | None) -> Reason:
    run = table.answered_run(row, "sds_control", "corroborating_sds_control_met", cap=1)
    last = run[-1]
    scores = join_words([num(table[item][last]) for item in sds_control_items()])
    text = (
        f"SDS items on use getting out of control, worry about use and wishing to stop scored {scores} "
        f"({num(table['sds_control'][last])} of 9) {span_words(table['day'][run])}; "
        f"{num(rules.corroboration_sds_control)} or more {_WHILE_CRAVING}"
    )
    return Reason("corroborating_sds_control", "weak", text, dates_of(table, run))


_BUILDERS = {
    "use_outside_treatment_repeated": _use(repeated=True),
    "use_outside_treatment_reported": _use(repeated=False),
    "craving_rising": _craving("rising"),
    "craving_high": _craving("high"),
    "specific_sign_persistent": _specific_sign,
    "dose_increase_requests": _requests(
        "dose_increase_requests", "dose_increase_request", "dose_request_from", "a higher dose"
    ),
    "dose_above_plan_after_request": _dose_above,
    "early_requests_repeated": _requests(
        "early_requests_repeated", "early_request", "early_request_from", "an earlier session"
    ),
    "interval_shrinking": _interval,
    "sds_high_rising": _sds,
    "nonspecific_signs_rising": _nonspecific,
    "craving_drift": _craving_drift,
    "specific_burden_drift": _specific_drift,
    "sds_control_items": _sds_control,
    "dose_request_recent": _requests(
        "dose_request_recent", "dose_increase_request", "dose_request_from", "a higher dose"
    ),
    "early_request_recent": _requests(
        "early_request_recent", "early_request", "early_request_from", "an earlier session"
    ),
    "corroborating_sign": _corroborating_sign,
    "corroborating_sds_control": _corroborating_sds_control,
}
assert set(_BUILDERS) == set(RULE_IDS)
