"""The one set of rules for what a patient, session or check-in may contain (CONTRACT section 2).

The CSV importer, the dashboard forms and the store's own write functions all call these
validators, so a range or a message is defined once; so are the rules of an amendment's or a
void's reason and of an alert review (`reason_problems`, `review_problems`). Input values may be text (a CSV cell; an
empty cell means "not recorded") or already-typed Python values from a form (None = not recorded).
Every problem comes back as a `Problem(column, message)` in words a clinician understands;
nothing is written by this module.
"""

from __future__ import annotations

import copy
import math
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Callable, Iterable, Mapping, Sequence
from zoneinfo import ZoneInfo

from store.queries import marked_line
from store.settings import get_settings
from store.vocabulary import (
    CHECKIN_COLUMNS,
    INDICATIONS,
    LEVELS,
    PATIENT_COLUMNS,
    PATIENT_STATUSES,
    REVIEW_ACTIONS,
    ROUTES,
    SAFETY_FOLLOW_UP,
    SAFETY_FOLLOW_UP_ACTIONS,
    SAFETY_MARK,
    SDS_ITEMS,
    SESSION_COLUMNS,
    SEVERITIES,
    SEXES,
    WARNING_SIGNS,
    WEIGHT_BASED_ROUTES,
)

#: First characters that make a spreadsheet treat a cell as a formula (OWASP CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?$")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one field, said so that the person who entered it can put it right."""

    column: str
    message: str


@dataclass(frozen=True)
class Rule:
    """What one column may hold: its kind, whether it is required, its range and unit."""

    name: str
    label: str
    kind: str  # text, int, number, bool, date, datetime, date_or_datetime, choice, side_effects
    required: bool = False
    low: float | None = None
    high: float | None = None
    low_exclusive: bool = False
    unit: str = ""
    choices: tuple[str, ...] = ()
    max_length: int | None = None
    min_length: int = 0
    not_in_future: bool = False
    high_is_current_year: bool = False
    no_formula_start: bool = False  # identifiers are written unquoted to CSV, so they must not look like formulas
    one_line: bool = False  # a name: a line break in it made extra, official-looking lines under a heading and in PDFs
    hint: str = field(default="", compare=False)

    @property
    def label_with_unit(self) -> str:
        """The label as forms and tables show it, with its unit: 'Dose (mg)'."""
        return f"{self.label} ({self.unit})" if self.unit else self.label


def _vital(name: str, label: str, low: int, high: int, unit: str) -> Rule:
    return Rule(name, label, "int", low=low, high=high, unit=unit)


PATIENT_RULES: dict[str, Rule] = {
    r.name: r
    for r in (
        Rule("patient_id", "Patient ID", "text", required=True, min_length=1, max_length=64, no_formula_start=True),
        Rule("display_name", "Name", "text", max_length=200, one_line=True),
        Rule("birth_year", "Year of birth", "int", low=1900, high_is_current_year=True),
        Rule("sex", "Sex", "choice", choices=SEXES),
        Rule("indication", "Indication", "choice", required=True, choices=INDICATIONS),
        Rule("sud_history", "History of substance use disorder", "bool", required=True),
        Rule("treatment_start", "Treatment start", "date", required=True, not_in_future=True),
        Rule("planned_dose_mg_per_kg", "Planned dose", "number", low=0.05, high=5, unit="mg/kg"),
        Rule("planned_interval_days", "Planned interval between maintenance sessions", "int", low=1, high=180, unit="days"),
        Rule("clinician", "Responsible clinician", "text", max_length=64),
        Rule("status", "Status", "choice", choices=PATIENT_STATUSES),
        # Not in the import format (CONTRACT section 2), like the status: set on Patients and plans.
        Rule("planned_dose_mg", "Planned dose for fixed-dose routes", "number", low=1, high=1000, unit="mg"),
    )
}

SESSION_RULES: dict[str, Rule] = {
    r.name: r
    for r in (
        Rule("patient_id", "Patient ID", "text", required=True, min_length=1, max_length=64),
        Rule("session_at", "Session date and time", "datetime", required=True, not_in_future=True),
        Rule("route", "Route", "choice", required=True, choices=ROUTES),
        Rule("dose_mg", "Dose", "number", required=True, low=0, low_exclusive=True, high=1000, unit="mg"),
        Rule("weight_kg", "Weight", "number", low=20, high=350, unit="kg"),
        Rule("duration_min", "Duration", "int", low=1, high=1440, unit="min"),
        Rule("early_request", "Patient asked for this session earlier than planned", "bool"),
        Rule("dose_increase_request", "Patient asked for a higher dose", "bool"),
        _vital("sbp_pre", "Systolic blood pressure before dosing", 40, 300, "mmHg"),
        _vital("dbp_pre", "Diastolic blood pressure before dosing", 40, 300, "mmHg"),
        _vital("sbp_post", "Systolic blood pressure after dosing", 40, 300, "mmHg"),
        _vital("dbp_post", "Diastolic blood pressure after dosing", 40, 300, "mmHg"),
        _vital("hr_pre", "Heart rate before dosing", 20, 250, "/min"),
        _vital("hr_post", "Heart rate after dosing", 20, 250, "/min"),
        _vital("spo2_pre", "Oxygen saturation before dosing", 50, 100, "%"),
        _vital("spo2_post", "Oxygen saturation after dosing", 50, 100, "%"),
        Rule("dissociation_cadss", "Dissociation (CADSS total)", "int", low=0, high=92),
        Rule("side_effects", "Side effects", "side_effects"),
        Rule("notes", "Notes", "text", max_length=5000),
    )
}

