"""How recent a patient's records are, in words, for the patient page and the case-review PDF: a level and its
reasons are as of the latest record, which for a patient not seen for weeks is not today (fact-check)."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from store.vocabulary import sentence_case

#: Days without any record after which the page and the PDF say the level is as of the latest record.
QUIET_DAYS = 28


def latest_records(sessions: pd.DataFrame, checkins: pd.DataFrame, *, today: dt.date, tz: str,
                   today_hidden: bool = False) -> tuple[str, str | None]:
    """('Latest session 2026-11-26, latest check-in 2026-11-28.', None), or with a second sentence when nothing is
    recorded for QUIET_DAYS or more: 'Nothing recorded for 8 weeks: the level and the reasons are as of 2026-10-04.'
    With no record at all, that is said: a green level alone read as 'assessed, no concern' (browser check).

    `today_hidden` (a de-identified file as of the day of export) says only that the gap reached QUIET_DAYS: its
    length in weeks would tell the shifted day of export, and with it the patient's shift (IG review)."""
    latest = {name: pd.Timestamp(frame[column].max()).tz_convert(tz).date()
              for name, frame, column in (("session", sessions, "session_at"), ("check-in", checkins, "reported_at"))
              if len(frame) and frame[column].notna().any()}
    if not latest:
        return "No session or check-in recorded yet: the level rests on no record.", None
    said = ", ".join(f"latest {name} {day.isoformat()}" for name, day in latest.items())
    newest = max(latest.values())
    quiet = (today - newest).days
    gap = (f"for at least {QUIET_DAYS // 7} weeks before the day of export" if today_hidden
           else f"for {quiet // 7} weeks")
    warning = (f"Nothing recorded {gap}: the level and the reasons are as of {newest.isoformat()}."
               if quiet >= QUIET_DAYS else None)
    return f"{sentence_case(said)}.", warning
