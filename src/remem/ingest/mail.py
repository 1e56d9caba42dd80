"""E-mail: one message (`.eml`) or a mailbox (`mbox`). Each message becomes episodes with
its sender, date and subject; the body is the text/plain part (or the HTML one as text),
without quoted replies (`>` lines, and everything from "On ... wrote:" on)."""

from __future__ import annotations

import re
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr, parsedate_to_datetime
from typing import Any

from remem.ingest.chunks import chunk_text
from remem.ingest.html import SKIPPED, main_text
from remem.ingest.records import Chunk, Parsed, Source, moment
from remem.ingest.sessions import digest, session_id

_MBOX_SEPARATOR = re.compile(rb"(?:^|\n)From [^\n]*\n")
_HEADER = re.compile(rb"^[A-Za-z][A-Za-z0-9-]*:[ \t]")
_REPLY_TAIL = re.compile(
    r"^(On\b.{0,300}\bwrote:|-{2,}\s*Original Message\s*-{2,}|_{10,}|From: .+)\s*$",
    re.IGNORECASE | re.MULTILINE | re.DOTALL,
)
_SUBJECT_PREFIX = re.compile(r"^\s*((re|fwd?|aw|wg|sv)\s*:\s*)+", re.IGNORECASE)
MAIL_HEADERS = (b"from:", b"received:", b"return-path:", b"message-id:", b"date:", b"subject:")


def looks_like_message(data: bytes) -> bool:
    first = data.lstrip()[:200].lower()
    return first.startswith(MAIL_HEADERS) and _HEADER.match(data.lstrip()) is not None


def looks_like_mbox(data: bytes) -> bool:
    return data.startswith(b"From ") and b"\n" in data[:1000]


def parse(source: Source, me: str | None, *, mbox: bool) -> Parsed:
    raw = _split_mbox(source.data) if mbox else [source.data]
    chunks: list[Chunk] = []
    for index, data in enumerate(raw):
        message = BytesParser(policy=policy.default).parsebytes(data)
        if isinstance(message, EmailMessage):
            chunks += _message(message, index, source, me)
    return Parsed("mbox" if mbox else "email", chunks)


def _split_mbox(data: bytes) -> list[bytes]:
    """The messages of an mbox: the text between `From ` separator lines (`>From ` lines
    inside a body unescaped)."""
    parts = _MBOX_SEPARATOR.split(data)
    return [re.sub(rb"(?m)^>(>*From )", rb"\1", part) for part in parts if part.strip()]


def _message(message: EmailMessage, index: int, source: Source, me: str | None) -> list[Chunk]:
    subject = " ".join(str(message.get("subject", "")).split())
    sender_name, sender_address = parseaddr(str(message.get("from", "")))
    sender = sender_name or sender_address or None
    message_id = str(message.get("message-id", "")).strip() or f"#{index}"
    body = strip_quoted(_body(message))
    if not body and not subject:
        return []
    thread = _SUBJECT_PREFIX.sub("", subject).strip().casefold() or message_id
    metadata: dict[str, Any] = {
        "subject": subject,
        "from": sender_address,
        "to": [address for _, address in getaddresses([str(message.get("to", ""))]) if address],
        "message_id": message_id,
    }
    mine = me is not None and me.casefold() in {sender_name.casefold(), sender_address.casefold()}
    texts = chunk_text(f"{subject}\n\n{body}" if subject else body) or [subject]
    return [
        Chunk(
            key=f"{digest(message_id)[:16]}/{part}",
            text=text,
            session=session_id("email", f"{source.identity}\x00{thread}"),
            occurred_at=_date(message),
            name=sender,
            role="user" if mine else sender,
            metadata={**metadata, "title": subject},
        )
        for part, text in enumerate(texts)
    ]


def _body(message: EmailMessage) -> str:
    """The text/plain part, or the HTML part as text; "" when neither can be read."""
    for kind in ("plain", "html"):
        part = message.get_body(preferencelist=(kind,))
        if part is None:
            continue
        try:
            content = part.get_content()
        except (LookupError, UnicodeError, ValueError):
            continue  # an unknown or lying charset: try the other part
        if not isinstance(content, str):
            continue
        if kind == "html":
            _, sections = main_text(content, SKIPPED | {"blockquote"})  # quoted replies
            return "\n\n".join(section.text for section in sections)
        return content
    return ""


def strip_quoted(body: str) -> str:
    """The body without quoted lines, the "On ... wrote:" tail, or a signature."""
    found = _REPLY_TAIL.search(body)
    if found is not None:
        body = body[: found.start()]
    lines = []
    for line in body.replace("\r\n", "\n").split("\n"):
        if line == "-- ":  # a signature follows
            break
        if not line.lstrip().startswith(">"):
            lines.append(line.rstrip())
    return "\n".join(lines).strip()


def _date(message: EmailMessage) -> Any:
    try:
        when = parsedate_to_datetime(str(message.get("date", "")))
    except (TypeError, ValueError, IndexError):
        return None
    return moment(when.isoformat()) if when is not None else None
