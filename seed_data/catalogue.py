"""The clinic's reference catalogues (warning signs, side effects, instruments), read once from
the TOML files beside this module so forms, importer, engine and dashboard share one copy.

The warning signs carry the seed passage each one comes from (CONTRACT section 4); `seeds_dir`
finds the seed documents so the dashboard can show that passage in context.
"""

from __future__ import annotations

import copy
import re
import tomllib
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from store.vocabulary import ROUTES, VITAL_SIGNS, WARNING_SIGNS, WEIGHT_BASED_ROUTES

SEEDS_DIR_ENV = "KETAWATCH_SEEDS_DIR"
SPECIFICITIES = ("specific", "nonspecific")
_SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")


@dataclass(frozen=True, slots=True)
class WarningSign:
    """One checklist item, with the wording the patient answers and the seed passage behind it."""

    id: str
    label: str
    patient_wording: str
    specificity: str
    weight: float
    why: str
    source: str
    quotation: str

    @property
    def is_specific(self) -> bool:
        """True when the sign points at misuse itself rather than also at relapse or PTSD."""
        return self.specificity == "specific"


@dataclass(frozen=True, slots=True)
class SideEffect:
    """One effect a session may record as `effect:severity`, and whether the seeds name it."""

    id: str
    label: str
    named_in_seeds: bool
    source: str | None = None
    quotation: str | None = None


def _load_toml(name: str) -> dict[str, Any]:
    """Parse one of the package's data files, so an installed copy works as well as a checkout."""
    text = resources.files(__package__).joinpath(name).read_text(encoding="utf-8")
    return tomllib.loads(text)


@cache
def warning_signs() -> tuple[WarningSign, ...]:
    """The twelve checklist items in contract order, checked against the fixed vocabulary."""
    data = _load_toml("warning_signs.toml")
    signs = tuple(
        WarningSign(
            id=row["id"],
            label=row["label"],
            patient_wording=row["patient_wording"],
            specificity=row["specificity"],
            weight=float(row["weight"]),
            why=row["why"],
            source=row["source"],
            quotation=row["quotation"],
        )
        for row in data["warning_sign"]
    )
    ids = tuple(sign.id for sign in signs)
    if ids != WARNING_SIGNS:
        raise ValueError(f"warning_signs.toml lists {ids}, expected exactly {WARNING_SIGNS} in that order")
    for sign in signs:
        if sign.specificity not in SPECIFICITIES:
            raise ValueError(f"warning sign {sign.id}: specificity must be one of {SPECIFICITIES}")
        if not sign.weight > 0:
            raise ValueError(f"warning sign {sign.id}: weight must be positive")
    return signs


@cache
def _warning_signs_by_id() -> dict[str, WarningSign]:
    """Index for `warning_sign`, built once."""
    return {sign.id: sign for sign in warning_signs()}


def warning_sign(sign_id: str) -> WarningSign:
    """One checklist item by id; KeyError names the valid ids when the id is unknown."""
    try:
        return _warning_signs_by_id()[sign_id]
    except KeyError:
        raise KeyError(f"unknown warning sign {sign_id!r}; known: {', '.join(WARNING_SIGNS)}") from None


@cache
def warning_sign_answers() -> tuple[str, ...]:
    """The 0-3 answer labels of the checklist, indexed by score (labels[2] == 'Clearly')."""
    rows = sorted(_load_toml("warning_signs.toml")["answer"], key=lambda row: row["score"])
    if [row["score"] for row in rows] != [0, 1, 2, 3]:
        raise ValueError("warning_signs.toml must define answers for scores 0, 1, 2 and 3")
    return tuple(row["label"] for row in rows)


@cache
def side_effects() -> tuple[SideEffect, ...]:
    """The side-effect catalogue in display order, 'other' last."""
    effects = tuple(
        SideEffect(
            id=row["id"],
            label=row["label"],
            named_in_seeds=bool(row["named_in_seeds"]),
            source=row.get("source"),
            quotation=row.get("quotation"),
        )
        for row in _load_toml("side_effects.toml")["side_effect"]
    )
    seen: set[str] = set()
    for effect in effects:
        if not _SNAKE_CASE.match(effect.id) or effect.id in seen:
            raise ValueError(f"side effect id {effect.id!r} must be unique lowercase snake_case")
        if effect.named_in_seeds and not (effect.source and effect.quotation):
            raise ValueError(f"side effect {effect.id}: named_in_seeds needs a source and a quotation")
        seen.add(effect.id)
    return effects


@cache
def side_effect_ids() -> frozenset[str]:
    """The ids a session's `side_effects` column may use, for validation."""
    return frozenset(effect.id for effect in side_effects())


def side_effect_words(items: object) -> str:
    """Side effects as clinicians read them: 'nausea:mild;dizziness:moderate' (or a list of such items, or
    (effect, severity) pairs) -> 'Nausea (mild), Dizziness (moderate)'."""
    if isinstance(items, str):
        items = items.split(";")
    elif not isinstance(items, (list, tuple)):
        return ""
    labels = {e.id: e.label for e in side_effects()}
    shown = []
    for item in items:
        effect, _, severity = (":".join(item) if isinstance(item, (list, tuple)) else str(item)).partition(":")
        effect = effect.strip()
        if effect:
            name = labels.get(effect, effect.replace("_", " "))
            shown.append(f"{name} ({severity.strip()})" if severity.strip() else name)
    return ", ".join(shown)


@cache
def _instruments() -> dict[str, Any]:
    """The parsed instruments file, parsed once."""
    return _load_toml("instruments.toml")


