"""The fast import path says and stores exactly what the record validators and an ordinary insert would.

- store.columnar (each distinct cell parsed once, suspects re-checked row by row) against
  store.validation.VALIDATE on random rows built from the rules themselves;
- store.bulk writes (explicit ids, SQLite text times, PostgreSQL COPY) read back as validated, and
  leave the ids free for later ordinary inserts;
- store.gcpause restores the cycle collector.
"""

from __future__ import annotations

import gc
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.dialects import sqlite
from sqlmodel import Session

from seed_data.catalogue import side_effect_ids
from store import records
from store.bulk import sqlite_utc_text
from store.columnar import check_rows
from store.gcpause import collector_paused
from store.importer import COLUMNS, ImportRejected, import_folder
from store.models import CheckIn, InfusionSession, Patient, SideEffectEvent
from store.types import UTCDateTime
from store.validation import RULES, VALIDATE, Rule, Validator
from tests.conftest import NOW, TZ
from tests.store_support import CHECKIN, PATIENT, SESSION, write_folder

EXAMPLE = {"patients": PATIENT, "sessions": SESSION, "checkins": CHECKIN}
TODAY = NOW.astimezone(ZoneInfo(TZ)).date()


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _valid(rule: Rule) -> st.SearchStrategy[str]:
    """Cells the rule accepts (mostly), drawn from its own limits and choices."""
    kind = rule.kind
    if kind in ("int", "number"):
        low = rule.low if rule.low is not None else 0
        high = TODAY.year if rule.high_is_current_year else (rule.high if rule.high is not None else low + 100)
        whole = st.integers(int(low), int(high)).map(str)
        return whole if kind == "int" else st.one_of(whole, st.integers(int(low * 10), int(high * 10)).map(lambda x: _fmt(x / 10)))
    if kind == "bool":
        return st.sampled_from(["yes", "no", "Yes", " no "])
    if kind == "choice":
        return st.sampled_from(rule.choices)
    if kind == "date":  # a few days past today too: the treatment start must not be in the future
        near = st.dates(TODAY - timedelta(days=3), TODAY + timedelta(days=3))
        return st.one_of(st.dates(date(2020, 1, 1), TODAY), near).map(date.isoformat)
    if kind in ("datetime", "date_or_datetime"):
        moments = st.datetimes(datetime(2020, 1, 1), datetime(2026, 11, 23))
        forms = [
            moments.map(lambda d: d.strftime("%Y-%m-%dT%H:%M")),
            moments.map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%S+00:00")),
            moments.map(lambda d: d.strftime("%Y-%m-%d %H:%M:%S-05:00")),
        ]
        if kind == "date_or_datetime":
            forms.append(st.dates(date(2020, 1, 1), TODAY).map(date.isoformat))
        return st.one_of(forms)
    if kind == "side_effects":
        effects = sorted(side_effect_ids())[:4]
        items = st.lists(st.tuples(st.sampled_from(effects), st.sampled_from(["mild", "moderate", "severe"])), max_size=3,
                         unique_by=lambda t: t[0])
        return items.map(lambda pairs: ";".join(f"{e}:{s}" for e, s in pairs))
    if rule.name == "patient_id":
        return st.sampled_from(["KW-1", "KW-2", " KW-3 "])
    return st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)


def _odd(rule: Rule) -> st.SearchStrategy[str]:
    """Cells at or past the rule's edges, and shapes a person might type."""
    cells = ["", " ", "x", "-1", "0", "1", "3.0", " 2 ", "1e1", "nan", "inf", "\u0663", "3_0", "yes", "NO", "2026-11-22",
             "2026-11-23", "2027-01-01", "2026-02-30", "05/01/2026", "2026-03-29T01:30", "2026-10-25T01:30",
             "2026-11-22T12:00:01Z", "2026-11-22T11:59", "2026-12-01T10:00", "2026-01-05 10:00:00.5+0200",
             "=SUM(1)", "+44", "X" * 65, "nausea", "nausea:mild;nausea:severe", "itching:mild", ";", "Nausea:MILD"]
    for edge in (rule.low, rule.high):
        if edge is not None:
            cells += [_fmt(edge), _fmt(edge - 1), _fmt(edge + 1), _fmt(edge + 0.5), _fmt(edge - 0.001)]
    cells += list(rule.choices) + [c.upper() for c in rule.choices]
    return st.one_of(st.sampled_from(cells), st.text(max_size=6))


