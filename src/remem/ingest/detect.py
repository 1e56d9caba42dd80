"""Which format a file is in (by its content first, its name second), and its chunks; a
file that cannot be read raises UnreadableFileError naming why."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from remem.ingest import chatgpt, claude, html, mail, markdown, pdf, telegram, text, whatsapp
from remem.ingest.records import Parsed, Source, UnreadableFileError

MAX_FILE_BYTES = 256 * 1024 * 1024  # a decade of chat exports fits; more is not a document
MAX_LINE_CHARS = 200_000  # a text line this long is data, not something a person wrote
SNIFF_BYTES = 8192
MARKDOWN = (".md", ".markdown", ".mdown", ".mkd")
HTML = (".html", ".htm", ".xhtml")
TEXT = (".txt", ".text", ".rst", ".org", "")


def parse(source: Source, me: str | None) -> Parsed:
    """The chunks of `source`, read as the format it is in."""
    data = source.data
    suffix = _suffix(source.path)
    if not data.strip():
        raise UnreadableFileError("empty file")
    if len(data) > MAX_FILE_BYTES:
        raise UnreadableFileError(f"larger than {MAX_FILE_BYTES // 2**20} MiB")
    if data.startswith(b"%PDF-"):
        return pdf.parse(source)
    if suffix == ".pdf":
        raise UnreadableFileError("named .pdf but not a PDF file")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 (NULs are its text): as UTF-8
        data = _decode(data).encode("utf-8", "surrogatepass")
    if b"\x00" in data[:SNIFF_BYTES]:
        raise UnreadableFileError("a binary file")
    if suffix in (".eml", ".mbox") or mail.looks_like_mbox(data) or mail.looks_like_message(data):
        mbox = suffix == ".mbox" or mail.looks_like_mbox(data)
        return mail.parse(replace(source, data=data), me, mbox=mbox)
    decoded = _decode(data)
    known = suffix in TEXT or suffix in MARKDOWN or suffix in HTML
    if suffix == ".json" or (not known and decoded.lstrip()[:1] in ("{", "[")):
        return _json_export(decoded, me, suffix)
    _check_lines(decoded)
    if suffix in HTML or decoded.lstrip()[:15].lower().startswith(("<!doctype html", "<html")):
        return html.parse(decoded, source)
    if suffix in MARKDOWN:
        return markdown.parse(decoded, source)
    if suffix in TEXT:
        if whatsapp.looks_like(decoded):
            return whatsapp.parse(decoded, source.path, source.identity)
        return text.parse(decoded, source)
    raise UnreadableFileError(f"unknown format ({suffix} files are not read)")


def _suffix(path: str) -> str:
    name = path.rsplit("/", 1)[-1].lower()
    return "." + name.rsplit(".", 1)[1] if "." in name.lstrip(".") else ""


def _decode(data: bytes) -> str:
    """The text of a file: UTF-8 (a byte-order mark dropped), or UTF-16 with its mark."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise UnreadableFileError("not valid UTF-16 text") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise UnreadableFileError(f"not valid UTF-8 text (byte {error.start})") from None


def _check_lines(decoded: str) -> None:
    longest = max((len(line) for line in decoded.splitlines()), default=0)
    if longest > MAX_LINE_CHARS:
        raise UnreadableFileError(
            f"a line of {longest} characters (over {MAX_LINE_CHARS}): not a text document"
        )


def _json_export(decoded: str, me: str | None, suffix: str) -> Parsed:
    try:
        data: Any = json.loads(decoded)
    except (ValueError, RecursionError) as error:
        if suffix != ".json":  # text that happens to start with a bracket
            raise UnreadableFileError(f"unknown format ({suffix or 'no'} extension)") from None
        raise UnreadableFileError(f"not valid JSON: {error}") from None
    if chatgpt.looks_like(data):
        return chatgpt.parse(data, me)
    if claude.looks_like(data):
        return claude.parse(data, me)
    if telegram.looks_like(data):
        return telegram.parse(data)
    raise UnreadableFileError("JSON that is not a ChatGPT, Claude or Telegram export")
