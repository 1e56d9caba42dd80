"""PDF files: the text of each page (pypdf), a section per page."""

from __future__ import annotations

import io
import logging

from remem.ingest.document import Document, Section, document_chunks
from remem.ingest.records import Parsed, Source, UnreadableFileError, moment

MAX_PAGES = 5000


def parse(source: Source) -> Parsed:
    from pypdf import PdfReader

    # pypdf warns on every odd object of a damaged file: the file is reported, not logged
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(source.data))
        if reader.is_encrypted:
            raise UnreadableFileError("an encrypted PDF (remove the password first)")
        if len(reader.pages) > MAX_PAGES:
            raise UnreadableFileError(f"a PDF of over {MAX_PAGES} pages")
        pages = [page.extract_text() or "" for page in reader.pages]
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
