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


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Columns sized to their content; the last column is shortened to fit the terminal."""
    if not rows:
        click.echo("(nothing)")
        return
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(headers)]
    room = shutil.get_terminal_size((120, 20)).columns - sum(widths[:-1]) - 2 * (len(widths) - 1)
    widths[-1] = max(20, min(widths[-1], room))
    click.echo("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in cells:
        row[-1] = shorten(row[-1], widths[-1])
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def shorten(text: str, width: int) -> str:
    """One line, at most `width` characters, cut at a word boundary with an ellipsis."""
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    cut = text[: width - 1].rsplit(" ", 1)[0] or text[: width - 1]
    return cut + "…"


def when(moment: datetime | None) -> str:
    return "" if moment is None else moment.strftime("%Y-%m-%d %H:%M")


def _cell(value: Any) -> str:
    if isinstance(value, datetime):
        return when(value)
    if isinstance(value, float):
        return f"{value:.3f}"
    return "" if value is None else str(value)
