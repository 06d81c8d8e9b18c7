"""Speed benchmark (issue 7): import, `flags`, the caseload and patient pages, the browser and the PDF, each beside a floor.

Run:  python bench/speed.py [--sizes 200,2000] [--repeats 15] [--slow-repeats 3] [--db URL] [--no-browser]

For each caseload size it generates a year of records (seed_data.cohort, seed 11, a check-in
every 3.5 days, maintenance intervals at 0.4 of the usual protocols: about 48,000 sessions and
103,000 check-ins for 2,000 patients, the issue's busy network), imports them through `store.importer.import_folder` into a fresh database and
times, as medians over repeated runs (--repeats for fast measures, --slow-repeats for the import,
the runs after a write and the PDF):

- import: rows per second of the importer into an empty database; floor: the same stored rows
  put in with plain INSERTs (executemany, one transaction, no validation; COPY on PostgreSQL,
  where one INSERT per row is slower than the importer and so no floor);
- `ketawatch flags` for everyone, the CLI code path in-process (output captured);
  floor: bare SELECTs of the same live patients, sessions, side effects and check-ins, fetched whole;
- the caseload page and the patient page (the patient with most records among the first 200,
  the same person at every size) as AppTest script runs of dashboard/app.py, signed in: warm
  (later runs of the same session) and right after a write (one check-in added through
  store.records before each timed run); floor: a page drawing the same title, metrics, choice
  lists, tables and Plotly figures from a pickle, and after a write also re-reading with bare
  SQL the rows of the patient written to (the last patient for the caseload, the patient shown
  for the patient page): the least a page must read to show the change;
- the patient page in Chromium through Playwright (`streamlit run dashboard/app.py`), from the
  click on "Patient" in the navigation until every chart has its SVG; floor: the same figures
  drawn with Plotly.newPlot in a blank page that already has plotly.js;
- the patient PDF (`ketawatch.exports.export_patient(..., "pdf")`); floor: bare SELECTs of that
  patient's rows.

It prints one markdown table: each figure at each size, its floor, the ratio to the floor, the
issue's target (2-core machine) judged on the largest size, and the patient page's growth from
the smallest to the largest caseload. Databases are SQLite files in a temporary folder; with
--db URL (a PostgreSQL server, e.g. postgresql+psycopg://postgres@127.0.0.1:5432/postgres) every
database is made (and dropped) on that server instead. Not a test: the figures depend on the
machine and its load; the README quotes the latest with the command that produced them.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

from ketawatch import cli  # noqa: E402
from ketawatch.accounts import create_user  # noqa: E402
from ketawatch.exports import export_patient  # noqa: E402
from seed_data.cohort import CohortParams, generate_cohort, write_import_folder  # noqa: E402
from speed_pages import USER, time_page, use_database  # noqa: E402
from speed_store import (  # noqa: E402
    BareReads, Databases, median_seconds, migrated, table_rows, timed_bare_insert, timed_import,
)
from store.db import forget_engines  # noqa: E402

END = date(2026, 10, 31)
#: Planned maintenance intervals at this share of the usual protocols' (a busy clinic network).
SESSION_PLAN_SCALE = 0.4
BENCH_PASSWORD = "bench-password-not-secret"
COMPARE_AMONG = 200  # the patient page is timed for the busiest of the first 200 patients, present at every size


@dataclass(frozen=True)
class Row:
    """One line of the table: how to show the figure and the issue's target for it."""

    key: str
    label: str
    rate: bool  # rows per second (higher is better) rather than seconds
    target: str
    met: object  # figure -> bool, or None when the issue sets no target


ROWS = [
    Row("import", "import through the importer (rows/s)", True, ">= 50,000 rows/s", lambda v: v >= 50_000),
    Row("flags", "`ketawatch flags` for everyone (in-process)", False, "<= 1 s", lambda v: v <= 1.0),
    Row("caseload_warm", "caseload page, warm (AppTest run)", False, "<= 150 ms", lambda v: v <= 0.150),
    Row("caseload_write", "caseload page right after a write (AppTest run)", False, "<= 1 s", lambda v: v <= 1.0),
    Row("patient_warm", "patient page, warm (AppTest run)", False, "<= 200 ms", lambda v: v <= 0.200),
    Row("patient_write", "patient page right after a write (AppTest run)", False, "-", None),
    Row("browser", "patient page in Chromium until its charts are drawn", False, "<= 2 s", lambda v: v <= 2.0),
    Row("pdf", "patient PDF export", False, "<= 2 s", lambda v: v <= 2.0),
]


