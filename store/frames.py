"""The plain-DataFrame shape of the records that the risk engine, charts and exports consume.

Columns are the CONTRACT section 2 names. Numbers are float64 (NaN = not recorded) so trend
arithmetic needs no special cases; instants are UTC-aware; dates are naive midnight timestamps.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from store.vocabulary import CHECKIN_COLUMNS, PATIENT_COLUMNS, SDS_ITEMS, SESSION_COLUMNS, WARNING_SIGNS

PATIENT_DTYPES: dict[str, str] = {
    "patient_id": "string",
    "display_name": "string",
    "birth_year": "float64",
    "sex": "string",
    "indication": "string",
    "sud_history": "bool",
    "treatment_start": "datetime64[ns]",
    "planned_dose_mg_per_kg": "float64",
    "planned_dose_mg": "float64",
    "planned_interval_days": "float64",
    "clinician": "string",
    "status": "string",
}
SESSION_DTYPES: dict[str, str] = {
    "id": "Int64",
    "patient_id": "string",
    "session_at": "datetime64[ns, UTC]",
    "route": "string",
    "dose_mg": "float64",
    "weight_kg": "float64",
    "duration_min": "float64",
    "early_request": "boolean",
    "dose_increase_request": "boolean",
    **{c: "float64" for c in ("sbp_pre", "dbp_pre", "sbp_post", "dbp_post", "hr_pre", "hr_post", "spo2_pre", "spo2_post")},
    "dissociation_cadss": "float64",
    "side_effects": "string",
    "notes": "string",
}
CHECKIN_DTYPES: dict[str, str] = {
    "id": "Int64",
    "patient_id": "string",
    "reported_at": "datetime64[ns, UTC]",
    "craving": "float64",
    **{c: "float64" for c in SDS_ITEMS},
    **{c: "float64" for c in WARNING_SIGNS},
    "phq9": "float64",
    "notes": "string",
}

assert set(PATIENT_COLUMNS) <= set(PATIENT_DTYPES)
assert set(SESSION_COLUMNS) <= set(SESSION_DTYPES)
assert set(CHECKIN_COLUMNS) <= set(CHECKIN_DTYPES)


def conform(frame: pd.DataFrame | None, dtypes: dict[str, str]) -> pd.DataFrame:
    """Return `frame` with exactly the known columns in order and dtypes; missing columns become empty."""
    frame = pd.DataFrame() if frame is None else frame
    out = {}
    n = len(frame)
    for column, dtype in dtypes.items():
        if column in frame.columns:
            values = frame[column]
            if dtype == "datetime64[ns, UTC]":
                values = pd.to_datetime(values, utc=True)
            elif dtype == "datetime64[ns]":
                values = pd.to_datetime(values)
                if values.dt.tz is not None:
                    values = values.dt.tz_localize(None)
                values = values.dt.normalize()
            out[column] = values.astype(dtype)
        else:
            out[column] = pd.Series([pd.NA] * n if dtype in ("string", "boolean", "Int64") else [None] * n, index=frame.index).astype(dtype)
    return pd.DataFrame(out, index=frame.index).reset_index(drop=True)


@dataclass(frozen=True)
class Records:
    """The live (not voided) records of a set of patients, as frames."""

    patients: pd.DataFrame
    sessions: pd.DataFrame
    checkins: pd.DataFrame

    @classmethod
    def of(cls, patients=None, sessions=None, checkins=None) -> "Records":
        """Build from any frames with contract columns, filling and typing the rest."""
        p = conform(patients, PATIENT_DTYPES)
        if patients is not None and "status" not in patients.columns:
            p["status"] = pd.Series(["active"] * len(p), dtype="string")
        return cls(p, conform(sessions, SESSION_DTYPES), conform(checkins, CHECKIN_DTYPES))

    def for_patients(self, patient_ids) -> "Records":
        ids = set(patient_ids)
        return Records(
            self.patients[self.patients["patient_id"].isin(ids)].reset_index(drop=True),
            self.sessions[self.sessions["patient_id"].isin(ids)].reset_index(drop=True),
            self.checkins[self.checkins["patient_id"].isin(ids)].reset_index(drop=True),
        )
