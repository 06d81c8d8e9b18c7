"""Instrument scoring shared by the risk engine, the forms and the exports, so a total is computed once.

Every function is pure and vectorised: it takes numbers, Series or frames with the CONTRACT
column names and returns the same shape, NaN where the answer was not recorded. The instrument
facts (PHQ-9 bands, response, remission, reliable change) come from seed_data/instruments.toml,
where their sources are cited; the warning-sign weights and specificity come from the
warning-sign catalogue (seed_data/warning_signs.toml).
"""

from __future__ import annotations

from functools import cache
from typing import NamedTuple

import numpy as np
import pandas as pd

from seed_data.catalogue import instruments, warning_signs
from store.vocabulary import SDS_ITEMS, WARNING_SIGNS, WEIGHT_BASED_ROUTES

#: Checklist score that means the sign is "clearly" present (0-3 scale, CONTRACT section 2).
CLEARLY = 2
#: Words for the change between two PHQ-9 totals.
PHQ9_IMPROVED, PHQ9_WORSENED, PHQ9_NO_CHANGE = "improved", "worsened", "no reliable change"


@cache
def _phq9() -> dict:
    """The PHQ-9 facts from the instruments file, read once."""
    return instruments()["phq9"]


def sds_total(checkins: pd.DataFrame) -> pd.Series:
    """Severity of Dependence Scale total 0-15; NaN unless all five items were answered."""
    return checkins[list(SDS_ITEMS)].sum(axis=1, min_count=len(SDS_ITEMS)).rename("sds_total")


def sds_control(checkins: pd.DataFrame) -> pd.Series:
    """Sum of the SDS items that do not overlap with therapeutic reliance (control, worry about use,
    wish to stop: 0-9); NaN unless all of them were answered."""
    items = sds_control_items()
    return checkins[list(items)].sum(axis=1, min_count=len(items)).rename("sds_control")


@cache
def sds_control_items() -> tuple[str, ...]:
    """SDS items the instruments catalogue marks as not rising with plain therapeutic reliance."""
    return tuple(item["id"] for item in instruments()["sds"]["item"] if not item["therapeutic_reliance_overlap"])


def sign_weights() -> dict[str, float]:
    """Catalogue weight of each warning sign, in contract order."""
    return {sign.id: sign.weight for sign in warning_signs()}


def specific_signs() -> tuple[str, ...]:
    """Warning signs the catalogue marks as pointing at misuse itself."""
    return tuple(sign.id for sign in warning_signs() if sign.is_specific)


def nonspecific_signs() -> tuple[str, ...]:
    """Warning signs the catalogue marks as also produced by relapse, PTSD or other illness."""
    return tuple(sign.id for sign in warning_signs() if not sign.is_specific)


def sign_burden(checkins: pd.DataFrame, signs: tuple[str, ...] = WARNING_SIGNS) -> pd.Series:
    """Weighted sum of checklist answers (catalogue weight x 0-3) over `signs`; NaN when none was answered."""
    weights = sign_weights()
    values = checkins[list(signs)].to_numpy(dtype="float64").reshape(len(checkins), len(signs))
    total = np.nansum(values * np.array([weights[s] for s in signs], dtype="float64"), axis=1)
    answered = ~np.isnan(values).all(axis=1) if signs else np.zeros(len(checkins), dtype=bool)
    return pd.Series(np.where(answered, total, np.nan), index=checkins.index, name="sign_burden")


def clear_specific_signs(checkins: pd.DataFrame, min_score: float = CLEARLY) -> pd.Series:
    """How many specific warning signs were answered at `min_score` ("clearly") or more (0 when none answered)."""
    values = checkins[list(specific_signs())].to_numpy(dtype="float64")
    return pd.Series((values >= min_score).sum(axis=1), index=checkins.index, name="specific_signs_clear", dtype="int64")


def phq9_band(total):
    """PHQ-9 severity band ("minimal" ... "severe") of a total or Series of totals; None where missing."""
    bands = sorted(_phq9()["band"], key=lambda band: band["min"])
    edges = np.array([band["min"] for band in bands[1:]], dtype="float64")
    labels = np.array([band["label"] for band in bands], dtype=object)
    values = _as_float(total)
    out = np.where(np.isnan(values), None, labels[np.searchsorted(edges, values, side="right")])
    return _like(total, out, "phq9_band")


def phq9_response(baseline, current):
    """True where PHQ-9 fell by at least half from a positive baseline (response); False if either is missing."""
    drop = _phq9()["response_min_drop_fraction"]
    before, after = _as_float(baseline), _as_float(current)
    return _like(current, (before > 0) & (after <= before * (1 - drop)), "phq9_response")


def phq9_remission(current):
    """True where the PHQ-9 total is below the remission cut-off (< 5); False if missing."""
    return _like(current, _as_float(current) < _phq9()["remission_below"], "phq9_remission")


