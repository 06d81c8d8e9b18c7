"""Writing to the audit trail who opened which patient's record, and who read the audit trail: once per half hour
of a browser session for each patient, and for each search of the trail.

Every click on a page reruns it, so a line per run would bury the trail; a line per patient per
`REPEAT_AFTER` keeps "who looked at this record, and when" answerable without that noise.
"""

from __future__ import annotations

import time

import streamlit as st
from sqlalchemy import Engine

from dashboard.auth import SignedInUser, client_address
from store.audit import record_patient_view, record_view

#: After this long, opening the same patient again in the same browser session writes a new line.
REPEAT_AFTER = 30 * 60
_KEY = "patient_views_recorded"


def _recorded_lately(key: tuple) -> bool:
    """Whether this browser session wrote the line for `key` in the last half hour."""
    return time.time() - st.session_state.get(_KEY, {}).get(key, float("-inf")) < REPEAT_AFTER


def _recorded_now(key: tuple) -> None:
    st.session_state.setdefault(_KEY, {})[key] = time.time()


def patient_opened(engine: Engine, user: SignedInUser, patient_id: str, page: str) -> None:
    """Record that `user` opened `patient_id` on `page`, unless this browser session did so in the last half hour."""
    key = (user.username, patient_id)  # by user too: the sign-out clears it, and this holds anyway
    if not _recorded_lately(key):
        record_patient_view(engine, actor=user.username, patient_id=patient_id, page=page, address=client_address())
        _recorded_now(key)


def audit_trail_read(engine: Engine, user: SignedInUser, *, patient_id: str | None, who: str | None,
                     action: str | None) -> None:
    """Record that `user` read the audit trail with these filters (a patient's lines are that patient's history,
    so the line carries the patient), unless this browser session read it so in the last half hour."""
    key = (user.username, "audit_trail", patient_id, who, action)
    if not _recorded_lately(key):
        record_view(engine, actor=user.username, entity="audit_trail", patient_id=(patient_id or "")[:64] or None,
                    address=client_address(), page="audit", who=who, filter_action=action)
        _recorded_now(key)
