"""What every document format shares: its sections (a heading's text, a page) cut into
bounded chunks, each with the document's title, its section and page in metadata."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from remem.ingest.chunks import chunk_text
from remem.ingest.records import Chunk
from remem.ingest.sessions import session_id

_WIKILINK = re.compile(r"\[\[([^\[\]|#\n]*)(?:#[^\[\]|\n]*)?(?:\|[^\[\]\n]*)?\]\]")


@dataclass(frozen=True)
class Section:
    """A part of a document: the headings above it (outermost first), its text, its page."""

    headings: tuple[str, ...]
    text: str
    page: int | None = None


@dataclass(frozen=True)
class Document:
    """A document's parts and what is known of it as a whole."""

    format: str
    path: str  # the file's identity (`Source.identity`): its session comes from it
    title: str
    sections: Sequence[Section]
    occurred_at: datetime | None
    metadata: dict[str, Any] = field(default_factory=dict)
    wikilinks: bool = False  # markdown: [[links]] name other notes


def document_chunks(document: Document) -> list[Chunk]:
    """Each section's text in bounded chunks; a chunk's key is its section (by headings,
    numbered when a heading repeats) and its place in it, so an edit elsewhere in the
    file leaves its key alone."""
    session = session_id("document", document.path)
    repeats: Counter[str] = Counter()
    chunks: list[Chunk] = []
    for section in document.sections:
        heading = " > ".join(section.headings)
        place = heading if section.page is None else f"page {section.page}"
        repeats[place] += 1
        for index, text in enumerate(chunk_text(section.text)):
            metadata: dict[str, Any] = {**document.metadata, "title": document.title}
            if heading:
                metadata["section"] = heading
            if section.page is not None:
                metadata["page"] = section.page
            chunks.append(
                Chunk(
                    key=f"{place}#{repeats[place]}/{index}",
                    text=text,
                    session=session,
                    occurred_at=document.occurred_at,
                    metadata=metadata,
                    links=wikilinks(text) if document.wikilinks else (),
                )
            )
    return chunks


def wikilinks(text: str) -> tuple[str, ...]:
    """The notes `[[target]]`, `[[target|alias]]` and `[[target#heading]]` name, as
    `link_name`s, in order, each once."""
    names = (link_name(found.group(1)) for found in _WIKILINK.finditer(text))
    return tuple(dict.fromkeys(name for name in names if name))


def link_name(target: str) -> str:
    """What a wikilink and a file are matched by: the file's name without folder or
    `.md`, case and surrounding spaces ignored (as Obsidian matches them)."""
    name = target.strip().replace("\\", "/").rsplit("/", 1)[-1]
    for suffix in (".md", ".markdown"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return " ".join(name.split()).casefold()
