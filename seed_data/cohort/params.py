"""The knobs of a synthetic cohort and the cohort it produces, so demo and benchmark share one shape."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pandas as pd


def yesterday_utc() -> dt.date:
    """The last whole day in UTC, so a default cohort never holds a record from the future."""
    return dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)


@dataclass(frozen=True)
class CohortParams:
    """What to generate; the same parameters always give the same records, byte for byte.

    `end` is the last day with records (default: yesterday in UTC, computed when the parameters
    are made). An `end` of today or later produces records the importer rejects as "in the future".
    """

    n_patients: int = 40
    end: dt.date = field(default_factory=yesterday_utc)
    months: int = 6
    seed: int = 20261122
    dependence_fraction: float = 0.09
    checkin_interval_days: float = 7
    missing_rate: float = 0.1
    noise: float = 1.0
    onset_speed: float = 1.0
    confounder_fraction: float = 0.35
    #: Multiplies every planned maintenance interval (1 = the usual protocols; the speed benchmark
    #: uses 0.5 for a busier network, about 50,000 sessions per 2,000 patient-years).
    maintenance_interval_scale: float = 1.0

    def __post_init__(self) -> None:
        """Refuse parameters that cannot describe a clinic's caseload, naming the bad one."""
        if isinstance(self.end, dt.datetime) or isinstance(self.end, pd.Timestamp):
            object.__setattr__(self, "end", pd.Timestamp(self.end).date())
        if not isinstance(self.end, dt.date):
            raise TypeError(f"end must be a date, got {type(self.end).__name__}")
        checks = {
            "n_patients must be at least 1": self.n_patients >= 1,
            "months must be at least 1": self.months >= 1,
            "seed must be a non-negative integer": isinstance(self.seed, int) and self.seed >= 0,
            "dependence_fraction must be within 0-1": 0 <= self.dependence_fraction <= 1,
            "confounder_fraction must be within 0-1": 0 <= self.confounder_fraction <= 1,
            "dependence_fraction + confounder_fraction must not exceed 1": (
                self.dependence_fraction + self.confounder_fraction <= 1
            ),
            "checkin_interval_days must be at least 1": self.checkin_interval_days >= 1,
            "missing_rate must be within 0-1": 0 <= self.missing_rate <= 1,
            "noise must be zero or more": self.noise >= 0,
            "onset_speed must be above 0": self.onset_speed > 0,
            "maintenance_interval_scale must be above 0": self.maintenance_interval_scale > 0,
        }
        for message, ok in checks.items():
            if not ok:
                raise ValueError(message)

    @property
    def span_days(self) -> int:
        """Days of follow-up before `end` for the longest-treated patients."""
        return round(self.months * 30.4375)


@dataclass(frozen=True, eq=False)
class Cohort:
    """Generated records in the typed shape of `store.frames`, plus the truth behind each patient.

    `truth` (patient_id, archetype, dependence_onset, dependence_midpoint, notes) is what the risk
    engine is scored against; it never goes into an import folder. Onset is the first day of the
    dependence build-up (an S-curve over 5-12 weeks by default); the midpoint is the day it is
    half done, when craving is about half its eventual rise.
    """

    patients: pd.DataFrame
    sessions: pd.DataFrame
    checkins: pd.DataFrame
    truth: pd.DataFrame
    #: patient_id, planned_dose_mg: the fixed-dose (intranasal) plan a clinic sets on Patients and plans, which the
    #: import format has no column for; the demo sets it after its import.
    mg_plans: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        {"patient_id": pd.Series(dtype="string"), "planned_dose_mg": pd.Series(dtype="float64")}))