def phq9_reliable_change(baseline, current):
    """"improved", "worsened" or "no reliable change" by the PHQ-9 reliable-change criterion; None if missing."""
    step = _phq9()["reliable_change"]
    diff = _as_float(current) - _as_float(baseline)
    out = np.where(diff <= -step, PHQ9_IMPROVED, np.where(diff >= step, PHQ9_WORSENED, PHQ9_NO_CHANGE)).astype(object)
    return _like(current, np.where(np.isnan(diff), None, out), "phq9_change")


class MoodNote(NamedTuple):
    """The note on mood beside a level, and whether it tells of a reliable worsening (shown more strongly)."""

    text: str
    worsened: bool


def phq9_note(checkins: pd.DataFrame, *, tz: str) -> MoodNote | None:
    """The patient's mood beside their dependence-risk level, which does not cover it: a green beside a depressive
    relapse must not read as reassurance. None without a PHQ-9 total.

    'Mood does not raise this level: PHQ-9 14 (moderate) on 28 Nov 2026, 11 points above the lowest (3): a reliable
    worsening.'
    """
    from ketawatch.risk.wording import day_words  # here: wording imports the features, which import this module

    given = checkins.dropna(subset=["phq9"]).sort_values("reported_at") if len(checkins) else checkins
    if not len(given):
        return None
    latest, lowest = given.iloc[-1], float(given["phq9"].min())
    total = float(latest["phq9"])
    day = pd.Timestamp(latest["reported_at"])
    day = day.tz_convert(tz) if day.tzinfo else day  # stored in UTC, said on the clinic's date
    text = f"Mood does not raise this level: PHQ-9 {total:g} ({phq9_band(total)}) on {day_words(day)}"
    worsened = phq9_reliable_change(lowest, total) == PHQ9_WORSENED
    if worsened:
        text += f", {total - lowest:g} points above the lowest ({lowest:g}): a reliable worsening"
    return MoodNote(text + ".", worsened)


def dose_per_kg(dose_mg, weight_kg, route):
    """mg/kg for weight-based routes (iv, im); NaN for fixed-dose routes or an unknown weight."""
    per_kg = np.where(_is_weight_based(route), _as_float(dose_mg) / _as_float(weight_kg), np.nan)
    return _like(dose_mg, per_kg, "dose_per_kg")


def dose_above_plan(dose_ratio, rise_fraction):
    """Whether a dose (as a ratio to its plan or reference) counts as above it: the dose rule's test, which the Log
    session form's titration prompt asks too, so the two never disagree at the edge (code review: 0.6 against a plan of
    0.5 counted for the rule and not for the form)."""
    return dose_ratio >= 1 + rise_fraction


def weight_carried_forward(patient_id: pd.Series, weight_kg: pd.Series) -> pd.Series:
    """Each session's weight, or where none was recorded the patient's last one before it, as the rules carry it
    (ketawatch.risk.features): so a page or a file gives an unweighed session the mg/kg the charts and rules use.
    Rows in time order within each patient."""
    return weight_kg.groupby(patient_id.to_numpy()).ffill()


def dose_measure(dose_mg, weight_kg, route):
    """The dose in the unit a plan uses: mg/kg for weight-based routes, plain mg for fixed-dose routes."""
    mg = _as_float(dose_mg)
    return _like(dose_mg, np.where(_is_weight_based(route), mg / _as_float(weight_kg), mg), "dose_measure")


def session_intervals(patient_id, session_date) -> np.ndarray:
    """Days since the same patient's previous session date (NaN for a patient's first); rows in time order per patient."""
    pid = np.asarray(patient_id, dtype=object)
    days = np.asarray(session_date, dtype="datetime64[D]").astype("int64")
    out = np.full(len(days), np.nan)
    if len(days) > 1:
        same = pid[1:] == pid[:-1]
        out[1:] = np.where(same, days[1:] - days[:-1], np.nan)
    return out


def patient_requested(flags: pd.Series) -> pd.Series:
    """A request flag as plain booleans: asked = True; not asked or not recorded = False."""
    return flags.astype("boolean").fillna(False).astype(bool)


def _is_weight_based(route):
    """True where the route is dosed by body weight."""
    if isinstance(route, pd.Series):
        return route.isin(WEIGHT_BASED_ROUTES).fillna(False).to_numpy(dtype=bool)
    return np.isin(np.asarray(route, dtype=object), WEIGHT_BASED_ROUTES)


def _as_float(value) -> np.ndarray:
    """A number, array or Series as a float array with NaN for missing."""
    if isinstance(value, pd.Series):
        return value.to_numpy(dtype="float64", na_value=np.nan)
    return np.asarray(np.nan if value is None else value, dtype="float64")


def _like(template, values: np.ndarray, name: str):
    """Return `values` shaped like `template`: a Series with its index, an array, or a plain scalar."""
    if isinstance(template, pd.Series):
        values = np.asarray(values)
        return pd.Series(values, index=template.index, name=name, dtype=values.dtype)
    values = np.asarray(values)
    return values.item() if values.ndim == 0 else values
