"""The deterministic synthetic cohort: the demo caseload and the risk engine's evaluation benchmark.

Realistic ketamine-clinic records (IV racemic ketamine, intranasal esketamine, chronic-pain
infusions) for stable responders, look-alikes that must not alarm (clinician titration,
depressive relapse, a one-week craving spike, PTSD depersonalisation, SUD history that stays
well) and a few patients who slowly develop psychological dependence, with the truth kept apart.
"""

from seed_data.cohort.archetypes import ARCHETYPES, CONFOUNDERS, DEPENDENCE, STABLE
from seed_data.cohort.generate import demo_cohort, generate_cohort
from seed_data.cohort.params import Cohort, CohortParams
from seed_data.cohort.writer import write_import_folder, write_truth

__all__ = [
    "ARCHETYPES",
    "CONFOUNDERS",
    "DEPENDENCE",
    "STABLE",
    "Cohort",
    "CohortParams",
    "demo_cohort",
    "generate_cohort",
    "write_import_folder",
    "write_truth",
]
