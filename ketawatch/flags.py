"""Rows of `ketawatch flags` (CONTRACT section 3): levels as of a date, or each patient's level history."""

from __future__ import annotations

import csv
import json
from datetime import date
from typing import IO, Any

from sqlalchemy import Engine

from store.queries import load_records
from store.settings import get_settings

HEADER = ("patient_id", "as_of", "level", "reasons")


def _iso(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def flag_rows(engine: Engine, *, as_of: date | None = None, history: bool = False) -> list[dict[str, Any]]:
    """One row per patient as of `as_of` (default today); with `history`, each patient's first assessment and
    every change of level, up to `as_of` when given."""
    from ketawatch.risk import assess, level_history, reason_ids

    tz = get_settings().clinic_timezone
    records = load_records(engine)
    if history:
        frame = level_history(records, tz=tz).rename(columns={"date": "as_of"})
        if as_of is not None:
            frame = frame[frame["as_of"] <= as_of]
        frame = frame.sort_values(["as_of", "patient_id"], kind="stable")
    else:
        frame = assess(records, as_of=as_of, tz=tz).sort_values("patient_id", kind="stable")
    return [
        {"patient_id": str(row.patient_id), "as_of": _iso(row.as_of), "level": str(row.level), "reasons": reason_ids(row.reasons)}
        for row in frame.itertuples(index=False)
    ]


def write_rows(rows: list[dict[str, Any]], fmt: str, out: IO[str]) -> None:
    """Print rows as CSV (reasons joined with ';') or as a JSON array (reasons as a list)."""
    if fmt == "json":
        json.dump(rows, out, indent=2)
        out.write("\n")
        return
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    for row in rows:
        writer.writerow([row["patient_id"], row["as_of"], row["level"], ";".join(row["reasons"])])
