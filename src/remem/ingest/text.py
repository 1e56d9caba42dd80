"""Plain text: one document, paragraphs kept together in bounded chunks."""

from __future__ import annotations

from remem.ingest.document import Document, Section, document_chunks
from remem.ingest.records import Parsed, Source


def parse(text: str, source: Source) -> Parsed:
    name = source.path.rsplit("/", 1)[-1]
    document = Document(
        format="text",
        path=source.identity,
        title=name.rsplit(".", 1)[0] if "." in name else name,
        sections=[Section((), text)],
        occurred_at=None,  # dated by the file (not hashed: touching it changes nothing)
    )
    return Parsed("text", document_chunks(document))
