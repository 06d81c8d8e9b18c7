"""Which clinical story each synthetic patient follows, spread evenly so small cohorts hold every story.

A patient's archetype depends only on the seed and the patient's index: position i of a
golden-ratio (Weyl) sequence falls into one band of the unit interval per archetype, with band
widths equal to the requested shares. The sequence fills the interval evenly, so 40 patients get
3-4 with dependence at a share of 0.09 instead of the 0-8 an independent draw could give, and
adding patients never changes the story of the ones already there.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

DEPENDENCE = "dependence"
STABLE = "stable_responder"
#: The look-alikes: patterns that share some surface signs with dependence but are not it.
CONFOUNDERS = (
    "clinician_titration",
    "depressive_relapse",
    "craving_spike",
    "ptsd_depersonalisation",
    "sud_history_stable",
)
ARCHETYPES = (STABLE, *CONFOUNDERS, DEPENDENCE)

_GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0
_SILVER = np.sqrt(2.0) - 1.0


@dataclass(frozen=True)
class Assignment:
    """One patient's archetype and two evenly spread positions used to vary it between patients.

    `within` is where the patient falls inside its archetype's band (0-1), so sub-variants such
    as SUD history among the dependence patients alternate; `start_position` (0-1) spreads the
    treatment start dates evenly over the follow-up window.
    """

    archetype: str
    within: float
    start_position: float


def _bands(dependence_fraction: float, confounder_fraction: float) -> list[tuple[str, float, float]]:
    """The (archetype, low, high) bands of the unit interval, in a fixed order."""
    widths = [(DEPENDENCE, dependence_fraction)]
    widths += [(name, confounder_fraction / len(CONFOUNDERS)) for name in CONFOUNDERS]
    widths.append((STABLE, max(0.0, 1.0 - dependence_fraction - confounder_fraction)))
    bands, low = [], 0.0
    for name, width in widths:
        bands.append((name, low, low + width))
        low += width
    return bands


@cache
def _shifts(seed: int) -> tuple[float, float]:
    """Where the two evenly spread sequences start under `seed` (stream 0, apart from the patients')."""
    first, second = np.random.default_rng([seed, 0]).random(2)
    return float(first), float(second)


def assign(index: int, seed: int, dependence_fraction: float, confounder_fraction: float) -> Assignment:
    """The archetype of patient `index` (0-based) under `seed`, independent of the cohort size."""
    shifts = _shifts(seed)
    position = float((shifts[0] + (index + 1) * _GOLDEN) % 1.0)
    start_position = float((shifts[1] + (index + 1) * _SILVER) % 1.0)
    for name, low, high in _bands(dependence_fraction, confounder_fraction):
        if low <= position < high:
            return Assignment(name, (position - low) / (high - low), start_position)
    # Rounding at the top of the interval: the last non-empty band takes it.
    name, low, high = next(b for b in reversed(_bands(dependence_fraction, confounder_fraction)) if b[2] > b[1])
    return Assignment(name, min(1.0, (position - low) / (high - low)), start_position)
