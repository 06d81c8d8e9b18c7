"""The level as KetaWatch showed it at the time, rebuilt from each day's stored records, beside today's replay of that day.

`level_history` replays every date from the record as it stands now, so a check-in entered a week
late, a corrected dose or a voided session changes it. A case review after an incident asks the
other question too: what did the screen say that day? That is the level computed from the records
as they were stored at the end of the day (store.known_then), with today's rules.

Every day on which a patient's stored records changed gets its own stand-in patient holding that
day's records, so one vectorised evaluation computes them all; between those days nothing stored
changed, so neither did what was shown.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from ketawatch.risk.engine import LEVELS, daily_levels, evaluate
from ketawatch.risk.features import local_days
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


def shown_then(timeline: RecordTimeline, *, rules: RuleSettings, tz: str, until: dt.date) -> pd.DataFrame:
    """Per patient and every day up to `until` on which their stored records changed: the level shown at that day's end.

    Columns: patient_id, date, level, reasons (as shown then, with today's rules), replay_level and
    replay_reasons (today's replay of the same date, from the records as they stand now), and
    differs (the two levels differ). A day
    before the patient's first assessable record has no row.
    """
    changes = timeline.changed_at()
    days = pd.DataFrame({"patient_id": changes["patient_id"],
                         "day": local_days(changes["at"], tz).astype("datetime64[D]")}).drop_duplicates()
    days = days[days["day"] <= np.datetime64(until, "D")].reset_index(drop=True)
    days["stand_in"] = days.index.astype(str)
    days["cutoff"] = _end_of_day(days["day"], tz)
    stand_ins = Records.of(*(_stand_ins(frame, days) for frame in (timeline.patients, timeline.sessions, timeline.checkins)))
    ev = evaluate(stand_ins, rules=rules, tz=tz, until=until)
    code = ev.daily["code"]
    last = np.full(len(ev.patients), -1, dtype="int64")
    last[code] = np.arange(len(code))  # each stand-in's latest assessed date is what its day showed
    assessed = np.flatnonzero(last >= 0)
    which = days.set_index("stand_in").loc[ev.patients["patient_id"].to_numpy(dtype=object)[assessed]]
    out = pd.DataFrame({
        "patient_id": which["patient_id"].to_numpy(dtype=object),
        "date": pd.to_datetime(which["day"]).dt.date.to_numpy(dtype=object),
        "level": LEVELS[ev.daily["level_code"][last[assessed]]],
        "reasons": pd.Series(ev.reasons(last[assessed]), dtype=object),
    }).sort_values(["patient_id", "date"], kind="stable").reset_index(drop=True)
    return _beside_replay(out, timeline, rules=rules, tz=tz)


def _beside_replay(shown: pd.DataFrame, timeline: RecordTimeline, *, rules: RuleSettings, tz: str) -> pd.DataFrame:
    """Add today's replay of each row's date: the latest replayed level on or before it, from the records as they stand."""
    replay = daily_levels(timeline.as_known_now(), rules=rules, tz=tz)
    replay = replay.rename(columns={"level": "replay_level", "reasons": "replay_reasons", "date": "replay_date"})
    left = shown.assign(_on=pd.to_datetime(shown["date"]), patient_id=shown["patient_id"].astype(str))
    right = replay.assign(_on=pd.to_datetime(replay["replay_date"]), patient_id=replay["patient_id"].astype(str))
    both = pd.merge_asof(left.sort_values("_on"), right.sort_values("_on"), on="_on", by="patient_id", direction="backward")
    both["replay_level"] = both["replay_level"].fillna("not assessed")
    both["replay_reasons"] = [r if isinstance(r, list) else [] for r in both["replay_reasons"]]
    both["differs"] = both["level"] != both["replay_level"]
    return (both.drop(columns=["_on", "replay_date"]).sort_values(["patient_id", "date"], kind="stable")
            .reset_index(drop=True))


def days_to_list(shown: pd.DataFrame) -> pd.DataFrame:
    """The rows of `shown_then` a reader needs: where a patient's shown level began or changed (as the level history lists
    them), and every day on which it differs from today's replay."""
    if shown.empty:
        return shown
    same_patient = shown["patient_id"].eq(shown["patient_id"].shift())
    same_level = shown["level"].eq(shown["level"].shift())
    return shown[~(same_patient & same_level) | shown["differs"]].reset_index(drop=True)
