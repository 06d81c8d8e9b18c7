"""Per-record features and rule conditions: computed once per check-in and per session, causally.

Each row's values use only that patient's rows up to and including it (baselines from the first
records, EWMA, windows of recent records), so the state of a patient on a date is simply their
latest check-in row and latest session row on or before that date. Rule conditions are boolean
columns named `rule_<id>` (and `sign_<id>` for one persistent specific warning sign).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ketawatch.risk import scoring
from ketawatch.risk.rules import RuleSettings
from ketawatch.risk.windows import (
    carry_forward,
    count_from,
    group_starts,
    held,
    held_over_days,
    personal_baseline,
    recent_window_start,
    take,
    window_count,
    window_count_over_days,
)
from store.vocabulary import WARNING_SIGNS, WEIGHT_BASED_ROUTES


def local_days(instants: pd.Series, tz: str) -> np.ndarray:
    """Clinic-local calendar day (days since 1970-01-01) of UTC instants, so a date means the clinic's date."""
    local = instants.dt.tz_convert(tz).dt.tz_localize(None)
    return local.to_numpy(dtype="datetime64[D]").astype("int64")


def patient_table(patients: pd.DataFrame) -> pd.DataFrame:
    """One row per patient (first wins) with SUD history and treatment plan; the row number is the patient's code."""
    table = patients[~patients["patient_id"].duplicated()]
    # The mg plan of fixed-dose routes is not in the import format: frames made from files have no such column.
    planned_mg = table["planned_dose_mg"] if "planned_dose_mg" in table else pd.Series(np.nan, index=table.index)
    return pd.DataFrame(
        {
            "patient_id": table["patient_id"].to_numpy(dtype=object),
            "sud_history": table["sud_history"].to_numpy(dtype=bool, na_value=False),
            "planned_dose_mg_per_kg": table["planned_dose_mg_per_kg"].to_numpy(dtype="float64", na_value=np.nan),
            "planned_dose_mg": planned_mg.to_numpy(dtype="float64", na_value=np.nan),
            "planned_interval_days": table["planned_interval_days"].to_numpy(dtype="float64", na_value=np.nan),
        }
    )


def _attach(
    records: pd.DataFrame, patients: pd.DataFrame, time_col: str, tz: str, until_day: int | None
) -> tuple[pd.DataFrame, dict]:
    """Rows of known patients up to `until_day`, sorted by patient then time, and their code, day and plan columns."""
    code = pd.Index(patients["patient_id"]).get_indexer(records["patient_id"])
    keep = (code >= 0) & records[time_col].notna().to_numpy()
    day = np.zeros(len(records), dtype="int64")
    if keep.any():
        day[keep] = local_days(records.loc[keep, time_col], tz)
    if until_day is not None:
        keep &= day <= until_day
    rows = np.flatnonzero(keep)
    instants = records[time_col].to_numpy(dtype="datetime64[ns]")[rows].astype("int64")
    rows = rows[np.lexsort((instants, code[rows]))]  # lexsort is stable: ties keep input order
    base = records.take(rows).reset_index(drop=True)
    codes = code[rows].astype("int64")
    starts = group_starts(codes)
    cols = {
        "code": codes,
        "pos": np.arange(len(rows)) - starts,
        "day": day[rows],
        "sud_history": patients["sud_history"].to_numpy(dtype=bool)[codes],
        "planned_dose_mg_per_kg": patients["planned_dose_mg_per_kg"].to_numpy(dtype="float64")[codes],
        "planned_dose_mg": patients["planned_dose_mg"].to_numpy(dtype="float64")[codes],
        "planned_interval_days": patients["planned_interval_days"].to_numpy(dtype="float64")[codes],
    }
    return base, cols


#: Answers of which a day with two check-ins keeps the higher: a report of use, a sign or a craving must not vanish
#: because a later check-in that day said less (code review). The rest (SDS, PHQ-9, notes) is the later check-in's.
DAY_HIGHEST = ("craving", *WARNING_SIGNS)


