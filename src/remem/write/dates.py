"""Relative dates resolved against when something was said: "yesterday", said on 8 May
2023, is 7 May 2023. A memory read a year later still knows when things happened."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import MAXYEAR, MINYEAR, date, datetime, timedelta

_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_NUMBERS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
}  # fmt: skip
_COUNT = r"(?P<count>\d{1,2}|" + "|".join(_NUMBERS) + r")"


def _day(d: date) -> str:
    return f"{d.day} {d:%B %Y}"


def _week_of(d: date) -> str:
    return "the week of " + _day(d - timedelta(days=d.weekday()))


def _month(d: date, shift: int) -> str:
    index = d.year * 12 + d.month - 1 + shift
    return date(index // 12, index % 12 + 1, 1).strftime("%B %Y")


def _year(year: int) -> str:
    if not MINYEAR <= year <= MAXYEAR:
        raise ValueError(f"year {year} is not a date")
    return str(year)


def _ago(unit: str, count: int, d: date) -> str:
    if unit.startswith("day"):
        return _day(d - timedelta(days=count))
    if unit.startswith("week"):
        return _week_of(d - timedelta(weeks=count))
    if unit.startswith("month"):
        return _month(d, -count)
    return _year(d.year - count)


def _weekday(name: str, d: date, direction: int) -> str:
    """The named weekday strictly before (direction -1) or after (+1) `d`."""
    gap = (_WEEKDAYS.index(name) - d.weekday()) * direction % 7 or 7
    return _day(d + timedelta(days=gap * direction))


def _shift(match: re.Match[str]) -> int:
    return {"last": -1, "this": 0, "next": 1}[match["which"].lower()]


Resolver = Callable[[re.Match[str], date], str]
_RULES: list[tuple[str, Resolver]] = [
    (r"the day before yesterday", lambda m, d: _day(d - timedelta(days=2))),
    (r"yesterday|last night", lambda m, d: _day(d - timedelta(days=1))),
    (r"today|tonight|this (?:morning|afternoon|evening)", lambda m, d: _day(d)),
    (r"tomorrow", lambda m, d: _day(d + timedelta(days=1))),
    (
        _COUNT + r" (?P<unit>days?|weeks?|months?|years?) ago",
        lambda m, d: _ago(m["unit"], int(_NUMBERS.get(m["count"].lower(), m["count"])), d),
    ),
    (r"last weekend", lambda m, d: "the weekend of " + _weekday("saturday", d, -1)),
    (r"this weekend", lambda m, d: "the weekend of " + _weekday("saturday", d - timedelta(1), 1)),
    (r"(?P<which>last|this|next) week", lambda m, d: _week_of(d + timedelta(weeks=_shift(m)))),
    (r"(?P<which>last|this|next) month", lambda m, d: _month(d, _shift(m))),
    (r"(?P<which>last|this|next) year", lambda m, d: _year(d.year + _shift(m))),
    (
        r"(?P<which>last|next) (?P<day>" + "|".join(_WEEKDAYS) + ")",
        lambda m, d: _weekday(m["day"].lower(), d, _shift(m)),
    ),
]  # fmt: skip
_COMPILED = [(re.compile(rf"\b(?:{pattern})\b", re.IGNORECASE), rule) for pattern, rule in _RULES]


def resolve_dates(text: str, said_at: datetime) -> list[tuple[str, str]]:
    """Each relative date expression in `text`, in order, with the date it names. Earlier
    rules win where matches overlap ("the day before yesterday" over "yesterday")."""
    reference = said_at.date()
    taken: list[tuple[int, int, str, str]] = []
    for pattern, rule in _COMPILED:
        for match in pattern.finditer(text):
            start, end = match.span()
            if all(end <= s or start >= e for s, e, _, _ in taken):
                try:
                    meaning = rule(match, reference)
                except (OverflowError, ValueError):
                    # "yesterday" said on 1 January of year 1: no date to name. The span
                    # is still taken, so a shorter rule does not claim part of it.
                    meaning = ""
                taken.append((start, end, match.group(0).lower(), meaning))
    found = ((said, meaning) for _, _, said, meaning in sorted(taken) if meaning)
    return list(dict.fromkeys(found))


def dates_context(text: str, said_at: datetime) -> str | None:
    """A line saying what the relative dates of `text` mean, or None when it has none."""
    resolved = resolve_dates(text, said_at)
    if not resolved:
        return None
    return "; ".join(f"{expression} = {meaning}" for expression, meaning in resolved)
