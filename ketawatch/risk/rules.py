"""The rule settings (thresholds, windows, counts) read from seed_data/rules.toml, so no clinical threshold lives in code.

Each setting is named `<section>_<key>` after its place in the file, e.g. `sds_threshold` for
`[sds] threshold`. `load_rules(sds_threshold=5)` or `settings.with_changes(sds_threshold=5)`
gives a copy with overrides, checked like the file.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, fields
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np

from store.vocabulary import WARNING_SIGNS

#: Settings scaled by `sud_sensitivity` for patients with a history of substance use disorder.
SUD_SCALED = (
    "craving_rise_points",
    "craving_ewma_rise_points",
    "craving_high",
    "craving_drift_alarm",
    "signs_drift_alarm",
    "sds_control_threshold",
    "nonspecific_rise",
    "sds_threshold",
    "sds_rise_points",
    "dose_rise_fraction",
)


#: Settings compared with an answer on a scale, and the scale's top: a threshold above it switches its rule off
#: without a word (IT review: `[sds] threshold = 99` took the SDS rule away and `flags` said nothing).
SCALE_TOPS = {
    **dict.fromkeys(("craving_rise_points", "craving_ewma_rise_points", "craving_high", "craving_drift_allowance",
                     "baseline_craving_floor"), (10, "the craving scale's top, 10")),
    **dict.fromkeys(("sds_threshold", "sds_rise_points"), (15, "the SDS total's top, 15")),
    **dict.fromkeys(("sds_control_threshold", "corroboration_sds_control"), (9, "the three SDS control items' top, 9")),
    **dict.fromkeys(("signs_min_score", "corroboration_sign_min_score"), (3, "a checklist answer's top, 3")),
    "interval_relapse_phq9_rise": (27, "the PHQ-9 total's top, 27"),
}


def in_file(name: str) -> str:
    """A setting as the rules file writes it: 'sds_threshold' is '[sds] threshold'."""
    section, _, key = name.partition("_")
    return f"[{section}] {key}"


@dataclass(frozen=True)
class RuleSettings:
    """Every number the dependence-risk rules use; see seed_data/rules.toml for what each means."""

    persistence_min_days: int
    baseline_checkins: int
    baseline_sessions: int
    baseline_craving_floor: float
    craving_ewma_lambda: float
    craving_rise_points: float
    craving_ewma_rise_points: float
    craving_ewma_persist_checkins: int
    craving_high: float
    craving_persist_checkins: int
    craving_drift_allowance: float
    craving_drift_cap: float
    craving_drift_alarm: float
    signs_min_score: float
    signs_window_checkins: int
    signs_persist_checkins: int
    signs_once_min_weight: float
    signs_red_min_weight: float
    signs_drift_allowance: float
    signs_drift_cap: float
    signs_drift_alarm: float
    use_signs: tuple[str, ...]
    use_window_checkins: int
    use_red_checkins: int
    nonspecific_rise: float
    nonspecific_persist_checkins: int
    sds_threshold: float
    sds_rise_points: float
    sds_persist_checkins: int
    sds_control_threshold: float
    dose_request_window_sessions: int
    dose_requests_repeated: int
    dose_rise_fraction: float
    dose_persist_sessions: int
    dose_step_fraction: float
    interval_induction_sessions: int
    interval_induction_days: int
    interval_early_fraction: float
    interval_window_sessions: int
    interval_early_sessions: int
    interval_request_window_sessions: int
    interval_requests_repeated: int
    interval_relapse_phq9_rise: float
    requests_window_days: int
    requests_persistent: int
    corroboration_sign_min_score: float
    corroboration_persist_checkins: int
    corroboration_window_checkins: int
    corroboration_sds_control: float
    combination_red_min_families: int
    combination_red_min_points: int
    combination_amber_min_points: int
    sud_sensitivity: float

    def __post_init__(self) -> None:
        """Coerce types and reject settings that would make a rule meaningless."""
        for f in fields(self):
            value, name = getattr(self, f.name), f"{in_file(f.name)} ({f.name})"
            if f.type == "int":
                if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
                        or not float(value).is_integer() or value < 1):
                    raise ValueError(f"rule setting {name} must be a whole number of at least 1, got {value!r}")
                object.__setattr__(self, f.name, int(value))
            elif f.type == "float":
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
                    raise ValueError(f"rule setting {name} must be a number of at least 0, got {value!r}")
                top, scale = SCALE_TOPS.get(f.name, (math.inf, ""))
                if value > top:
                    raise ValueError(f"rule setting {name} must be at most {scale}, got {value!r}: "
                                     "above it the rule could never hold")
                object.__setattr__(self, f.name, float(value))
            else:
                object.__setattr__(self, f.name, tuple(value))
        unknown_signs = set(self.use_signs) - set(WARNING_SIGNS)
        if unknown_signs:
            raise ValueError(f"rule setting [use] signs (use_signs) names unknown warning sign(s): "
                             f"{', '.join(sorted(unknown_signs))}")
        if not 0 < self.craving_ewma_lambda <= 1:
            raise ValueError("rule setting [craving] ewma_lambda (craving_ewma_lambda) must be in (0, 1]")
        if not 0 < self.sud_sensitivity <= 1:
            raise ValueError("rule setting [sud] sensitivity (sud_sensitivity) must be in (0, 1]")
        if not 0 < self.interval_early_fraction <= 1:
            raise ValueError("rule setting [interval] early_fraction (interval_early_fraction) must be in (0, 1]")
        for window, need in (
            ("signs_window_checkins", "signs_persist_checkins"),
            ("corroboration_window_checkins", "corroboration_persist_checkins"),
            ("use_window_checkins", "use_red_checkins"),
            ("dose_request_window_sessions", "dose_requests_repeated"),
            ("interval_window_sessions", "interval_early_sessions"),
            ("interval_request_window_sessions", "interval_requests_repeated"),
        ):
            if getattr(self, need) > getattr(self, window):
                raise ValueError(f"rule setting {in_file(need)} ({need}) cannot exceed {in_file(window)} ({window})")

    def with_changes(self, **changes) -> "RuleSettings":
        """A copy with some settings replaced (e.g. a clinic's own SDS threshold), validated again."""
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise ValueError(f"unknown rule setting(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)

    def scaled(self, name: str, sud_history: np.ndarray) -> np.ndarray:
        """The setting per patient row: lowered by `sud_sensitivity` where SUD history applies and the setting is graded."""
        value = getattr(self, name)
        if name not in SUD_SCALED:
            return np.full(len(sud_history), value, dtype="float64")
        return np.where(sud_history, value * self.sud_sensitivity, value).astype("float64")


def load_rules(path: str | Path | None = None, **overrides) -> RuleSettings:
    """Read the rule settings from `path`, then apply `overrides`.

    Without a path: the clinic's file named by `KETAWATCH_RULES_FILE` when set, else the shipped
    seed_data/rules.toml. A clinic's file must hold every setting (copy the shipped one and edit it).
    """
    if path is None:
        from store.settings import SettingsInvalid, get_settings

        path = get_settings().rules_file
        if path is not None:
            try:
                settings = _rules_file(str(Path(path).resolve()), Path(path).stat().st_mtime_ns)
            except (OSError, ValueError) as exc:  # tomllib.TOMLDecodeError is a ValueError
                problem = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                raise SettingsInvalid([f"setting KETAWATCH_RULES_FILE: {path}: {problem}"]) from None
            return settings.with_changes(**overrides) if overrides else settings
    settings = _default_rules() if path is None else _rules_file(str(Path(path).resolve()), Path(path).stat().st_mtime_ns)
    return settings.with_changes(**overrides) if overrides else settings


@cache
def _rules_file(path: str, _mtime_ns: int) -> RuleSettings:
    """A clinic's rules file, read again only when it changes on disk."""
    return _parse(Path(path).read_text(encoding="utf-8"))


@cache
def _default_rules() -> RuleSettings:
    """The shipped settings, read once (RuleSettings is immutable, so sharing it is safe)."""
    return _parse(resources.files("seed_data").joinpath("rules.toml").read_text(encoding="utf-8"))


def _parse(text: str) -> RuleSettings:
    """Settings from the text of a rules file: every setting present, none unknown."""
    flat: dict[str, object] = {}
    written: dict[str, str] = {}  # as the file wrote each: "[extra_stuff] x", not in_file's "[extra] stuff_x"
    for section, table in tomllib.loads(text).items():
        if not isinstance(table, dict):
            raise ValueError(f"rules file: {section!r} must be a [section] of settings")
        for key, value in table.items():
            flat[f"{section}_{key}"] = value
            written[f"{section}_{key}"] = f"[{section}] {key}"
    names = {f.name for f in fields(RuleSettings)}
    unknown, missing = set(flat) - names, names - set(flat)
    if unknown or missing:
        parts = []
        if unknown:
            parts.append(f"unknown setting(s) {', '.join(written[name] for name in sorted(unknown))}")
        if missing:
            parts.append(f"missing setting(s) {', '.join(in_file(name) for name in sorted(missing))} (copy each from "
                         "the shipped seed_data/rules.toml)")
        raise ValueError("rules file: " + "; ".join(parts))
    return RuleSettings(**flat)