def run_flags(url: str, expected: int) -> None:
    """`ketawatch flags --db URL` through the CLI's own entry point, in this process, output captured."""
    out = io.StringIO()
    argv = sys.argv
    sys.argv = ["ketawatch", "flags", "--db", url]
    try:
        with contextlib.redirect_stdout(out):
            cli.main()
    except SystemExit as exc:
        if exc.code:
            raise SystemExit(f"ketawatch flags failed with exit status {exc.code}") from None
    finally:
        sys.argv = argv
    lines = out.getvalue().count("\n")
    if lines != expected + 1:
        raise SystemExit(f"ketawatch flags printed {lines} lines for {expected} patients")


def busiest_patient(cohort, among: int) -> str:
    """The patient with the most sessions and check-ins among the first `among` (the same records at every size)."""
    ids = cohort.patients["patient_id"].iloc[:among]
    counts = (cohort.sessions["patient_id"].value_counts().reindex(ids, fill_value=0)
              + cohort.checkins["patient_id"].value_counts().reindex(ids, fill_value=0))
    return str(counts.sort_values(ascending=False, kind="stable").index[0])


def measure_size(n: int, args, dbs: Databases, tmp: Path, among: int) -> tuple[dict, dict, dict]:
    """Every figure and floor for a caseload of `n` patients: ({key: figure}, {key: floor}), and facts for the header."""
    fast, slow = args.repeats, args.slow_repeats
    say = (lambda *a: print(f"[{n}]", *a, file=sys.stderr, flush=True))
    cohort = generate_cohort(CohortParams(n_patients=n, months=args.months, end=END, seed=11, checkin_interval_days=3.5,
                                          maintenance_interval_scale=SESSION_PLAN_SCALE))
    folder = tmp / f"import-{n}"
    counts = write_import_folder(cohort, folder)
    rows = sum(counts.values())
    patient = busiest_patient(cohort, among)
    other = str(cohort.patients["patient_id"].iloc[-1])
    facts = {"rows": rows, **counts, "patient": patient,
             "patient_records": int((cohort.sessions["patient_id"] == patient).sum()
                                    + (cohort.checkins["patient_id"] == patient).sum())}
    fig, floor = {}, {}

    say(f"import of {rows:,} rows x {slow}")
    seconds, url = [], None
    for i in range(slow):
        s, made = timed_import(dbs, folder, f"import{n}-{i}")
        seconds.append(s)
        if url is not None:
            dbs.drop(url)
        url = made
    fig["import"] = rows / statistics.median(seconds)
    engine = migrated(url)
    stored = table_rows(engine)
    floor["import"] = rows / statistics.median(timed_bare_insert(dbs, stored, f"floor{n}-{i}") for i in range(slow))

    say("flags")
    use_database(url)
    reads = BareReads(engine)
    fig["flags"] = median_seconds(lambda: run_flags(url, n), fast)
    floor["flags"] = median_seconds(lambda: reads.run(reads.everyone()), fast)

    say("patient PDF")
    fig["pdf"] = median_seconds(lambda: export_patient(engine, patient, "pdf", actor="bench", role="clinician"), slow)
    floor["pdf"] = median_seconds(lambda: reads.run(reads.one_patient(patient)), slow)

    create_user(engine, username=USER["username"], display_name=USER["display_name"], role=USER["role"],
                password=BENCH_PASSWORD, actor="bench")
    pages = tmp / f"pages-{n}"
    pages.mkdir()
    say("caseload page (AppTest)")
    caseload = time_page("caseload", engine, url, pages, patient_id=None, write_for=other,
                         reread=reads.one_patient(other), fast=fast, slow=slow)
    say("patient page (AppTest)")
    page = time_page("patient", engine, url, pages, patient_id=patient, write_for=patient,
                     reread=reads.one_patient(patient), fast=fast, slow=slow)
    fig.update(caseload_warm=caseload.warm, caseload_write=caseload.after_write,
               patient_warm=page.warm, patient_write=page.after_write)
    floor.update(caseload_warm=caseload.floor_warm, caseload_write=caseload.floor_after_write,
                 patient_warm=page.floor_warm, patient_write=page.floor_after_write)
    facts["charts"] = page.charts

    if not args.no_browser:
        from speed_browser import time_patient_page

        say("patient page in Chromium")
        browser = time_patient_page(url, USER["username"], BENCH_PASSWORD, patient, page.figures, fast,
                                    tmp / f"streamlit-{n}.log")
        fig["browser"], floor["browser"] = browser.patient_page, browser.floor

    engine.dispose()
    forget_engines()
    dbs.drop(url)
    return fig, floor, facts