def _sign_labels() -> dict[str, str]:
    """Each warning sign's clinician-facing label, from the catalogue the dashboard and the PDF show too."""
    from seed_data.catalogue import warning_sign

    return {sign: warning_sign(sign).label for sign in WARNING_SIGNS}


_SIGN_LABELS = _sign_labels()


def _sign_top() -> int:
    """The highest checklist answer, from the catalogue's answer words (0 "not at all" to 3), as the form offers them."""
    from seed_data.catalogue import warning_sign_answers

    return len(warning_sign_answers()) - 1


_SIGN_TOP = _sign_top()


def _instrument_range(name: str, low: str, high: str) -> dict[str, int]:
    """An instrument's range from seed_data/instruments.toml, the file the check-in form reads, so the two agree."""
    from seed_data.catalogue import instruments

    facts = instruments()[name]
    return {"low": int(facts[low]), "high": int(facts[high])}

CHECKIN_RULES: dict[str, Rule] = {
    r.name: r
    for r in (
        Rule("patient_id", "Patient ID", "text", required=True, min_length=1, max_length=64),
        Rule("reported_at", "Check-in date", "date_or_datetime", required=True, not_in_future=True),
        Rule("craving", "Craving", "int", required=True, **_instrument_range("craving", "min", "max")),
        *(Rule(c, f"Severity of Dependence Scale item {i}", "int", **_instrument_range("sds", "item_min", "item_max"))
          for i, c in enumerate(SDS_ITEMS, 1)),
        *(Rule(c, f"Warning sign '{_SIGN_LABELS[c]}'", "int", low=0, high=_SIGN_TOP) for c in WARNING_SIGNS),
        Rule("phq9", "PHQ-9 total", "int", **_instrument_range("phq9", "total_min", "total_max")),
        Rule("notes", "Notes", "text", max_length=5000),
    )
}

assert tuple(PATIENT_RULES)[:10] == PATIENT_COLUMNS
assert tuple(SESSION_RULES) == SESSION_COLUMNS
assert tuple(CHECKIN_RULES) == CHECKIN_COLUMNS


def field_label(name: str) -> str | None:
    """A patient, session or check-in column as the forms name it ('Dose (mg)'), so a correction reads as the form
    did; None for a name no record has."""
    rule = PATIENT_RULES.get(name) or SESSION_RULES.get(name) or CHECKIN_RULES.get(name)
    return None if rule is None else rule.label_with_unit


#: Values a record gets when its field is left blank.
DEFAULTS: dict[str, dict[str, Any]] = {"patients": {"status": "active"}, "sessions": {}, "checkins": {}}


def _diastolic_below_systolic(sbp: float | None, dbp: float | None) -> bool:
    return sbp is None or dbp is None or dbp < sbp


def blood_pressure_pair_problem(when: str, sbp: float | None, dbp: float | None) -> str | None:
    """What is wrong with a reading ("pre" or "post" dosing) whose diastolic is not below its systolic, or None; the
    form shows it as typed, not only at Save (clinician's second browser review: 80/120 got no word until then)."""
    if _diastolic_below_systolic(sbp, dbp):
        return None
    words = "before" if when == "pre" else "after"
    message = f"Diastolic blood pressure {words} dosing, {_fmt(dbp)}, must be below the systolic, {_fmt(sbp)}"
    return message + ("; were the two swapped?" if dbp > sbp else "")


def _all_or_none(given: list[bool]) -> bool:
    return all(given) or not any(given)


class _Invalid(Exception):
    """A single field's problem, raised inside a parser and turned into a Problem."""


#: Columns that name a patient or a member of staff: two that look alike must not name two people.
IDENTIFIERS = ("patient_id", "clinician")


def _looks_like_something_else(char: str) -> bool:
    """An invisible, control or spacing character other than the space, or a dash other than the hyphen-minus."""
    kind = unicodedata.category(char)
    return kind[0] in "CZ" and char != " " or kind == "Pd" and char != "-"


def same_looking_id(new_id: str, existing: Iterable[str]) -> str | None:
    """An existing id that differs from `new_id` only in upper or lower case (so reads as the same patient), or None."""
    folded = new_id.casefold()
    return next((old for old in existing if old != new_id and old.casefold() == folded), None)


def look_alike_message(new_id: str, twin: str) -> str:
    """Why a new patient id is refused beside a stored one that reads the same."""
    return (f"Patient ID {new_id} differs from the existing patient {twin} only in upper or lower case; "
            f"use {twin} for that patient, or choose an id that reads differently")


def _is_blank(value: Any) -> bool:
    if type(value) is str:  # the common case (a CSV cell) first
        return not value or value.isspace()
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    if isinstance(value, str) and value.strip() == "":
        return True
    try:  # pandas.NA and NaT without importing pandas
        return bool(value != value)  # noqa: PLR0124
    except (TypeError, ValueError):
        return False


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value) if not _looks_numeric(value) else value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


#: Kilograms in a pound, for the hint that a weight was typed in pounds.
KG_PER_POUND = 0.45359237
#: A second session of a patient this close to another is asked about before it is saved.
SECOND_SESSION_WITHIN = timedelta(hours=24)
#: The same reach in real time, wide enough for any clock change (an hour; two in wartime double summer time):
#: sessions further apart than this are never asked about, so their clock time need not be worked out.
SECOND_SESSION_REACH = SECOND_SESSION_WITHIN + timedelta(hours=2)


