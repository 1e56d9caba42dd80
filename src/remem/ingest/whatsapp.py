"""WhatsApp's "Export chat" text: one message per header line (a date, a time, the sender),
continued on the lines after it. Both phone styles are read:

    12/31/23, 9:41 PM - Alice: text          (Android, month first, 12-hour clock)
    31/12/2023, 21:41 - Alice: text          (Android, day first)
    [31.12.23, 21:41:05] Alice: text         (iPhone)

Whether a date is day or month first is decided once per file from the dates in it.
Media placeholders and deleted messages are skipped; so are system lines (no sender)."""

from __future__ import annotations

import itertools
import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

from remem.ingest.records import Chunk, Parsed
from remem.ingest.sessions import session_id

HEADER = re.compile(
    r"^[\u200e\u200f]?\[?(?P<date>\d{1,4}[./-]\d{1,2}[./-]\d{1,4}),?\s+"
    r"(?P<time>\d{1,2}[:.]\d{2}(?:[:.]\d{2})?)"
    r"(?:[\s\u202f\u00a0]*(?P<half>[AaPp]\.?\s?[Mm]\.?))?\]?\s*(?:-\s+)?(?P<rest>.*)$"
)
# what the phone writes instead of a photo, a voice note, a deleted message...
PLACEHOLDER = re.compile(
    r"^[\u200e]?(<media omitted>|<attached: [^>]*>|(image|video|audio|sticker|gif|document"
    r"|contact card) omitted|this message was deleted|you deleted this message"
    r"|null|<this message was edited>)$",
    re.IGNORECASE,
)
EDITED = "<This message was edited>"  # at a message's end (found without a regex: linear)


@dataclass
class _Message:
    date: str
    time: str
    half: str | None
    name: str | None
    lines: list[str]


SNIFF_HEADERS = 50  # header lines looked at to tell a chat from a dated journal
MAX_NAME_CHARS = 60


def looks_like(text: str) -> bool:
    """The first non-empty line is a WhatsApp header, and most of the first header lines
    name a sender ("Name: text"): a journal of dated lines is not a chat."""
    lines = (line.strip() for line in text.splitlines() if line.strip())
    first = next(lines, "")
    if HEADER.match(first) is None:
        return False
    headers = senders = 0
    for line in itertools.chain([first], lines):
        found = HEADER.match(line)
        if found is None:
            continue
        headers += 1
        senders += _sender(found["rest"]) is not None
        if headers >= SNIFF_HEADERS:
            break
    return senders * 2 > headers


def _sender(rest: str) -> str | None:
    """Who wrote a header line ("Name: text"), None for a system line."""
    name, colon, _ = rest.partition(": ")
    sender = name.strip().lstrip("\u200e~\u202f ").strip() if colon else ""
    return sender if sender and len(sender) <= MAX_NAME_CHARS else None


def parse(text: str, path: str, identity: str) -> Parsed:
    messages = _messages(text)
    day_first = _day_first([m.date for m in messages], any(m.half for m in messages))
    session = session_id("whatsapp", identity)
    chunks: list[Chunk] = []
    seen: Counter[str] = Counter()
    for message in messages:
        body = _unedited("\n".join(message.lines).strip())
        if message.name is None or not body or PLACEHOLDER.match(body):
            continue
        when = _when(message, day_first)
        stamp = when.isoformat() if when else f"{message.date} {message.time}"
        seen[f"{stamp}/{message.name}"] += 1
        chunks.append(
            Chunk(
                key=f"{stamp}/{message.name}/{seen[f'{stamp}/{message.name}']}",
                text=body,
                session=session,
                occurred_at=when,
                name=message.name,
                metadata={"conversation": path.rsplit("/", 1)[-1].removesuffix(".txt")},
            )
        )
    senders = tuple(sorted({chunk.name for chunk in chunks if chunk.name}))
    return Parsed("whatsapp", chunks, senders=senders)


def _unedited(body: str) -> str:
    """The body without the marker a phone adds to an edited message."""
    return body.removesuffix(EDITED).rstrip() if body.endswith(EDITED) else body


def _messages(text: str) -> list[_Message]:
    """Header lines and the lines that continue them (lines before the first header are
    left out)."""
    messages: list[_Message] = []
    for line in text.splitlines():
        found = HEADER.match(line.strip())
        if found is None:
            if messages:
                messages[-1].lines.append(line)
            continue
        name, colon, said = found["rest"].partition(": ")
        sender = name.strip().lstrip("\u200e~\u202f ").strip() if colon else None
        messages.append(
            _Message(found["date"], found["time"], found["half"], sender or None, [said])
        )
    return messages


def _day_first(dates: list[str], twelve_hour: bool) -> bool:
    """Day before month, unless a date's second number cannot be a month but its first
    can (12/31/23); when every date could be either, a 12-hour clock says US style."""
    firsts, seconds = [], []
    for date in dates:
        parts = re.split(r"[./-]", date)
        if len(parts) == 3 and len(parts[0]) <= 2:
            firsts.append(int(parts[0]))
            seconds.append(int(parts[1]))
    if any(value > 12 for value in firsts):
        return True
    return not (twelve_hour or any(value > 12 for value in seconds))


def _when(message: _Message, day_first: bool) -> datetime | None:
    """The message's time (taken as UTC: the export does not say the phone's zone)."""
    parts = [int(part) for part in re.split(r"[./-]", message.date)]
    if len(str(re.split(r"[./-]", message.date)[0])) == 4:
        year, month, day = parts
    else:
        first, second, year = parts
        day, month = (first, second) if day_first else (second, first)
    year += 2000 if year < 100 else 0
    clock_parts = [int(part) for part in re.split(r"[:.]", message.time)]
    hour, minute, second_of = [*clock_parts, 0][:3]
    if message.half:
        pm = message.half.lower().startswith("p")
        hour = hour % 12 + (12 if pm else 0)
    try:
        return datetime(year, month, day, hour, minute, second_of, tzinfo=UTC)
    except ValueError:
        return None