def _show(value: float | None, rate: bool) -> str:
    if value is None:
        return "-"
    if rate:
        return f"{value:,.0f}"
    if value < 0.01:
        return f"{value * 1000:.1f} ms"
    return f"{value * 1000:,.0f} ms" if value < 1 else f"{value:,.2f} s"


def _ratio(value: float | None, base: float | None, rate: bool) -> str:
    """How many times the floor's cost (for a rate: how many times slower than the floor)."""
    if value is None or not base:
        return "-"
    return f"{(base / value if rate else value / base):.1f}x"


def table(sizes: list[int], figs: dict, floors: dict, facts: dict) -> list[str]:
    """The markdown table of the issue: each measure per size, floors, ratios, target and whether it is met."""
    head = ("| measure | " + " | ".join(f"{s:,} patients" for s in sizes)
            + f" | floor ({'/'.join(f'{s:,}' for s in sizes)}) | ratio | target | met? |")
    lines = [head, "|" + "---|" * (len(sizes) + 5)]
    largest = sizes[-1]
    for row in ROWS:
        values = [figs[s].get(row.key) for s in sizes]
        if all(v is None for v in values):
            continue
        bases = [floors[s].get(row.key) for s in sizes]
        label = row.label.replace("its charts", f"its {facts[largest]['charts']} charts")
        met = "-" if row.met is None or values[-1] is None else ("yes" if row.met(values[-1]) else "**no**")
        lines.append(
            f"| {label} | " + " | ".join(_show(v, row.rate) for v in values)
            + " | " + " / ".join(_show(b, row.rate) for b in bases)
            + " | " + " / ".join(_ratio(v, b, row.rate) for v, b in zip(values, bases))
            + f" | {row.target} | {met} |"
        )
    if len(sizes) >= 2:
        small, big = figs[sizes[0]]["patient_warm"], figs[largest]["patient_warm"]
        fs, fb = floors[sizes[0]]["patient_warm"], floors[largest]["patient_warm"]
        growth = big / small
        lines.append(
            f"| patient page warm, {largest:,} / {sizes[0]:,} patients | " + " | ".join("" for _ in sizes[:-1])
            + f" | {growth:.2f}x | {fb / fs:.2f}x (floor) | - | <= 1.3x | {'yes' if growth <= 1.3 else '**no**'} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="200,2000", help="caseload sizes, comma-separated (default 200,2000)")
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=15, help="runs per fast measure (default 15)")
    parser.add_argument("--slow-repeats", type=int, default=3,
                        help="runs of the import, of each page after a write and of the PDF (default 3)")
    parser.add_argument("--db", help="a PostgreSQL server URL: make every database there instead of SQLite files")
    parser.add_argument("--no-browser", action="store_true", help="skip the Chromium measure")
    args = parser.parse_args()
    sizes = sorted(int(s.replace("_", "").replace(",", "")) for s in args.sizes.split(","))
    among = min(min(sizes), COMPARE_AMONG)

    started = time.perf_counter()
    os.environ.setdefault("KETAWATCH_CLINIC_TIMEZONE", "Europe/London")
    figs, floors, facts = {}, {}, {}
    with tempfile.TemporaryDirectory(prefix="kw-speed-") as tmp:
        dbs = Databases(Path(tmp), args.db)
        try:
            for n in sizes:
                figs[n], floors[n], facts[n] = measure_size(n, args, dbs, Path(tmp), among)
        finally:
            forget_engines()
            dbs.drop_all()

    backend = "PostgreSQL" if args.db else "SQLite"
    print(f"KetaWatch speed benchmark, {date.today().isoformat()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, {backend}; medians of {args.repeats} runs "
          f"({args.slow_repeats} for the import, the runs after a write and the PDF)")
    for n in sizes:
        f = facts[n]
        print(f"- {n:,} patients x {args.months} months: {f['rows']:,} rows ({f['sessions.csv']:,} sessions, "
              f"{f['checkins.csv']:,} check-ins); patient page and PDF for {f['patient']} "
              f"({f['patient_records']} records, {f['charts']} charts)")
    print()
    print("\n".join(table(sizes, figs, floors, facts)))
    print()
    print(f"Ratio: the figure's cost over its floor's (for the import, how many times slower than plain INSERTs). "
          f"Targets are judged on {sizes[-1]:,} patients. Total time {time.perf_counter() - started:.0f} s.")


if __name__ == "__main__":
    main()
