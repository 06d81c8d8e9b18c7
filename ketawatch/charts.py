"""What to draw for one patient's review, described once so the dashboard (Plotly) and the PDF
export (matplotlib) show the same series, thresholds, bands and words.

Pure: records in, plain dataclasses out; no plotting library is imported here. The numbers come
from `ketawatch.risk.patient_signals`, the same features the levels are computed from, so a
threshold drawn on a chart is the threshold the engine used for this patient (after the SUD
sensitivity factor).

The public API is `patient_chart_specs(records, patient_id, *, tz, date_from=None, date_to=None)`
returning a list of `ChartSpec` in display order, and `level_periods(...)` for the level history
that every chart shades behind its data. A renderer needs only these rules:

- every spec shares `x_range` (inclusive dates) and `levels` (shade each period by its level,
  and say the level in words somewhere, e.g. a label or the "levels" chart);
- `Series.style` is "line", "markers", "line+markers" or "bar"; `Series.role` is a drawing hint
  ("value", "trend", "baseline", "pre", "post", "request", "flag", "mild", "moderate", "severe");
  `Series.symbol` names a marker shape (Plotly names: circle, diamond, triangle-up, x, ...);
  `Series.hover` holds one text per point, its date and value in clinic words ("5 Oct 2026 · 0.60 mg/kg (50 mg,
  84.0 kg) · patient asked for a higher dose");
- `RefLine` is a horizontal line with a label; `Band` a horizontal band (role "caution" or
  "alert"); `y_categories`, when set, are tick labels for y = 0, 1, 2, ...;
- `Heatmap` rows are `y` labels, columns `x` dates, values `z` (NaN = not answered), with
  `cell_text` the answer in words and `row_notes` the seed quotation behind each row.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from ketawatch.risk import patient_signals, scoring
from ketawatch.risk.reasons import reason_title
from ketawatch.risk.rules import RuleSettings, load_rules
from ketawatch.risk.wording import day_words
from seed_data.catalogue import instruments, seed_citation, side_effects, warning_sign_answers, warning_signs
from store.frames import Records
from store.vocabulary import SEVERITIES, WEIGHT_BASED_ROUTES, code_words

LEVEL_NAMES = {"green": "Green", "amber": "Amber", "red": "Red"}


@dataclass(frozen=True)
class Series:
    """One set of points on a chart, with its legend name and how it should look."""

    name: str
    x: tuple[dt.date, ...]
    y: tuple[float, ...]
    style: str = "line+markers"
    role: str = "value"
    symbol: str = "circle"
    hover: tuple[str, ...] = ()


@dataclass(frozen=True)
class RefLine:
    """A horizontal reference: a plan, a threshold or a target, with its label."""

    y: float
    label: str
    role: str = "threshold"  # threshold, plan, target, remission (a second target, drawn apart from the first)


@dataclass(frozen=True)
class Band:
    """A horizontal band that marks a range of concern (role "caution" or "alert")."""

    y0: float
    y1: float
    label: str
    role: str = "caution"


@dataclass(frozen=True)
class Heatmap:
    """A grid of answers by date: rows `y`, columns `x`, values `z` (rows x columns)."""

    x: tuple[dt.date, ...]
    y: tuple[str, ...]
    z: tuple[tuple[float, ...], ...]
    cell_text: tuple[tuple[str, ...], ...]
    row_notes: tuple[str, ...]
    zmin: float = 0
    zmax: float = 3
    scale_labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class LevelPeriod:
    """A stretch of days at one level: from `start` to `end` inclusive."""

    start: dt.date
    end: dt.date
    level: str


@dataclass(frozen=True)
class ChartSpec:
    """One chart of the patient review: its data, references and words, on the shared time axis."""

    key: str
    title: str
    y_label: str
    x_range: tuple[dt.date, dt.date]
    series: tuple[Series, ...] = ()
    lines: tuple[RefLine, ...] = ()
    bands: tuple[Band, ...] = ()
    heatmap: Heatmap | None = None
    y_range: tuple[float, float] | None = None
    y_categories: tuple[str, ...] = ()
    levels: tuple[LevelPeriod, ...] = ()
    note: str = ""
    empty_text: str = "Nothing recorded in this period."
    height: int = 260

    @property
    def is_empty(self) -> bool:
        """True when there is nothing to plot in the chosen period."""
        if self.heatmap is not None:
            return len(self.heatmap.x) == 0
        return not any(len(s.x) for s in self.series)


# ----- helpers --------------------------------------------------------------------------------


def _points(frame: pd.DataFrame, y: str, *, x: str = "date") -> tuple[tuple, tuple]:
    """The (x, y) tuples of the rows where `y` was recorded."""
    have = frame[frame[y].notna()]
    return tuple(have[x]), tuple(float(v) for v in have[y])


def _series(frame: pd.DataFrame, y: str, name: str, says, **kwargs) -> Series:
    """The rows where `y` was recorded, each with its hover text: the date and what `says(row)` puts in words."""
    xs, ys = _points(frame, y)
    return Series(name, xs, ys, hover=_hover(frame[frame[y].notna()], says), **kwargs)


def _hover(frame: pd.DataFrame, says) -> tuple[str, ...]:
    """'5 Oct 2026 · 0.60 mg/kg (50 mg, 84.0 kg)', one per row: Plotly's own hover, '(Oct 5, 2026, 0.5952381)', gave
    no unit and none of what the point stands for (clinician's browser review)."""
    return tuple(f"{day_words(row['date'])} · {says(row)}" for row in frame.to_dict("records"))


def _measured_series(frame: pd.DataFrame, y: str, name: str, unit: str, **kwargs) -> Series:
    """A vital sign per session, NaN where the session did not record it, so its line breaks there: joined across,
    a session with no blood pressure was invisible (clinician's browser pass). Empty when none was recorded."""
    if not frame[y].notna().any():
        return Series(name, (), (), **kwargs)
    words = name.split(" (")[0]  # "Heart rate before (/min)": the unit goes after the number
    hover = _hover(frame, lambda r: f"{words} {_num(r[y])}{unit}" if pd.notna(r[y]) else f"{words} not recorded")
    return Series(name, tuple(frame["date"]), tuple(float(v) if pd.notna(v) else math.nan for v in frame[y]),
                  hover=hover, **kwargs)


def _threshold(signals: dict, name: str) -> float:
    """A rule setting as the engine applied it to this patient (no copy of rules.toml here: a missing one is a bug)."""
    t = signals["thresholds"]
    return float(t.loc[t["setting"] == name, "value"].item())


def _threshold_label(signals: dict, name: str, value: float) -> str:
    """"Clinic threshold 4", or, where a history of substance use disorder lowered it, both numbers: the line must not
    claim the clinic's setting is 3 when it is 4."""
    t = signals["thresholds"]
    clinic = t.loc[t["setting"] == name, "clinic_value"]
    if len(clinic) and float(clinic.iloc[0]) != value:
        return f"Threshold {_num(value)} (clinic {_num(float(clinic.iloc[0]))}, lowered for SUD history)"
    return f"Clinic threshold {_num(value)}"


def _num(x: float) -> str:
    return f"{x:g}" if abs(x) >= 1 or x == 0 else f"{x:.2f}"


def _in_range(frame: pd.DataFrame, date_from: dt.date, date_to: dt.date) -> pd.DataFrame:
    days = frame["date"]
    return frame[(days >= date_from) & (days <= date_to)].reset_index(drop=True)


def level_periods(levels: pd.DataFrame, date_from: dt.date, date_to: dt.date) -> tuple[LevelPeriod, ...]:
    """Consecutive runs of one level from the engine's per-date levels, clipped to the period.

    A level holds from the date it was assessed until the day before the next change; the last
    one holds to `date_to`.
    """
    if levels.empty:
        return ()
    frame = levels.sort_values("date", kind="stable")
    level = frame["level"].to_numpy()
    change = np.r_[True, level[1:] != level[:-1]]
    starts = frame["date"].to_numpy()[change]
    kinds = level[change]
    ends = [s - dt.timedelta(days=1) for s in starts[1:]] + [max(date_to, starts[-1])]
    out = []
    for start, end, kind in zip(starts, ends, kinds):
        lo, hi = max(start, date_from), min(end, date_to)
        if lo <= hi:
            out.append(LevelPeriod(lo, hi, str(kind)))
    return tuple(out)


# ----- the charts ------------------------------------------------------------------------------


def _levels_chart(signals, common) -> ChartSpec:
    levels = signals["levels"]
    order = ("green", "amber", "red")
    frame = _in_range(levels, *common["x_range"])
    y = tuple(float(order.index(v)) for v in frame["level"])
    # the reasons in the caseload's few words: in full they ran off both edges of the chart on one line (clinician's
    # second browser review); the full observations are under "Why" beside the chart
    hover = tuple(f"{day_words(d)} · {LEVEL_NAMES[v]}" + (f": {' · '.join(reason_title(r) for r in rs)}" if rs else "")
                  for d, v, rs in zip(frame["date"], frame["level"], frame["reasons"]))
    return ChartSpec(
        "levels", "Dependence-risk level", "Level", **common,
        series=(Series("Level on each record date", tuple(frame["date"]), y, style="line+markers", role="level",
                       hover=hover),),
        y_range=(-0.5, 2.5), y_categories=tuple(LEVEL_NAMES[v] for v in order), height=180,
        note="The level on every date with a record, from the same rules as the caseload.",
    )


def _craving_chart(signals, common) -> ChartSpec:
    c = _in_range(signals["checkins"], *common["x_range"])
    rise = _threshold(signals, "craving_rise_points")
    high = _threshold(signals, "craving_high")
    base = signals["checkins"]["craving_baseline"].dropna()
    trend = _threshold(signals, "craving_ewma_rise_points")
    bands = [Band(high, 10, f"High: {math.ceil(high)} or more", "alert")]  # whole-number answers: 5.25 means 6
    lines: list[RefLine] = []
    note = f"Craving for ketamine outside treatment (0-10). High craving: {math.ceil(high)} or more."
    if len(base):
        b = float(base.iloc[-1])
        if b + rise < high:
            bands.insert(0, Band(b + rise, high, f"{_num(rise)}+ points above the personal baseline ({_num(b)})", "caution"))
        # The smoothed trend counts at its own, lower line: a rise held by the average looked on the chart as if it
        # had not risen (browser check).
        lines.append(RefLine(b + trend, f"Smoothed trend counts at {_num(b + trend)}+ ({_num(trend)} above baseline)"))
        note += (f" Personal baseline {_num(b)} (median of the first check-ins); a rise of {_num(rise)}+ points counts, "
                 f"and so does the smoothed trend at {_num(trend)}+ points when it holds at several check-ins in a row.")
    else:
        note += " The personal baseline appears after the first check-ins."
    return ChartSpec(
        "craving", "Craving", "Craving (0-10)", **common,
        series=(
            _series(c, "craving", "Craving", lambda r: f"craving {_num(r['craving'])} of 10", role="value"),
            _series(c, "craving_ewma", "Smoothed trend (EWMA)", lambda r: f"smoothed craving trend {r['craving_ewma']:.1f}",
                    style="line", role="trend"),
            _series(c, "craving_baseline", "Personal baseline",
                    lambda r: f"personal craving baseline {_num(r['craving_baseline'])}", style="line", role="baseline"),
        ),
        bands=tuple(bands), lines=tuple(lines), y_range=(0, 10.5), note=note,
    )


def _signs_chart(signals, common) -> ChartSpec:
    c = _in_range(signals["checkins"], *common["x_range"])
    signs = warning_signs()
    ids = [s.id for s in signs]
    daily = c[["date", *ids]].groupby("date", sort=True).max() if len(c) else pd.DataFrame(columns=ids)
    answers = warning_sign_answers()
    z = daily[ids].to_numpy(dtype="float64").T if len(daily) else np.empty((len(ids), 0))
    words = tuple(tuple("not answered" if np.isnan(v) else f"{answers[int(v)]} ({int(v)})" for v in row) for row in z)
    heat = Heatmap(
        x=tuple(daily.index), y=tuple(s.label for s in signs), z=tuple(tuple(map(float, row)) for row in z),
        cell_text=words, row_notes=tuple(f"“{s.quotation}” ({seed_citation(s.source)})" for s in signs),
        scale_labels=answers,
    )
    return ChartSpec(
        "warning_signs", "Warning signs", "", **common, heatmap=heat, height=420,
        note="The twelve checklist items by check-in date: "
             + ", ".join(f"{i} {w.lower()}" for i, w in enumerate(answers))
             + ". The lightest grey cell is 'not at all' (0); no cell: not answered. "
             "Hover a cell for the source passage behind the sign.",
    )


def _dose_charts(signals, common, patient) -> list[ChartSpec]:
    s = _in_range(signals["sessions"], *common["x_range"])
    rise = _threshold(signals, "dose_rise_fraction")
    specs = []
    weight_based = s[s["route"].isin(WEIGHT_BASED_ROUTES)]
    fixed = s[~s["route"].isin(WEIGHT_BASED_ROUTES)]
    all_sessions = signals["sessions"]
    kinds = []
    if len(all_sessions[all_sessions["route"].isin(WEIGHT_BASED_ROUTES)]) or not len(all_sessions):
        kinds.append(("dose", weight_based, "dose_per_kg", "mg/kg", "Dose per kg"))
    if len(all_sessions[~all_sessions["route"].isin(WEIGHT_BASED_ROUTES)]):
        kinds.append(("dose_mg" if kinds else "dose", fixed, "dose_mg", "mg", "Dose (fixed-dose routes)"))
    for key, frame, column, unit, title in kinds:
        lines, note = [], f"Dose in {unit} at each session."
        if unit == "mg/kg":
            plan = patient.get("planned_dose_mg_per_kg")
            if plan is not None and not pd.isna(plan):
                lines = [RefLine(float(plan), f"Plan {_num(float(plan))} mg/kg", "plan"),
                         RefLine(float(plan) * (1 + rise), f"{round(rise * 100):d}% above plan", "threshold")]
            else:
                note += " No planned mg/kg recorded."
        else:
            plan = patient.get("planned_dose_mg")
            ref = all_sessions.loc[~all_sessions["route"].isin(WEIGHT_BASED_ROUTES), "dose_reference"].dropna()
            if plan is not None and not pd.isna(plan):
                lines = [RefLine(float(plan), f"Plan {_num(float(plan))} mg", "plan"),
                         RefLine(float(plan) * (1 + rise), f"{round(rise * 100):d}% above plan", "threshold")]
            elif len(ref):
                r = float(ref.iloc[-1])
                lines = [RefLine(r, f"Reference {_num(r)} mg (first sessions)", "plan"),
                         RefLine(r * (1 + rise), f"{round(rise * 100):d}% above reference", "threshold")]
        asked_more = frame[frame["dose_increase_request"].astype(bool) & frame[column].notna()]
        asked_early = frame[frame["early_request"].astype(bool) & frame[column].notna()]
        says = lambda r, unit=unit: _dose_words(r, unit)  # noqa: E731 - every mark of a session says the same
        specs.append(ChartSpec(
            key, title, f"Dose ({unit})", **common,
            series=(
                _series(frame, column, f"Dose ({unit})", says, role="value"),
                Series("Patient asked for a higher dose", tuple(asked_more["date"]),
                       tuple(float(v) for v in asked_more[column]), style="markers", role="request", symbol="triangle-up",
                       hover=_hover(asked_more, says)),
                Series("Patient asked for an earlier session", tuple(asked_early["date"]),
                       tuple(float(v) for v in asked_early[column]), style="markers", role="request", symbol="diamond-open",
                       hover=_hover(asked_early, says)),
            ),
            lines=tuple(lines),
            note=note + " Clinician-planned titration is expected; requests from the patient are marked.",
        ))
    return specs


def _dose_words(row: dict, unit: str) -> str:
    """A session's dose as the clinic writes it, with what the patient asked for: '0.60 mg/kg (50 mg, 84.0 kg) ·
    patient asked for a higher dose', or '56 mg intranasal' on a fixed-dose route."""
    if unit == "mg/kg":
        # a weight carried from an earlier session is said to be one (code review: it read as weighed that day)
        weighed = "" if row.get("weight_recorded", True) else ", not weighed at this session: the last weight recorded"
        text = f"{row['dose_per_kg']:.2f} mg/kg ({row['dose_mg']:g} mg, {row['weight_kg']:.1f} kg{weighed})"
    else:
        text = f"{row['dose_mg']:g} mg {code_words(str(row['route']), capital=False)}"
    return text + _asked_words(row)


def _asked_words(row: dict) -> str:
    """' · patient asked for a higher dose and an earlier session', or nothing when the patient asked for neither."""
    asked = [what for flag, what in (("dose_increase_request", "a higher dose"), ("early_request", "an earlier session"))
             if bool(row.get(flag))]
    return f" · patient asked for {' and '.join(asked)}" if asked else ""


def _interval_words(row: dict) -> str:
    """'10 days since the previous session · early (below the early line) · patient asked for an earlier session'."""
    days = int(row["interval_days"])
    text = f"{days} day{'' if days == 1 else 's'} since the previous session"
    if bool(row.get("early_interval")):
        text += " · early (below the early line)"
    return text + (" · patient asked for an earlier session" if bool(row.get("early_request")) else "")


def _interval_chart(signals, common, rules: RuleSettings) -> ChartSpec:
    s = _in_range(signals["sessions"], *common["x_range"])
    ref = signals["sessions"]["reference_interval_days"].dropna()
    lines = []
    note = "Days since the previous session."
    if len(ref):
        r = float(ref.iloc[-1])
        planned = signals["sessions"]["planned_interval_days"].dropna()
        what = "Planned interval" if len(planned) else "Usual interval (first maintenance sessions)"
        lines = [RefLine(r, f"{what}: {_num(r)} days", "plan"),
                 RefLine(r * rules.interval_early_fraction, f"Early: under {round(rules.interval_early_fraction * 100)}%", "threshold")]
    early = s[s["early_interval"].astype(bool) & s["interval_days"].notna()]
    asked = s[s["early_request"].astype(bool) & s["interval_days"].notna()]
    return ChartSpec(
        "interval", "Days between sessions", "Days", **common,
        series=(
            _series(s, "interval_days", "Days since previous session", _interval_words, style="bar", role="value"),
            Series("Early (maintenance, below the early line)", tuple(early["date"]), tuple(map(float, early["interval_days"])),
                   style="markers", role="flag", symbol="triangle-down", hover=_hover(early, _interval_words)),
            Series("Patient asked for an earlier session", tuple(asked["date"]), tuple(map(float, asked["interval_days"])),
                   style="markers", role="request", symbol="diamond-open", hover=_hover(asked, _interval_words)),
        ),
        lines=tuple(lines),
        note=note + f" Judged against the plan after induction (the first {rules.interval_induction_sessions} sessions "
                    f"and {rules.interval_induction_days} days).",
    )


def _sds_chart(signals, common) -> ChartSpec:
    c = _in_range(signals["checkins"], *common["x_range"])
    thr = _threshold(signals, "sds_threshold")
    rise = _threshold(signals, "sds_rise_points")
    return ChartSpec(
        "sds", "Severity of Dependence Scale", "SDS total (0-15)", **common,
        series=(
            _series(c, "sds_total", "SDS total", lambda r: f"SDS {_num(r['sds_total'])} of 15", role="value"),
            _series(c, "sds_baseline", "Personal baseline", lambda r: f"personal SDS baseline {_num(r['sds_baseline'])}",
                    style="line", role="baseline"),
        ),
        lines=(RefLine(thr, _threshold_label(signals, "sds_threshold", thr), "threshold"),),
        y_range=(0, 15.5),
        note=f"Counts only when at or above {_num(thr)} and {_num(rise)}+ points above the personal baseline: "
             "a high but stable SDS is mostly reliance on a treatment that works. No validated ketamine cut-off exists.",
    )


def _phq9_chart(signals, common) -> ChartSpec:
    c = _in_range(signals["checkins"], *common["x_range"])
    phq = instruments()["phq9"]
    lines = [RefLine(phq["remission_below"], f"Remission: below {phq['remission_below']}", "remission")]
    base = signals["checkins"]["phq9_baseline"].dropna()
    note = "Benefit side: PHQ-9 depression score (0-27, lower is better)."
    if len(base) and float(base.iloc[0]) > 0:
        b = float(base.iloc[0])
        target = b * (1 - phq["response_min_drop_fraction"])
        lines.insert(0, RefLine(target, f"Response: {_num(target)} (half of the first score, {_num(b)})", "target"))
    return ChartSpec(
        "phq9", "PHQ-9 (benefit)", "PHQ-9 total (0-27)", **common,
        series=(_series(c, "phq9", "PHQ-9 total", _phq9_words, role="benefit"),),
        lines=tuple(lines), y_range=(0, 27.5),
        note=note + f" A change of {phq['reliable_change']}+ points is reliable.",
    )


def _holds(flag: object) -> bool:
    """A yes/no cell that is yes (a missing one is not)."""
    return flag is not None and not pd.isna(flag) and bool(flag)


def _phq9_words(row: dict) -> str:
    """'PHQ-9 8 of 27 (mild) · response · reliably better than the first (18)': the total with its band, and the
    engine's response, remission and reliable change against the first score, which the chart's lines only hint at."""
    band = row.get("phq9_band")
    words = [f"PHQ-9 {_num(row['phq9'])} of 27" + (f" ({band})" if isinstance(band, str) and band else "")]
    if _holds(row.get("phq9_remission")):
        words.append("remission")
    elif _holds(row.get("phq9_response")):
        words.append("response")
    first = row.get("phq9_baseline")
    change = {scoring.PHQ9_IMPROVED: "reliably better", scoring.PHQ9_WORSENED: "reliably worse"}.get(row.get("phq9_change"))
    if change and first is not None and not pd.isna(first):
        words.append(f"{change} than the first ({_num(float(first))})")
    return " · ".join(words)


def _vitals_charts(raw: pd.DataFrame, common) -> list[ChartSpec]:
    s = _in_range(raw, *common["x_range"])
    bp = ChartSpec(
        "blood_pressure", "Blood pressure before and after dosing", "mmHg", **common,
        series=(
            _measured_series(s, "sbp_pre", "Systolic before", " mmHg", style="line+markers", role="pre", symbol="circle"),
            _measured_series(s, "sbp_post", "Systolic after", " mmHg", style="line+markers", role="post", symbol="diamond"),
            _measured_series(s, "dbp_pre", "Diastolic before", " mmHg", style="line+markers", role="pre", symbol="circle-open"),
            _measured_series(s, "dbp_post", "Diastolic after", " mmHg", style="line+markers", role="post", symbol="diamond-open"),
        ),
        note="Blood pressure rises after dosing, peaking at about 40 minutes.",
    )
    hr = ChartSpec(
        "heart_rate", "Heart rate and oxygen saturation", "/min or %", **common,
        series=(
            _measured_series(s, "hr_pre", "Heart rate before (/min)", "/min", role="pre", symbol="circle"),
            _measured_series(s, "hr_post", "Heart rate after (/min)", "/min", role="post", symbol="diamond"),
            _measured_series(s, "spo2_pre", "SpO₂ before (%)", "%", style="markers", role="pre", symbol="square-open"),
            _measured_series(s, "spo2_post", "SpO₂ after (%)", "%", style="markers", role="post", symbol="x"),
        ),
    )
    return [bp, hr]


def _side_effects_chart(raw: pd.DataFrame, common) -> ChartSpec:
    s = _in_range(raw, *common["x_range"])
    items = s.loc[s["side_effects"].notna(), ["date", "side_effects"]]
    pairs = items.assign(item=items["side_effects"].str.split(";")).explode("item")
    if pairs.empty:
        pairs = pd.DataFrame({"date": [], "effect": pd.Series([], dtype=object), "severity": pd.Series([], dtype=object)})
    else:
        parts = pairs["item"].str.partition(":")
        pairs = pairs.assign(effect=parts[0].str.strip(), severity=parts[2].str.strip())
    catalogue = side_effects()
    labels = {e.id: e.label for e in catalogue}
    present = [e.id for e in catalogue if e.id in set(pairs["effect"])]
    row = {e: i for i, e in enumerate(present)}
    symbols = {"mild": "circle-open", "moderate": "circle", "severe": "x"}
    series = []
    for severity in SEVERITIES:
        part = pairs[pairs["severity"] == severity]
        series.append(Series(
            severity.capitalize(), tuple(part["date"]), tuple(float(row[e]) for e in part["effect"]),
            style="markers", role=severity, symbol=symbols[severity],
            hover=tuple(f"{day_words(d)} · {labels.get(e, e)}: {severity}" for d, e in zip(part["date"], part["effect"])),
        ))
    return ChartSpec(
        "side_effects", "Side effects by session", "", **common, series=tuple(series),
        y_categories=tuple(labels.get(e, e) for e in present),
        y_range=(-0.5, max(len(present), 1) - 0.5), height=max(180, 60 + 28 * len(present)),
        note="Each mark is one side effect at one session; the shape gives its severity.",
    )


def patient_chart_specs(
    records: Records,
    patient_id: str,
    *,
    tz: str | ZoneInfo,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    rules: RuleSettings | None = None,
) -> list[ChartSpec]:
    """Every chart of one patient's review, in display order, on one shared date range.

    The range defaults to the patient's first to last record (at least one day). Keys, in order:
    levels, craving, warning_signs, dose (and dose_mg when both weight-based and fixed-dose routes
    were used), interval, sds, phq9, blood_pressure, heart_rate, side_effects.
    """
    tz_name = tz.key if isinstance(tz, ZoneInfo) else str(tz)
    rules = rules or load_rules()
    signals = patient_signals(records, patient_id, rules=rules, tz=tz_name)
    mine = records.for_patients([patient_id])
    raw = mine.sessions.sort_values("session_at", kind="stable").reset_index(drop=True)
    raw = raw.assign(date=[d.date() for d in raw["session_at"].dt.tz_convert(tz_name)])
    patient = mine.patients.iloc[0].to_dict() if len(mine.patients) else {}

    dates = [*signals["checkins"]["date"], *signals["sessions"]["date"]]
    first = min(dates) if dates else pd.Timestamp.now(tz=tz_name).date()
    last = max(dates) if dates else first
    lo = date_from or first
    hi = date_to or last
    if hi < lo:
        lo, hi = hi, lo
    common = {"x_range": (lo, hi), "levels": level_periods(signals["levels"], lo, hi)}
    return [
        _levels_chart(signals, common),
        _craving_chart(signals, common),
        _signs_chart(signals, common),
        *_dose_charts(signals, common, patient),
        _interval_chart(signals, common, rules),
        _sds_chart(signals, common),
        _phq9_chart(signals, common),
        *_vitals_charts(raw, common),
        _side_effects_chart(raw, common),
    ]


def record_span(records: Records, patient_id: str, *, tz: str | ZoneInfo) -> tuple[dt.date, dt.date] | None:
    """The first and last clinic-local dates with a record of this patient (None without records)."""
    tz_name = tz.key if isinstance(tz, ZoneInfo) else str(tz)
    mine = records.for_patients([patient_id])
    instants = pd.concat([mine.sessions["session_at"], mine.checkins["reported_at"]])
    if instants.empty:
        return None
    local = instants.dt.tz_convert(tz_name)
    return local.min().date(), local.max().date()
