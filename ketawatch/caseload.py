"""The caseload table: one row per patient with level, reasons, sessions due and latest scores.

Pure (frames in, frame out) so the dashboard's caseload page, the exports and the command line
show the same numbers. Levels and reasons come from the risk engine's `assess` output; nothing
here judges risk, it only lays out what the engine and the records say.
"""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from ketawatch.risk.reasons import reason_ids, reason_title
from ketawatch.risk.scoring import PHQ9_WORSENED, phq9_reliable_change, sds_total
from store.frames import Records
from store.vocabulary import UNDER_CARE_STATUSES, is_safety_follow_up

#: Order in which levels are triaged (worst first) and compared (higher = worse).
LEVEL_RANK = {"green": 0, "amber": 1, "red": 2}
#: How many of the most recent craving ratings feed the caseload sparkline.
CRAVING_POINTS = 12

CASELOAD_COLUMNS = (
    "patient_id", "display_name", "clinician", "indication", "sud_history", "status",
    "planned_dose_mg_per_kg", "planned_interval_days",
    "level", "level_since", "reason_ids", "reason_titles",
    "last_session_at", "last_session_route", "next_session_due", "session_overdue",
    "craving_history", "craving_latest", "sds_latest", "sds_latest_at", "phq9_latest", "phq9_latest_at",
    "phq9_worse", "needs_review",
)


def reason_summary(reasons) -> str:
    """Every reason in a few words, most important first, for one table cell ("Craving rising · Tolerance, persistent").

    The full observations cut to fit showed half of the first one; the patient page has each in full.
    """
    return " · ".join(reason_title(r) for r in reasons or [])


def _local_date(instants: pd.Series, tz: ZoneInfo) -> pd.Series:
    """UTC instants as naive clinic-local calendar dates (midnight timestamps)."""
    return instants.dt.tz_convert(tz).dt.tz_localize(None).dt.normalize()


def _lookup(values: pd.Series, keys: pd.Series) -> pd.Series:
    """`values` (indexed by patient id) for each key, keeping the dtype even when nothing matches."""
    return pd.Series(values.reindex(keys.to_numpy()).to_numpy(), index=keys.index, dtype=values.dtype)


def _latest(frame: pd.DataFrame, value: str, at: str) -> pd.DataFrame:
    """Per patient, the latest non-missing `value` and its time."""
    have = frame.loc[frame[value].notna(), ["patient_id", at, value]].sort_values(at, kind="stable")
    last = have.groupby("patient_id", sort=False).tail(1).set_index("patient_id")
    return last.rename(columns={at: f"{value}_at"})


def latest_reviews(reviews: pd.DataFrame | None) -> pd.DataFrame:
    """Each patient's most recent review of their level (reviewed_at, level, reasons as a set, by whom, action, note), by
    patient.

    The one place that decides which review is a patient's last: the alerts, the caseload and the
    exports all read it here.
    """
    columns = ["reviewed_at", "reviewed_level", "reviewed_reasons", "reviewed_by", "reviewed_action", "reviewed_note"]
    if reviews is not None and not reviews.empty:
        # The follow-up of a question 9 answer is not a review of the risk level.
        reviews = reviews[~reviews["reasons"].map(is_safety_follow_up).astype(bool)]
    if reviews is None or reviews.empty:
        return pd.DataFrame(columns=columns, index=pd.Index([], name="patient_id", dtype="string"))
    latest = reviews.sort_values("reviewed_at", kind="stable").groupby("patient_id", sort=False).tail(1)
    out = pd.DataFrame(
        {
            "reviewed_at": pd.to_datetime(latest["reviewed_at"], utc=True).to_numpy(),
            "reviewed_level": latest["level"].astype("string").to_numpy(),
            "reviewed_reasons": [frozenset(filter(None, str(r or "").split(";"))) for r in latest["reasons"]],
            "reviewed_by": latest.get("reviewed_by", pd.Series(pd.NA, index=latest.index)).astype("string").to_numpy(),
            "reviewed_action": latest.get("action", pd.Series(pd.NA, index=latest.index)).astype("string").to_numpy(),
            "reviewed_note": latest.get("note", pd.Series(pd.NA, index=latest.index)).astype("string").to_numpy(),
        },
        index=pd.Index(latest["patient_id"].astype("string"), name="patient_id"),
    )
    return out


def alerts_waiting(assessment: pd.DataFrame, patients: pd.DataFrame, reviews: pd.DataFrame | None, *,
                   tz: str | ZoneInfo, review_again_days: int) -> pd.DataFrame:
    """The Alerts page's list: `unreviewed_alerts` of the patients under care (active or paused; a pause in treatment
    is not a pause in risk), so that every page that points to the list agrees with it."""
    under_care = patients.loc[patients["status"].isin(UNDER_CARE_STATUSES), "patient_id"]
    return unreviewed_alerts(assessment[assessment["patient_id"].isin(set(under_care))], reviews, tz=tz,
                             review_again_days=review_again_days)


