"""HTML pages: the main text only (scripts, styles, navigation, page headers and footers,
asides left out), in sections by heading, with the page's <title>."""

from __future__ import annotations

from html.parser import HTMLParser

from remem.ingest.document import Document, Section, document_chunks
from remem.ingest.records import Parsed, Source

SKIPPED = frozenset({
    "script", "style", "nav", "header", "footer", "aside", "noscript", "template", "svg",
    "form", "button", "iframe", "object", "select",
})  # fmt: skip
HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
BLOCKS = {
    "p", "div", "li", "br", "tr", "section", "article", "main", "blockquote", "pre", "ul",
    "ol", "table", "dd", "dt", "hr",
}  # fmt: skip
VOID = {"br", "hr", "img", "meta", "link", "input", "area", "base", "col", "embed", "source"}


class _MainText(HTMLParser):
    """Collects sections of visible text outside the skipped elements."""

    def __init__(self, skipped: frozenset[str]) -> None:
        super().__init__(convert_charrefs=True)
        self.skipped = skipped
        self.title = ""
        self.sections: list[Section] = []
        self._headings: list[tuple[int, str]] = []
        self._text: list[str] = []
        self._heading: list[str] | None = None
        self._skipping: list[str] = []  # open skipped elements, innermost last
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.skipped and tag not in VOID:
            self._skipping.append(tag)
        elif tag == "title":
            self._in_title = True
        elif tag in HEADINGS and not self._skipping:
            self._close_section()
            self._heading = []
        elif tag in BLOCKS:
            self._text.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if self._skipping and tag == self._skipping[-1]:
            self._skipping.pop()
        elif tag == "title":
            self._in_title = False
        elif tag in HEADINGS and self._heading is not None:
            level = HEADINGS[tag]
            title = " ".join("".join(self._heading).split())
            self._headings = [(lv, t) for lv, t in self._headings if lv < level]
            self._headings += [(level, title)] if title else []
            self._heading = None

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        elif self._skipping:
            return
        elif self._heading is not None:
            self._heading.append(data)
        else:
            self._text.append(data)

    def close(self) -> None:
        super().close()
        self._close_section()

    def _close_section(self) -> None:
        paragraphs = ("".join(self._text)).split("\n\n")
        text = "\n\n".join(" ".join(p.split()) for p in paragraphs if p.split())
        if text:
            self.sections.append(Section(tuple(t for _, t in self._headings), text))
        self._text = []


def main_text(html: str, skipped: frozenset[str] = SKIPPED) -> tuple[str, list[Section]]:
    """A page's title and its sections of main text (the `skipped` elements left out)."""
    parser = _MainText(skipped)
    parser.feed(html)
    parser.close()
    return " ".join(parser.title.split()), parser.sections


def parse(text: str, source: Source) -> Parsed:
    title, sections = main_text(text)
    name = source.path.rsplit("/", 1)[-1]
    document = Document(
        format="html",
        path=source.identity,
        title=title or name.rsplit(".", 1)[0],
        sections=sections,
        occurred_at=None,  # dated by the file (not hashed: touching it changes nothing)
    )
    return Parsed("html", document_chunks(document))
