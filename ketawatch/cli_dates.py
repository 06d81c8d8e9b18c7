"""Dates given on the command line, checked by the store's own date rule so a typo is refused as the importer refuses it.

`date.fromisoformat` alone takes `20261001` and any future date; a level "as of" next year, or a
case review "to" a date that has not come, is almost always a slip of the keyboard, so both are
refused with the option named.
"""

from __future__ import annotations

from datetime import date

import typer

from store.validation import Rule, Validator


def day_option(value: str | None, option: str) -> date | None:
    """The date an option names (None when not given), or a usage error that says what is wrong with it."""
    if value is None:
        return None
    if not value.strip():  # "--as-of $DAY" with DAY unset: not "today", which the option's absence means
        raise typer.BadParameter("is empty; give a date in the form YYYY-MM-DD, or leave the option out", param_hint=option)
    day, problem = Validator().field(Rule(option, option, "date", not_in_future=True), value)
    if problem is not None:
        # The store says "LABEL, VALUE, is ..."; typer names the option itself.
        raise typer.BadParameter(problem.removeprefix(f"{option}, ").replace(", is ", " is ", 1), param_hint=option)
    return day
