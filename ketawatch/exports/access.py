"""Who may make which export: reviewers see cases only de-identified, whatever screen or command they use."""

from __future__ import annotations

from store.vocabulary import ROLES

#: Roles allowed to export identified data (names, clinic ids, real dates, notes).
IDENTIFIED_ROLES = ("admin", "clinician")


class ExportRefused(Exception):
    """The export is not allowed for this role; the message says why in one line, in no one screen's words."""

    def __init__(self, message: str, *, deidentified_would_do: bool = False):
        super().__init__(message)
        #: True when the same export, de-identified, would be allowed (each front end says how to ask for it).
        self.deidentified_would_do = deidentified_would_do


def check_export_allowed(role: str, *, deidentify: bool) -> None:
    """Raise ExportRefused unless `role` may make this export (reviewers: de-identified only)."""
    if role not in ROLES:
        raise ExportRefused(f"unknown role {role!r}; exports need one of {', '.join(ROLES)}")
    if not deidentify and role not in IDENTIFIED_ROLES:
        raise ExportRefused(f"a {role} may only make de-identified exports", deidentified_would_do=True)


def must_deidentify(role: str) -> bool:
    """True when this role can only ever export de-identified data (the panel locks the option on)."""
    return role not in IDENTIFIED_ROLES
