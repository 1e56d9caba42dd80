"""Printing records: aligned tables for people, JSON for scripts."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import click

from remem.serialize import to_data


def print_json(value: Any) -> None:
    """Records (or lists of them) as indented JSON on stdout."""
    click.echo(json.dumps(_jsonable(value), ensure_ascii=False, indent=2))


def _jsonable(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if hasattr(value, "__dataclass_fields__"):
        return to_data(value)
    return value


SHORT_ID = 8  # characters of an id a table shows: the random end, unique in practice
MIN_COLUMN = 6  # a column shortened to let the last one fit keeps at least this much


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], keep: int = 40) -> None:
    """Columns sized to their content, fitted to the terminal: the last column (the text)
    gets what is left but at least `keep` characters, the widest others giving way."""
    if not rows:
        click.echo("(nothing)")
        return
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(headers)]
    columns = shutil.get_terminal_size((120, 20)).columns
    _fit(widths, columns, min(keep, widths[-1]))
    click.echo("  ".join(h[:w].ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in cells:
        row = [shorten(cell, width) for cell, width in zip(row, widths, strict=True)]
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _fit(widths: list[int], columns: int, wanted: int) -> None:
    """Narrow the widest of the first columns until the last has `wanted` characters, then
    give the last what is left of the line."""

    def room() -> int:
        return columns - sum(widths[:-1]) - 2 * (len(widths) - 1)

    while room() < wanted:
        widest = max(range(len(widths) - 1), key=lambda i: widths[i], default=None)
        if widest is None or widths[widest] <= MIN_COLUMN:
            break
        widths[widest] -= 1
    widths[-1] = max(wanted, min(widths[-1], room()))


def short_id(item_id: str | None, full: bool = False) -> str:
    """An id as tables show it: its last characters, or whole with `full`."""
    if item_id is None:
        return ""
    return item_id if full else item_id[-SHORT_ID:]


def shorten(text: str, width: int) -> str:
    """One line, at most `width` characters, cut at a word boundary with an ellipsis."""
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    cut = text[: width - 1].rsplit(" ", 1)[0] or text[: width - 1]
    return cut + "…"


def when(moment: datetime | None) -> str:
    return "" if moment is None else moment.strftime("%Y-%m-%d %H:%M")


def day(moment: datetime | None) -> str:
    return "" if moment is None else moment.strftime("%Y-%m-%d")


def _cell(value: Any) -> str:
    if isinstance(value, datetime):
        return when(value)
    if isinstance(value, float):
        return f"{value:.3f}"
    return "" if value is None else str(value)