def _one_per_day(base: pd.DataFrame, cols: dict) -> tuple[pd.DataFrame, dict]:
    """A patient's check-ins of one clinic day as one check-in day.

    A check-in reports the past week or two, so two on one day report the same weeks: counted apart, two
    answers of 8 made "held at 2 check-ins in a row" and a red level from one day (fact-check). Craving and the
    checklist keep the day's highest answer (DAY_HIGHEST); every other item is the later check-in's, or the
    earlier one's where the later left it empty (an SDS is all five items or none, so it stays one answer's).
    Rows arrive sorted by patient and time, so one day's rows are adjacent; most days have one and cost nothing.
    """
    code, day = cols["code"], cols["day"]
    new_day = np.ones(len(code), dtype=bool)
    new_day[1:] = (code[1:] != code[:-1]) | (day[1:] != day[:-1])
    if new_day.all():
        return base, cols
    day_of_row = np.cumsum(new_day) - 1
    days = base.groupby(day_of_row, sort=True)
    merged = days.last().reset_index(drop=True)  # the last non-missing answer per column
    highest = [name for name in DAY_HIGHEST if name in base.columns]
    merged[highest] = days[highest].max().reset_index(drop=True).astype(merged[highest].dtypes.to_dict())
    last_of_day = np.flatnonzero(np.append(new_day[1:], True))
    cols = {name: values[last_of_day] for name, values in cols.items()}
    cols["pos"] = np.arange(len(last_of_day)) - group_starts(cols["code"])
    return merged, cols


class FeatureTable:
    """The sorted input rows and the computed columns, handed out as numpy arrays (computed ones win on a name)."""

    def __init__(self, base: pd.DataFrame, computed: dict[str, np.ndarray]):
        self._base = base
        self._columns = dict(computed)

    def __len__(self) -> int:
        return len(self._base)

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._columns:
            column = self._base[name]
            numeric = column.dtype == "float64"
            self._columns[name] = column.to_numpy(dtype="float64", na_value=np.nan) if numeric else column.to_numpy()
        return self._columns[name]

    def patient_rows(self, row: int) -> np.ndarray:
        """Positions of this patient's rows up to and including `row`."""
        return np.arange(row - int(self["pos"][row]), row + 1)

    def last_rows(self, row: int, window: int) -> np.ndarray:
        """Positions of this patient's last `window` rows ending at `row`."""
        start = row - int(self["pos"][row])
        return np.arange(max(start, row - window + 1), row + 1)

    def rows_from(self, row: int, first: str) -> np.ndarray:
        """Positions from the row stored in column `first` (a window's first row) up to and including `row`."""
        return np.arange(int(self[first][row]), row + 1)

    def answered_run(self, row: int, value: str, met: str, cap: int = 6) -> np.ndarray:
        """Positions of the latest consecutive answered rows (at or before `row`) where `met` held, oldest first."""
        rows = self.patient_rows(row)
        rows = rows[~np.isnan(self[value][rows].astype("float64"))]
        flags = self[met][rows].astype(bool)
        n = 0
        while n < len(rows) and n < cap and flags[len(rows) - 1 - n]:
            n += 1
        return rows[len(rows) - n :]

    def frame(self, names: list[str]) -> pd.DataFrame:
        """Some columns as a DataFrame, input columns keeping their pandas dtypes."""
        return pd.DataFrame({name: self._columns[name] if name in self._columns else self._base[name] for name in names})


