"""Commands on memories: add, search, list, show, history, forget."""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Unpack

import click

from remem.cli.common import (
    ScopeOptions,
    full_ids_option,
    json_option,
    open_memory,
    scope_options,
)
from remem.cli.output import day, print_json, print_table, short_id, shorten
from remem.cli.show import resolve_id
from remem.inputs import ORDERS, make_scope
from remem.read.relevance import ANSWERABLE, CONTEXT_FLOOR

if TYPE_CHECKING:
    from remem.memory import Memory
    from remem.types import Hit, Note


@click.command()
@click.argument("text", required=False)
@scope_options
@click.option("--role", help="Role of the speaker (user, assistant, ...).")
@click.option("--name", help="Name of the speaker.")
@click.option("--occurred-at", metavar="WHEN", help="When it happened (ISO 8601). Default: now.")
@click.option("--expires-at", metavar="WHEN", help="When to forget it (ISO 8601, future).")
@click.option("--metadata", metavar="JSON", help='A JSON object, e.g. \'{"source": "email"}\'.')
@click.option(
    "--messages",
    "messages_file",
    type=click.File("r"),
    metavar="FILE",
    help='A JSON list of chat messages [{"role", "content", "name"?}]; - for stdin.',
)
@json_option
@click.pass_context
def add(
    ctx: click.Context,
    /,
    text: str | None,
    messages_file: Any,
    role: str | None,
    name: str | None,
    occurred_at: str | None,
    expires_at: str | None,
    metadata: str | None,
    as_json: bool,
    **scope: Unpack[ScopeOptions],
) -> None:
    """Remember TEXT (or stdin when TEXT is -), or a file of chat messages."""
    if messages_file is not None and text is not None:
        raise click.UsageError("give TEXT or --messages, not both")
    if messages_file is not None:
        content: Any = _load_json(messages_file.read(), "--messages")
    elif text is None:
        raise click.UsageError("nothing to remember: give TEXT, - for stdin, or --messages FILE")
    else:
        # a pipe ends with a newline that is not part of what was said
        text = sys.stdin.read().rstrip("\r\n") if text == "-" else text
        content = [{"content": text, "role": role, "name": name}] if role or name else text
    meta = _load_json(metadata, "--metadata") if metadata else None
    memory = open_memory(ctx)
    result = memory.add(
        content, occurred_at=occurred_at, metadata=meta, expires_at=expires_at, **scope
    )
    if as_json:
        print_json(result)
        return
    for note_id in result.note_ids:
        click.echo(f"remembered {note_id}")
    for warning in _pending_warnings(memory, result.pending_jobs):
        click.echo(f"warning: {warning}", err=True)


