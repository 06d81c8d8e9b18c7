"""The level as shown at the time for one patient whose year of records was entered day by day: how long it takes.

An import enters every record at once, so the speed benchmark's patients have one day of stored
changes and the rebuild costs little there. A clinic enters each record on its day (some late,
some corrected), which gives the rebuild one day per entry. This builds such a patient in a new
SQLite file through `store.records` with the clock set to each entry's time, then times reading
every version (`store.known_then.record_timeline`) and rebuilding each day
(`ketawatch.risk.as_seen.shown_then`) as medians:

    python bench/as_seen.py --repeats 15

Not a test: the figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd


def _entries(frame: pd.DataFrame) -> list[dict]:
    """A cohort frame's rows as the form would send them: the import format's text, nothing for "not recorded"."""
    from seed_data.cohort.writer import import_text

    return [{k: v for k, v in row.items() if v != "" and k != "id"} for row in import_text(frame).to_dict("records")]


def build(url: str, tz: str) -> tuple[str, int]:
    """The cohort's busiest patient over 12 months, each record entered an hour after it is dated; every seventh check-in
    is typed in 9 days late and every eleventh corrected the day after. Returns (patient id, records)."""
    from seed_data.cohort import generate_cohort
    from seed_data.cohort.params import CohortParams
    from store import records
    from store.db import open_database
    from store.validation import Validator

    cohort = generate_cohort(CohortParams(n_patients=20, months=12, end=dt.date(2026, 11, 20), seed=11,
                                          checkin_interval_days=3.5, maintenance_interval_scale=0.5))
    counts = cohort.sessions["patient_id"].value_counts() + cohort.checkins["patient_id"].value_counts()
    pid = str(counts.idxmax())
    engine = open_database(url)
    patient = cohort.patients[cohort.patients["patient_id"] == pid]
    start = pd.Timestamp(patient["treatment_start"].iloc[0]).tz_localize(tz)
    records.add_patient(engine, _entries(patient)[0], actor="bench", validator=Validator(now=start.to_pydatetime(), tz=tz))
    mine = {add: frame[frame["patient_id"] == pid] for add, frame in ((records.add_session, cohort.sessions),
                                                                      (records.add_checkin, cohort.checkins))}
    rows = [(at, add, row) for add, frame in mine.items()
            for at, row in zip(frame["session_at" if add is records.add_session else "reported_at"], _entries(frame))]
    rows.sort(key=lambda item: item[0])
    for i, (at, add, row) in enumerate(rows):
        late = pd.Timedelta(days=9) if add is records.add_checkin and i % 7 == 3 else pd.Timedelta(hours=1)
        saved = add(engine, row, actor="bench", validator=Validator(now=(at + late).to_pydatetime(), tz=tz))
        if add is records.add_checkin and i % 11 == 5:
            records.amend_checkin(engine, saved.id, {"notes": "corrected the next day"}, actor="bench",
                                  reason="bench correction", expected_version=1,
                                  validator=Validator(now=(at + late + pd.Timedelta(days=1)).to_pydatetime(), tz=tz))
    return pid, len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    sys.path.insert(0, os.getcwd())
    from ketawatch.risk import load_rules
    from ketawatch.risk.as_seen import _may_differ, shown_then
    from ketawatch.risk.features import local_days
    from store.db import open_database
    from store.known_then import record_timeline

    tz = "Europe/London"
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'as-seen.db'}"
        pid, n = build(url, tz)
        engine, rules = open_database(url), load_rules()
        reads, rebuilds, days = [], [], 0
        for _ in range(2 + args.repeats):  # two to warm up
            t0 = time.perf_counter()
            timeline = record_timeline(engine, [pid])
            t1 = time.perf_counter()
            shown = shown_then(timeline, rules=rules, tz=tz, until=dt.date(2026, 11, 30))
            t2 = time.perf_counter()
            reads.append(t1 - t0)
            rebuilds.append(t2 - t1)
            days = len(shown)
        reads, rebuilds = reads[2:], rebuilds[2:]
        changes = timeline.changed_at()
        changed = pd.DataFrame({"patient_id": changes["patient_id"],
                                "day": local_days(changes["at"], tz).astype("datetime64[D]")}).drop_duplicates()
        rebuilt = int(_may_differ(changed.reset_index(drop=True), timeline, tz).sum())
        print(f"{pid}: {n} records, {len(timeline.sessions) + len(timeline.checkins)} versions, {len(changed)} days "
              f"with a change, {days} of them with a level, {rebuilt} rebuilt from what was stored (the rest: the replay)")
        print(f"read every version: median {statistics.median(reads) * 1000:.0f} ms")
        print(f"rebuild each day:   median {statistics.median(rebuilds) * 1000:.0f} ms ({args.repeats} runs)")


if __name__ == "__main__":
    main()