def _weight_change(weight: float, at: datetime, other_sessions: Sequence[tuple[datetime, float | None]],
                   fraction: float, tz) -> list[Problem]:
    """A weight more than `fraction` away from the patient's nearest earlier recorded weight (or nearest later, when none)."""
    weighed = [(t, w) for t, w in other_sessions if w is not None and not math.isnan(w) and w > 0]
    if not weighed:
        return []
    earlier = [tw for tw in weighed if tw[0] <= at]
    then, last = max(earlier) if earlier else min(weighed)
    if abs(weight / last - 1) <= fraction:
        return []
    change = f"{abs(weight / last - 1) * 100:.0f}% {'more' if weight > last else 'less'} than"
    message = (f"Weight: {_fmt(weight)} kg is {change} the {_fmt(last)} kg recorded on "
               f"{then.astimezone(tz).date().isoformat()}")
    in_kg = weight * KG_PER_POUND
    if abs(in_kg / last - 1) <= fraction:
        message += f"; if it was weighed in pounds, {_fmt(weight)} lb is {in_kg:.1f} kg"
    return [Problem("weight_kg", message)]


def typed_notes_problems(notes: str | None) -> list[Problem]:
    """The check-in form's notes as typed: no line may begin with the question 9 mark, which the form writes itself
    from the answer (typed by hand, "[Safety] crisis plan reviewed" raised a red banner for an answer nobody gave, and
    could not be amended away; new-engineer code review)."""
    if marked_line(notes, SAFETY_MARK) is None:
        return []
    return [Problem("notes", f"Notes: a line begins with {SAFETY_MARK}, which marks the answer to PHQ-9 question 9 "
                             "that the form records itself; begin that line another way (for example 'Safety:')")]


def phq9_items_problems(answers: Sequence[int | None], safety: Sequence[bool], *, paper: bool = False,
                        paper_total: float | None = None) -> list[Problem]:
    """The check-in form's rules for the PHQ-9 answered item by item, which the import format (the total only) has
    no use for: all nine, none, or the safety question (9) alone, whose answer is kept on its own.

    `answers` are the nine items in order (None = not answered) and `safety` marks the safety item. For a `paper`
    form (its total typed, question 9 ticked) only one rule holds: the total may not be below question 9's answer,
    since then one of the two was copied wrongly.
    """
    safety_given = [a for a, is_safety in zip(answers, safety) if is_safety and a is not None]
    if paper:
        q9 = max(safety_given, default=None)
        if paper_total is None or q9 is None or paper_total >= q9:
            return []
        return [Problem("phq9", f"PHQ-9 total, {paper_total:g}, is less than the question 9 answer alone ({q9}); "
                                "check both on the paper form")]
    given = [a for a in answers if a is not None]
    others_blank = all(a is None for a, is_safety in zip(answers, safety) if not is_safety)
    if len(given) in (0, len(answers)) or others_blank:
        return []
    missing = [str(i + 1) for i, a in enumerate(answers) if a is None]
    noun = "question" if len(missing) == 1 else "questions"
    message = (f"PHQ-9: answer all nine questions or none ({len(given)} of {len(answers)} answered; {noun} "
               f"{', '.join(missing)} not answered)")
    if safety_given:
        message += ". To keep question 9's answer without a total, leave questions 1 to 8 empty"
    return [Problem("phq9", message)]


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _unit(rule: Rule) -> str:
    """The rule's unit as written after a number: " mmHg", " /min", but "%" close up."""
    return f" {rule.unit}" if rule.unit and rule.unit != "%" else rule.unit


def _pounds_hint(rule: Rule, number: float, high: float | None) -> str:
    """'; if it was weighed in pounds, 500 lb is 226.8 kg' for a weight above the range that is one in pounds: the
    out-of-range message offered no such help, though the check on a change of weight does (clinician's review)."""
    in_kg = number * KG_PER_POUND
    if rule.unit != "kg" or high is None or number <= high or not rule.low <= in_kg <= high:
        return ""
    return f"; if it was weighed in pounds, {_fmt(number)} lb is {in_kg:.1f} kg"


def _range_text(rule: Rule, high: float | None) -> str:
    unit = _unit(rule)
    if rule.low_exclusive:
        return f"more than {_fmt(rule.low)}{unit} and at most {_fmt(high)}{unit}"
    if rule.low is not None and high is not None:
        return f"{_fmt(rule.low)}-{_fmt(high)}{unit}"
    if rule.low is not None:
        return f"at least {_fmt(rule.low)}{unit}"
    return f"at most {_fmt(high)}{unit}"


#: The longest alert-review note, and the longest reason for an amendment or a void, the store takes.
REVIEW_NOTE_MAX_LENGTH = 2000
REASON_MAX_LENGTH = 500


def free_text_problem(label: str, text: str, max_length: int) -> str | None:
    """What is wrong with a free-text note or reason the forms send the store (too long, a control character), or None."""
    if len(text) > max_length:
        return f"{label}: {len(text)} characters, but at most {max_length} are allowed"
    return control_character_problem(label, text)


#: What breaks a line, for a text that must be one (a name): a tab too, and Unicode's line and paragraph separators.
LINE_BREAKS = "\t\n\r\u2028\u2029"


def control_character_problem(label: str, text: str) -> str | None:
    """What is wrong with text holding a control character (tab and line breaks aside) or a hidden direction
    override, or None.

    A NUL cannot be stored on PostgreSQL at all; the others print as nothing and come from a
    damaged file or a paste, never from someone typing.
    """
    control = next((c for c in text if unicodedata.category(c) == "Cc" and c not in "\t\n\r"), None)
    if control is not None:
        return (f"{label} holds a control character (U+{ord(control):04X}) that cannot be shown or stored; remove it "
                "(it often comes from a damaged file or a paste) and try again")
    turn = next((c for c in text if c in _DIRECTION_OVERRIDES), None)
    if turn is not None:
        return (f"{label} holds a hidden text-direction character (U+{ord(turn):04X}), which makes it show in another "
                "order than it was written; remove it (it comes from a paste, not from typing) and try again")
    return None