@st.composite
def tables(draw, kind: str) -> tuple[list[str], list[list[str]]]:
    """A header (every required column, some optional ones, any order) and rows: valid ones, some cells changed."""
    rules = RULES[kind]
    optional = [c for c in COLUMNS[kind] if not rules[c].required]
    some = st.one_of(st.just(optional), st.lists(st.sampled_from(optional), unique=True))  # often all
    header = [c for c in COLUMNS[kind] if rules[c].required] + draw(some)
    header = draw(st.permutations(header))
    blank = st.sampled_from([False, False, False, True])  # an optional cell is left blank a quarter of the time
    cell = {c: st.tuples(_valid(rules[c]), blank).map(lambda v, r=rules[c]: "" if v[1] and not r.required else v[0])
            for c in header}
    pool = draw(st.lists(st.fixed_dictionaries(cell), min_size=1, max_size=4))
    rows = []
    for base in draw(st.lists(st.sampled_from(pool), min_size=1, max_size=8)):  # repeats share cells
        row = dict(base)
        for column in draw(st.lists(st.sampled_from(header), max_size=2)):
            row[column] = draw(_odd(rules[column]))
        rows.append([row[c] for c in header])
    return header, rows


def _agree(kind: str, header: list[str], rows: list[list[str]]) -> None:
    validator = Validator(now=NOW, tz=TZ)
    checked = check_rows(validator, kind, header, rows)
    for i, cells in enumerate(rows):
        clean, problems = VALIDATE[kind](validator, dict(zip(header, cells)))
        if problems:
            assert checked.problems.get(i) == problems, cells
        else:
            assert i not in checked.problems, cells
            assert {c: repr(v[i]) for c, v in checked.columns.items()} == {c: repr(v) for c, v in clean.items()}, cells


@pytest.mark.parametrize("kind", list(RULES))
@settings(max_examples=250, deadline=None)
@given(data=st.data())
def test_column_pass_gives_the_record_validators_values_and_problems(kind, data):
    header, rows = data.draw(tables(kind))
    _agree(kind, header, rows)


def test_column_pass_checks_across_fields_like_the_record_validators():
    blood_pressure = [dict(SESSION, sbp_pre="120", dbp_pre="120"), dict(SESSION, session_at="2026-01-06T10:00"),
                      dict(SESSION, sbp_post="90", dbp_post="95")]
    sds = [dict(CHECKIN, sds_3=""), dict(CHECKIN, **{f"sds_{i}": "" for i in range(1, 6)}), dict(CHECKIN)]
    future = [dict(PATIENT, treatment_start=(TODAY + timedelta(days=1)).isoformat()), dict(PATIENT, treatment_start=TODAY.isoformat())]
    for kind, rows in (("sessions", blood_pressure), ("checkins", sds), ("patients", future)):
        header = list(rows[0])
        _agree(kind, header, [[r[c] for c in header] for r in rows])
        problems = check_rows(Validator(now=NOW, tz=TZ), kind, header, [[r[c] for c in header] for r in rows]).problems
        assert sorted(problems) == ([0, 2] if kind == "sessions" else [0]), problems


def test_column_pass_gives_every_session_its_own_side_effect_list():
    header = list(SESSION)
    rows = [[dict(SESSION, session_at=f"2026-01-0{d}T10:00")[c] for c in header] for d in (5, 6)]
    effects = check_rows(Validator(now=NOW, tz=TZ), "sessions", header, rows).columns["side_effects"]
    assert effects[0] == effects[1] and effects[0] is not effects[1]


@settings(max_examples=300, deadline=None)
@given(moment=st.datetimes(datetime(1, 1, 2), datetime(9999, 12, 30), timezones=st.sampled_from(
    [timezone.utc, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8)), ZoneInfo("Europe/London")])))
def test_sqlite_time_text_is_what_the_column_type_stores(moment):
    dialect = sqlite.dialect()
    assert sqlite_utc_text(moment) == UTCDateTime()._cached_bind_processor(dialect)(moment)


def test_sqlite_time_text_refuses_a_naive_time_like_the_column_type():
    assert sqlite_utc_text(None) is None
    with pytest.raises(ValueError, match="naive"):
        sqlite_utc_text(datetime(2026, 1, 5, 10, 0))


def _run(engine, folder):
    return import_folder(engine, folder, actor="tester", validator=Validator(now=NOW, tz=TZ))


def test_bulk_written_rows_read_back_as_validated(engine, tmp_path):
    sessions = [SESSION, dict(SESSION, session_at="2026-07-01T10:00", route="intranasal", weight_kg="", early_request="yes",
                              sbp_pre="", side_effects="", notes="Line one\nline \"two\", café")]
    checkins = [CHECKIN, dict(CHECKIN, reported_at="2026-03-29T01:30+01:00", **{f"sds_{i}": "" for i in range(1, 6)}, phq9="")]
    patients = [PATIENT, dict(PATIENT, patient_id="KW-T2", birth_year="", sex="", planned_dose_mg_per_kg="", clinician="")]
    _run(engine, write_folder(tmp_path / "in", patients=patients, sessions=sessions, checkins=checkins))
    validator = Validator(now=NOW, tz=TZ)
    with Session(engine) as db:
        for table, rows, validate, key in (
            (Patient, patients, validator.patient, "patient_id"),
            (InfusionSession, sessions, validator.session, "session_at"),
            (CheckIn, checkins, validator.checkin, "reported_at"),
        ):
            stored = {getattr(r, key): r for r in db.exec(select(table)).scalars()}
            assert len(stored) == len(rows)
            for raw in rows:
                clean, _ = validate(raw)
                effects = clean.pop("side_effects", None)
                record = stored[clean[key]]
                assert {c: getattr(record, c) for c in clean} == clean
                assert (record.recorded_by, record.version, record.recorded_at) == ("tester", 1, NOW)
                if effects is not None:
                    linked = db.exec(select(SideEffectEvent).where(SideEffectEvent.session_id == record.id)).scalars()
                    assert sorted((e.effect, e.severity) for e in linked) == sorted(effects)


