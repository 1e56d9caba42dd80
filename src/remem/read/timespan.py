"""Time expressions in a query, resolved to a span of time.

Only explicit dates are read ("9 November 2022", "November 9, 2022", "May 2023",
"2023-05-08", "in June", "in 2022"); a month without a year means its latest occurrence
at or before the reference time, which search takes from the newest memory it found, i.e.
from when things were said rather than from today.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from remem.read.text_cache import per_short_text

_MONTH_NAMES = (
    "january", "february", "march", "april", "may", "june",
    "july", "august", "september", "october", "november", "december",
)  # fmt: skip
_MONTHS = {
    name: number for number, full in enumerate(_MONTH_NAMES, start=1) for name in (full, full[:3])
}
_MONTH = r"(?P<month>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_DAY = r"(?P<day>\d{1,2})(?:st|nd|rd|th)?"
_YEAR = r"(?P<year>(?:19|20)\d\d)"
_PATTERNS = [
    ("day", re.compile(r"\b(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})\b")),
    ("day", re.compile(rf"\b{_DAY} (?:of )?{_MONTH},? {_YEAR}\b")),
    ("day", re.compile(rf"\b{_MONTH} {_DAY},? {_YEAR}\b")),
    ("month", re.compile(rf"\b{_MONTH},? {_YEAR}\b")),
    ("month", re.compile(rf"\b(?:in|during|on) {_MONTH}\b")),
    ("year", re.compile(rf"\b(?:in|during) {_YEAR}\b")),
]

Span = tuple[datetime, datetime]

# A question asking for a time ("When did...", "How long...") is answered by a note that
# mentions one: relative ("last week", "yesterday"), named (a weekday, a month) or a year.
_ASKS_WHEN = re.compile(
    r"^\W*(when|how long|how many (days|weeks|months|years)|what (day|date|time|year|month))\b",
    re.IGNORECASE,
)
_TIME_WORDS = frozenset(
    """yesterday today tomorrow tonight ago last next recently since weekend week month year
    monday tuesday wednesday thursday friday saturday sunday""".split()  # noqa: SIM905
) | frozenset(_MONTH_NAMES)
_WORD_OR_YEAR = re.compile(r"[a-z]+|\b(?:19|20)\d\d\b")


def asks_when(query: str) -> bool:
    """True when the query asks for a time."""
    return bool(_ASKS_WHEN.search(query))


@per_short_text
def mentions_time(text: str) -> bool:
    """True when the text refers to a time (per candidate of every question asking when,
    so the answers are kept)."""
    return any(
        word in _TIME_WORDS or word[0].isdigit() for word in _WORD_OR_YEAR.findall(text.lower())
    )


def find_span(query: str, reference: Callable[[], datetime | None]) -> Span | None:
    """The first time span the query names, or None. `reference` is called only when a
    month has no year."""
    text = query.lower()
    for unit, pattern in _PATTERNS:
        match = pattern.search(text)
        if match:
            span = _span(unit, match.groupdict(), reference)
            if span:
                return span
    return None


def _span(
    unit: str, parts: dict[str, str | None], reference: Callable[[], datetime | None]
) -> Span | None:
    month_text = parts.get("month")
    month = (
        int(month_text) if month_text and month_text.isdigit() else _MONTHS.get(month_text or "", 0)
    )
    try:
        if unit == "year":
            year = int(parts["year"] or 0)
            return _utc(year, 1, 1), _utc(year + 1, 1, 1)
        year_text = parts.get("year")
        year = int(year_text) if year_text else _year_of(month, reference())
        if unit == "day":
            start = _utc(year, month, int(parts["day"] or 0))
            return start, start + timedelta(days=1)
        return _utc(year, month, 1), _utc(year + (month == 12), month % 12 + 1, 1)
    except (ValueError, TypeError, OverflowError):
        # "31 February", no reference time, or past what a datetime holds ("9999-12-31"
        # ends in year 10000): not a usable date
        return None


def _year_of(month: int, reference: datetime | None) -> int:
    if reference is None:
        raise ValueError("no reference time")
    return reference.year if month <= reference.month else reference.year - 1


def _utc(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, tzinfo=UTC)
