"""Pages from templates: one Jinja environment with autoescape on, and the filters that
show remem's records (dates, highlighted matches, diffs) without trusting their text."""

from __future__ import annotations

import difflib
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

from remem.server.ui.access import Viewer, set_cookie

HERE = Path(__file__).resolve().parent
WORD = re.compile(r"\w{2,}", re.UNICODE)
# a page may show only this site's scripts, styles inline (the graph library sets them)
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline';"
        " img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self';"
        " frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def when(moment: datetime | None, precise: bool = False) -> str:
    """A UTC time for people: `2026-11-30 16:05` (with seconds when `precise`)."""
    if moment is None:
        return ""
    return moment.strftime("%Y-%m-%d %H:%M:%S" if precise else "%Y-%m-%d %H:%M")


def highlight(text: str, query: str | None) -> Markup:
    """`text` escaped, with the words of `query` wrapped in <mark>."""
    words = {word.lower() for word in WORD.findall(query or "")}
    if not words:
        return Markup(escape(text))
    pattern = re.compile("|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)), re.I)
    parts: list[str] = []
    last = 0
    for found in pattern.finditer(text):
        parts.append(str(escape(text[last : found.start()])))
        parts.append(f"<mark>{escape(found.group(0))}</mark>")
        last = found.end()
    parts.append(str(escape(text[last:])))
    return Markup("".join(parts))


MAX_DIFF_WORDS = 1000


def word_diff(before: str, after: str) -> list[tuple[str, str]]:
    """The change from one text to another as (op, words): op is "same", "del" or "ins".
    Words are matched between the common start and end only, and only up to
    MAX_DIFF_WORDS a side (matching is quadratic: two reordered texts of 15,000 words took
    24 s a page view); a longer middle shows as deleted and inserted whole."""
    old, new = re.split(r"(\s+)", before), re.split(r"(\s+)", after)
    head = _common_length(old, new)
    tail = _common_length(old[head:][::-1], new[head:][::-1])
    middle_old, middle_new = old[head : len(old) - tail], new[head : len(new) - tail]
    parts = [("same", "".join(old[:head]))]
    if max(len(middle_old), len(middle_new)) > 2 * MAX_DIFF_WORDS:  # (words and spaces)
        parts += [("del", "".join(middle_old)), ("ins", "".join(middle_new))]
    else:
        matcher = difflib.SequenceMatcher(a=middle_old, b=middle_new, autojunk=False)
        for op, a1, a2, b1, b2 in matcher.get_opcodes():
            if op == "equal":
                parts.append(("same", "".join(middle_old[a1:a2])))
                continue
            parts += [("del", "".join(middle_old[a1:a2])), ("ins", "".join(middle_new[b1:b2]))]
    parts.append(("same", "".join(old[len(old) - tail :])))
    return [part for part in parts if part[1]]


def _common_length(one: list[str], other: list[str]) -> int:
    """How many items the two lists share at their start."""
    shared = min(len(one), len(other))
    return next((i for i in range(shared) if one[i] != other[i]), shared)


def short(text: str, length: int = 160) -> str:
    """At most `length` characters, cut at a word with an ellipsis."""
    text = " ".join(text.split())
    if len(text) <= length:
        return text
    return text[:length].rsplit(" ", 1)[0] + "…"


def short_id(item_id: str) -> str:
    return item_id[-8:]


def _environment() -> Environment:
    environment = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(
        when=when, highlight=highlight, short=short, short_id=short_id, word_diff=word_diff
    )
    return environment


ENVIRONMENT = _environment()


def page(
    request: Request, viewer: Viewer | None, template: str, status: int = 200, **values: Any
) -> HTMLResponse:
    """A whole page (or, for an htmx request of a fragment, the named template alone)."""
    values.setdefault("title", "")
    text = ENVIRONMENT.get_template(template).render(
        request=request,
        viewer=viewer,
        csrf=viewer.csrf if viewer else values.pop("csrf", ""),
        path=request.url.path,
        **values,
    )
    response = HTMLResponse(text, status_code=status, headers=SECURITY_HEADERS)
    return set_cookie(request, response)


def redirect(request: Request, target: str) -> RedirectResponse:
    """After a POST: see the result with a GET (303)."""
    response = RedirectResponse(target, status_code=303, headers=SECURITY_HEADERS)
    return set_cookie(request, response)