def instruments() -> dict[str, Any]:
    """Craving, SDS, PHQ-9 and CADSS facts (ranges, wording, answers, bands) as parsed from TOML.

    Returns a fresh copy each call so a caller that edits it cannot change what others see.
    """
    return copy.deepcopy(_instruments())


def _repo_root() -> Path | None:
    """The checkout folder holding pyproject.toml above this module, if running from one."""
    for folder in Path(__file__).resolve().parents:
        if (folder / "pyproject.toml").is_file():
            return folder
    return None


@dataclass(frozen=True, slots=True)
class DoseChecks:
    """Doses, vital signs and dates the session and check-in forms ask to confirm before saving (seed_data/dosing.toml)."""

    weight_based_max_mg_per_kg: float
    weight_based_max_mg_without_weight: float
    above_plan_factor: float
    fixed_route_max_mg: dict[str, float]
    weight_change_fraction: float
    vitals: dict[str, tuple[float, float]]  # column: the range not asked about
    checkin_days_before_start: int  # a check-in dated further before the treatment start is asked about
    #: IV or IM over at most `short_session_max_min` minutes, or of unrecorded length: more mg/kg than this is asked
    #: about (a depression dose is 0.5, at most 1.0 in studies; a long pain infusion reaches about 1.4)
    short_session_max_mg_per_kg: float = 1.0
    short_session_max_min: float = 60.0
    #: IV or IM: fewer mg/kg than this is asked about (0.1 is the lowest dose studied for depression; the mg/kg figure
    #: typed into the mg box gives about 0.01)
    weight_based_min_mg_per_kg: float = 0.1
    #: ... or less than this fraction of the planned mg/kg
    below_plan_fraction: float = 0.5
    #: fixed-dose routes: fewer mg than this in one session is asked about (intranasal esketamine starts at 28 mg)
    fixed_route_min_mg: dict[str, float] = field(default_factory=dict)


@cache
def dose_checks() -> DoseChecks:
    """The double-check thresholds for doses, read once."""
    data = _load_toml("dosing.toml")["double_check"]
    fixed = {route: float(mg) for route, mg in data["fixed_route_max_mg"].items()}
    fixed_min = {route: float(mg) for route, mg in data.get("fixed_route_min_mg", {}).items()}
    for name, routes in (("fixed_route_max_mg", fixed), ("fixed_route_min_mg", fixed_min)):
        wrong = sorted(set(routes) - (set(ROUTES) - set(WEIGHT_BASED_ROUTES)))
        if wrong:
            raise ValueError(f"dosing.toml: {name} names {', '.join(wrong)}; only fixed-dose routes belong there")
    vitals = {column: (float(low), float(high)) for column, (low, high) in data["vitals"].items()}
    wrong = sorted(c for c, (low, high) in vitals.items() if c not in VITAL_SIGNS or low > high)
    if wrong:
        raise ValueError(f"dosing.toml: vitals has {', '.join(wrong)}; give a vital sign's column with [lowest, highest]")
    return DoseChecks(float(data["weight_based_max_mg_per_kg"]), float(data["weight_based_max_mg_without_weight"]),
                      float(data["above_plan_factor"]), fixed, float(data["weight_change_fraction"]), vitals,
                      int(data.get("checkin_days_before_start", 28)),  # a clinic's older dosing.toml lacks these
                      float(data.get("short_session_max_mg_per_kg", 1.0)), float(data.get("short_session_max_min", 60)),
                      float(data.get("weight_based_min_mg_per_kg", 0.1)), float(data.get("below_plan_fraction", 0.5)),
                      fixed_min)


@cache
def blood_pressure_note() -> tuple[tuple[float, float], tuple[float, float]]:
    """(systolic, diastolic) above which a reading before dosing, and from which one after, gets a note on the form."""
    data = _load_toml("dosing.toml").get("blood_pressure_note", {})
    pre, post = data.get("pre_dose_above", (140, 90)), data.get("post_dose_from", (180, 110))
    return (float(pre[0]), float(pre[1])), (float(post[0]), float(post[1]))


def seeds_dir() -> Path:
    """The folder of seed documents the quotations come from (the setting KETAWATCH_SEEDS_DIR first, from the
    environment or `.env`, checked when the settings are read)."""
    from store.settings import get_settings

    configured = get_settings().seeds_dir
    if configured:
        return Path(configured).expanduser()
    repo = _repo_root()
    candidates = [repo.parent / "shared" / "seeds", repo / "shared" / "seeds"] if repo else []
    for path in candidates:
        if path.is_dir():
            return path
    tried = ", ".join(str(p) for p in candidates) or "(no checkout with pyproject.toml found above the package)"
    raise FileNotFoundError(f"seed documents not found; set {SEEDS_DIR_ENV} to their folder. Tried: {tried}")


@cache
def seed_citation(source: str) -> str:
    """How a seed document is named to a reader: its title from the catalogue (`[seed_titles]`) and file.

    A document the catalogue has no title for is named by its first line, and by its file alone when it is not at
    hand; the catalogue's titles stand without the documents.
    """
    title = _load_toml("warning_signs.toml").get("seed_titles", {}).get(source, "")
    if not title:
        try:
            title = next((line.strip() for line in seed_text(source).splitlines() if line.strip()), "")
        except (OSError, ValueError):  # an install without the seed documents still names the file
            title = ""
    return f"\u201c{title[:120]}\u201d ({source})" if title else source


def seed_text(source: str) -> str:
    """The full text of one seed document, so a quotation can be shown in its context."""
    if Path(source).name != source:
        raise ValueError(f"seed source must be a bare file name, got {source!r}")
    return (seeds_dir() / source).read_text(encoding="utf-8")
