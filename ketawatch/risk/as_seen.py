"""The level as KetaWatch showed it at the time, rebuilt from each day's stored records, beside today's replay of that day.

`level_history` replays every date from the record as it stands now, so a check-in entered a week
late, a corrected dose or a voided session changes it. A case review after an incident asks the
other question too: what did the screen say that day? That is the level computed from the records
as they were stored at the end of the day (store.known_then), with today's rules.

Between two days on which a patient's stored records changed, nothing stored changed, so neither
did what was shown. A changed day whose stored records up to it are today's shows today's replay;
each of the others gets its own stand-in patient holding that day's records, so one vectorised
evaluation (per slice of days) computes them all.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from ketawatch.risk.engine import LEVELS, daily_levels, evaluate
from ketawatch.risk.features import local_days, patient_table
from ketawatch.risk.rules import RuleSettings
from store.frames import Records
from store.known_then import SPAN, RecordTimeline


def _end_of_day(days: pd.Series, tz: str) -> pd.Series:
    """The first instant (UTC) after each clinic-local date: what was stored before it is what that day showed."""
    midnight = pd.to_datetime(days) + pd.Timedelta(days=1)
    return midnight.dt.tz_localize(tz, nonexistent="shift_forward", ambiguous=True).dt.tz_convert("UTC")


def _stand_ins(versions: pd.DataFrame, days: pd.DataFrame) -> pd.DataFrame:
    """Each version once for every changed day of its patient at whose end it was the stored one, as that day's stand-in."""
    both = versions.merge(days, on="patient_id", how="inner", suffixes=("", "_day"))
    held = (both["known_from"] < both["cutoff"]) & (both["known_until"].isna() | (both["known_until"] >= both["cutoff"]))
    both = both[held.to_numpy(dtype=bool)]
    return both.drop(columns=[*SPAN, "cutoff", "day", "patient_id"]).rename(columns={"stand_in": "patient_id"})


#: Stand-in days evaluated together: the stand-ins hold every version once per day, so a long history is taken in
#: slices to keep memory bounded (1,100 daily check-ins at once took about 730 MB; code review).
CHUNK_DAYS = 64


def _may_differ(days: pd.DataFrame, timeline: RecordTimeline, tz: str) -> np.ndarray:
    """Whether each (patient, day) can show other than today's replay of it: some record dated on or before the day
    was entered after it, or a version stored at its end was later corrected or voided (for the patient's own row,
    only a correction of what the rules read, and for every day before it). On the other days the stored records up
    to the day are today's, so what was shown is the replay."""
    ids, lows, highs = [], [], []
    for frame, dated in ((_plan_changes(timeline.patients), None), (timeline.sessions, "session_at"),
                         (timeline.checkins, "reported_at")):
        if frame.empty:
            continue
        current = frame["known_until"].isna().to_numpy(dtype=bool)
        entered = local_days(frame["known_from"], tz)
        ended = np.zeros(len(frame), dtype="int64")
        if not current.all():  # filling the missing ends with other instants warned of a coming error in pandas 4
            ended[~current] = local_days(frame.loc[~current, "known_until"], tz)
        on = np.full(len(frame), -(1 << 30), dtype="int64") if dated is None else local_days(frame[dated], tz)
        # today's version, entered after days it is dated for: those days lacked it; an earlier version: the days at
        # whose end it was stored
        lows.append(np.where(current, on, entered))
        highs.append(np.where(current, entered - 1, ended - 1))
        ids.append(frame["patient_id"].astype(str).to_numpy(dtype=object))
    if not ids:
        return np.zeros(len(days), dtype=bool)
    codes, _ = pd.factorize(np.concatenate([*ids, days["patient_id"].astype(str).to_numpy(dtype=object)]))
    n = sum(len(i) for i in ids)
    shift = np.int64(1) << 31
    key = lambda code, day: code.astype("int64") * (np.int64(1) << 32) + day + shift  # noqa: E731
    low_keys = np.sort(key(codes[:n], np.concatenate(lows)))
    high_keys = np.sort(key(codes[:n], np.concatenate(highs)))
    day_codes = codes[n:]
    day_numbers = days["day"].to_numpy(dtype="datetime64[D]").astype("int64")
    first = key(day_codes, np.full(len(days), -(1 << 31) + 1, dtype="int64"))
    at = key(day_codes, day_numbers)
    begun = np.searchsorted(low_keys, at, side="right") - np.searchsorted(low_keys, first, side="left")
    over = np.searchsorted(high_keys, at, side="left") - np.searchsorted(high_keys, first, side="left")
    return (begun - over) > 0


def _plan_changes(patients: pd.DataFrame) -> pd.DataFrame:
    """The patients' earlier versions whose values the engine reads (`patient_table`: SUD history, planned dose and
    interval) differ from the current version's; a new responsible clinician or status changes no level."""
    earlier = patients[patients["known_until"].notna().to_numpy(dtype=bool)]
    if earlier.empty:
        return earlier
    read = patient_table(patients.iloc[0:0]).columns.drop("patient_id")
    current = patient_table(patients[patients["known_until"].isna().to_numpy(dtype=bool)]).set_index("patient_id")
    theirs = current.reindex(earlier["patient_id"].astype(str).to_numpy(dtype=object))[read].reset_index(drop=True)
    # one row per version: patient_table keeps each patient's first row, so each version is a patient of its own here
    mine = patient_table(earlier.reset_index(drop=True).assign(patient_id=lambda f: f.index.astype(str)))[read]
    differs = ~((mine == theirs) | (mine.isna() & theirs.isna())).all(axis=1)
    return earlier[differs.to_numpy(dtype=bool)]


