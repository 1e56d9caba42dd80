"""E-mail: one message (`.eml`) or a mailbox (`mbox`). Each message becomes episodes with
its sender, date and subject; the body is the text/plain part (or the HTML one as text),
without quoted replies (`>` lines, and everything from "On ... wrote:" on)."""

from __future__ import annotations

import logging
import re
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any

from remem.ingest.chunks import chunk_text
from remem.ingest.html import SKIPPED, main_text
from remem.ingest.records import Chunk, Parsed, Source, moment
from remem.ingest.sessions import digest, session_id

_MBOX_SEPARATOR = re.compile(rb"(?:^|\n)From [^\n]*\n")
_HEADER = re.compile(rb"^[A-Za-z][A-Za-z0-9-]*:[ \t]")
_SEPARATOR_LINE = re.compile(rb"^From \S+ [^\n]*\d{1,2}:\d{2}")  # From <sender> <date and time>
_HEADER_LINE = re.compile(rb"^[A-Za-z][A-Za-z0-9-]*:(?:[ \t]|$)")  # "Cc:" may be empty
SNIFF_BYTES = 8192
_REPLY_TAIL = re.compile(
    r"^(On\b.{0,300}\bwrote:|-{2,}\s*Original Message\s*-{2,}|_{10,}|From: .+)\s*$",
    re.IGNORECASE | re.MULTILINE | re.DOTALL,
)
_SUBJECT_PREFIX = re.compile(r"^\s*((re|fwd?|aw|wg|sv)\s*:\s*)+", re.IGNORECASE)
log = logging.getLogger(__name__)
MAIL_HEADERS = (b"from:", b"received:", b"return-path:", b"message-id:", b"date:", b"subject:")


def looks_like_message(data: bytes) -> bool:
    """A block of headers at the top (at least two, one a mail header such as From: or
    Subject:) ended by a blank line: a note that starts with "Subject:" is not e-mail."""
    start = data.lstrip()
    if not start[:200].lower().startswith(MAIL_HEADERS):
        return False
    headers = 0
    for line in start[:SNIFF_BYTES].split(b"\n"):
        line = line.rstrip(b"\r")
        if not line:
            return headers >= 2
        if line[:1] in (b" ", b"\t") and headers:
            continue  # a folded header goes on
        if _HEADER_LINE.match(line) is None:
            return False
        headers += 1
    return False


def looks_like_mbox(data: bytes) -> bool:
    """An mbox separator line ("From sender date", with a time) followed by a header: a
    text that starts with the word "From " is not a mailbox."""
    if not data.startswith(b"From "):
        return False
    first, _, rest = data[:SNIFF_BYTES].partition(b"\n")
    return _SEPARATOR_LINE.match(first) is not None and _HEADER.match(rest) is not None


def parse(source: Source, me: str | None, *, mbox: bool) -> Parsed:
    raw = _split_mbox(source.data) if mbox else [source.data]
    chunks: list[Chunk] = []
    for index, data in enumerate(raw):
        try:
            message = BytesParser(policy=policy.default).parsebytes(data)
            if isinstance(message, EmailMessage):
                chunks += _message(message, index, source, me)
        except Exception:  # the stdlib parser trips on some headers: lose that one message only
            log.warning("skipped message %d of %s", index + 1, source.path, exc_info=True)
    return Parsed("mbox" if mbox else "email", chunks)


def header(message: EmailMessage, name: str) -> str:
    """A header's text; its raw text when the parser cannot read it (`To: <` and other
    malformed headers raise inside the stdlib's parser)."""
    try:
        return str(message.get(name, ""))
    except Exception:
        raw = next((v for k, v in message.raw_items() if k.lower() == name.lower()), "")
        return " ".join(str(raw).split())


def _addresses(value: str) -> list[tuple[str, str]]:
    try:
        return [(str(n), str(a)) for n, a in getaddresses([value])]
    except Exception:
        return []


def _split_mbox(data: bytes) -> list[bytes]:
    """The messages of an mbox: the text between `From ` separator lines (`>From ` lines
    inside a body unescaped)."""
    parts = _MBOX_SEPARATOR.split(data)
    return [re.sub(rb"(?m)^>(>*From )", rb"\1", part) for part in parts if part.strip()]


def _message(message: EmailMessage, index: int, source: Source, me: str | None) -> list[Chunk]:
    subject = " ".join(header(message, "subject").split())
    sender_name, sender_address = (_addresses(header(message, "from")) or [("", "")])[0]
    sender = sender_name or sender_address or None
    message_id = header(message, "message-id").strip() or f"#{index}"
    body = strip_quoted(_body(message))
    if not body and not subject:
        return []
    thread = _SUBJECT_PREFIX.sub("", subject).strip().casefold() or message_id
    metadata: dict[str, Any] = {
        "subject": subject,
        "from": sender_address,
        "to": [address for _, address in _addresses(header(message, "to")) if address],
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
        try:
            part = message.get_body(preferencelist=(kind,))
            content = part.get_content() if part is not None else None
        except Exception:  # an unknown or lying charset, a broken MIME tree: try the other
            continue
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
        when = parsedate_to_datetime(header(message, "date"))
    except (TypeError, ValueError, IndexError):
        return None
    return moment(when.isoformat()) if when is not None else None