def checkin_features(
    checkins: pd.DataFrame, patients: pd.DataFrame, rules: RuleSettings, tz: str, until_day: int | None = None
) -> FeatureTable:
    """Craving, SDS, sign burden and PHQ-9 features per check-in day, with the check-in rule conditions."""
    base, f = _one_per_day(*_attach(checkins, patients, "reported_at", tz, until_day))
    codes, sud = f["code"], f["sud_history"]
    starts = np.arange(len(codes)) - f["pos"]

    # Craving: personal baseline, EWMA trend, rise or high level held on consecutive answers.
    craving = base["craving"].to_numpy(dtype="float64", na_value=np.nan)
    answered = ~np.isnan(craving)
    f["craving_baseline"] = baseline = personal_baseline(craving, [codes], rules.baseline_checkins)
    f["thr_craving_rise"] = rules.scaled("craving_rise_points", sud)
    f["thr_craving_ewma_rise"] = rules.scaled("craving_ewma_rise_points", sud)
    f["thr_craving_high"] = rules.scaled("craving_high", sud)
    f["craving_raw_rise_met"] = raw_rise = craving - baseline >= f["thr_craving_rise"]
    f["craving_trend_input"] = trend_input = _trend_input(
        craving, baseline, raw_rise, f["thr_craving_rise"], starts, rules.craving_ewma_persist_checkins
    )
    f["craving_ewma"] = ewma = _ewma(trend_input, starts, rules.craving_ewma_lambda)
    f["craving_trend_rise_met"] = trend_rise = ewma - baseline >= f["thr_craving_ewma_rise"]
    f["craving_high_met"] = craving >= f["thr_craving_high"]
    # The two ways a rise counts, kept apart so the reason can say which one holds (a trend can hold on low answers).
    day, min_days = f["day"], rules.persistence_min_days
    f["craving_raw_rise_held"] = _held_on_answered(raw_rise, answered, starts, rules.craving_persist_checkins, day,
                                                   min_days)
    f["rule_craving_rising"] = f["craving_raw_rise_held"] | _held_on_answered(
        trend_rise, answered, starts, rules.craving_ewma_persist_checkins, day, min_days
    )
    f["rule_craving_high"] = _held_on_answered(f["craving_high_met"], answered, starts, rules.craving_persist_checkins,
                                               day, min_days)
    # Craving drift: a one-sided CUSUM of craving above baseline + allowance, each check-in's excess
    # capped so one bad week cannot carry it alone; catches a small rise sustained over weeks. It
    # counts from a baseline of at least the floor: against 0, ordinary answers of 1-2 would add up.
    f["craving_drift_baseline"] = drift_baseline = np.maximum(baseline, rules.baseline_craving_floor)
    f["thr_craving_drift"] = rules.scaled("craving_drift_alarm", sud)
    f["craving_drift"] = cusum(
        craving - drift_baseline, starts, rules.craving_drift_allowance, rules.craving_drift_cap, day, min_days
    )
    f["craving_drift_met"] = f["craving_drift"] > 0
    f["rule_craving_drift"] = f["craving_drift"] >= f["thr_craving_drift"]

    # SDS: high AND risen above the patient's own baseline, on consecutive complete answers.
    f["sds_total"] = sds = scoring.sds_total(base).to_numpy(dtype="float64")
    f["sds_baseline"] = personal_baseline(sds, [codes], rules.baseline_checkins)
    f["thr_sds"] = rules.scaled("sds_threshold", sud)
    f["thr_sds_rise"] = rules.scaled("sds_rise_points", sud)
    f["sds_met"] = (sds >= f["thr_sds"]) & (sds - f["sds_baseline"] >= f["thr_sds_rise"])
    f["rule_sds_high_rising"] = _held_on_answered(f["sds_met"], ~np.isnan(sds), starts, rules.sds_persist_checkins,
                                                  day, min_days)
    # SDS items without therapeutic-reliance overlap (loss of control, worry about use, wish to
    # stop): the latest complete answer at or above the threshold.
    f["sds_control"] = control = scoring.sds_control(base).to_numpy(dtype="float64")
    f["thr_sds_control"] = rules.scaled("sds_control_threshold", sud)
    f["sds_control_met"] = control >= f["thr_sds_control"]
    f["rule_sds_control_items"] = _held_on_answered(f["sds_control_met"], ~np.isnan(control), starts, 1, day, min_days)

    # Warning signs: total burden for charts; non-specific burden against its own baseline.
    f["sign_burden"] = scoring.sign_burden(base).to_numpy()
    f["nonspecific_burden"] = nonspecific = scoring.sign_burden(base, scoring.nonspecific_signs()).to_numpy()
    f["nonspecific_baseline"] = personal_baseline(nonspecific, [codes], rules.baseline_checkins)
    f["specific_signs_clear"] = scoring.clear_specific_signs(base, rules.signs_min_score).to_numpy()
    f["thr_nonspecific_rise"] = rules.scaled("nonspecific_rise", sud)
    f["nonspecific_met"] = nonspecific - f["nonspecific_baseline"] >= f["thr_nonspecific_rise"]
    f["rule_nonspecific_signs_rising"] = _held_on_answered(
        f["nonspecific_met"], ~np.isnan(nonspecific), starts, rules.nonspecific_persist_checkins, day, min_days
    )

    # Specific-sign burden drift: a CUSUM of the weighted burden of the weighty specific signs
    # (those that count towards red; irritability and other substances also come with relapse)
    # above the personal baseline + allowance (one sign answered "a little" is absorbed by it).
    f["specific_burden"] = specific = scoring.sign_burden(base, weighty_specific_signs(rules)).to_numpy()
    f["specific_baseline"] = personal_baseline(specific, [codes], rules.baseline_checkins)
    f["thr_signs_drift"] = rules.scaled("signs_drift_alarm", sud)
    f["specific_drift"] = cusum(
        specific - f["specific_baseline"], starts, rules.signs_drift_allowance, rules.signs_drift_cap, day, min_days
    )
    f["specific_drift_met"] = f["specific_drift"] > 0
    f["rule_specific_burden_drift"] = f["specific_drift"] >= f["thr_signs_drift"]

    # Specific signs other than use outside treatment: clearly present on enough recent check-ins.
    score = {sign: base[sign].to_numpy(dtype="float64", na_value=np.nan) for sign in WARNING_SIGNS}
    for sign in _persistent_signs(rules):
        present = score[sign] >= rules.signs_min_score
        f[f"sign_{sign}"] = window_count_over_days(present, starts, rules.signs_window_checkins,
                                                   sign_persist_checkins(sign, rules), day, min_days)

    # Use outside treatment (rules.toml [use] signs): any report is serious; repeated reports are red.
    none = np.zeros(len(codes), dtype=bool)
    f["use_present"] = np.logical_or.reduce([none, *(score[sign] >= rules.signs_min_score for sign in rules.use_signs)])
    use_count = window_count(f["use_present"], starts, rules.use_window_checkins)
    f["rule_use_outside_treatment_repeated"] = window_count_over_days(
        f["use_present"], starts, rules.use_window_checkins, rules.use_red_checkins, day, min_days)
    f["rule_use_outside_treatment_reported"] = (use_count >= 1) & ~f["rule_use_outside_treatment_repeated"]

    # Corroborating signs ([corroboration]): answers too light to count alone - the same specific
    # sign "a little" on 2 of the last 3 check-ins, the SDS control items at 2+ - which the engine
    # counts only while the craving family has a signal.
    light = rules.corroboration_sign_min_score
    f["rule_corroborating_sign"] = np.logical_or.reduce(
        [
            none,
            *(
                window_count_over_days(score[sign] >= light, starts, rules.corroboration_window_checkins,
                                       rules.corroboration_persist_checkins, day, min_days)
                for sign in corroborating_signs(rules)
            ),
        ]
    )
    f["corroborating_sds_control_met"] = control >= rules.corroboration_sds_control
    f["rule_corroborating_sds_control"] = _held_on_answered(
        f["corroborating_sds_control_met"], ~np.isnan(control), starts, 1, day, min_days
    )

    # PHQ-9 context: the latest total and the lowest so far (a relapse is a rise from the best point).
    phq9 = base["phq9"].to_numpy(dtype="float64", na_value=np.nan)
    recorded = carry_forward(~np.isnan(phq9), starts)
    f["phq9_last"] = take(phq9, recorded, np.nan)
    low = pd.Series(phq9).groupby(codes, sort=False).cummin().to_numpy(dtype="float64")
    f["phq9_low"] = take(low, recorded, np.nan)
    return FeatureTable(base, f)


