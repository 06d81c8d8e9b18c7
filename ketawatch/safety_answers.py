"""PHQ-9 question 9 answers above 'not at all', carried as a marked line in the check-in's notes, found again for every screen.

The import format (CONTRACT section 2) holds the PHQ-9 total only. The check-in form therefore
writes a line beginning with `SAFETY_MARK` into the notes when question 9 is answered above 'not
at all'; this module finds those lines again, so the answer reaches the caseload, the alerts and
the patient's page for `RECENT_DAYS` days, not only the screen of whoever saved the form.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd

#: How a check-in note's safety line begins (the form writes it; a clinician may type it too).
SAFETY_MARK = "[Safety]"
#: How long after the check-in the answer stays on the caseload, alerts and patient page.
RECENT_DAYS = 14


def safety_line(answers: list[str]) -> str:
    """The notes line for a check-in whose question 9 was answered with `answers` (in the instrument's words)."""
    said = ", ".join(f"'{answer}'" for answer in answers)
    return (f"{SAFETY_MARK} PHQ-9 question 9 (better off dead or self-harm) answered {said}: "
            "a clinician to speak with the patient today.")


def recent_safety_answers(checkins: pd.DataFrame, *, now: datetime, days: int = RECENT_DAYS) -> pd.DataFrame:
    """Check-ins of the last `days` days with a safety line: patient_id, reported_at, line (newest first)."""
    columns = ["patient_id", "reported_at", "line"]
    if checkins.empty:
        return pd.DataFrame(columns=columns)
    notes = checkins["notes"].astype("string")
    recent = checkins["reported_at"] >= pd.Timestamp(now - timedelta(days=days))
    lines = notes.str.split("\n").map(
        lambda parts: next((p.strip() for p in parts if p.strip().startswith(SAFETY_MARK)), None)
        if isinstance(parts, list) else None
    )
    found = checkins.assign(line=lines)[recent.to_numpy(dtype=bool) & lines.notna().to_numpy(dtype=bool)]
    return found[columns].sort_values("reported_at", ascending=False, kind="stable").reset_index(drop=True)
