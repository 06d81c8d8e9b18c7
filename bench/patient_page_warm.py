"""The patient page's warm run alone (AppTest), for comparing two versions of the code on one database.

Run it from each checkout in turn (the current folder's code is imported first), on databases
that each version made and filled from the same import folder, alternating, and compare medians:

    python bench/patient_page_warm.py sqlite:////tmp/k.db KW-0042 --user bench-clinician

The user must exist in that database (`ketawatch users add bench-clinician --role clinician`).
Not a test: the figure depends on the machine and its load.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("db", help="SQLAlchemy URL of the database")
    parser.add_argument("patient", help="patient id to open")
    parser.add_argument("--user", default="bench-clinician", help="an existing clinician account")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    sys.path.insert(0, os.getcwd())
    os.environ["KETAWATCH_DATABASE_URL"] = args.db
    logging.disable(logging.WARNING)  # AppTest's "missing ScriptRunContext" noise
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(Path.cwd() / "dashboard" / "app.py"), default_timeout=300)
    at.session_state["user"] = {"username": args.user, "display_name": args.user, "role": "clinician"}
    at.query_params["patient"] = args.patient
    at.switch_page("views/patient.py")
    times = []
    for i in range(3 + args.repeats):  # three to warm the caches, then the measured runs
        at.session_state["last_activity"] = time.time()
        start = time.perf_counter()
        at.run()
        if at.exception:
            raise SystemExit(f"the patient page failed: {at.exception[0].message}")
        if i >= 3:
            times.append(time.perf_counter() - start)
    title = at.title[0].value if at.title else "?"
    print(f"{Path.cwd()}: patient page warm, median of {args.repeats}: {statistics.median(times) * 1000:.0f} ms ({title})")


if __name__ == "__main__":
    main()
