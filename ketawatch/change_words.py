"""A record's change in words ("Dose (mg): 35.0 -> 40.0"), shared by the Audit page and the exports' corrections.

Imports nothing from the rest of KetaWatch (only the store's field labels), so both the audit trail and the exports
can use it.
"""

from __future__ import annotations

import json

from store.validation import field_label
from store.vocabulary import sentence_case


def value_words(value: object) -> str:
    """One stored value as a reader reads it: blank for nothing, lists joined, other structures compact."""
    if value is None or value == "":
        return "blank"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):  # a list inside a list keeps its brackets: [["nausea", "mild"]] -> (nausea, mild)
        return ", ".join(f"({value_words(v)})" if isinstance(v, list) else value_words(v) for v in value) or "none"
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def field_words(name: str) -> str:
    """A field as the forms name it ('dose_mg' -> 'Dose (mg)', 'sds_1' -> 'Severity of Dependence Scale item 1'), so
    a correction reads in the clinic's words, not as a column; any other name as words ('disabled' -> 'Disabled')."""
    label = field_label(name)
    return label if label is not None else sentence_case(name.replace("_", " "))


def describe_changes(detail: object) -> str:
    """What a line changed, in words: 'Dose (mg): 35 -> 40' for each field that differs, or the values written or voided."""
    if not isinstance(detail, dict):
        return ""
    before, after = detail.get("before"), detail.get("after")
    if isinstance(before, dict) and isinstance(after, dict):
        names = sorted(set(before) | set(after))
        return "; ".join(f"{field_words(n)}: {value_words(before.get(n))} -> {value_words(after.get(n))}"
                         for n in names if before.get(n) != after.get(n))
    only = after if isinstance(after, dict) else before if isinstance(before, dict) else None
    if only is None:
        return ""
    return "; ".join(f"{field_words(n)}: {value_words(v)}" for n, v in sorted(only.items()) if v not in (None, "", []))
