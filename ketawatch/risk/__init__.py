"""Dependence-risk engine: record frames in, a green/amber/red level with checkable reasons out.

No streamlit and no database (its only outside read is the rules file, once, when no rules are
passed in), so the CLI, the dashboard, the PDF export and the tests call the same functions. The
rule identifiers are in `reasons.py` (what each means: the README's "Rule ids"); every clinical
threshold lives in seed_data/rules.toml (the evidence points of the combination's unit: reasons.POINTS).
"""

from ketawatch.risk.engine import assess, daily_levels, level_history, patient_signals
from ketawatch.risk.not_counted import NotCounted, seen_not_counted
from ketawatch.risk.reasons import (
    RULE_IDS,
    Reason,
    combination_note,
    evidence_note,
    reason_ids,
    reason_role,
    sud_history_note,
)
from ketawatch.risk.rules import RuleSettings, load_rules

__all__ = [
    "NotCounted",
    "RULE_IDS",
    "Reason",
    "RuleSettings",
    "assess",
    "combination_note",
    "evidence_note",
    "daily_levels",
    "level_history",
    "load_rules",
    "patient_signals",
    "reason_ids",
    "reason_role",
    "seen_not_counted",
    "sud_history_note",
]