#: Unicode's bidirectional embeddings, overrides and isolates: invisible, and they reorder what follows on screen
#: and in PDFs, so "KW-0012" can show as another id ("Trojan Source"). The left-to-right and right-to-left marks
#: (U+200E, U+200F), which writers of Arabic or Hebrew type, are not among them.
_DIRECTION_OVERRIDES = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


#: What a double-check problem of `Validator.unusual_session`, filed under its column, rests on: a dose's mg/kg on
#: the dose, the weight and the route; a weight's change on the weight and when (which weight came before). A new
#: check that rests on more than its own column must be added here, or an amendment would not ask about it.
UNUSUAL_RESTS_ON = {"dose_mg": {"dose_mg", "weight_kg", "route", "duration_min"}, "weight_kg": {"weight_kg", "session_at"}}


class Validator:
    """Parses and checks one record at a time against a rule table, with a fixed clock and time zone."""

    def __init__(self, *, now: datetime | None = None, tz: ZoneInfo | str | None = None):
        self.tz = ZoneInfo(tz) if isinstance(tz, str) else (tz or get_settings().tz)
        self.now = now or datetime.now(timezone.utc)
        if self.now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        self.stored: Mapping[str, Any] = {}

    def for_amending(self, stored: Mapping[str, Any]) -> "Validator":
        """The same checks for an amendment of a record holding `stored`: a value left as it was is not re-judged
        by rules added since it was saved (a control character, a time's fraction of a second), so an older
        record can still be corrected, and is not silently rewritten where nobody changed it."""
        other = copy.copy(self)
        other.stored = stored
        return other

    def _unchanged(self, rule: Rule, value: Any) -> bool:
        return rule.name in self.stored and self.stored[rule.name] == value

    # ----- parsers: value -> typed value, or raise _Invalid(message)

    def _number(self, rule: Rule, value: Any) -> float:
        if type(value) is str:
            try:
                number = float(value)
            except ValueError:
                raise _Invalid(f"{rule.label}, {_show(value)}, is not a number") from None
        elif isinstance(value, bool):
            raise _Invalid(f"{rule.label}, {value}, is not a number")
        elif isinstance(value, (int, float)):
            number = float(value)
        else:
            text = str(value).strip()
            try:
                number = float(text)
            except ValueError:
                raise _Invalid(f"{rule.label}, {_show(value)}, is not a number") from None
        if math.isnan(number) or math.isinf(number):
            raise _Invalid(f"{rule.label}, {_show(value)}, is not a number")
        high = float(self.now.astimezone(self.tz).year) if rule.high_is_current_year else rule.high
        below = rule.low is not None and (number <= rule.low if rule.low_exclusive else number < rule.low)
        above = high is not None and number > high
        if below or above:
            if rule.low_exclusive:
                raise _Invalid(f"{rule.label}, {_show(value)}, must be {_range_text(rule, high)}")
            raise _Invalid(f"{rule.label}, {_show(value)}, is outside {_range_text(rule, high)}"
                           + _pounds_hint(rule, number, high))
        return number

    def _int(self, rule: Rule, value: Any) -> int:
        number = self._number(rule, value)
        if not float(number).is_integer():
            high = float(self.now.astimezone(self.tz).year) if rule.high_is_current_year else rule.high
            raise _Invalid(f"{rule.label}, {_show(value)}, must be a whole number ({_range_text(rule, high)})")
        return int(number)

    def _bool(self, rule: Rule, value: Any) -> bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text == "yes":
            return True
        if text == "no":
            return False
        raise _Invalid(f"{rule.label}, {_show(value)}, must be yes or no")

    def _choice(self, rule: Rule, value: Any) -> str:
        text = str(value).strip().lower()  # "IV" or "Depression" from a spreadsheet is the word itself, as "YES" is yes
        if text not in rule.choices:
            raise _Invalid(f"{rule.label}, {_show(value)}, is not one of: {', '.join(rule.choices)}")
        return text

    def _text(self, rule: Rule, value: Any) -> str:
        text = str(value) if not isinstance(value, str) else value
        text = text.strip() if rule.name in ("patient_id", "clinician") else text
        if len(text) < rule.min_length:
            raise _Invalid(f"{rule.label} is required")
        if rule.max_length is not None and len(text) > rule.max_length:
            raise _Invalid(f"{rule.label}: {len(text)} characters, but at most {rule.max_length} are allowed")
        if rule.no_formula_start and text[:1] in FORMULA_STARTS:
            raise _Invalid(
                f"{rule.label}, {text!r}, must not begin with =, +, -, @, a tab or a line break "
                "(spreadsheet programs would run it as a formula)"
            )
        control = None if self._unchanged(rule, value) else control_character_problem(rule.label, text)
        if control is not None:
            raise _Invalid(control)
        if rule.one_line and not self._unchanged(rule, value) and any(c in text for c in LINE_BREAKS):
            raise _Invalid(f"{rule.label} is one line: remove the line break or tab")
        if rule.name in IDENTIFIERS:
            odd = next((c for c in text if _looks_like_something_else(c)), None)
            if odd is not None:
                raise _Invalid(f"{rule.label}, {text!r}, holds {unicodedata.name(odd, 'an unnamed character').lower()} "
                               f"(U+{ord(odd):04X}), which looks like another character or like nothing; type it again "
                               "with ordinary letters, digits, spaces and hyphens")
        return text

    def _date(self, rule: Rule, value: Any) -> date:
        if isinstance(value, datetime):
            raise _Invalid(f"{rule.label} must be a date without a time")
        if isinstance(value, date):
            day = value
        else:
            text = str(value).strip()
            if not _DATE_RE.match(text):
                raise _Invalid(f"{rule.label}, {_show(value)}, is not a date in the form YYYY-MM-DD")
            try:
                day = date.fromisoformat(text)
            except ValueError:
                raise _Invalid(f"{rule.label}, {_show(value)}, is not a real calendar date") from None
        if rule.not_in_future and rule.kind == "date" and not self._not_after_today(day):  # a date-time is checked whole
            today = self.now.astimezone(self.tz).date()
            raise _Invalid(f"{rule.label}, {day.isoformat()}, is in the future (today is {today.isoformat()})")
        return day

    def _datetime(self, rule: Rule, value: Any, *, date_allowed: bool) -> datetime:
        timed = True  # a time was given (a date alone means the day's start, whatever the clocks did)
        if isinstance(value, datetime):
            moment = value
        elif isinstance(value, date):
            if not date_allowed:
                raise _Invalid(f"{rule.label}, {value.isoformat()}, needs a time as well as a date")
            moment, timed = datetime.combine(value, time(0, 0)), False
        else:
            text = str(value).strip()
            if date_allowed and _DATE_RE.match(text):
                moment, timed = datetime.combine(self._date(rule, text), time(0, 0)), False
            elif _DATETIME_RE.match(text):
                try:
                    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
                except ValueError:
                    raise _Invalid(f"{rule.label}, {_show(value)}, is not a real date and time") from None
            else:
                form = "YYYY-MM-DD or YYYY-MM-DDTHH:MM" if date_allowed else "YYYY-MM-DDTHH:MM"
                if _DATE_RE.match(text):
                    raise _Invalid(f"{rule.label}, {_show(value)}, needs a time as well as a date ({form})")
                raise _Invalid(f"{rule.label}, {_show(value)}, is not a date and time in the form {form}")
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=self.tz)
        zone = moment.tzinfo
        if timed and isinstance(zone, ZoneInfo):  # a wall time: given without an offset, or by a form in clinic time
            wall = moment.replace(tzinfo=None)
            if moment.astimezone(timezone.utc).astimezone(zone).replace(tzinfo=None) != wall:
                # In the hour the clocks skip: no such time here. zoneinfo would quietly make 01:30 into 02:30 (a form's
                # time came with the clinic's zone attached and skipped this check; new-engineer code review).
                raise _Invalid(f"{rule.label}, {wall:%Y-%m-%d %H:%M}, does not exist in {zone.key}: the clocks "
                               "went forward that night. Give the time as the clock showed it, or with its UTC "
                               "offset (for example +01:00)")
        # To the second, as the import format writes a time: a fraction kept here (patient mode saved
        # one) made the clinic's own CSV export import again as a second, different check-in.
        moment = moment.astimezone(timezone.utc)
        if not self._unchanged(rule, value):
            moment = moment.replace(microsecond=0)
        if rule.not_in_future and moment > self.now:
            local = moment.astimezone(self.tz).strftime("%Y-%m-%d %H:%M")
            raise _Invalid(f"{rule.label}, {local}, is in the future")
        return moment

    def _side_effects(self, rule: Rule, value: Any) -> list[tuple[str, str]]:
        from seed_data.catalogue import side_effect_ids

        known = side_effect_ids()
        if isinstance(value, (list, tuple)):  # from a form: ("nausea", "mild") pairs or "nausea:mild" strings
            items = [":".join(str(part or "") for part in item) if isinstance(item, (list, tuple)) else str(item)
                     for item in value]
        else:
            items = str(value).split(";")
        effects: list[tuple[str, str]] = []
        seen: set[str] = set()
        wrong: list[str] = []  # every item's problem, so one correction fixes the whole cell
        unknown = False
        for raw in items:
            item = raw.strip()
            if not item:
                continue
            effect, sep, severity = item.partition(":")
            effect, severity = effect.strip().lower(), severity.strip().lower()  # as a choice: "Nausea:Mild" is nausea:mild
            if not sep:
                wrong.append(f"{item!r} needs a severity, written effect:severity (for example nausea:mild)")
            elif effect not in known:  # the catalogue is listed once, after the first effect not in it
                listed = "" if unknown else f" (the catalogue: {', '.join(sorted(known))})"
                wrong.append(f"{effect!r} is not in the side-effect catalogue{listed}")
                unknown = True
            elif not severity:  # a form's effect whose severity nobody chose: never taken as mild (clinician review)
                wrong.append(f"choose how severe the {_effect_label(effect).lower()} was: mild, moderate or severe")
            elif severity not in SEVERITIES:
                wrong.append(f"the severity of {effect}, {severity!r}, must be mild, moderate or severe")
            elif effect in seen:
                wrong.append(f"{_effect_label(effect)} is listed twice; keep one severity")
            if sep and effect in known:
                seen.add(effect)
            effects.append((effect, severity))
        if wrong:
            raise _Invalid(f"{rule.label}: {'; '.join(wrong)}")
        return effects

    def parse(self, rule: Rule, value: Any) -> Any:
        """The typed value of one field, or raise `_Invalid` with its message."""
        kind = rule.kind
        if kind == "number":
            return self._number(rule, value)
        if kind == "int":
            return self._int(rule, value)
        if kind == "bool":
            return self._bool(rule, value)
        if kind == "choice":
            return self._choice(rule, value)
        if kind == "text":
            return self._text(rule, value)
        if kind == "date":
            return self._date(rule, value)
        if kind == "datetime":
            return self._datetime(rule, value, date_allowed=False)
        if kind == "date_or_datetime":
            return self._datetime(rule, value, date_allowed=True)
        if kind == "side_effects":
            return self._side_effects(rule, value)
        raise AssertionError(f"unknown rule kind {kind}")

    def field(self, rule: Rule, value: Any) -> tuple[Any, str | None]:
        """The typed value of one field (None, or [] for side effects, when blank) and its problem's message, if any."""
        if _is_blank(value) or (rule.kind == "side_effects" and isinstance(value, (list, tuple)) and not value):
            return ([] if rule.kind == "side_effects" else None), (f"{rule.label} is required" if rule.required else None)
        try:
            return self.parse(rule, value), None
        except _Invalid as exc:
            return None, str(exc)

    def check(self, rules: Mapping[str, Rule], raw: Mapping[str, Any]) -> tuple[dict[str, Any], list[Problem]]:
        """Parse every known field of `raw`; missing or blank optional fields become None."""
        clean: dict[str, Any] = {}
        problems: list[Problem] = []
        for name, rule in rules.items():
            clean[name], message = self.field(rule, raw.get(name))
            if message is not None:
                problems.append(Problem(name, message))
        return clean, problems

    def row_checks(self, kind: str) -> list[tuple[tuple[str, ...], Callable[..., bool]]]:
        """The checks across the fields of one record: the parsed fields each reads and whether they agree.

        The record validators below use them; a bulk pass can too, to find the rows to validate one by one.
        """
        if kind == "patients":  # a treatment start in the future is the date rule's (not_in_future)
            return []
        if kind == "sessions":
            return [((f"sbp_{when}", f"dbp_{when}"), _diastolic_below_systolic) for when in ("pre", "post")]
        if kind == "checkins":  # valid SDS items are None exactly when blank
            return [(SDS_ITEMS, lambda *items: _all_or_none([item is not None for item in items]))]
        raise AssertionError(f"unknown record kind {kind}")

    def _not_after_today(self, day: date | None) -> bool:
        return day is None or day <= self.now.astimezone(self.tz).date()

    # ----- whole records

    def patient(self, raw: Mapping[str, Any]) -> tuple[dict[str, Any], list[Problem]]:
        """A patient row: CONTRACT patients.csv plus status (default active)."""
        clean, problems = self.check(PATIENT_RULES, raw)
        for name, default in DEFAULTS["patients"].items():
            if clean.get(name) is None:
                clean[name] = default
        return clean, problems

    def session(self, raw: Mapping[str, Any]) -> tuple[dict[str, Any], list[Problem]]:
        """A session row, with diastolic below systolic before and after dosing."""
        clean, problems = self.check(SESSION_RULES, raw)
        for when in ("pre", "post"):
            message = blood_pressure_pair_problem(when, clean.get(f"sbp_{when}"), clean.get(f"dbp_{when}"))
            if message:
                problems.append(Problem(f"dbp_{when}", message))
        return clean, problems

    def unusual_session(self, raw: Mapping[str, Any], *, treatment_start: date | None,
                        planned_mg_per_kg: float | None,
                        other_sessions: Sequence[tuple[datetime, float | None]] = (),
                        changed: set[str] | None = None) -> list[Problem]:
        """What a valid session holds that is unusual enough to confirm before saving (most often a slip of the keyboard).

        Empty when the session is not valid (its problems come first) or nothing is unusual. The
        thresholds are the clinic's, in seed_data/dosing.toml; the importer notes them (`unusual_checked_session`).
        `other_sessions` are the patient's other live sessions as (time, weight in kg or None): a
        second session on the same day is most often the first one entered twice, and a weight far
        from the one before is most often typed in pounds, and would make every mg/kg wrong.
        `changed`, for an amendment: only what rests on those fields (`UNUSUAL_RESTS_ON`) is asked about.
        """
        found = self._unusual_session(raw, treatment_start, planned_mg_per_kg, other_sessions)
        return [p for p in found if changed is None or UNUSUAL_RESTS_ON.get(p.column, {p.column}) & changed]

    def weight_question(self, raw: Mapping[str, Any], *,
                        other_sessions: Sequence[tuple[datetime, float | None]] = ()) -> list[Problem]:
        """The weight far from the one before (most often typed in pounds), judged on the weight and time alone, so it
        can be said while another field is refused: 183 beside a refused 5000 mg was asked about only once the dose
        was put right (clinician review)."""
        from seed_data.catalogue import dose_checks

        try:
            weight = self.parse(SESSION_RULES["weight_kg"], raw.get("weight_kg"))
            at = self.parse(SESSION_RULES["session_at"], raw.get("session_at"))
        except _Invalid:
            return []
        if not weight or at is None:
            return []
        return _weight_change(weight, at, other_sessions, dose_checks().weight_change_fraction, self.tz)

    def _unusual_session(self, raw, treatment_start, planned_mg_per_kg, other_sessions) -> list[Problem]:
        clean, problems = self.session(raw)
        if problems:
            return []
        return self.unusual_checked_session(clean, treatment_start=treatment_start, planned_mg_per_kg=planned_mg_per_kg,
                                            other_sessions=other_sessions)

    def unusual_checked_session(self, clean: Mapping[str, Any], *, treatment_start: date | None,
                                planned_mg_per_kg: float | None,
                                other_sessions: Sequence[tuple[datetime, float | None]] = ()) -> list[Problem]:
        """`unusual_session` of a session already checked (its values as `session` returns them): the importer's
        question, asked of rows it has read, without checking them twice."""
        from seed_data.catalogue import dose_checks

        checks, unusual = dose_checks(), []
        dose, weight, route = clean["dose_mg"], clean.get("weight_kg"), clean["route"]
        weighed = (_weight_change(weight, clean["session_at"], other_sessions, checks.weight_change_fraction, self.tz)
                   if weight else [])
        if route in WEIGHT_BASED_ROUTES and weight:
            per_kg = dose / weight
            said = f"Dose: {_fmt(dose)} mg for {_fmt(weight)} kg is {per_kg:.2f} mg/kg"
            duration = clean.get("duration_min")
            short = duration is None or duration <= checks.short_session_max_min
            if per_kg > checks.weight_based_max_mg_per_kg:
                unusual.append(Problem("dose_mg", f"{said}, more than {_fmt(checks.weight_based_max_mg_per_kg)} mg/kg "
                                                  "in one session"))
            elif planned_mg_per_kg and per_kg > checks.above_plan_factor * planned_mg_per_kg:
                unusual.append(Problem("dose_mg", f"{said}, {per_kg / planned_mg_per_kg:.1f} times the planned "
                                                  f"{planned_mg_per_kg:.2f} mg/kg"))
            elif short and per_kg > checks.short_session_max_mg_per_kg:
                over = (f"over {_fmt(duration)} minutes" if duration is not None else "with no duration recorded")
                unusual.append(Problem("dose_mg", f"{said} {over}, more than {_fmt(checks.short_session_max_mg_per_kg)} "
                                                  f"mg/kg in a session of {_fmt(checks.short_session_max_min)} minutes or "
                                                  "less (a longer infusion, such as one for pain, may give more)"))
            # Too little is a slip too: the mg/kg figure typed as the dose (0.5 mg for 51 kg) was saved without a
            # question, and took a dose reason off the record (clinician's browser review).
            elif weighed:  # a weight typed in pounds makes the dose look low: the weight is asked about, below
                pass
            elif per_kg < checks.weight_based_min_mg_per_kg:
                unusual.append(Problem("dose_mg", f"{said}, less than {_fmt(checks.weight_based_min_mg_per_kg)} mg/kg, "
                                                  "the lowest dose studied for depression; the dose is in mg, not mg/kg"))
            elif planned_mg_per_kg and per_kg < checks.below_plan_fraction * planned_mg_per_kg:
                unusual.append(Problem("dose_mg", f"{said}, less than {checks.below_plan_fraction:.0%} of the planned "
                                                  f"{planned_mg_per_kg:.2f} mg/kg"))
        elif route in WEIGHT_BASED_ROUTES and dose < checks.weight_based_min_mg_per_kg * SESSION_RULES["weight_kg"].low:
            least = checks.weight_based_min_mg_per_kg * SESSION_RULES["weight_kg"].low
            unusual.append(Problem("dose_mg", f"Dose: {_fmt(dose)} mg by the {route.upper()} route, with no weight recorded, "
                                              f"is less than {_fmt(least)} mg ({_fmt(checks.weight_based_min_mg_per_kg)} "
                                              f"mg/kg even at {_fmt(SESSION_RULES['weight_kg'].low)} kg); the dose is in "
                                              "mg, not mg/kg"))
        elif route in WEIGHT_BASED_ROUTES and dose > checks.weight_based_max_mg_without_weight:
            unusual.append(Problem("dose_mg", f"Dose: {_fmt(dose)} mg by the {route.upper()} route, with no weight recorded, is "
                                              f"more than {_fmt(checks.weight_based_max_mg_without_weight)} mg in one session"))
        elif route in checks.fixed_route_max_mg and dose > checks.fixed_route_max_mg[route]:
            unusual.append(Problem("dose_mg", f"Dose: {_fmt(dose)} mg by the {route} route is more than "
                                              f"{_fmt(checks.fixed_route_max_mg[route])} mg in one session"))
        elif route in checks.fixed_route_min_mg and dose < checks.fixed_route_min_mg[route]:
            unusual.append(Problem("dose_mg", f"Dose: {_fmt(dose)} mg by the {route} route is less than "
                                              f"{_fmt(checks.fixed_route_min_mg[route])} mg, the smallest dose given"))
        at = clean["session_at"]
        day = at.astimezone(self.tz).date()
        if treatment_start is not None and day < treatment_start:
            unusual.append(Problem("session_at", f"Session date and time: {day.isoformat()} is before this patient's "
                                                 f"treatment start ({treatment_start.isoformat()})"))
        # The very same time is the store's error (a session is identified by patient and time), not a question.
        # Within 24 hours, not on the same calendar day: a session at 00:30 after one at 14:05 the day before was not
        # asked about (clinician's browser pass).
        # On the clinic's clock: two 10:00 sessions either side of the spring-forward night are 23 hours apart in real
        # time, and a daily course is no double entry (code review).
        wall = at.astimezone(self.tz).replace(tzinfo=None)
        near = sorted(t.astimezone(self.tz) for t, _ in other_sessions if t != at and abs(t - at) < SECOND_SESSION_REACH
                      and abs(t.astimezone(self.tz).replace(tzinfo=None) - wall) < SECOND_SESSION_WITHIN)
        if near:
            times = " and ".join(t.strftime("%Y-%m-%d %H:%M") for t in near)
            unusual.append(Problem("session_at", f"Session date and time: this patient already has a session within "
                                                 f"24 hours, at {times}; check that this is not the same session "
                                                 "entered twice, and that a second dose so soon was meant"))
        unusual += weighed
        for column, (low, high) in checks.vitals.items():
            value, rule = clean.get(column), SESSION_RULES[column]
            if value is not None and not low <= value <= high:
                side = f"below {_fmt(low)}" if value < low else f"above {_fmt(high)}"
                unusual.append(Problem(column, f"{rule.label}: {_fmt(value)}{_unit(rule)} is {side}{_unit(rule)}; "
                                               "check that it was typed as measured"))
        return unusual

    def unusual_checkin(self, raw: Mapping[str, Any], *, treatment_start: date | None) -> list[Problem]:
        """What a valid check-in holds that is unusual enough to confirm before saving: a date long before the
        treatment start, most often a slip in the month, which would become the patient's baseline (clinician's
        browser pass). Empty when the check-in is not valid or nothing is unusual."""
        clean, problems = self.checkin(raw)
        if problems or treatment_start is None:
            return []
        return self.unusual_checked_checkin(clean, treatment_start=treatment_start)

    def unusual_checked_checkin(self, clean: Mapping[str, Any], *, treatment_start: date | None) -> list[Problem]:
        """`unusual_checkin` of a check-in already checked (the importer's question)."""
        from seed_data.catalogue import dose_checks

        if treatment_start is None:
            return []
        day = clean["reported_at"].astimezone(self.tz).date()
        before = (treatment_start - day).days
        if before <= dose_checks().checkin_days_before_start:
            return []
        return [Problem("reported_at", f"Check-in date and time: {day.isoformat()} is {before} days before this "
                                       f"patient's treatment start ({treatment_start.isoformat()}); it would count in "
                                       "the patient's baseline")]

    def checkin(self, raw: Mapping[str, Any]) -> tuple[dict[str, Any], list[Problem]]:
        """A check-in row, with the Severity of Dependence Scale given in full or not at all."""
        clean, problems = self.check(CHECKIN_RULES, raw)
        given = [c for c in SDS_ITEMS if not _is_blank(raw.get(c))]
        if not _all_or_none([c in given for c in SDS_ITEMS]):
            missing = [c for c in SDS_ITEMS if c not in given]
            numbers = ", ".join(str(SDS_ITEMS.index(c) + 1) for c in missing)
            noun = "item" if len(missing) == 1 else "items"
            problems.append(
                Problem(missing[0], f"Severity of Dependence Scale: give all five items or none ({noun} {numbers} missing)")
            )
        if marked_line(self.stored.get("notes"), SAFETY_MARK) and not marked_line(clean.get("notes"), SAFETY_MARK):
            # Amending: the line is the only record of the answer, and every screen's red or blue banner comes from it.
            problems.append(Problem("notes", f"The notes hold a PHQ-9 question 9 answer (the line beginning "
                                             f"{SAFETY_MARK}); an amendment may not remove it, since the answer and "
                                             "its banner would leave every screen. Keep that line and change the "
                                             "rest; if the answer was never this patient's, void the check-in instead"))
        return clean, problems