def session_features(
    sessions: pd.DataFrame, patients: pd.DataFrame, rules: RuleSettings, tz: str, until_day: int | None = None
) -> FeatureTable:
    """Dose against plan, intervals against plan and the patient's requests per session, with the session rule conditions."""
    base, f = _attach(sessions, patients, "session_at", tz, until_day)
    codes, sud, day = f["code"], f["sud_history"], f["day"]
    starts = np.arange(len(codes)) - f["pos"]
    route = base["route"].astype("string").fillna("unknown")
    f["route"] = route.to_numpy(dtype=object)
    weight_based = route.isin(WEIGHT_BASED_ROUTES).to_numpy(dtype=bool)

    # Dose in the unit of the plan; weight carried forward from the last session that recorded it.
    weight = base["weight_kg"].to_numpy(dtype="float64", na_value=np.nan)
    f["weight_recorded"] = ~np.isnan(weight)  # so a carried weight is not shown as one weighed that day
    f["weight_kg"] = weight = take(weight, carry_forward(~np.isnan(weight), starts), np.nan)
    dose_mg = base["dose_mg"].to_numpy(dtype="float64", na_value=np.nan)
    f["dose_per_kg"] = scoring.dose_per_kg(dose_mg, weight, f["route"])
    f["dose_measure"] = measure = scoring.dose_measure(dose_mg, weight, f["route"])
    f["dose_unit"] = np.where(weight_based, "mg/kg", "mg").astype(object)
    first_median = personal_baseline(measure, [codes, pd.factorize(route)[0]], rules.baseline_sessions)
    # The plan in the route's unit: mg/kg for weight-based routes, mg for fixed-dose ones (a planned esketamine
    # titration to 84 mg is the clinician's, not an escalation above the first 56 mg doses).
    planned = np.where(weight_based, f["planned_dose_mg_per_kg"], f["planned_dose_mg"])
    f["dose_reference_is_plan"] = use_plan = ~np.isnan(planned)
    f["dose_reference"] = np.where(use_plan, planned, first_median)
    f["dose_ratio"] = measure / f["dose_reference"]
    f["thr_dose_rise"] = rules.scaled("dose_rise_fraction", sud)

    f["dose_increase_request"] = dose_asked = scoring.patient_requested(base["dose_increase_request"]).to_numpy()
    f["early_request"] = early_asked = scoring.patient_requested(base["early_request"]).to_numpy()
    # Requests count within the last sessions that are also recent in days (maintenance sessions
    # weeks apart would otherwise join an ordinary request months ago to today's).
    f["dose_request_from"] = dose_from = recent_window_start(
        starts, rules.dose_request_window_sessions, day, rules.requests_window_days
    )
    f["early_request_from"] = early_from = recent_window_start(
        starts, rules.interval_request_window_sessions, day, rules.requests_window_days
    )
    dose_requests = count_from(dose_asked, dose_from)
    f["rule_dose_increase_requests"] = dose_requests >= rules.dose_requests_repeated
    f["rule_dose_request_recent"] = (dose_requests >= 1) & (dose_requests < rules.dose_requests_repeated)
    f["dose_above_met"] = above = scoring.dose_above_plan(f["dose_ratio"], f["thr_dose_rise"])
    # The escalation must follow the asking: compare with the dose just before the first request
    # in the window (a plan titrated long before a later request is the clinician's, not the patient's).
    idx = np.arange(len(codes))
    first_asked = _first_at_or_after(dose_asked, dose_from)
    first_asked = np.where(first_asked <= idx, first_asked, -1)
    before = np.where(first_asked > starts, take(measure, first_asked - 1, np.nan), f["dose_reference"])
    f["dose_before_request"] = before = np.where(first_asked >= 0, before, np.nan)
    raised = measure >= before * (1 + rules.dose_step_fraction)
    f["rule_dose_above_plan_after_request"] = held(above, starts, rules.dose_persist_sessions) & raised

    # Intervals, judged against the maintenance plan only once induction is over.
    f["interval_days"] = interval = scoring.session_intervals(codes, day.astype("datetime64[D]"))
    days_in = day - take(day, starts, 0)
    after_induction = (f["pos"] >= rules.interval_induction_sessions) & (days_in >= rules.interval_induction_days)
    own = personal_baseline(np.where(after_induction, interval, np.nan), [codes], rules.baseline_sessions)
    plan = f["planned_interval_days"]
    f["reference_interval_days"] = reference = np.where(np.isnan(plan), own, plan)
    on_plan = after_induction & (interval >= rules.interval_early_fraction * reference)
    # Maintenance starts once an interval has reached the plan: an esketamine course stays weekly
    # for weeks after twice-weekly induction, which is the protocol, not shrinking.
    f["maintenance"] = maintenance = after_induction & (window_count(on_plan, starts, len(day) + 1) >= 1)
    f["early_interval"] = early = maintenance & (interval < rules.interval_early_fraction * reference)
    f["rule_interval_shrinking"] = window_count(early, starts, rules.interval_window_sessions) >= rules.interval_early_sessions
    early_requests = count_from(early_asked, early_from)
    f["rule_early_requests_repeated"] = early_requests >= rules.interval_requests_repeated
    f["rule_early_request_recent"] = (early_requests >= 1) & (early_requests < rules.interval_requests_repeated)
    # Both kinds of request together, each in its own window: asking that persists, which lets
    # requests alone reach red (engine.py; rules.toml [requests] persistent).
    f["requests_persistent"] = dose_requests + early_requests >= rules.requests_persistent
    return FeatureTable(base, f)