def unreviewed_alerts(assessment: pd.DataFrame, reviews: pd.DataFrame | None, *, tz: str | ZoneInfo,
                      review_again_days: int) -> pd.DataFrame:
    """Amber and red patients whose current level and reasons no review has acknowledged yet, or not lately.

    A review covers the rule ids it lists, at the level it saw, from the day the level began.
    The alert reopens when a reason appears that the latest review did not list, when the level
    rises above the reviewed one, when the level began again after the review (a new episode), or
    when the review is `review_again_days` or more days old on the assessment's date (the setting
    KETAWATCH_REVIEW_AGAIN_DAYS): without that, a red level acknowledged once stayed "reviewed" for
    as long as its reasons stayed the same (clinician review).
    Returns the assessment rows that need review, with `new_reasons` (rule ids not yet reviewed),
    `last_reviewed_at` (None when never reviewed) and `due_again` (reopened by the review's age
    alone), red first.
    """
    if "as_of" not in assessment:  # without it a review's age is unknown and the review-again rule would go quiet
        raise ValueError("the assessment needs its as_of column, as ketawatch.risk.assess gives it")
    tz = ZoneInfo(tz) if isinstance(tz, str) else tz
    flagged = assessment[assessment["level"].isin(["amber", "red"])].copy()
    latest = latest_reviews(reviews)
    joined = flagged.join(latest, on="patient_id")
    current = joined["reasons"].map(lambda rs: set(reason_ids(rs)))
    covered = joined["reviewed_reasons"].map(lambda s: s if isinstance(s, frozenset) else frozenset())
    new = [sorted(c - k) for c, k in zip(current, covered)]
    never = joined["reviewed_at"].isna().to_numpy()
    rank_now = joined["level"].map(LEVEL_RANK).to_numpy(dtype="float64")
    rank_seen = joined["reviewed_level"].map(LEVEL_RANK).astype("float64").fillna(-1).to_numpy()
    reviewed_day = pd.to_datetime(joined["reviewed_at"], utc=True)
    reviewed_day = reviewed_day.dt.tz_convert(tz).dt.tz_localize(None).dt.normalize()
    since = pd.to_datetime(joined["since"]).dt.normalize() if "since" in joined else pd.Series(pd.NaT, index=joined.index)
    new_episode = (reviewed_day < since).fillna(False).to_numpy(dtype=bool)
    reopened = never | np.array([bool(n) for n in new], dtype=bool) | (rank_now > rank_seen) | new_episode
    assessed_day = pd.to_datetime(joined["as_of"]).dt.normalize()
    stale = (reviewed_day <= assessed_day - pd.Timedelta(days=review_again_days)).fillna(False).to_numpy(dtype=bool)
    joined["new_reasons"] = [sorted(c) if nv else n for c, n, nv in zip(current, new, never)]
    joined["last_reviewed_at"] = joined["reviewed_at"]
    joined["due_again"] = stale & ~reopened
    out = joined.loc[reopened | stale, [*assessment.columns, "new_reasons", "last_reviewed_at", "due_again"]]
    return _worst_first(out, since="since")  # the caseload's order, so both lists read the same


