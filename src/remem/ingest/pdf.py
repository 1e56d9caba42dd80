"""PDF files: the text of each page (pypdf), a section per page.

A small PDF can hold pages whose text takes long to extract (one compressed content
stream shared by every page, thousands of text operators): a file is read within budgets
of pages, extracted characters and time, checked between pages, and skipped whole when it
is over one (never half ingested)."""

from __future__ import annotations

import io
import logging
import time
from dataclasses import dataclass

from remem.ingest.document import Document, Section, document_chunks
from remem.ingest.records import Parsed, Source, UnreadableFileError, moment


@dataclass(frozen=True)
class Budget:
    """How much of one PDF is read before it is skipped as too costly."""

    pages: int = 5000
    characters: int = 20_000_000  # of text: a long book is a few million
    # page content streams, decompressed (extracting text costs about 2 µs a byte): at
    # most `content_ratio` times the file's size (a real PDF's are a few times its size;
    # a small file of one costly stream shared by many pages is over), never under
    # `content_floor`, never over `content_bytes`
    content_bytes: int = 32 * 2**20
    content_floor: int = 4 * 2**20
    content_ratio: int = 50
    page_content_bytes: int = 4 * 2**20  # of one page
    seconds: float = 30.0  # checked between pages

    def content_allowed(self, file_size: int) -> int:
        """The bytes of page content a file of `file_size` bytes may have."""
        return min(self.content_bytes, max(self.content_floor, self.content_ratio * file_size))


def parse(source: Source, budget: Budget | None = None) -> Parsed:
    from pypdf import PdfReader

    budget = budget or Budget()
    # pypdf warns on every odd object of a damaged file: the file is reported, not logged
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(source.data))
        if reader.is_encrypted:
            raise UnreadableFileError("an encrypted PDF (remove the password first)")
        pages = _page_texts(reader, budget, budget.content_allowed(len(source.data)))
        info = reader.metadata
        title = str(info.title) if info is not None and info.title else ""
        created = moment(info.creation_date.isoformat()) if info and info.creation_date else None
    except UnreadableFileError:
        raise
    except Exception as error:  # pypdf raises many kinds on a damaged file; any means unreadable
        raise UnreadableFileError(f"not a readable PDF: {error}") from None
    name = source.path.rsplit("/", 1)[-1]
    document = Document(
        format="pdf",
        path=source.identity,
        title=title or name.rsplit(".", 1)[0],
        sections=[Section((), text, page) for page, text in enumerate(pages, 1) if text.strip()],
        occurred_at=created,
    )
    return Parsed("pdf", document_chunks(document))


def _page_texts(reader: object, budget: Budget, allowed: int) -> list[str]:
    """Each page's text, or UnreadableFileError once the file is over its budget."""
    pages = reader.pages  # type: ignore[attr-defined]
    if len(pages) > budget.pages:
        raise UnreadableFileError(f"a PDF of over {budget.pages} pages")
    started = time.monotonic()
    texts: list[str] = []
    characters = content = 0
    for number, page in enumerate(pages, 1):
        size = _content_size(page)
        content += size
        if content > allowed or size > budget.page_content_bytes:  # before the slow part
            raise UnreadableFileError(
                f"a PDF with too much page content to read (page {number}: {size} bytes, {content}"
                " in all); skipped whole"
            )
        texts.append(page.extract_text() or "")
        characters += len(texts[-1])
        if characters > budget.characters:
            raise UnreadableFileError(
                f"a PDF with over {budget.characters} characters of text (at page {number});"
                " skipped whole"
            )
        if time.monotonic() - started > budget.seconds:
            raise UnreadableFileError(
                f"reading its text took over {budget.seconds:g} s (at page {number} of"
                f" {len(pages)}); skipped whole"
            )
    return texts


def _content_size(page: object) -> int:
    """The bytes of a page's content stream (decompressed; pypdf bounds decompression)."""
    contents = page.get_contents()  # type: ignore[attr-defined]
    return len(contents.get_data()) if contents is not None else 0
