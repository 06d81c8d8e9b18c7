"""Levels per patient and date from the record frames: the one function the CLI, dashboard, PDF and tests call.

A patient is assessed on every clinic-local date that has one of their records. The state on a
date is their latest check-in row and latest session row on or before it (features.py computes
those causally), the rule conditions are looked up as boolean columns and combined into a level
without any loop over records; Reason objects are built only for the rows a caller returns.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ketawatch.risk import scoring
from ketawatch.risk.features import (
    FeatureTable,
    checkin_features,
    patient_table,
    persistent_signs,
    session_features,
    weighty_specific_signs,
)
from ketawatch.risk.reasons import (
    CORROBORATING,
    FAMILIES,
    POINTS,
    REQUEST_FAMILIES,
    RULES,
    Reason,
    build_reasons,
    with_relapse_discount,
)
from ketawatch.risk.rules import SUD_SCALED, RuleSettings, load_rules
from ketawatch.risk.windows import take
from store.frames import Records

LEVELS = np.array(["green", "amber", "red"], dtype=object)
_KEY = np.int64(1) << 32  # packs (patient code, day) into one sortable integer
_DAY_OFFSET = np.int64(1) << 31


@dataclass(frozen=True)
class Evaluation:
    """Feature frames and the per-date level arrays of one evaluation, kept together for building reasons."""

    patients: pd.DataFrame
    checkins: FeatureTable
    sessions: FeatureTable
    daily: dict[str, np.ndarray]  # code, day, c_row, s_row, level_code, changed, rule_<id> and sign_<id>
    rules: RuleSettings

    def reasons(self, positions: np.ndarray, *, on_green: bool = False) -> list[list[Reason]]:
        """Reasons for the given rows of `daily`, most important first; for green rows empty lists, or with `on_green`
        the supporting observations that hold there without raising the level."""
        signs = persistent_signs(self.rules)
        daily = self.daily
        built: dict[tuple, list[Reason]] = {}
        out: list[list[Reason]] = []
        for position in positions:
            if daily["level_code"][position] == 0 and not on_green:
                out.append([])
                continue
            found: list[Reason] = []
            active = tuple(sign for sign in signs if daily[f"sign_{sign}"][position])
            for rule in RULES:
                if not daily[f"rule_{rule.id}"][position]:
                    continue
                if rule.records == "checkins":
                    table, row = self.checkins, daily["c_row"][position]
                else:
                    table, row = self.sessions, daily["s_row"][position]
                key = (rule.id, int(row), active)  # dates without a new record of that kind share its reasons
                if key not in built:
                    built[key] = build_reasons(rule.id, table, int(row), self.rules, active)
                if rule.family == "frequency" and daily["relapse_context"][position]:
                    c_row = int(daily["c_row"][position])
                    mood = (float(self.checkins["phq9_low"][c_row]), float(self.checkins["phq9_last"][c_row]))
                    found.extend(with_relapse_discount(reason, self.rules, *mood) for reason in built[key])
                else:
                    found.extend(built[key])
            out.append(found)
        return out


def evaluate(records: Records, *, rules: RuleSettings | None = None, tz: str, until: dt.date | None = None) -> Evaluation:
    """Compute features and levels for every patient on every record date (up to `until`, inclusive)."""
    rules = rules or load_rules()
    until_day = None if until is None else (until - dt.date(1970, 1, 1)).days
    patients = patient_table(records.patients)
    c = checkin_features(records.checkins, patients, rules, tz, until_day)
    s = session_features(records.sessions, patients, rules, tz, until_day)

    # Assessment dates: every (patient, local date) with a record; the state is the latest row of each kind.
    c_keys, c_last = _last_per_day(c)
    s_keys, s_last = _last_per_day(s)
    keys = np.union1d(c_keys, s_keys)
    daily = {"code": keys // _KEY, "day": keys % _KEY - _DAY_OFFSET}
    daily["c_row"] = _latest(c_keys, c_last, keys)
    daily["s_row"] = _latest(s_keys, s_last, keys)
    none = np.zeros(len(keys), dtype=bool)

    def at_date(table: FeatureTable, column: str, rows: np.ndarray) -> np.ndarray:
        return take(np.asarray(table[column], dtype=bool), rows, False).astype(bool)

    for sign in persistent_signs(rules):
        daily[f"sign_{sign}"] = at_date(c, f"sign_{sign}", daily["c_row"])
    points = {family: np.zeros(len(keys), dtype="int64") for family in FAMILIES}
    for rule in RULES:
        if rule.id == "specific_sign_persistent":
            hit = np.logical_or.reduce([none, *(daily[f"sign_{sign}"] for sign in persistent_signs(rules))])
            counted = np.logical_or.reduce([none, *(daily[f"sign_{sign}"] for sign in weighty_specific_signs(rules))])
        else:
            frame, rows = (c, daily["c_row"]) if rule.records == "checkins" else (s, daily["s_row"])
            hit = counted = at_date(frame, f"rule_{rule.id}", rows)
        if rule.id in CORROBORATING:
            # Lighter answers count only while craving has moved from the patient's baseline (alone
            # they are answer noise; beside a craving signal, a second family agreeing), and only
            # in place of a stronger signal of their own family, which already says more. RULES
            # lists them last, so the points of every other rule are in by now.
            hit = counted = hit & (points["craving"] > 0) & (points[rule.family] == 0)
            if rule.id == "corroborating_sign":  # its use signs must not count again beside the use family's own
                hit = counted = hit & (points["use"] == 0)
        daily[f"rule_{rule.id}"] = hit
        if rule.family:
            worth = POINTS["weak" if rule.level == "weak" else "amber"]
            points[rule.family] = np.maximum(points[rule.family], np.where(counted, worth, 0))
    # Asking to come earlier while PHQ-9 has reliably worsened is what a depressive relapse looks
    # like ("it wears off sooner"): the frequency family then counts one point less.
    phq9_rise = take(c["phq9_last"] - c["phq9_low"], daily["c_row"], np.nan)
    daily["relapse_context"] = relapse = phq9_rise >= rules.interval_relapse_phq9_rise
    points["frequency"] = np.where(relapse, np.maximum(points["frequency"] - 1, 0), points["frequency"])

    # Combination: red on an unequivocal signal, or enough evidence points from several families;
    # amber on any amber rule, or weak signals of different families adding up.
    total = np.sum(list(points.values()), axis=0) if len(keys) else np.zeros(0, dtype="int64")
    n_families = np.sum([(p > 0).astype("int64") for p in points.values()], axis=0) if len(keys) else total
    unequivocal = np.logical_or.reduce([none, *(daily[f"rule_{rule.id}"] for rule in RULES if rule.level == "red")])
    enough = (total >= rules.combination_red_min_points) & (n_families >= rules.combination_red_min_families)
    # The patient's requests alone (dose and frequency families, nothing reported or on the
    # checklist) are one line of evidence that a relapse or a hard few weeks also produce: red
    # only when the asking persists or has already changed the treatment ([requests] persistent).
    reported = np.sum([points[family] for family in FAMILIES if family not in REQUEST_FAMILIES], axis=0)
    escalated = np.logical_or.reduce(
        [
            daily["rule_interval_shrinking"],
            daily["rule_dose_above_plan_after_request"],
            at_date(s, "requests_persistent", daily["s_row"]),
        ]
    )
    daily["requests_alone"] = requests_alone = (reported == 0) & ~escalated
    red = unequivocal | (enough & ~requests_alone)
    any_rule = np.logical_or.reduce([none, *(daily[f"rule_{rule.id}"] for rule in RULES if rule.level != "weak")])
    amber = any_rule | (total >= rules.combination_amber_min_points)
    daily["families"] = n_families
    daily["points"] = total
    daily["level_code"] = level = np.where(red, 2, np.where(amber, 1, 0)).astype("int64")
    code = daily["code"]
    changed = np.ones(len(keys), dtype=bool)
    changed[1:] = (code[1:] != code[:-1]) | (level[1:] != level[:-1])
    daily["changed"] = changed
    return Evaluation(patients, c, s, daily, rules)


def assess(records: Records, *, as_of: dt.date | None = None, rules: RuleSettings | None = None, tz: str) -> pd.DataFrame:
    """Each patient's level as of a date (default today in `tz`), the date it began, and why.

    Columns: patient_id, as_of (date), level ("green"/"amber"/"red"), since (date the current
    level began; None if the patient has no record on or before `as_of`), reasons (list of
    Reason, most important first; empty for green). One row per patient, in the order of
    `records.patients`.
    """
    as_of = pd.Timestamp.now(tz=tz).date() if as_of is None else as_of
    if isinstance(as_of, dt.datetime):  # a Timestamp or datetime: its calendar date
        as_of = as_of.date()
    ev = evaluate(records, rules=rules, tz=tz, until=as_of)
    daily = ev.daily
    n = len(ev.patients)
    code = daily["code"]
    last = np.full(n, -1, dtype="int64")
    last[code] = np.arange(len(code))  # later rows of a patient overwrite earlier ones
    change_pos = np.flatnonzero(daily["changed"])
    since_day = np.zeros(n, dtype="int64")
    since_day[code[change_pos]] = daily["day"][change_pos]
    has = last >= 0
    level_code = np.where(has, take(daily["level_code"], last, 0), 0)
    reasons = [[] for _ in range(n)]
    for i, found in zip(np.flatnonzero(has), ev.reasons(last[has])):
        reasons[i] = found
    since = np.where(has, since_day, 0).astype("datetime64[D]").astype(object)
    return pd.DataFrame(
        {
            "patient_id": ev.patients["patient_id"].astype(object).to_numpy(),
            "as_of": np.full(n, as_of, dtype=object),
            "level": LEVELS[level_code],
            "since": np.where(has, since, None),
            "reasons": pd.Series(reasons, dtype=object),
        }
    )


def daily_levels(records: Records, *, rules: RuleSettings | None = None, tz: str) -> pd.DataFrame:
    """The level on every date with a record, per patient (patient_id, date, level, reasons), for charts and replay."""
    ev = evaluate(records, rules=rules, tz=tz)
    return _rows(ev, np.arange(len(ev.daily["code"])))


def level_history(records: Records, *, rules: RuleSettings | None = None, tz: str) -> pd.DataFrame:
    """CONTRACT section 3 history: per patient, the first assessed date and every date the level changed, in date order."""
    ev = evaluate(records, rules=rules, tz=tz)
    return _rows(ev, np.flatnonzero(ev.daily["changed"]))


def patient_signals(
    records: Records, patient_id: str, *, rules: RuleSettings | None = None, tz: str
) -> dict[str, pd.DataFrame]:
    """The computed series one patient's charts need, from the same features the levels use.

    Returns frames (dates are clinic-local `datetime.date`):

    - "checkins": reported_at, date, craving, craving_baseline (median of the first check-ins,
      NaN until established), craving_ewma (from the baseline on; a lone high answer counted as
      one rise), craving_drift (CUSUM above the baseline, counted from at least the rules' floor),
      sds_total (NaN unless all five items), sds_baseline, sds_control (SDS items 1, 3 and 4), sign_burden (all
      twelve signs, catalogue weights), nonspecific_burden, nonspecific_baseline, specific_burden
      (secrecy and tolerance, weighted), specific_drift (its CUSUM above baseline),
      specific_signs_clear (count of specific signs at "clearly" or more),
      the twelve sign answers, phq9, phq9_baseline (first recorded), phq9_band, phq9_response
      (>= 50% drop from baseline), phq9_remission (< 5), phq9_change ("improved" / "worsened"
      / "no reliable change", 6 points).
    - "sessions": session_at, date, route, dose_mg, weight_kg (carried forward when not
      recorded; weight_recorded says which), dose_per_kg (NaN for fixed-dose routes), dose_measure and dose_unit (mg/kg or
      mg), dose_reference (the plan in that unit, or the median of the first sessions on the route),
      planned_dose_mg_per_kg, planned_dose_mg, interval_days, planned_interval_days, reference_interval_days,
      maintenance (after induction), early_interval, early_request, dose_increase_request,
      dissociation_cadss, sbp_pre, dbp_pre, sbp_post, dbp_post.
    - "levels": date, level, reasons (every assessment date).
    - "thresholds": setting, value (after the SUD sensitivity factor for this patient), unit, clinic_value (the
      setting itself).
    """
    rules = rules or load_rules()
    ev = evaluate(records.for_patients([patient_id]), rules=rules, tz=tz)
    c, s = ev.checkins, ev.sessions
    checkins = c.frame(
        ["reported_at", "craving", "craving_baseline", "craving_ewma", "craving_drift", "sds_total", "sds_baseline",
         "sds_control", "sign_burden", "nonspecific_burden", "nonspecific_baseline", "specific_burden", "specific_drift",
         "specific_signs_clear", *scoring.sign_weights(), "phq9"]
    )  # fmt: skip
    checkins.insert(1, "date", _dates(c["day"]))
    recorded = c["phq9"][~np.isnan(c["phq9"])]
    checkins["phq9_baseline"] = recorded[0] if len(recorded) else np.nan
    checkins["phq9_band"] = scoring.phq9_band(checkins["phq9"])
    checkins["phq9_response"] = scoring.phq9_response(checkins["phq9_baseline"], checkins["phq9"])
    checkins["phq9_remission"] = scoring.phq9_remission(checkins["phq9"])
    checkins["phq9_change"] = scoring.phq9_reliable_change(checkins["phq9_baseline"], checkins["phq9"])
    sessions = s.frame(
        ["session_at", "route", "dose_mg", "weight_kg", "weight_recorded", "dose_per_kg", "dose_measure", "dose_unit",
         "dose_reference",
         "planned_dose_mg_per_kg", "planned_dose_mg", "interval_days", "planned_interval_days", "reference_interval_days",
         "maintenance", "early_interval", "early_request", "dose_increase_request", "dissociation_cadss",
         "sbp_pre", "dbp_pre", "sbp_post", "dbp_post"]
    )  # fmt: skip
    sessions.insert(1, "date", _dates(s["day"]))
    levels = _rows(ev, np.arange(len(ev.daily["code"]))).drop(columns="patient_id")
    sud = ev.patients["sud_history"].to_numpy(dtype=bool)[:1]
    thresholds = pd.DataFrame(
        [
            {"setting": name, "value": float(rules.scaled(name, sud if len(sud) else np.zeros(1, dtype=bool))[0]), "unit": unit,
             "clinic_value": float(getattr(rules, name))}
            for name, unit in _THRESHOLD_UNITS.items()
        ]
    )
    return {"checkins": checkins, "sessions": sessions, "levels": levels, "thresholds": thresholds}


_THRESHOLD_UNITS = {
    "craving_rise_points": "points above baseline (0-10 scale)",
    "craving_ewma_rise_points": "points above baseline (EWMA)",
    "craving_high": "of 10",
    "craving_drift_alarm": "craving CUSUM (points above baseline + allowance, summed)",
    "signs_drift_alarm": "specific-sign burden CUSUM (weighted points, summed)",
    "sds_control_threshold": "SDS items 1, 3 and 4 (0-9)",
    "sds_threshold": "SDS total (0-15)",
    "sds_rise_points": "points above baseline",
    "nonspecific_rise": "weighted burden above baseline",
    "dose_rise_fraction": "fraction above plan",
    "interval_early_fraction": "fraction of the planned interval",
}
assert set(SUD_SCALED) <= set(_THRESHOLD_UNITS)


def _rows(ev: Evaluation, positions: np.ndarray) -> pd.DataFrame:
    """Output rows (patient_id, date, level, reasons) for the given rows of the daily frame."""
    daily = ev.daily
    ids = ev.patients["patient_id"].astype(object).to_numpy()
    return pd.DataFrame(
        {
            "patient_id": ids[daily["code"][positions]],
            "date": _dates(daily["day"][positions]),
            "level": LEVELS[daily["level_code"][positions]],
            "reasons": pd.Series(ev.reasons(positions), dtype=object),
        }
    )


def _dates(days: np.ndarray) -> np.ndarray:
    """Day numbers as `datetime.date` objects."""
    return np.asarray(days, dtype="int64").astype("datetime64[D]").astype(object)


def _last_per_day(table: FeatureTable) -> tuple[np.ndarray, np.ndarray]:
    """Packed (patient, day) keys and the position of the last row of each, in sorted order."""
    code, day = table["code"], table["day"]
    last = np.ones(len(table), dtype=bool)
    if len(table):
        last[:-1] = (code[1:] != code[:-1]) | (day[1:] != day[:-1])
    rows = np.flatnonzero(last)
    return code[rows] * _KEY + day[rows] + _DAY_OFFSET, rows


def _latest(keys: np.ndarray, rows: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """For each target key, the row of the same patient's latest key at or before it, else -1."""
    at = np.searchsorted(keys, targets, side="right") - 1
    found = take(keys, at, -1)
    same_patient = (at >= 0) & (found // _KEY == targets // _KEY)
    return np.where(same_patient, take(rows, at, -1), -1)