def test_many_rows_span_several_statements_and_each_keeps_its_own_values(engine, tmp_path):
    start = datetime(2025, 1, 1, 8, 0)
    # In UTC: every 5 hours of clinic time would land one in the hour the clocks skip in spring, which is refused.
    checkins = [dict(CHECKIN, reported_at=(start + timedelta(hours=5 * i)).strftime("%Y-%m-%dT%H:%M+00:00"), craving=str(i % 11),
                     phq9=str(i % 28), notes=f"n{i}" if i % 3 else "") for i in range(3000)]  # more rows than one statement takes
    _run(engine, write_folder(tmp_path / "in", sessions=None, checkins=checkins))
    validator = Validator(now=NOW, tz=TZ)
    expected = [validator.checkin(raw)[0] for raw in checkins]
    with Session(engine) as db:
        stored = db.exec(select(CheckIn).order_by(CheckIn.reported_at)).scalars().all()
    assert [{c: getattr(r, c) for c in expected[0]} for r in stored] == expected


def test_bulk_ids_follow_stored_rows_and_leave_later_inserts_free(engine, tmp_path):
    _run(engine, write_folder(tmp_path / "a"))
    by_hand = records.add_session(engine, dict(SESSION, session_at="2026-01-06T10:00", side_effects="headache:mild"),
                                  actor="tester", validator=Validator(now=NOW, tz=TZ))
    later = [dict(SESSION, session_at=f"2026-02-{d:02d}T10:00", side_effects=f"nausea:{s}") for d, s in ((1, "mild"), (2, "severe"))]
    _run(engine, write_folder(tmp_path / "b", patients=None, sessions=later, checkins=None))
    again = records.add_session(engine, dict(SESSION, session_at="2026-03-01T10:00", side_effects=""),
                                actor="tester", validator=Validator(now=NOW, tz=TZ))
    with Session(engine) as db:
        sessions = db.exec(select(InfusionSession).order_by(InfusionSession.session_at)).scalars().all()
        effects = {}
        for e in db.exec(select(SideEffectEvent)).scalars():
            effects.setdefault(e.session_id, []).append(f"{e.effect}:{e.severity}")
    ids = [s.id for s in sessions]
    assert len(set(ids)) == 5 and ids[1] == by_hand.id and ids[4] == again.id
    assert ids[2] > by_hand.id and ids[3] > ids[2] and again.id > ids[3]
    assert [sorted(effects.get(i, [])) for i in ids] == [
        ["dizziness:moderate", "nausea:mild"], ["headache:mild"], ["nausea:mild"], ["nausea:severe"], []]


@pytest.mark.parametrize("column, value", [
    ("dose_mg", "36"), ("weight_kg", ""), ("early_request", "yes"), ("hr_post", "81"), ("notes", ""),
    ("side_effects", "nausea:severe;dizziness:moderate"), ("side_effects", ""),
])
def test_a_stored_session_changed_in_any_column_is_a_collision(engine, tmp_path, column, value):
    _run(engine, write_folder(tmp_path / "a"))
    with pytest.raises(ImportRejected) as caught:
        _run(engine, write_folder(tmp_path / "b", sessions=[dict(SESSION, **{column: value})]))
    assert caught.value.problems == [
        f"sessions.csv:2: {column}: a session for patient KW-T1 at this time is already recorded with different "
        f"{column}; amend it in KetaWatch rather than by import"
    ]


def test_a_stored_session_given_again_with_side_effects_reordered_is_unchanged(engine, tmp_path):
    _run(engine, write_folder(tmp_path / "a"))
    again = dict(SESSION, side_effects="dizziness:moderate ; nausea:mild", dose_mg="35.0", session_at="2026-01-05T10:00:00Z")
    report = _run(engine, write_folder(tmp_path / "b", sessions=[again]))
    assert report.unchanged == {"patients": 1, "sessions": 1, "checkins": 1} and not any(report.new.values())


def test_collector_pauses_nest_and_end_as_they_began():
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