def caseload_table(
    records: Records,
    assessment: pd.DataFrame,
    *,
    tz: str | ZoneInfo,
    today: date,
    review_again_days: int,
    reviews: pd.DataFrame | None = None,
    craving_points: int = CRAVING_POINTS,
) -> pd.DataFrame:
    """One row per patient (every status; filter on `status`), worst level first, then longest-standing.

    `assessment` is `ketawatch.risk.assess(records, as_of=today, tz=...)`. Columns: CASELOAD_COLUMNS.
    `next_session_due` is the last session's clinic date plus the planned interval (NaT without
    a plan or a session, or when the status is not active); `session_overdue` is True when that date is before
    `today`. `phq9_worse`: the latest PHQ-9 is a reliable worsening on the patient's lowest.
    `craving_history` holds the last `craving_points` craving ratings (oldest first) for a sparkline.
    """
    tz = ZoneInfo(tz) if isinstance(tz, str) else tz
    patients = records.patients
    out = patients[[
        "patient_id", "display_name", "clinician", "indication", "sud_history", "status",
        "planned_dose_mg_per_kg", "planned_interval_days",
    ]].copy()

    # Levels and reasons from the engine.
    levels = assessment.set_index("patient_id") if len(assessment) else pd.DataFrame(
        columns=["level", "since", "reasons"], index=pd.Index([], name="patient_id"))
    pid = out["patient_id"]
    out["level"] = _lookup(levels["level"].astype(object), pid).astype("string")
    out["level_since"] = pd.to_datetime(_lookup(levels["since"].astype(object), pid)).dt.normalize()
    reasons = _lookup(levels["reasons"].astype(object), pid)
    out["reason_ids"] = [reason_ids(r if isinstance(r, list) else []) for r in reasons]
    out["reason_titles"] = [reason_summary(r if isinstance(r, list) else []) for r in reasons]

    # Sessions: the last one and when the next is due by the plan.
    sessions = records.sessions.sort_values("session_at", kind="stable")
    last = sessions.groupby("patient_id", sort=False).tail(1).set_index("patient_id")
    out["last_session_at"] = _lookup(last["session_at"], pid)
    out["last_session_route"] = _lookup(last["route"], pid).astype("string")
    last_day = _local_date(out["last_session_at"], tz)
    interval = pd.to_timedelta(out["planned_interval_days"], unit="D")
    # Only while treatment is active: a paused patient was listed as overdue, and counted so (clinician's pass).
    active = out["status"].eq("active").fillna(False).to_numpy(dtype=bool)
    out["next_session_due"] = (last_day + interval).where(active)
    out["session_overdue"] = (out["next_session_due"] < pd.Timestamp(today)).fillna(False).astype(bool)

    # Check-ins: craving sparkline and latest SDS and PHQ-9.
    checkins = records.checkins.sort_values("reported_at", kind="stable").assign(sds_total=lambda f: sds_total(f))
    recent = checkins.loc[checkins["craving"].notna(), ["patient_id", "craving"]].groupby("patient_id", sort=False).tail(craving_points)
    history = recent.groupby("patient_id", sort=False)["craving"].agg(list).astype(object)
    out["craving_history"] = [list(map(float, h)) if isinstance(h, list) else [] for h in _lookup(history, pid)]
    out["craving_latest"] = _lookup(_latest(checkins, "craving", "reported_at")["craving"], pid).astype("float64")
    sds = _latest(checkins, "sds_total", "reported_at")
    out["sds_latest"] = _lookup(sds["sds_total"], pid).astype("float64")
    out["sds_latest_at"] = _lookup(sds["sds_total_at"], pid)
    phq = _latest(checkins, "phq9", "reported_at")
    out["phq9_latest"] = _lookup(phq["phq9"], pid).astype("float64")
    out["phq9_latest_at"] = _lookup(phq["phq9_at"], pid)
    # The patient page's "reliable worsening" (ketawatch.risk.scoring.phq9_note), so a relapse beside a green level
    # can be found from the caseload (clinician's pass: a green tick beside PHQ-9 19 read as "fine").
    lowest = checkins.dropna(subset=["phq9"]).groupby("patient_id", sort=False)["phq9"].min().astype("float64")
    change = phq9_reliable_change(_lookup(lowest, pid), out["phq9_latest"])
    out["phq9_worse"] = pd.Series(change, index=out.index).eq(PHQ9_WORSENED).fillna(False).astype(bool)

    # Alerts not yet acknowledged.
    if len(assessment):
        pending = unreviewed_alerts(assessment, reviews, tz=tz, review_again_days=review_again_days)
        out["needs_review"] = out["patient_id"].isin(pending["patient_id"])
    else:
        out["needs_review"] = False

    return _worst_first(out)[list(CASELOAD_COLUMNS)]


def _worst_first(table: pd.DataFrame, *, since: str = "level_since") -> pd.DataFrame:
    """Caseload order: highest level first; within it, those not yet reviewed, then the longest-standing, then by patient id."""
    rank = table["level"].map(LEVEL_RANK).astype("float64").fillna(-1)
    waiting = table["needs_review"].fillna(False).astype(bool) if "needs_review" in table else False
    out = table.assign(_rank=rank, _waiting=waiting).sort_values(
        ["_rank", "_waiting", since, "patient_id"], ascending=[False, False, True, True], kind="stable")
    return out.drop(columns=["_rank", "_waiting"]).reset_index(drop=True)


def replace_patients(table: pd.DataFrame, fresh: pd.DataFrame, patient_ids) -> pd.DataFrame:
    """A caseload table with the rows of `patient_ids` replaced by `fresh` (their rows recomputed; none if gone).

    Each row depends only on its own patient's records, assessment and reviews, so after a write
    the caseload needs only the changed patients' rows: the result equals a full `caseload_table`.
    """
    kept = table[~table["patient_id"].isin(list(patient_ids))]
    parts = [frame for frame in (kept, fresh[list(CASELOAD_COLUMNS)]) if len(frame)]
    if not parts:
        return table.iloc[0:0]
    return _worst_first(pd.concat(parts, ignore_index=True))[list(CASELOAD_COLUMNS)]


def level_counts(table: pd.DataFrame) -> dict[str, int]:
    """How many rows of a caseload table are at each level (every level present, 0 when none)."""
    counts = table["level"].value_counts()
    return {level: int(counts.get(level, 0)) for level in LEVEL_RANK}