def sign_persist_checkins(sign: str, rules: RuleSettings) -> int:
    """On how many of the recent check-ins a specific sign must be clearly present to count: one for the weightiest."""
    return 1 if scoring.sign_weights()[sign] >= rules.signs_once_min_weight else rules.signs_persist_checkins


def _persistent_signs(rules: RuleSettings) -> tuple[str, ...]:
    """Specific warning signs judged by persistence (use outside treatment has its own rule)."""
    return tuple(sign for sign in scoring.specific_signs() if sign not in rules.use_signs)


def weighty_specific_signs(rules: RuleSettings) -> tuple[str, ...]:
    """Specific signs weighty enough to count towards red, except use outside treatment (its own family)."""
    weights = scoring.sign_weights()
    return tuple(sign for sign in _persistent_signs(rules) if weights[sign] >= rules.signs_red_min_weight)


def corroborating_signs(rules: RuleSettings) -> tuple[str, ...]:
    """Signs whose lighter answers corroborate a craving signal: the weighty specific signs and the use signs, heaviest first."""
    weights = scoring.sign_weights()
    signs = dict.fromkeys((*weighty_specific_signs(rules), *rules.use_signs))
    return tuple(sorted(signs, key=lambda sign: (-weights[sign], WARNING_SIGNS.index(sign))))


