"""Instrument scoring: SDS, warning-sign burden, PHQ-9 bands and change, dose per kg, intervals, requests."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ketawatch.risk import scoring
from seed_data.catalogue import warning_sign
from store.vocabulary import SDS_ITEMS, WARNING_SIGNS


def _checkins(**columns) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    base = {c: [np.nan] * n for c in (*SDS_ITEMS, *WARNING_SIGNS)}
    base.update(columns)
    return pd.DataFrame(base, dtype="float64")


def test_sds_total_needs_all_five_items():
    frame = _checkins(
        sds_1=[3, 1, 0], sds_2=[3, 1, np.nan], sds_3=[3, 0, 0], sds_4=[3, 2, 0], sds_5=[3, 1, 0]
    )
    total = scoring.sds_total(frame)
    assert total.iloc[0] == 15
    assert total.iloc[1] == 5
    assert math.isnan(total.iloc[2])


def test_sign_burden_uses_catalogue_weights_and_is_nan_when_nothing_answered():
    frame = _checkins(tolerance=[2, np.nan], sleep_disturbance=[1, np.nan], non_prescribed_use=[3, np.nan])
    burden = scoring.sign_burden(frame)
    expected = 2 * warning_sign("tolerance").weight + 1 * warning_sign("sleep_disturbance").weight + 3 * warning_sign(
        "non_prescribed_use"
    ).weight
    assert burden.iloc[0] == pytest.approx(expected)
    assert math.isnan(burden.iloc[1])
    only_nonspecific = scoring.sign_burden(frame, scoring.nonspecific_signs())
    assert only_nonspecific.iloc[0] == pytest.approx(warning_sign("sleep_disturbance").weight)


def test_clear_specific_signs_counts_specific_signs_at_two_or_more():
    frame = _checkins(tolerance=[2, 1], secrecy=[3, 3], sleep_disturbance=[3, 3], recreational_seeking=[np.nan, 2])
    assert scoring.clear_specific_signs(frame).tolist() == [2, 2]
    assert set(scoring.specific_signs()).isdisjoint(scoring.nonspecific_signs())
    assert set(scoring.specific_signs()) | set(scoring.nonspecific_signs()) == set(WARNING_SIGNS)


@pytest.mark.parametrize(
    ("total", "band"),
    [(0, "minimal"), (4, "minimal"), (5, "mild"), (9, "mild"), (10, "moderate"), (14, "moderate"),
     (15, "moderately severe"), (19, "moderately severe"), (20, "severe"), (27, "severe")],
)  # fmt: skip
def test_phq9_band_edges(total, band):
    assert scoring.phq9_band(total) == band
    assert scoring.phq9_band(pd.Series([float(total)])).iloc[0] == band


def test_phq9_band_missing_is_none():
    assert scoring.phq9_band(None) is None
    assert scoring.phq9_band(pd.Series([np.nan, 12.0])).tolist() == [None, "moderate"]


def test_phq9_response_remission_and_reliable_change():
    baseline = pd.Series([20.0, 20.0, 10.0, np.nan, 8.0])
    current = pd.Series([10.0, 11.0, 4.0, 3.0, 14.0])
    assert scoring.phq9_response(baseline, current).tolist() == [True, False, True, False, False]
    assert scoring.phq9_remission(current).tolist() == [False, False, True, True, False]
    assert scoring.phq9_reliable_change(baseline, current).tolist() == [
        "improved", "improved", "improved", None, "worsened"
    ]  # fmt: skip
    assert scoring.phq9_reliable_change(10, 15) == "no reliable change"


def test_dose_per_kg_only_for_weight_based_routes():
    dose = pd.Series([35.0, 84.0, 70.0, 35.0])
    weight = pd.Series([70.0, 70.0, 70.0, np.nan])
    route = pd.Series(["iv", "intranasal", "im", "iv"], dtype="string")
    per_kg = scoring.dose_per_kg(dose, weight, route)
    assert per_kg.iloc[0] == pytest.approx(0.5)
    assert math.isnan(per_kg.iloc[1])
    assert per_kg.iloc[2] == pytest.approx(1.0)
    assert math.isnan(per_kg.iloc[3])
    measure = scoring.dose_measure(dose, weight, route)
    assert measure.iloc[1] == 84.0 and measure.iloc[0] == pytest.approx(0.5)


def test_session_intervals_restart_per_patient():
    pid = pd.Series(["a", "a", "a", "b", "b"])
    dates = pd.Series(pd.to_datetime(["2025-01-01", "2025-01-15", "2025-01-22", "2025-01-01", "2025-01-04"]))
    intervals = scoring.session_intervals(pid, dates)
    assert np.isnan(intervals).tolist() == [True, False, False, True, False]
    assert intervals[~np.isnan(intervals)].tolist() == [14.0, 7.0, 3.0]


def test_patient_requested_treats_unrecorded_as_not_asked():
    flags = pd.Series([True, False, pd.NA], dtype="boolean")
    assert scoring.patient_requested(flags).tolist() == [True, False, False]


@given(st.lists(st.one_of(st.none(), st.integers(0, 27)), min_size=0, max_size=12))
def test_the_mood_note_beside_a_level_gives_the_latest_phq9_and_a_reliable_worsening_from_the_lowest(totals):
    """A green beside a depressive relapse must not read as reassurance: the note says where mood stands."""
    frame = pd.DataFrame({"reported_at": pd.date_range("2026-10-01 10:00", periods=len(totals), freq="7D", tz="UTC"),
                          "phq9": pd.array(totals, dtype="Float64").astype("float64")})
    note = scoring.phq9_note(frame, tz="Europe/London")
    given_totals = [t for t in totals if t is not None]
    if not given_totals:
        assert note is None
        return
    last, lowest = given_totals[-1], min(given_totals)
    assert note.text.startswith(f"Mood does not raise this level: PHQ-9 {last} ({scoring.phq9_band(last)}) on ")
    assert note.worsened == ("a reliable worsening" in note.text) == (last - lowest >= 6)
    if last - lowest >= 6:
        assert note.text.endswith(f", {last - lowest} points above the lowest ({lowest}): a reliable worsening.")