def _shown_by_stand_ins(days: pd.DataFrame, timeline: RecordTimeline, *, rules: RuleSettings, tz: str,
                        until: dt.date) -> pd.DataFrame:
    """The level at the end of each given (patient, day), evaluated from stand-ins holding that day's stored records."""
    parts = []
    for first in range(0, len(days), CHUNK_DAYS):
        chunk = days.iloc[first:first + CHUNK_DAYS].reset_index(drop=True)
        chunk = chunk.assign(stand_in=chunk.index.astype(str), cutoff=_end_of_day(chunk["day"], tz))
        stand_ins = Records.of(*(_stand_ins(frame, chunk) for frame in (timeline.patients, timeline.sessions,
                                                                           timeline.checkins)))
        ev = evaluate(stand_ins, rules=rules, tz=tz, until=until)
        code = ev.daily["code"]
        last = np.full(len(ev.patients), -1, dtype="int64")
        last[code] = np.arange(len(code))  # each stand-in's latest assessed date is what its day showed
        assessed = np.flatnonzero(last >= 0)
        which = chunk.set_index("stand_in").loc[ev.patients["patient_id"].to_numpy(dtype=object)[assessed]]
        parts.append(pd.DataFrame({
            "patient_id": which["patient_id"].astype(str).to_numpy(dtype=object),
            "date": pd.to_datetime(which["day"]).dt.date.to_numpy(dtype=object),
            "level": LEVELS[ev.daily["level_code"][last[assessed]]],
            "reasons": pd.Series(ev.reasons(last[assessed]), dtype=object),
        }))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["patient_id", "date", "level", "reasons"])


def shown_then(timeline: RecordTimeline, *, rules: RuleSettings, tz: str, until: dt.date) -> pd.DataFrame:
    """Per patient and every day up to `until` on which their stored records changed: the level shown at that day's end
    (for today: now).

    Columns: patient_id, date, level, reasons (as shown then, with today's rules), replay_level and
    replay_reasons (today's replay of the same date, from the records as they stand now), and
    differs (the two levels differ). A day before the patient's first assessable record has no row.
    Only the days that can differ from the replay (`_may_differ`) are rebuilt from stand-ins.
    """
    changes = timeline.changed_at()
    days = pd.DataFrame({"patient_id": changes["patient_id"].astype(str),
                         "day": local_days(changes["at"], tz).astype("datetime64[D]")}).drop_duplicates()
    days = days[days["day"] <= np.datetime64(until, "D")].reset_index(drop=True)
    replay = _replay_on(days, timeline, rules=rules, tz=tz)
    rebuilt = _may_differ(days, timeline, tz)
    same = replay[~rebuilt & (replay["replay_level"] != "not assessed").to_numpy(dtype=bool)]
    same = same.assign(level=same["replay_level"], reasons=same["replay_reasons"])
    shown = _shown_by_stand_ins(days[rebuilt].reset_index(drop=True), timeline, rules=rules, tz=tz, until=until)
    shown = shown.merge(replay, on=["patient_id", "date"], how="left")
    out = pd.concat([same, shown], ignore_index=True)[
        ["patient_id", "date", "level", "reasons", "replay_level", "replay_reasons"]]
    out["differs"] = (out["level"] != out["replay_level"]).astype(bool)
    return out.sort_values(["patient_id", "date"], kind="stable").reset_index(drop=True)


def _replay_on(days: pd.DataFrame, timeline: RecordTimeline, *, rules: RuleSettings, tz: str) -> pd.DataFrame:
    """Today's replay of each (patient, day), in the order of `days`: the latest replayed level on or before it, from
    the records as they stand ("not assessed" before the first record)."""
    replay = daily_levels(timeline.as_known_now(), rules=rules, tz=tz)
    replay = replay.rename(columns={"level": "replay_level", "reasons": "replay_reasons", "date": "replay_date"})
    left = days.assign(_on=pd.to_datetime(days["day"]), date=pd.to_datetime(days["day"]).dt.date,
                       _row=np.arange(len(days)))[["patient_id", "date", "_on", "_row"]]
    right = replay.assign(_on=pd.to_datetime(replay["replay_date"]), patient_id=replay["patient_id"].astype(str))
    both = pd.merge_asof(left.sort_values("_on"), right.sort_values("_on"), on="_on", by="patient_id",
                         direction="backward")
    both["replay_level"] = both["replay_level"].fillna("not assessed")
    both["replay_reasons"] = [r if isinstance(r, list) else [] for r in both["replay_reasons"]]
    return both.sort_values("_row").drop(columns=["_on", "_row", "replay_date"]).reset_index(drop=True)  # as `days`


def days_to_list(shown: pd.DataFrame) -> pd.DataFrame:
    """The rows of `shown_then` a reader needs: where a patient's shown level began or changed (as the level history lists
    them), and every day on which it differs from today's replay."""
    if shown.empty:
        return shown
    same_patient = shown["patient_id"].eq(shown["patient_id"].shift())
    same_level = shown["level"].eq(shown["level"].shift())
    return shown[~(same_patient & same_level) | shown["differs"]].reset_index(drop=True)
