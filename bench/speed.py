"""Speed benchmark: import throughput, levels for everyone, and a patient PDF, as medians over repeated runs.

Run:  python bench/speed.py [--patients 2000] [--months 12] [--repeats 3] [--db URL]

Builds a fresh database through the real importer from a generated cohort (SQLite file in a
temporary folder unless --db names an empty database), then times:
- import: rows per second of `store.importer.import_folder` into an empty database;
- levels: loading the records and `ketawatch.risk.assess` for every patient (what `ketawatch flags` does);
- history: `ketawatch.risk.level_history` for every patient;
- patient PDF: `ketawatch.exports.export_patient(..., "pdf")` for the patient with the most records.
Not a test: figures depend on the machine; the README lists the latest with this command.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ketawatch.exports import export_patient  # noqa: E402
from ketawatch.risk import assess, level_history  # noqa: E402
from seed_data.cohort import CohortParams, generate_cohort, write_import_folder  # noqa: E402
from store.db import forget_engines, make_engine, upgrade  # noqa: E402
from store.importer import import_folder  # noqa: E402
from store.queries import load_records  # noqa: E402

TZ = "Europe/London"
END = date(2026, 10, 31)


def timed(fn, repeats: int) -> tuple[float, object]:
    """Median seconds of `repeats` calls, and the last result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--db", help="URL of an EMPTY database to use for the last import run (default: SQLite files)")
    args = parser.parse_args()

    cohort = generate_cohort(CohortParams(n_patients=args.patients, months=args.months, end=END, seed=11))
    with tempfile.TemporaryDirectory(prefix="kw-speed-") as tmp:
        folder = Path(tmp) / "import"
        folder.mkdir()
        counts = write_import_folder(cohort, folder)
        rows = sum(counts.values())

        import_times, engine = [], None
        for i in range(args.repeats):
            url = args.db if (args.db and i == args.repeats - 1) else f"sqlite:///{Path(tmp) / f'speed{i}.db'}"
            engine = make_engine(url)
            upgrade(engine)
            start = time.perf_counter()
            import_folder(engine, folder, actor="bench")
            import_times.append(time.perf_counter() - start)
        import_s = statistics.median(import_times)

        levels_s, _ = timed(lambda: assess(load_records(engine), as_of=END, tz=TZ), args.repeats)
        records = load_records(engine)
        history_s, _ = timed(lambda: level_history(records, tz=TZ), args.repeats)
        busiest = records.sessions["patient_id"].value_counts().index[0]
        pdf_s, result = timed(
            lambda: export_patient(engine, busiest, "pdf", actor="bench", role="clinician"), args.repeats
        )
        engine.dispose()
        forget_engines()

    print(f"Cohort: {args.patients} patients x {args.months} months = {rows} rows "
          f"({counts['sessions.csv']} sessions, {counts['checkins.csv']} check-ins); median of {args.repeats}")
    print("| measure | median |")
    print("|---|---|")
    print(f"| import into an empty database | {import_s:.2f} s ({rows / import_s:,.0f} rows/s) |")
    print(f"| levels for everyone (load records + assess) | {levels_s:.2f} s |")
    print(f"| level history for everyone (records loaded) | {history_s:.2f} s |")
    size = sum(len(b) for b in result.files.values())
    print(f"| patient PDF (busiest patient, {size / 1024:.0f} KiB) | {pdf_s:.2f} s |")


if __name__ == "__main__":
    main()