def reason_problems(reason: str | None, what: str) -> list[Problem]:
    """The reason an amendment or a void (`what`) needs: given, and plain text of a sensible length."""
    reason = (reason or "").strip()
    if not reason:
        return [Problem("reason", f"Give a reason for the {what}; it is kept with the record's history")]
    problem = free_text_problem(f"The reason for the {what}", reason, REASON_MAX_LENGTH)
    return [Problem("reason", problem)] if problem else []


def review_problems(*, level: str, reasons: Sequence[str], action: str | None, note: str | None) -> list[Problem]:
    """What an alert review must hold: a level, an action from its list, and a note where the next clinician needs
    one (a red alert, the action 'other', the follow-up of a PHQ-9 question 9 answer)."""
    problems = []
    if level not in LEVELS:
        problems.append(Problem("level", f"Level {level!r} is not one of {', '.join(LEVELS)}"))
    allowed = SAFETY_FOLLOW_UP_ACTIONS if SAFETY_FOLLOW_UP in reasons else REVIEW_ACTIONS
    if not action:
        problems.append(Problem("action", "Choose what was done from the list of actions"))
    elif action not in allowed:
        problems.append(Problem("action", f"Choose an action from the list ({action!r} is not one of them)"))
    if action == "other" and not (note or "").strip():
        problems.append(Problem("note", "Say in the note what was done when the action is 'other'"))
    elif SAFETY_FOLLOW_UP in reasons and not (note or "").strip():
        problems.append(Problem("note", "Say in the note what was done about the answer to PHQ-9 question 9 (who "
                                        "spoke with the patient, and the plan)"))
    elif level == "red" and not (note or "").strip():
        # A red alert closed with no words leaves the next clinician nothing to go on at the meeting.
        problems.append(Problem("note", "Say in the note what was decided for this red alert (who spoke with the "
                                        "patient, and the plan)"))
    problem = free_text_problem("The note", note or "", REVIEW_NOTE_MAX_LENGTH)
    if problem:
        problems.append(Problem("note", problem))
    return problems


RULES: dict[str, dict[str, Rule]] = {"patients": PATIENT_RULES, "sessions": SESSION_RULES, "checkins": CHECKIN_RULES}

VALIDATE: dict[str, Callable[[Validator, Mapping[str, Any]], tuple[dict[str, Any], list[Problem]]]] = {
    "patients": Validator.patient,
    "sessions": Validator.session,
    "checkins": Validator.checkin,
}


def _effect_label(effect: str) -> str:
    """A catalogue side effect's name as clinicians read it ('Nausea'), for messages."""
    from seed_data.catalogue import side_effects

    label = next((e.label for e in side_effects() if e.id == effect), effect)
    return label if label.lower() == effect else f"{label} ({effect})"
