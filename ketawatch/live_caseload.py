"""The caseload kept current after each write by recomputing only the patients whose records changed.

Each caseload row and each level depends on one patient's own records and reviews, so when a
clinician saves one check-in, one patient needs the engine again, not two thousand. The store's
per-patient fingerprints (`store.queries.record_fingerprints`) say which patients changed; the
result always equals a full `assess` plus `caseload_table` on the records as they are now.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date

import pandas as pd
from sqlalchemy import Engine

from ketawatch.caseload import caseload_table, replace_patients
from ketawatch.risk import RuleSettings, assess, load_rules
from store import queries
from store.app_settings import restore_mark

#: When more than this share of patients changed (an import, say), recomputing everyone is as quick.
FULL_REBUILD_SHARE = 0.2


@dataclass(frozen=True)
class CaseloadNow:
    """Every patient's assessment (as `assess` returns it) and the caseload table, as of one date."""

    as_of: date
    assessment: pd.DataFrame
    table: pd.DataFrame


class LiveCaseload:
    """One database's caseload, brought up to date on request; safe to share between threads."""

    def __init__(self, engine: Engine, tz: str, review_again_days: int):
        self._engine, self._tz, self._review_again_days = engine, tz, review_again_days
        self._lock = threading.Lock()
        self._now: CaseloadNow | None = None
        self._prints: pd.DataFrame | None = None
        self._mark: str | None = None
        self._rules: RuleSettings | None = None  # a clinic's rules file edited while serving changes every level
        self.last_recomputed: list[str] | None = None  # patients recomputed by the last refresh; None = everyone

    def refresh(self, as_of: date) -> CaseloadNow:
        """The caseload as of `as_of` on the records as they are now (frames shared: do not modify them)."""
        with self._lock:
            prints = queries.record_fingerprints(self._engine)
            mark = restore_mark(self._engine)  # restored: fingerprints can repeat with other records behind them
            rules = load_rules()
            if self._now is None or self._now.as_of != as_of or mark != self._mark or rules != self._rules:
                changed = None
            else:
                changed = queries.changed_patients(self._prints, prints)
                if len(changed) > FULL_REBUILD_SHARE * max(len(prints), 1):
                    changed = None
            if changed is None:
                self._now = self._compute(None, as_of, rules)
            elif changed:
                fresh = self._compute(changed, as_of, rules)
                kept = self._now.assessment[~self._now.assessment["patient_id"].isin(changed)]
                assessment = pd.concat([f for f in (kept, fresh.assessment) if len(f)] or [kept], ignore_index=True)
                self._now = CaseloadNow(
                    as_of,
                    assessment.sort_values("patient_id", kind="stable").reset_index(drop=True),
                    replace_patients(self._now.table, fresh.table, changed),
                )
            self._prints, self._mark, self._rules = prints, mark, rules
            self.last_recomputed = changed
            return self._now

    def _compute(self, patient_ids: list[str] | None, as_of: date, rules: RuleSettings) -> CaseloadNow:
        records = queries.load_records(self._engine, patient_ids)
        reviews = queries.alert_reviews_frame(self._engine, patient_ids)
        assessment = assess(records, as_of=as_of, rules=rules, tz=self._tz)
        table = caseload_table(records, assessment, reviews=reviews, tz=self._tz, today=as_of,
                               review_again_days=self._review_again_days)
        return CaseloadNow(as_of, assessment, table)
