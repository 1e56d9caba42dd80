"""Markdown notes (an Obsidian vault too): simple YAML front matter as metadata (`key:
value` lines and `- item` lists), sections by `#` headings, `[[wikilinks]]` kept for
linking the notes of two files."""

from __future__ import annotations

import re
from typing import Any

from remem.ingest.document import Document, Section, document_chunks, link_name
from remem.ingest.records import Parsed, Source, moment

# a heading's closing #s are stripped with str methods: a regex with `(.*?)\s*#*\s*$` takes
# cubic time on a long line of spaces
_HEADING = re.compile(r"^(#{1,6})[ \t]+(.*)$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_KEY = re.compile(r"^([A-Za-z0-9_][\w .-]*):(?:\s+(.*))?$")
MAX_FRONT_MATTER_LINES = 200


def parse(text: str, source: Source) -> Parsed:
    front, body = front_matter(text)
    stem = source.path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    sections = _sections(body)
    first_heading = next((s.headings[0] for s in sections if s.headings), None)
    title = _scalar(front.get("title")) or first_heading or stem
    document = Document(
        format="markdown",
        path=source.identity,
        title=title,
        sections=sections,
        occurred_at=moment(_scalar(front.get("date")) or None),
        metadata={"front_matter": front} if front else {},
        wikilinks=True,
    )
    return Parsed("markdown", document_chunks(document), title=link_name(stem))


def front_matter(text: str) -> tuple[dict[str, Any], str]:
    """The `---` block at the top as a dict of strings and lists of strings, and the rest
    (a block that is not closed is left in the text)."""
    lines = text.split("\n")
    if not lines or lines[0].strip() != "---":
        return {}, text
    end = next(
        (i for i, line in enumerate(lines[1:MAX_FRONT_MATTER_LINES], 1) if line.strip() == "---"),
        None,
    )
    if end is None:
        return {}, text
    values: dict[str, Any] = {}
    key = None
    for line in lines[1:end]:
        item = line.strip()
        if item.startswith("- ") and key is not None:
            listed = values[key] if isinstance(values[key], list) else []
            values[key] = [*listed, _unquote(item[2:])]
        elif (found := _KEY.match(line)) is not None:
            key = found.group(1).strip()
            values[key] = _value(found.group(2) or "")
    return values, "\n".join(lines[end + 1 :])


def _value(raw: str) -> Any:
    raw = raw.strip()
    if raw.startswith("[") and raw.endswith("]"):
        return [_unquote(part) for part in raw[1:-1].split(",") if part.strip()]
    return _unquote(raw)


def _unquote(raw: str) -> str:
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        return raw[1:-1]
    return raw


def _scalar(value: Any) -> str:
    return value if isinstance(value, str) else ""


def heading(line: str) -> tuple[int, str] | None:
    """A heading line's level and title (closing `#`s dropped), or None."""
    found = _HEADING.match(line)
    if found is None:
        return None
    title = found.group(2).rstrip()
    bare = title.rstrip("#")
    if not bare or bare[-1].isspace():  # closing #s follow a space (or are the whole title)
        title = bare.rstrip()
    return len(found.group(1)), title


def _sections(body: str) -> list[Section]:
    """The text under each heading, with the headings above it (`#` inside code fences is
    not a heading)."""
    sections: list[Section] = []
    headings: list[tuple[int, str]] = []
    lines: list[str] = []
    fenced = False

    def close() -> None:
        text = "\n".join(lines).strip()
        if text:
            sections.append(Section(tuple(title for _, title in headings), text))
        lines.clear()

    for line in body.split("\n"):
        if _FENCE.match(line):
            fenced = not fenced
        found = None if fenced else heading(line)
        if found is None:
            lines.append(line)
            continue
        close()
        level, title = found
        headings = [(lv, title) for lv, title in headings if lv < level]
        headings.append((level, title))
    close()
    return sections
