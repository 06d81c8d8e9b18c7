"""One patient's records as a FHIR R4B Bundle (type collection), for the clinic's record system.

What maps to what:

- the patient -> Patient (clinic id, name, sex, year of birth; de-identified: pseudonym and an
  age-band extension only);
- each session -> MedicationAdministration: intranasal sessions are esketamine, coded with RxNorm
  2201623 "esketamine Nasal Spray" (cited from RxNorm via ndclist.com/rxnorm/rxcui/2201623);
  every other route is racemic ketamine, sent as text because no RxNorm code for it could be
  cited here. Route uses SNOMED CT route codes (intravenous 47625008, intramuscular 78421000,
  nasal 46713006, oral 26643006, sublingual 37839007, as listed in the SNOMED CT route value
  sets of HL7 FHIR implementation guides such as KBV_VS_Base_..._Route_of_Administration);
  dose in UCUM mg; period from the session time and its duration;
- vitals -> Observation (category vital-signs) with LOINC: systolic 8480-6, diastolic 8462-4,
  heart rate 8867-4, SpO2 59408-5 + 2708-6, body weight 29463-7; before-dosing values at the start
  of the session, after-dosing values at its end, each `partOf` its MedicationAdministration;
- the patient's requests (earlier session, higher dose) and the CADSS total -> Observations with
  codes from KetaWatch's own code system;
- each check-in -> Observations (category survey): craving (local code), SDS total with its five
  items as components (local codes; no LOINC code for the SDS is known here), PHQ-9 total (LOINC
  44261-6), and the warning-sign checklist as one Observation whose components are the twelve
  items (local code system);
- each side effect -> AdverseEvent (actuality actual, HL7 adverse-event-severity mild/moderate/
  severe), its suspect entity the session's MedicationAdministration.

Local codes live under KETAWATCH_FHIR (a placeholder namespace on the reserved `.invalid` domain,
so it can never clash with someone else's; a clinic may publish its own). Resource ids are
name-based UUIDs of the (pseudonymised) patient key and the record's time, so exporting the
same records twice gives the same ids and nothing about the real patient can be read from them.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pandas as pd

from ketawatch.exports.casefile import PatientCase, local_day
from ketawatch.exports.fhir_markdown import fhir_markdown
from ketawatch.risk import scoring
from seed_data.catalogue import instruments, side_effects, warning_sign
from store.vocabulary import SDS_ITEMS, WARNING_SIGNS

KETAWATCH_FHIR = "https://ketawatch.invalid/fhir"
CS_INSTRUMENT = f"{KETAWATCH_FHIR}/CodeSystem/instrument"
CS_WARNING_SIGN = f"{KETAWATCH_FHIR}/CodeSystem/warning-sign"
CS_SIDE_EFFECT = f"{KETAWATCH_FHIR}/CodeSystem/side-effect"
CS_SESSION = f"{KETAWATCH_FHIR}/CodeSystem/session"
SID_PATIENT = f"{KETAWATCH_FHIR}/sid/patient-id"
SID_PSEUDONYM = f"{KETAWATCH_FHIR}/sid/pseudonym"
EXT_AGE_BAND = f"{KETAWATCH_FHIR}/StructureDefinition/age-band"

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
AE_SEVERITY = "http://terminology.hl7.org/CodeSystem/adverse-event-severity"
_NAMESPACE = uuid.UUID("6f1d3c2a-8e0b-5b7e-9a51-4b6d0f2c9e11")

ROUTES = {
    "iv": ("47625008", "Intravenous route"),
    "im": ("78421000", "Intramuscular route"),
    "intranasal": ("46713006", "Nasal route"),
    "oral": ("26643006", "Oral route"),
    "sublingual": ("37839007", "Sublingual route"),
}
ESKETAMINE = {"coding": [{"system": RXNORM, "code": "2201623", "display": "esketamine Nasal Spray"}], "text": "esketamine (intranasal)"}
#: Racemic ketamine has no RxNorm product code that fits every preparation; the WHO ATC code names the substance.
KETAMINE = {"coding": [{"system": "http://www.whocc.no/atc", "code": "N01AX03", "display": "ketamine"}],
            "text": "ketamine (racemic)"}

#: Blood pressure as the FHIR vital-signs profile has it: one panel, systolic and diastolic as its components.
BP_PANEL = ("85354-9", "Blood pressure panel with all children optional")
BP_PARTS = (("sbp", "8480-6", "Systolic blood pressure"), ("dbp", "8462-4", "Diastolic blood pressure"))
NOT_RECORDED = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason", "code": "unknown",
                            "display": "Unknown"}]}
#: (column, LOINC codes, display, UCUM unit) of the other vitals recorded before and after dosing.
VITALS = (
    ("hr", (("8867-4", "Heart rate"),), "Heart rate", "/min"),
    ("spo2", (("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry"), ("2708-6", "Oxygen saturation in Arterial blood")),
     "Oxygen saturation", "%"),
)


def _category(code: str, display: str) -> list[dict]:
    return [{"coding": [{"system": OBS_CATEGORY, "code": code, "display": display}]}]


VITAL_SIGNS = _category("vital-signs", "Vital Signs")
SURVEY = _category("survey", "Survey")


def _missing(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value))


def _iso(moment: pd.Timestamp | datetime, tz: str) -> str:
    return pd.Timestamp(moment).tz_convert(tz).isoformat(timespec="seconds")


class _BundleBuilder:
    """Collects entries with stable ids and references between them."""

    def __init__(self, case: PatientCase):
        self.case = case
        self.key = case.patient_key
        self.entries: list[dict] = []
        self.patient_ref = self.url("patient", "")

    def id(self, kind: str, local: str) -> str:
        return str(uuid.uuid5(_NAMESPACE, f"{self.key}|{kind}|{local}"))

    def url(self, kind: str, local: str) -> str:
        return f"urn:uuid:{self.id(kind, local)}"

    def add(self, kind: str, local: str, resource: dict) -> str:
        resource = {"id": self.id(kind, local), **resource}
        url = self.url(kind, local)
        self.entries.append({"fullUrl": url, "resource": resource})
        return url

    def observation(self, kind: str, local: str, *, category, code: dict, when: str | dict, value: dict | None = None,
                    part_of: str | None = None, components: list[dict] | None = None, note: str | None = None,
                    status: str = "final") -> None:
        resource: dict[str, Any] = {
            "resourceType": "Observation",
            "status": status,
            "category": category,
            "code": code,
            "subject": {"reference": self.patient_ref},
            # a moment, or a period (after dosing, when only the start of the session is known)
            **({"effectivePeriod": when} if isinstance(when, dict) else {"effectiveDateTime": when}),
        }
        if value:
            resource.update(value)
        if part_of:
            resource["partOf"] = [{"reference": part_of}]
        if components:
            resource["component"] = components
        if note:
            resource["note"] = [{"text": fhir_markdown(note)}]
        self.add("observation", f"{kind}|{local}", resource)


def _local_code(system: str, code: str, display: str) -> dict:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def _patient(b: _BundleBuilder) -> dict:
    case, p = b.case, b.case.patient
    resource: dict[str, Any] = {"resourceType": "Patient"}
    if case.deidentified:
        resource["identifier"] = [{"system": SID_PSEUDONYM, "value": case.patient_key}]
        if case.age_band:
            resource["extension"] = [{"url": EXT_AGE_BAND, "valueString": case.age_band}]
    else:
        resource["identifier"] = [{"system": SID_PATIENT, "value": case.patient_key}]
        if not _missing(p.get("display_name")) and str(p.get("display_name")).strip():
            resource["name"] = [{"text": str(p["display_name"])}]
        if not _missing(p.get("birth_year")):
            resource["birthDate"] = f"{int(p['birth_year']):04d}"
    if not _missing(p.get("sex")):
        resource["gender"] = str(p["sex"])
    return resource


def _with_voided(case: PatientCase, live: pd.DataFrame, voided: pd.DataFrame | None, at: str, record: str) -> pd.DataFrame:
    """The period's live records and its voided ones, each with the status its resources carry and its lasting key.

    A resource's id comes from the stored record (`PatientCase.record_key`), not its time, so an
    amended record, even one whose time was corrected, keeps the ids a receiving system already
    holds, and a voided record is sent again under them as 'entered-in-error'.
    """
    live = live.copy()
    live["date"] = local_day(live[at], case.tz)
    live = case.in_window(live)
    amended = case.amended_ids(record)
    live["fhir_status"] = ["amended" if i in amended else "final" for i in live["id"]]
    if voided is not None and len(voided):
        gone = voided.assign(fhir_status="entered-in-error")
        live = pd.concat([live, gone], ignore_index=True)  # already windowed by the case; no "date" column
    live["local_key"] = [case.record_key(record, i) for i in live["id"]]
    return live.sort_values(at, kind="stable").reset_index(drop=True)


def _sessions(b: _BundleBuilder) -> None:
    case = b.case
    s = _with_voided(case, case.records.sessions, case.voided.sessions if case.voided else None, "session_at", "session")
    per_kg = scoring.dose_per_kg(s["dose_mg"], s["weight_kg"], s["route"])
    effects = {e.id: e.label for e in side_effects()}
    for i, row in enumerate(s.itertuples(index=False)):
        start = pd.Timestamp(row.session_at)
        end = start + timedelta(minutes=float(row.duration_min)) if not _missing(row.duration_min) else None
        local, status = row.local_key, row.fhir_status
        void = status == "entered-in-error"
        route_code, route_display = ROUTES[str(row.route)]
        dosage: dict[str, Any] = {
            "route": {"coding": [{"system": SNOMED, "code": route_code, "display": route_display}], "text": str(row.route)},
            "dose": {"value": float(row.dose_mg), "unit": "mg", "system": UCUM, "code": "mg"},
        }
        if not _missing(per_kg.iloc[i]):
            dosage["text"] = f"{float(row.dose_mg):g} mg = {float(per_kg.iloc[i]):.2f} mg/kg at {float(row.weight_kg):g} kg"
        resource: dict[str, Any] = {
            "resourceType": "MedicationAdministration",
            "status": "entered-in-error" if void else "completed",
            "medicationCodeableConcept": ESKETAMINE if row.route == "intranasal" else KETAMINE,
            "subject": {"reference": b.patient_ref},
            "dosage": dosage,
        }
        if end is not None:
            resource["effectivePeriod"] = {"start": _iso(start, case.tz), "end": _iso(end, case.tz)}
        else:
            resource["effectiveDateTime"] = _iso(start, case.tz)
        if not case.deidentified and not void and not _missing(row.notes) and str(row.notes).strip():
            resource["note"] = [{"text": fhir_markdown(str(row.notes))}]
        session_url = b.add("session", local, resource)
        before = _iso(start, case.tz)
        # After dosing is at the session's end when its duration is known; otherwise only "after the start".
        after = _iso(end, case.tz) if end is not None else {"start": before}
        for phase, when, words in (("pre", before, "before dosing"), ("post", after, "after dosing")):
            readings = {column: getattr(row, f"{column}_{phase}") for column, _, _ in BP_PARTS}
            # The profile wants both components: one not recorded says so (data-absent-reason) rather than vanish.
            parts = [
                {"code": {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display},
                 **({"dataAbsentReason": NOT_RECORDED} if _missing(readings[column]) else
                    {"valueQuantity": {"value": float(readings[column]), "unit": "mm[Hg]", "system": UCUM,
                                       "code": "mm[Hg]"}})}
                for column, code, display in BP_PARTS
            ]
            if not all(_missing(v) for v in readings.values()):
                b.observation(f"bp_{phase}", local, category=VITAL_SIGNS, when=when, part_of=session_url, status=status,
                              components=parts,
                              code={"coding": [{"system": LOINC, "code": BP_PANEL[0], "display": BP_PANEL[1]}],
                                    "text": f"Blood pressure ({words})"})
        for column, codes, display, unit in VITALS:
            for phase, when, words in (("pre", before, "before dosing"), ("post", after, "after dosing")):
                value = getattr(row, f"{column}_{phase}")
                if _missing(value):
                    continue
                code = {"coding": [{"system": LOINC, "code": c, "display": d} for c, d in codes], "text": f"{display} ({words})"}
                b.observation(f"{column}_{phase}", local, category=VITAL_SIGNS, code=code, when=when, part_of=session_url,
                              value={"valueQuantity": {"value": float(value), "unit": unit, "system": UCUM, "code": unit}},
                              status=status)
        if not _missing(row.weight_kg):
            b.observation("weight", local, category=VITAL_SIGNS, when=before, part_of=session_url, status=status,
                          code={"coding": [{"system": LOINC, "code": "29463-7", "display": "Body weight"}], "text": "Body weight"},
                          value={"valueQuantity": {"value": float(row.weight_kg), "unit": "kg", "system": UCUM, "code": "kg"}})
        if not _missing(row.dissociation_cadss):
            b.observation("cadss", local, category=SURVEY, when=after, part_of=session_url, status=status,
                          code=_local_code(CS_INSTRUMENT, "cadss-total", "CADSS dissociation total, peak during the session (0-92)"),
                          value={"valueInteger": int(row.dissociation_cadss)})
        for column, code, display in (
            ("early_request", "early-session-request", "Patient asked for this session earlier than planned"),
            ("dose_increase_request", "dose-increase-request", "Patient asked for a higher dose"),
        ):
            value = getattr(row, column)
            if not _missing(value):
                b.observation(column, local, category=SURVEY, when=before, part_of=session_url, status=status,
                              code=_local_code(CS_SESSION, code, display), value={"valueBoolean": bool(value)})
        # An AdverseEvent has no status to retract it with: a voided session's side effects are left out.
        if isinstance(row.side_effects, str) and row.side_effects and not void:
            for item in row.side_effects.split(";"):
                effect, _, severity = item.partition(":")
                if not effect:
                    continue
                b.add("adverse_event", f"{local}|{effect}", {
                    "resourceType": "AdverseEvent",
                    "actuality": "actual",
                    "subject": {"reference": b.patient_ref},
                    "date": before,
                    "event": _local_code(CS_SIDE_EFFECT, effect, effects.get(effect, effect)),
                    "severity": {"coding": [{"system": AE_SEVERITY, "code": severity, "display": severity.capitalize()}]},
                    "suspectEntity": [{"instance": {"reference": session_url}}],
                })


def _checkins(b: _BundleBuilder) -> None:
    case = b.case
    c = _with_voided(case, case.records.checkins, case.voided.checkins if case.voided else None, "reported_at",
                     "check-in")
    c["sds_total"] = scoring.sds_total(c)
    labels = {s: warning_sign(s).label for s in WARNING_SIGNS}
    for row in c.itertuples(index=False):
        when = _iso(pd.Timestamp(row.reported_at), case.tz)
        local, status = row.local_key, row.fhir_status
        # De-identified records keep of a note only the form's own question 9 line (deidentify.question_9_lines_only).
        note = (str(row.notes) if status != "entered-in-error" and not _missing(row.notes)
                and str(row.notes).strip() else None)
        b.observation("craving", local, category=SURVEY, when=when, note=note, status=status,
                      code=_local_code(CS_INSTRUMENT, "craving", "Craving for ketamine outside treatment, past week (0-10)"),
                      value={"valueInteger": int(row.craving)})
        if not _missing(row.sds_total):
            items = [
                {"code": _local_code(CS_INSTRUMENT, item.replace("_", "-"),
                                     f"Severity of Dependence Scale item {n}: {SDS_WORDING.get(item, '')}".rstrip(": ")),
                 "valueInteger": int(getattr(row, item))}
                for n, item in enumerate(SDS_ITEMS, 1)
            ]
            b.observation("sds", local, category=SURVEY, when=when, components=items, status=status,
                          code=_local_code(CS_INSTRUMENT, "sds-total", "Severity of Dependence Scale total (0-15)"),
                          value={"valueInteger": int(row.sds_total)})
        if not _missing(row.phq9):
            b.observation("phq9", local, category=SURVEY, when=when, status=status,
                          code={"coding": [{"system": LOINC, "code": "44261-6",
                                            "display": "Patient Health Questionnaire 9 item (PHQ-9) total score [Reported]"}],
                                "text": "PHQ-9 total"},
                          value={"valueInteger": int(row.phq9)})
        signs = [
            {"code": _local_code(CS_WARNING_SIGN, sign, labels[sign]), "valueInteger": int(getattr(row, sign))}
            for sign in WARNING_SIGNS
            if not _missing(getattr(row, sign))
        ]
        if signs:
            b.observation("signs", local, category=SURVEY, when=when, components=signs, status=status,
                          code=_local_code(CS_WARNING_SIGN, "checklist", "Warning-sign checklist, past two weeks (0-3 per item)"))


#: Each SDS item's question, as the check-in asks it (seed_data/instruments.toml).
SDS_WORDING = {item["id"]: item["wording"] for item in instruments()["sds"]["item"]}

#: HL7 v3 ObservationValue "PSEUDED": the data were pseudonymised (names and ids replaced, dates shifted).
PSEUDONYMISED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "PSEUDED",
                 "display": "pseudonymized"}


def fhir_bundle(case: PatientCase) -> dict:
    """The patient's records in the export's date range as a FHIR R4B collection Bundle (plain JSON-ready dict)."""
    b = _BundleBuilder(case)
    b.entries.append({"fullUrl": b.patient_ref, "resource": {"id": b.id("patient", ""), **_patient(b)}})
    _sessions(b)
    _checkins(b)
    bundle = {
        "resourceType": "Bundle",
        # Not keyed by the shifted day of export: the namespace is public, so trying every day of a year would find
        # it, and with the day the file was sent, the shift (code review).
        "id": b.id("bundle", "to the day of export" if case.export_day_hidden else case.end.isoformat()),
        "type": "collection",
        "entry": b.entries,
    }
    if case.generated_at is not None:  # None when de-identified: no time of the export goes with the file
        bundle["timestamp"] = case.generated_at.astimezone(timezone.utc).isoformat(timespec="seconds")
    if case.deidentified:  # the HL7 security label a receiving system can act on, as the PDF says it on every page
        bundle["meta"] = {"security": [PSEUDONYMISED]}
    return bundle


def validated_bundle_json(case: PatientCase) -> bytes:
    """The bundle as JSON bytes, after validating it with fhir.resources (R4B), so an invalid file is never written."""
    from fhir.resources.R4B.bundle import Bundle

    bundle = Bundle.model_validate(fhir_bundle(case))
    return bundle.model_dump_json(indent=2, exclude_none=True).encode("utf-8")
