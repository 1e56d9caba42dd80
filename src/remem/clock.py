"""Time in remem: every stored time is UTC, written as fixed-width ISO 8601 so text order is
time order. Naive datetimes and strings without an offset are taken as UTC."""

from __future__ import annotations

from datetime import UTC, datetime

from remem.errors import InvalidDateError

# What can be stored: a day short of datetime's own range at each end, so a time read back
# in any time zone (PostgreSQL hands times in the session's) is still a datetime.
EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
LATEST = datetime(9999, 12, 30, 23, 59, 59, 999999, tzinfo=UTC)


def now() -> datetime:
    """The current time, in UTC."""
    return datetime.now(UTC)


def parse_time(value: datetime | str | None, *, field: str = "occurred_at") -> datetime:
    """A datetime or ISO 8601 string as an aware UTC datetime; None means now. Times
    outside EARLIEST..LATEST are refused."""
    if value is None:
        return now()
    if isinstance(value, str):
        text = value.strip()
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            raise InvalidDateError(
                f"{field}: {_shown(text)} is not an ISO 8601 date or time"
                " (e.g. 2024-05-08T13:56:00Z)"
            ) from None
    if not isinstance(value, datetime):
        raise InvalidDateError(
            f"{field}: expected a datetime or an ISO 8601 string, got {type(value).__name__}"
        )
    try:
        moment = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00+05:00 is in year 0 in UTC
        moment = None
    if moment is None or not EARLIEST <= moment <= LATEST:
        raise InvalidDateError(
            f"{field}: {value.isoformat()} is outside the times remem can store"
            f" ({EARLIEST.date().isoformat()} to {LATEST.date().isoformat()}, UTC)"
        )
    return moment


def to_text(moment: datetime) -> str:
    """The stored form: UTC, microseconds, fixed width."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def from_text(text: str) -> datetime:
    """Read a stored time back."""
    return datetime.fromisoformat(text).astimezone(UTC)


def _shown(text: str) -> str:
    return repr(text) if len(text) <= 60 else repr(text[:57] + "...")
