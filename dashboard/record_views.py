"""Writing to the audit trail who opened which patient's record: once per patient per half hour of a browser session.

Every click on a page reruns it, so a line per run would bury the trail; a line per patient per
`REPEAT_AFTER` keeps "who looked at this record, and when" answerable without that noise.
"""

from __future__ import annotations

import time

import streamlit as st
from sqlalchemy import Engine

from dashboard.auth import SignedInUser, client_address
from store.audit import record_patient_view

#: After this long, opening the same patient again in the same browser session writes a new line.
REPEAT_AFTER = 30 * 60
_KEY = "patient_views_recorded"


def patient_opened(engine: Engine, user: SignedInUser, patient_id: str, page: str) -> None:
    """Record that `user` opened `patient_id` on `page`, unless this browser session did so in the last half hour."""
    seen: dict[tuple[str, str], float] = st.session_state.setdefault(_KEY, {})
    now, key = time.time(), (user.username, patient_id)  # by user too: the sign-out clears it, and this holds anyway
    if now - seen.get(key, float("-inf")) < REPEAT_AFTER:
        return
    record_patient_view(engine, actor=user.username, patient_id=patient_id, page=page, address=client_address())
    seen[key] = now