@click.command()
@click.argument("query")
@scope_options
@click.option("--limit", "-n", default=10, show_default=True, help="How many results.")
@click.option(
    "--filter",
    "filters",
    multiple=True,
    metavar="KEY=VALUE",
    help="Only memories whose metadata KEY equals VALUE (JSON or text). Repeatable.",
)
@click.option("--include-superseded", is_flag=True, help="Also facts a later fact superseded.")
@click.option(
    "--min-score",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Only memories at least this relevant (score: the estimated chance, 0-1, that a"
    " memory bears on the query).",
)
@click.option(
    "--explain",
    is_flag=True,
    help="Show why each memory ranked where it did: what each ranking step added.",
)
@full_ids_option
@json_option
@click.pass_context
def search(
    ctx: click.Context,
    /,
    query: str,
    limit: int,
    filters: tuple[str, ...],
    include_superseded: bool,
    min_score: float,
    explain: bool,
    full_ids: bool,
    as_json: bool,
    **scope: Unpack[ScopeOptions],
) -> None:
    """Find the memories most relevant to QUERY. The table shows each id's last 8
    characters (show, history and forget take them); --full-ids or --json for whole ids.
    Kind: turn (a message, verbatim), fact (extracted), thought (a conclusion, inferred;
    see `remem think`), superseded (replaced, or its evidence went; only with
    --include-superseded)."""
    memory = open_memory(ctx)
    hits = memory.search(
        query,
        limit=limit,
        filters=_filters(filters) or None,
        include_superseded=include_superseded,
        min_score=min_score,
        explain=explain,
        **scope,
    )
    if as_json:
        print_json(hits)
        return
    kinds = _kinds(memory, [hit.id for hit in hits])
    if explain:
        _print_explained(hits, kinds, full_ids)
        return
    print_table(
        ["#", "score", "when", "id", "kind", "memory"],
        [
            (
                rank,
                hit.score,
                day(hit.occurred_at),
                short_id(hit.id, full_ids),
                kinds.get(hit.id, hit.kind),
                hit.text,
            )
            for rank, hit in enumerate(hits, start=1)
        ],
    )


def _print_explained(hits: Sequence[Hit], kinds: dict[str, str], full_ids: bool) -> None:
    """Each hit, then a table of what each ranking step added to its ranking score (steps
    that added nothing named on one line) and what its relevance was judged by."""
    if not hits:
        click.echo("(nothing)")
    for rank, hit in enumerate(hits, start=1):
        parts = dict(hit.explanation or {})
        total = parts.pop("rank", 0.0)
        cosine, coverage = parts.pop("cosine", 0.0), parts.pop("coverage", 0.0)
        relevance = parts.pop("relevance", hit.score)
        kind = kinds.get(hit.id, hit.kind)
        click.echo(
            f"#{rank}  {short_id(hit.id, full_ids)}  {kind}  {day(hit.occurred_at)}"
            f"  score {hit.score:.3f}"
        )
        click.echo(f"    {shorten(hit.text, 96)}")
        added = [(name, value) for name, value in parts.items() if value]
        width = max((len(name) for name, _ in added), default=4)
        for name, value in added:
            share = f"{value / total:>5.0%}" if total else ""
            click.echo(f"    {name:<{width}}  {value:>+8.3f}  {share}")
        click.echo(f"    {'rank':<{width}}  {total:>8.3f}  (the sum: the hits' order)")
        unused = [name for name, value in parts.items() if not value]
        if unused:
            click.echo(f"    nothing from: {', '.join(unused)}")
        click.echo(
            f"    relevance {relevance:.3f} from cosine {cosine:.3f}"
            f" and {coverage:.0%} of the query's words\n"
        )


@click.command()
@click.argument("query")
@scope_options
@click.option("--budget", default=1500, show_default=True, help="Token budget of the block.")
@click.option(
    "--min-score",
    default=CONTEXT_FLOOR,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Leave out memories less relevant than this (0 keeps every one found).",
)
@click.option(
    "--min-top-score",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, 1),
    help=f"Give no memory (but pinned ones) when none is this relevant (0: off; try {ANSWERABLE}).",
)
@json_option
@click.pass_context
def context(
    ctx: click.Context,
    /,
    query: str,
    budget: int,
    min_score: float,
    min_top_score: float,
    as_json: bool,
    **scope: Unpack[ScopeOptions],
) -> None:
    """Print the prompt block a model would get for QUERY: the session's recent turns,
    then the relevant memories, dated, within the token budget."""
    block = open_memory(ctx).context(
        query, budget_tokens=budget, min_score=min_score, min_top_score=min_top_score, **scope
    )
    if as_json:
        print_json(block)
        return
    click.echo(block.text or "(nothing remembered for this scope)")
    click.echo(f"\n({block.tokens} of {block.budget} tokens, {len(block.items)} items)", err=True)


@click.command(name="list")
@scope_options
@click.option("--limit", "-n", default=50, show_default=True, help="Memories per page.")
@click.option("--cursor", help="Continue from the cursor a previous page printed.")
@click.option(
    "--order",
    type=click.Choice(ORDERS),
    default="oldest",
    show_default=True,
    help="By when it happened, oldest or newest first; or in the order added.",
)
@click.option("--archived", is_flag=True, help="List the archived memories.")
@full_ids_option
@json_option
@click.pass_context
def list_(
    ctx: click.Context,
    /,
    limit: int,
    cursor: str | None,
    order: str,
    archived: bool,
    full_ids: bool,
    as_json: bool,
    **scope: Unpack[ScopeOptions],
) -> None:
    """List memories (all of them when no scope is given), by when they happened. The
    table shows each id's last 8 characters (show, history and forget take them);
    --full-ids or --json for whole ids. Kind: turn (a message, verbatim), fact
    (extracted), superseded (a fact a later one replaced: `remem show` says by which)."""
    page = open_memory(ctx).list(
        limit=limit, cursor=cursor, order=order, archived=archived, **scope
    )
    if as_json:
        print_json({"items": list(page.items), "cursor": page.cursor})
        return
    users = {note.scope.user_id for note in page.items}
    with_user = len(users) > 1  # a column that says the same on every line says nothing
    print_table(
        ["id", "when", "kind", *(["user"] if with_user else []), "memory"],
        [
            (
                short_id(n.id, full_ids),
                day(n.occurred_at),
                _kind(n),
                *([n.scope.user_id] if with_user else []),
                n.text,
            )
            for n in page.items
        ],
    )
    if page.cursor:
        click.echo(
            f"more: --cursor {page.cursor}" + (f" --order {order}" if order != "oldest" else "")
        )


