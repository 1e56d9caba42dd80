"""Time in remem: every stored time is UTC, written as fixed-width ISO 8601 so text order is
time order. Naive datetimes and strings without an offset are taken as UTC."""

from __future__ import annotations

from datetime import UTC, datetime

from remem.errors import InvalidDateError


def now() -> datetime:
    """The current time, in UTC."""
    return datetime.now(UTC)


def parse_time(value: datetime | str | None, *, field: str = "occurred_at") -> datetime:
    """A datetime or ISO 8601 string as an aware UTC datetime; None means now."""
    if value is None:
        return now()
    if isinstance(value, str):
        text = value.strip()
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            raise InvalidDateError(
                f"{field}: {text!r} is not an ISO 8601 date or time (e.g. 2024-05-08T13:56:00Z)"
            ) from None
    if not isinstance(value, datetime):
        raise InvalidDateError(
            f"{field}: expected a datetime or an ISO 8601 string, got {type(value).__name__}"
        )
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def to_text(moment: datetime) -> str:
    """The stored form: UTC, microseconds, fixed width."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def from_text(text: str) -> datetime:
    """Read a stored time back."""
    return datetime.fromisoformat(text).astimezone(UTC)
