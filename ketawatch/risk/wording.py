"""How the engine writes numbers, dates and counts in its observations, so every reason and every "seen, not counted"
line reads alike ("3 Mar to 17 Mar 2025 (2 weeks)", "2 check-ins", "2.5", "between 4 and 7")."""

from __future__ import annotations

import datetime as dt

import numpy as np

from ketawatch.risk.features import FeatureTable
from ketawatch.risk.rules import SUD_SCALED
from seed_data.catalogue import warning_sign_answers

EPOCH = dt.date(1970, 1, 1)
_NUMBER_WORDS = ("no", "one", "two", "three", "four", "five", "six")


def to_date(day) -> dt.date:
    """A day number (days since 1970-01-01) as a date."""
    return EPOCH + dt.timedelta(days=int(day))


def date_words(day) -> str:
    """A day number as '3 Mar 2025'."""
    return day_words(to_date(day))


def day_words(day: dt.date) -> str:
    """A date as the clinic writes it, '3 Mar 2025': the reasons, the charts' hover and the PDF's period alike."""
    return f"{day.day} {day:%b %Y}"


def span_words(days: np.ndarray) -> str:
    """'on 3 Mar 2025' or '3 Mar to 17 Mar 2025 (2 weeks)'."""
    days = np.sort(np.asarray(days, dtype="int64"))
    if len(days) == 0:
        return ""
    first, last = int(days[0]), int(days[-1])
    if first == last:
        return f"on {date_words(first)}"
    a, b = to_date(first), to_date(last)
    start = f"{a.day} {a:%b}" + ("" if a.year == b.year else f" {a.year}")
    return f"{start} to {date_words(last)} ({length_words(last - first)})"


def length_words(gap: int) -> str:
    """A number of days as a reader counts it: '5 days', '1 week', '3 weeks'."""
    if gap == 1:
        return "1 day"
    return f"{round(gap / 7)} weeks" if gap >= 14 else ("1 week" if gap == 7 else f"{gap} days")


def list_dates(days) -> str:
    """'3 Mar, 10 Mar and 17 Mar 2025' (the year once when all share it)."""
    dates = [to_date(d) for d in sorted(int(x) for x in days)]
    if not dates:
        return ""
    same_year = len({d.year for d in dates}) == 1
    parts = [f"{d.day} {d:%b}" if same_year else f"{d.day} {d:%b %Y}" for d in dates]
    if same_year:
        parts[-1] += f" {dates[-1].year}"
    return join_words(parts)


def join_words(items: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def num(x: float) -> str:
    """A number as a clinician would write it: 3, 2.5, 5.25."""
    return f"{float(x):.2f}".rstrip("0").rstrip(".")


def baseline_words(x: float) -> str:
    """A baseline to one decimal, without a trailing '.0' on the whole numbers most answers are: 1, 0.5, 2.3."""
    return f"{float(x):.1f}".removesuffix(".0")


def values_words(values) -> str:
    """A few answers listed ('4, 5 and 5'), more as their range ('between 4 and 7'); the same answer each time is
    listed, since 'between 5 and 5' reads as a slip."""
    values = [float(v) for v in values]
    if len(values) > 4 and min(values) != max(values):
        return f"between {num(min(values))} and {num(max(values))}"
    return join_words([num(v) for v in values])


def times_words(n: int) -> str:
    """'once', 'twice', '3 times'."""
    return {1: "once", 2: "twice"}.get(n, f"{n} times")


def number_words(n: float) -> str:
    """Small whole numbers in words ('two'), others as digits."""
    n = int(n) if float(n).is_integer() else n
    return _NUMBER_WORDS[n] if isinstance(n, int) and 0 <= n < len(_NUMBER_WORDS) else f"{n:g}"


def count_words(n: int, noun: str) -> str:
    """'check-in' for one (as in 'the check-in since'), '3 check-ins' for more."""
    return noun if n == 1 else f"{n} {noun}s"


def last_checkins_words(table: FeatureTable, row: int, run: np.ndarray, answered: str) -> str:
    """'the last 2 check-ins', or 'the last 2 check-ins with the checklist answered' when a later check-in (up to
    `row`) left it out: 'the last 2' beside a newer check-in on the same page read as stale (clinician review)."""
    words = f"the last {count_words(len(run), 'check-in')}"
    return words + (f" with {answered} answered" if int(run[-1]) < row else "")


def out_of(hits: int, shown: int, window: int, noun: str, plural: str | None = None) -> str:
    """'2 of the last 4 check-ins', '1 of the 2 check-ins so far' (fewer than the window yet), 'the only check-in so
    far': a fact-check read '1 of the last check-in' and '1 of the last 1 sessions'."""
    plural = plural or f"{noun}s"
    if window == 1:
        return f"the last {noun}"
    if shown == 1:
        return f"the only {noun} so far"
    return f"{hits} of the {shown} {plural} so far" if shown < window else f"{hits} of the last {shown} {plural}"


def answer_words(min_score: float) -> str:
    """A checklist score as its answer, in lower case: 2 -> 'clearly'."""
    labels = warning_sign_answers()
    return labels[min(int(min_score), len(labels) - 1)].lower()


def scores_on(table: FeatureTable, column: str, positions: np.ndarray) -> str:
    """'score 2 on 26 Oct 2026' or 'scores 2 and 3 on 5 Oct and 19 Oct 2026'."""
    scores = values_words(table[column][positions])
    return f"{'score' if len(positions) == 1 else 'scores'} {scores} on {list_dates(table['day'][positions])}"


def sud_note(table: FeatureTable, row: int, *settings: str) -> str:
    """Say so when the thresholds quoted were lowered for a history of substance use disorder."""
    if table["sud_history"][row] and any(setting in SUD_SCALED for setting in settings):
        return " (threshold lowered for a history of substance use disorder)"
    return ""


def dates_of(table: FeatureTable, positions: np.ndarray) -> tuple[dt.date, ...]:
    """The distinct dates of these rows, in order: the evidence dates of an observation."""
    return tuple(to_date(d) for d in sorted(set(int(x) for x in table["day"][positions])))
