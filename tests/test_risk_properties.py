"""Property tests: any valid record set gets a level without error, deterministically and causally."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ketawatch.risk as risk
from ketawatch.risk.features import cusum
from ketawatch.risk.windows import (
    carry_forward,
    count_from,
    group_starts,
    personal_baseline,
    recent_window_start,
    window_count,
)
from store.frames import Records
from store.vocabulary import ROUTES, SDS_ITEMS, WARNING_SIGNS

START = pd.Timestamp("2025-03-01", tz="UTC")  # spans the spring clock change in London and New York
ZONES = ("UTC", "Europe/London", "America/New_York", "Asia/Kolkata")
IDS = ("a", "b", "c")

maybe = lambda strategy: st.one_of(st.none(), strategy)  # noqa: E731
score = maybe(st.integers(0, 3))


@st.composite
def record_sets(draw) -> Records:
    """A small valid record set: 1-3 patients, sessions and check-ins at distinct times, gaps allowed."""
    ids = draw(st.lists(st.sampled_from(IDS), min_size=1, max_size=3, unique=True))
    patients = [
        {
            "patient_id": pid,
            "indication": "depression",
            "sud_history": draw(st.booleans()),
            "treatment_start": START.tz_localize(None),
            "planned_dose_mg_per_kg": draw(maybe(st.sampled_from([0.5, 0.75, 1.4]))),
            "planned_interval_days": draw(maybe(st.sampled_from([7.0, 14.0, 21.0, 28.0]))),
        }
        for pid in ids
    ]
    minutes = st.integers(0, 150 * 24 * 60)
    sessions = [
        {
            "patient_id": pid,
            "session_at": START + pd.Timedelta(minutes=m),
            "route": draw(st.sampled_from(ROUTES)),
            "dose_mg": draw(st.sampled_from([28.0, 35.0, 56.0, 84.0, 100.0])),
            "weight_kg": draw(maybe(st.sampled_from([50.0, 70.0, 95.0]))),
            "early_request": draw(maybe(st.booleans())),
            "dose_increase_request": draw(maybe(st.booleans())),
        }
        for pid in ids
        for m in draw(st.lists(minutes, max_size=10, unique=True))
    ]
    checkins = []
    for pid in ids:
        for m in draw(st.lists(minutes, max_size=10, unique=True)):
            row = {"patient_id": pid, "reported_at": START + pd.Timedelta(minutes=m)}
            row["craving"] = draw(maybe(st.integers(0, 10)))
            row["phq9"] = draw(maybe(st.integers(0, 27)))
            if draw(st.booleans()):
                row.update({item: draw(st.integers(0, 3)) for item in SDS_ITEMS})
            row.update({sign: draw(score) for sign in WARNING_SIGNS})
            checkins.append(row)
    return Records.of(
        pd.DataFrame(patients),
        pd.DataFrame(sessions) if sessions else None,
        pd.DataFrame(checkins) if checkins else None,
    )


FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _summary(frame: pd.DataFrame) -> list:
    return [(row.patient_id, row.date, row.level, tuple(row.reasons)) for row in frame.itertuples()]


@FAST
@given(rec=record_sets(), tz=st.sampled_from(ZONES), as_of_days=st.integers(-5, 160))
def test_any_record_set_gets_a_level(rec, tz, as_of_days):
    as_of = (START + pd.Timedelta(days=as_of_days)).date()
    out = risk.assess(rec, as_of=as_of, tz=tz)
    assert out["patient_id"].tolist() == rec.patients["patient_id"].tolist()
    assert set(out["level"]) <= {"green", "amber", "red"}
    for row in out.itertuples():
        assert row.as_of == as_of
        assert (row.level == "green") == (row.reasons == [])
        assert all(isinstance(r, risk.Reason) and r.rule_id in risk.RULE_IDS for r in row.reasons)
        if row.level == "red":
            assert any(r.level == "red" for r in row.reasons) or len({r.rule_id for r in row.reasons}) >= 2
        assert row.since is None or row.since <= as_of
    # same input, same output
    again = risk.assess(rec, as_of=as_of, tz=tz)
    assert out["level"].tolist() == again["level"].tolist()
    assert out["reasons"].tolist() == again["reasons"].tolist()
    assert out["since"].tolist() == again["since"].tolist()


@FAST
@given(rec=record_sets(), tz=st.sampled_from(ZONES))
def test_replay_history_and_row_order(rec, tz):
    daily = risk.daily_levels(rec, tz=tz)
    # assessed dates replay exactly from the records up to them (every date: test_risk_rules)
    session_day = rec.sessions["session_at"].dt.tz_convert(tz).dt.date
    checkin_day = rec.checkins["reported_at"].dt.tz_convert(tz).dt.date
    dates = sorted(set(daily["date"]))
    for day in dates[:: max(1, len(dates) // 4)] + dates[-1:]:
        cut = Records(rec.patients, rec.sessions[session_day <= day], rec.checkins[checkin_day <= day])
        now = risk.assess(cut, as_of=day, tz=tz).set_index("patient_id")
        for row in daily[daily["date"] == day].itertuples():
            assert now.loc[row.patient_id, "level"] == row.level
            assert now.loc[row.patient_id, "reasons"] == row.reasons
    # the history is exactly the first date and the changes of the daily levels
    hist = risk.level_history(rec, tz=tz)
    previous = daily.groupby("patient_id", sort=False)["level"].shift()
    assert _summary(hist) == _summary(daily[previous.isna() | (previous != daily["level"])])
    # the order rows arrive in does not matter
    shuffled = Records(
        rec.patients.iloc[::-1].reset_index(drop=True),
        rec.sessions.sample(frac=1, random_state=1).reset_index(drop=True),
        rec.checkins.sample(frac=1, random_state=2).reset_index(drop=True),
    )
    again = risk.daily_levels(shuffled, tz=tz).sort_values(["patient_id", "date"], kind="stable")
    assert _summary(again) == _summary(daily.sort_values(["patient_id", "date"], kind="stable"))


def test_empty_and_single_record_sets():
    patients = pd.DataFrame([{"patient_id": "a", "indication": "ptsd", "sud_history": True, "treatment_start": "2025-01-01"}])
    empty = Records.of(patients)
    out = risk.assess(empty, as_of=dt.date(2025, 6, 1), tz="UTC")
    assert out[["level", "since"]].values.tolist() == [["green", None]]
    assert risk.level_history(empty, tz="UTC").empty and risk.daily_levels(empty, tz="UTC").empty
    one = Records.of(patients, checkins=pd.DataFrame([{"patient_id": "a", "reported_at": "2025-01-02T10:00Z", "craving": 10}]))
    assert risk.assess(one, as_of=dt.date(2025, 6, 1), tz="UTC")["since"].tolist() == [dt.date(2025, 1, 2)]
    assert risk.level_history(one, tz="UTC")["level"].tolist() == ["green"]
    none = Records.of(patients.iloc[:0])
    assert risk.assess(none, as_of=dt.date(2025, 6, 1), tz="UTC").empty
    signals = risk.patient_signals(one, "a", tz="UTC")
    assert len(signals["checkins"]) == 1 and signals["sessions"].empty


# --- the window helpers against plain loops ----------------------------------------------------

groups = st.lists(st.integers(0, 3), min_size=0, max_size=40).map(sorted)


@settings(max_examples=200, deadline=None)
@given(codes=groups, data=st.data())
def test_window_helpers_match_loops(codes, data):
    codes = np.array(codes, dtype="int64")
    n = len(codes)
    flags = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    window = data.draw(st.integers(1, 5))
    starts = group_starts(codes)
    for i in range(n):
        same = [j for j in range(i + 1) if codes[j] == codes[i]]
        assert starts[i] == same[0]
        assert window_count(flags, starts, window)[i] == sum(flags[j] for j in same[-window:])
        latest = [j for j in same if flags[j]]
        assert carry_forward(flags, starts)[i] == (latest[-1] if latest else -1)


@settings(max_examples=200, deadline=None)
@given(codes=groups, data=st.data())
def test_recent_window_keeps_rows_within_both_limits(codes, data):
    # days non-decreasing within each patient (records in time order), possibly far apart or equal
    codes = np.array(codes, dtype="int64")
    n = len(codes)
    steps = data.draw(st.lists(st.integers(0, 60), min_size=n, max_size=n))
    day = np.zeros(n, dtype="int64")
    for i in range(n):
        day[i] = steps[i] + (day[i - 1] if i and codes[i] == codes[i - 1] else 20000)
    flags = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    window, max_days = data.draw(st.integers(1, 6)), data.draw(st.integers(1, 120))
    starts = group_starts(codes)
    lo = recent_window_start(starts, window, day, max_days)
    counts = count_from(flags, lo)
    for i in range(n):
        same = [j for j in range(i + 1) if codes[j] == codes[i]]
        kept = [j for j in same[-window:] if day[i] - day[j] <= max_days]
        assert list(range(lo[i], i + 1)) == kept
        assert counts[i] == sum(flags[j] for j in kept)


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 1), maybe(st.integers(0, 10))), max_size=30),
    n_first=st.integers(1, 4),
)
def test_personal_baseline_matches_loop(rows, n_first):
    rows = sorted(rows, key=lambda r: r[0])  # time order within a key is the list order
    a = np.array([r[0] for r in rows], dtype="int64")
    b = np.array([r[1] for r in rows], dtype="int64")
    values = np.array([np.nan if r[2] is None else r[2] for r in rows], dtype="float64")
    by_both, by_first = personal_baseline(values, [a, b], n_first), personal_baseline(values, [a], n_first)
    for i in range(len(rows)):
        for got, same in ((by_both, (a == a[i]) & (b == b[i])), (by_first, a == a[i])):
            seen = [values[j] for j in range(i + 1) if same[j] and not np.isnan(values[j])]
            if len(seen) < n_first:
                assert np.isnan(got[i])
            else:
                assert got[i] == np.median(seen[:n_first])


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(st.tuples(st.integers(0, 2), maybe(st.integers(-3, 10)), st.integers(0, 9)), max_size=30),
    allowance=st.sampled_from([0.0, 1.0, 1.5]),
    cap=st.sampled_from([1.0, 2.0, 4.0]),
    min_days=st.sampled_from([1, 5, 7]),
)
def test_cusum_matches_loop(rows, allowance, cap, min_days):
    """Each answer's step counts in full, or, fewer than `min_days` days after the patient's previous answer, only
    that share of it (two answers a day apart are nearly one report)."""
    rows = sorted(rows, key=lambda r: r[0])
    codes = np.array([r[0] for r in rows], dtype="int64")
    excess = np.array([np.nan if r[1] is None else r[1] for r in rows], dtype="float64")
    day = np.cumsum([r[2] for r in rows]).astype("int64") if rows else np.zeros(0, dtype="int64")
    got = cusum(excess, group_starts(codes), allowance, cap, day, min_days)
    total, previous, answered_on = 0.0, None, None
    for i, (code, value, _) in enumerate(rows):
        if code != previous:
            total, previous, answered_on = 0.0, code, None
        if value is not None:
            share = 1.0 if answered_on is None else min((day[i] - answered_on) / min_days, 1.0)
            total = max(0.0, total + min(value - allowance, cap) * share)
            answered_on = day[i]
        assert got[i] == total
        assert got[i] >= 0 and (i == 0 or code != rows[i - 1][0] or got[i] <= got[i - 1] + cap)