def corroborated_signs(table: FeatureTable, row: int, rules: RuleSettings) -> list[str]:
    """The corroborating signs answered lightly often enough in their window at this check-in, heaviest first: those
    a counted `corroborating_sign` reason names."""
    window = table.last_rows(row, rules.corroboration_window_checkins)
    return [sign for sign in corroborating_signs(rules)
            if (table[sign][window].astype("float64") >= rules.corroboration_sign_min_score).sum()
            >= rules.corroboration_persist_checkins]


def persistent_signs(rules: RuleSettings) -> tuple[str, ...]:
    """The specific signs with a `sign_<id>` column, heaviest first (the order reasons are listed in)."""
    weights = scoring.sign_weights()
    return tuple(sorted(_persistent_signs(rules), key=lambda sign: (-weights[sign], WARNING_SIGNS.index(sign))))


def _first_at_or_after(flags: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """For each position, the first row at or after it where `flags` is True (len(flags) if none)."""
    n = len(flags)
    marks = np.where(flags, np.arange(n), n)
    nxt = np.minimum.accumulate(marks[::-1])[::-1] if n else marks
    return np.concatenate([nxt, [n]])[positions]


def _held_on_answered(met: np.ndarray, answered: np.ndarray, starts: np.ndarray, times: int, day: np.ndarray,
                      min_days: int) -> np.ndarray:
    """Whether `met` held on at least the last `times` answered rows, the whole run spanning `min_days` days or more
    when `times` > 1; unanswered rows keep the latest answered state."""
    sub = np.flatnonzero(answered)
    if len(sub) == 0:
        return np.zeros(len(met), dtype=bool)
    sub_codes = starts[sub]  # equal starts <=> same patient
    sub_held = held_over_days(met[sub], group_starts(sub_codes), times, day[sub], min_days)
    state = np.zeros(len(met), dtype=bool)
    state[sub] = sub_held
    return take(state, carry_forward(answered, starts), False).astype(bool)


def cusum(excess: np.ndarray, starts: np.ndarray, allowance: float, cap: float, day: np.ndarray,
          min_days: int) -> np.ndarray:
    """One-sided (upper) CUSUM per patient: S = max(0, S_prev + share * min(excess - allowance, cap)).

    `excess` is the value minus the patient's reference (NaN where unanswered or before the
    reference exists: those rows carry the latest sum; before any, 0). Capping each step keeps one
    extreme answer from raising the alarm on its own. An answer fewer than `min_days` days after the
    patient's previous one reports mostly the same period, so its step counts only that share
    (`drift_step_shares`): answers of 3 and 6 a day apart added two whole steps and made a drift
    (clinician's second browser review). The recursion runs once per position within a patient,
    across all patients at once.
    """
    valid = np.flatnonzero(~np.isnan(excess))
    out = np.full(len(excess), np.nan)
    if len(valid):
        sub_starts = group_starts(starts[valid])
        step = np.minimum(excess[valid] - allowance, cap) * drift_step_shares(day[valid], sub_starts, min_days)
        rank = np.arange(len(valid)) - sub_starts
        total = np.maximum(step, 0.0)
        by_rank = np.argsort(rank, kind="stable")
        bounds = np.searchsorted(rank[by_rank], np.arange(int(rank.max()) + 2))
        for k in range(1, len(bounds) - 1):
            at = by_rank[bounds[k] : bounds[k + 1]]
            total[at] = np.maximum(total[at - 1] + step[at], 0.0)
        out[valid] = total
    return take(out, carry_forward(~np.isnan(excess), starts), 0.0)


def drift_step_shares(day: np.ndarray, starts: np.ndarray, min_days: int) -> np.ndarray:
    """How much of a new report each answer is: days since the patient's previous answer over `min_days`, at most 1
    (the first answer is a whole one)."""
    gap = np.diff(day, prepend=day[:1]).astype("float64") if len(day) else np.zeros(0)
    first = np.arange(len(day)) == starts
    return np.where(first, 1.0, np.minimum(gap / max(min_days, 1), 1.0))


def _trend_input(
    craving: np.ndarray, baseline: np.ndarray, high: np.ndarray, rise: np.ndarray, starts: np.ndarray, window: int
) -> np.ndarray:
    """The answers the smoothed craving trend is made of: from the baseline on, a lone high answer counted as one rise.

    The trend starts at the baseline once it exists (earlier answers are the baseline), so a high
    first answer does not hold it up. A high answer with no other among the `window` check-ins
    before it enters as baseline + rise: one bad week must not keep the trend up for the weeks
    after it, while high answers that recur count in full.
    """
    established = ~np.isnan(baseline)
    first = established & (window_count(established, starts, 2) == 1)
    before = window_count(high, starts, window + 1) - high
    lone = high & (before == 0)
    values = np.where(lone, baseline + rise, craving)
    values = np.where(first, baseline, values)
    return np.where(established, values, np.nan)


def _ewma(values: np.ndarray, starts: np.ndarray, lam: float) -> np.ndarray:
    """Exponentially weighted moving average per patient over answered rows, carried over unanswered ones.

    The recursion runs once per position within a patient, across all patients at once.
    """
    answered = np.flatnonzero(~np.isnan(values))
    out = np.full(len(values), np.nan)
    if len(answered):
        x = values[answered]
        sub_starts = group_starts(starts[answered])
        rank = np.arange(len(answered)) - sub_starts
        smoothed = x.copy()
        by_rank = np.argsort(rank, kind="stable")
        bounds = np.searchsorted(rank[by_rank], np.arange(int(rank.max()) + 2))
        for k in range(1, len(bounds) - 1):
            at = by_rank[bounds[k] : bounds[k + 1]]
            smoothed[at] = lam * x[at] + (1 - lam) * smoothed[at - 1]
        out[answered] = smoothed
    return take(out, carry_forward(~np.isnan(values), starts), np.nan)