@click.command()
@click.argument("item_ids", metavar="[ID]...", nargs=-1)
@scope_options
@click.option("--all", "everything", is_flag=True, help="Forget every memory in the given scope.")
@click.option("--yes", is_flag=True, help="Do not ask before forgetting a whole scope.")
@click.option(
    "--purge",
    is_flag=True,
    help="Erase for good, deleted memories and history payloads too (cannot be undone).",
)
@json_option
@click.pass_context
def forget(
    ctx: click.Context,
    /,
    item_ids: tuple[str, ...],
    everything: bool,
    yes: bool,
    purge: bool,
    as_json: bool,
    **scope: Unpack[ScopeOptions],
) -> None:
    """Forget memories by ID (whole, or a memory's short id as tables show it), or a whole
    scope with --all. History keeps what was forgotten; --purge erases it: text, vectors,
    search entries and history payloads."""
    verb = "erase" if purge else "forget"
    if everything:
        if item_ids:
            raise click.UsageError("give IDs or --all with a scope, not both")
        chosen = make_scope(**scope)
        if not (chosen.user_id or chosen.agent_id or chosen.session_id):
            raise click.UsageError("forget --all needs a scope: --user, --agent or --session")
        if not yes:  # asked only once the request is known to be one remem can do
            click.confirm(f"{verb} every memory in {_describe(scope)}?", abort=True)
        memory = open_memory(ctx)
        count = (memory.purge_all if purge else memory.delete_all)(**scope)
        if as_json:
            print_json({"erased" if purge else "forgotten": count})
        else:
            click.echo(f"erased {count} records" if purge else f"forgot {count} memories")
        return
    if not item_ids:
        raise click.UsageError("give the IDs to forget, or --all with a scope")
    memory = open_memory(ctx)
    done = []
    for given in item_ids:
        item_id = resolve_id(memory, given)
        (memory.purge if purge else memory.delete)(item_id)
        done.append(item_id)
        if not as_json:
            click.echo(f"{'erased' if purge else 'forgot'} {item_id}")
    if as_json:
        print_json({"erased" if purge else "forgotten": done})


# what waits while a job of each kind is pending
WAITING = {
    "embed": ("embedding", "the memories are stored and found by keyword until it is done"),
    "organise": (
        "organise",
        "the memories are stored; the language model organises them when it runs"
        " (`remem worker` or `remem jobs --retry`)",
    ),
}


def _pending_warnings(memory: Memory, job_ids: Sequence[str]) -> list[str]:
    """One warning per kind of job an add left pending, naming the kind."""
    if not job_ids:
        return []
    kinds = {job.id: job.kind for job in memory.store.jobs("pending")}
    counts = Counter(kinds.get(job_id, "unknown") for job_id in job_ids)
    warnings = []
    for kind, count in sorted(counts.items()):
        name, consequence = WAITING.get(kind, (kind, "the memories are stored"))
        warnings.append(f"{count} {name} job{'s' if count > 1 else ''} pending; {consequence}")
    return warnings


def _load_json(text: str, option: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise click.BadParameter(f"not valid JSON: {error}", param_hint=option) from None


def _filters(pairs: tuple[str, ...]) -> dict[str, Any]:
    filters: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--filter")
        try:
            filters[key] = json.loads(raw)
        except json.JSONDecodeError:
            filters[key] = raw
    return filters


def _kind(note: Note) -> str:
    replaced = note.valid_to is not None or note.superseded_by is not None
    return "superseded" if replaced else note.kind


def _kinds(memory: Memory, note_ids: list[str]) -> dict[str, str]:
    """What each of these notes is: turn, fact, thought or superseded (a hit says only
    "note")."""
    return {note_id: _kind(note) for note_id, note in memory.store.get_notes(note_ids).items()}


def _describe(scope: ScopeOptions) -> str:
    return ", ".join(f"{k}={v}" for k, v in scope.items() if v) or "(no scope)"


COMMANDS = [add, search, context, list_, forget]
