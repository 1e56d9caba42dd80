"""What the agent sees (exactly `Memory.context`, item by item) and the timeline."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from remem.errors import InvalidInputError
from remem.inputs import MAX_BUDGET, MIN_BUDGET
from remem.server.ui.access import Viewer, viewer
from remem.server.ui.filters import (
    NEEDS_SCOPE,
    ScopeArguments,
    ScopeFilter,
    known_scopes,
    page_start,
    scope_or_default,
)
from remem.server.ui.render import page
from remem.types import Context, ContextItem, Note

router = APIRouter(include_in_schema=False)
Looking = Annotated[Viewer, Depends(viewer)]
SLIDER_MAX = 8000  # the budget the "what drops" comparison is made against
TIMELINE_PAGE = 200
PERIODS = ("day", "week", "month")


def _number(request: Request, name: str, default: int, low: int, high: int) -> int:
    try:
        value = int(request.query_params.get(name, default))
    except ValueError:
        return default
    return max(low, min(high, value))


@dataclass(frozen=True)
class ItemRow:
    """One item of the context at the slider's largest budget: in the block or dropped."""

    item: ContextItem
    included: bool


@router.get("/context", response_class=HTMLResponse)
def agent_view(request: Request, looking: Looking) -> Response:
    """The block `context()` hands a model for a query, scope and budget, and what a
    smaller budget drops."""
    scope = ScopeFilter.of(request)
    query = request.query_params.get("q", "").strip()
    budget = _number(request, "budget", 1500, MIN_BUDGET, MAX_BUDGET)
    recent = _number(request, "recent", 10, 0, 100)
    wanted = _number(request, "memories", 20, 0, 100)
    listed = looking.memory.list(**scope.arguments(), limit=50, order="newest").items
    values: dict[str, Any] = {"scope": scope, "query": query, "budget": budget, "recent": recent}
    values |= {"wanted": wanted, "known": known_scopes(listed), "slider_max": SLIDER_MAX}
    context: Context | None = None
    rows: list[ItemRow] = []
    problem = None
    arguments = scope_or_default(scope, listed)
    if query and arguments is None:
        problem = NEEDS_SCOPE
    elif query and arguments is not None:
        try:
            context = looking.memory.context(
                query, budget_tokens=budget, recent_turns=recent, memories=wanted, **arguments
            )
            rows = _compare(
                context, looking, query, max(budget, SLIDER_MAX), recent, wanted, arguments
            )
        except InvalidInputError as error:
            problem = str(error)
    return page(
        request,
        looking,
        "context.html",
        title="What the agent sees",
        context=context,
        rows=rows,
        problem=problem,
        **values,
    )


def _compare(
    context: Context,
    looking: Viewer,
    query: str,
    largest: int,
    recent: int,
    wanted: int,
    arguments: ScopeArguments,
) -> list[ItemRow]:
    """The items of the block at the largest budget, each marked as kept or dropped now."""
    if context.budget >= largest:  # nothing more would fit at the largest budget
        return [ItemRow(item, True) for item in context.items]
    full = looking.memory.context(
        query, budget_tokens=largest, recent_turns=recent, memories=wanted, **arguments
    )
    kept = {(item.kind, item.id): item for item in context.items}
    rows = [
        ItemRow(kept.get((item.kind, item.id), item), (item.kind, item.id) in kept)
        for item in full.items
    ]
    listed = {(row.item.kind, row.item.id) for row in rows}
    rows += [ItemRow(item, True) for item in context.items if (item.kind, item.id) not in listed]
    return rows


def period_of(moment: datetime, by: str) -> tuple[str, str]:
    """(sort key, label) of the day, ISO week or month a moment falls in."""
    if by == "month":
        return moment.strftime("%Y-%m"), moment.strftime("%B %Y")
    if by == "week":
        monday = (moment - timedelta(days=moment.weekday())).date()
        year, week, _ = moment.isocalendar()
        return f"{year}-W{week:02d}", f"Week {week}, {year} (from {monday:%a %d %b})"
    return moment.strftime("%Y-%m-%d"), moment.strftime("%A %d %B %Y")


@dataclass
class Period:
    label: str
    sessions: dict[str, list[Note]]

    @property
    def size(self) -> int:
        return sum(len(notes) for notes in self.sessions.values())


def group_by_period(notes: tuple[Note, ...], by: str) -> list[Period]:
    """Notes (newest first) in periods, and in each period by session (in order seen)."""
    periods: dict[str, Period] = {}
    for note in notes:
        key, label = period_of(note.occurred_at, by)
        period = periods.setdefault(key, Period(label, {}))
        period.sessions.setdefault(note.scope.session_id or "", []).append(note)
    return list(periods.values())


@router.get("/timeline", response_class=HTMLResponse)
def timeline(request: Request, looking: Looking) -> Response:
    scope = ScopeFilter.of(request)
    by = request.query_params.get("by", "day")
    by = by if by in PERIODS else "day"
    try:
        cursor = page_start(request)
        listed = looking.memory.list(
            **scope.arguments(), limit=TIMELINE_PAGE, cursor=cursor, order="newest"
        )
    except InvalidInputError as error:
        return page(request, looking, "error.html", 422, title="Bad request", message=str(error))
    return page(
        request,
        looking,
        "timeline.html",
        title="Timeline",
        scope=scope,
        by=by,
        periods=group_by_period(listed.items, by),
        page=listed,
        known=known_scopes(listed.items),
        continued=cursor is not None,
    )
