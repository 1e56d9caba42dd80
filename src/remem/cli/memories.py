"""Commands on memories: add, search, list, show, history, forget."""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Unpack

import click

from remem import ids
from remem.cli.common import ScopeOptions, json_option, open_memory, scope_options
from remem.cli.output import print_json, print_table, when
from remem.inputs import make_scope

if TYPE_CHECKING:
    from remem.memory import Memory


@click.command()
@click.argument("text", required=False)
@scope_options
@click.option("--role", help="Role of the speaker (user, assistant, ...).")
@click.option("--name", help="Name of the speaker.")
@click.option("--occurred-at", metavar="WHEN", help="When it happened (ISO 8601). Default: now.")
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
        text = sys.stdin.read() if text == "-" else text
        content = [{"content": text, "role": role, "name": name}] if role or name else text
    meta = _load_json(metadata, "--metadata") if metadata else None
    memory = open_memory(ctx)
    result = memory.add(content, occurred_at=occurred_at, metadata=meta, **scope)
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
@json_option
@click.pass_context
def search(
    ctx: click.Context,
    /,
    query: str,
    limit: int,
    filters: tuple[str, ...],
    as_json: bool,
    **scope: Unpack[ScopeOptions],
) -> None:
    """Find the memories most relevant to QUERY."""
    memory = open_memory(ctx)
    hits = memory.search(query, limit=limit, filters=_filters(filters) or None, **scope)
    if as_json:
        print_json(hits)
        return
    print_table(
        ["#", "score", "when", "id", "memory"],
        [
            (rank, hit.score, hit.occurred_at, hit.id, hit.text)
            for rank, hit in enumerate(hits, start=1)
        ],
    )


@click.command()
@click.argument("query")
@scope_options
@click.option("--budget", default=1500, show_default=True, help="Token budget of the block.")
@json_option
@click.pass_context
def context(
    ctx: click.Context, /, query: str, budget: int, as_json: bool, **scope: Unpack[ScopeOptions]
) -> None:
    """Print the prompt block a model would get for QUERY: the session's recent turns,
    then the relevant memories, dated, within the token budget."""
    block = open_memory(ctx).context(query, budget_tokens=budget, **scope)
    if as_json:
        print_json(block)
        return
    click.echo(block.text or "(nothing remembered for this scope)")
    click.echo(f"\n({block.tokens} of {block.budget} tokens, {len(block.items)} items)", err=True)


@click.command(name="list")
@scope_options
@click.option("--limit", "-n", default=50, show_default=True, help="Memories per page.")
@click.option("--cursor", help="Continue from the cursor a previous page printed.")
@json_option
@click.pass_context
def list_(
    ctx: click.Context,
    /,
    limit: int,
    cursor: str | None,
    as_json: bool,
    **scope: Unpack[ScopeOptions],
) -> None:
    """List memories, oldest first (all of them when no scope is given)."""
    page = open_memory(ctx).list(limit=limit, cursor=cursor, **scope)
    if as_json:
        print_json({"items": list(page.items), "cursor": page.cursor})
        return
    print_table(
        ["id", "when", "user", "memory"],
        [(n.id, n.occurred_at, n.scope.user_id, n.text) for n in page.items],
    )
    if page.cursor:
        click.echo(f"more: --cursor {page.cursor}")


@click.command()
@click.argument("item_id", metavar="ID")
@json_option
@click.pass_context
def show(ctx: click.Context, /, item_id: str, as_json: bool) -> None:
    """Show one memory (nt_...) with its sources, or one episode (ep_...)."""
    memory = open_memory(ctx)
    if ids.kind_of(item_id) == ids.EPISODE:
        record: Any = memory.episode(item_id)
        sources = []
    else:
        record = memory.get(item_id)
        sources = [memory.episode(e) for e in record.episode_ids]
    if as_json:
        print_json({"record": record, "sources": sources} if sources else record)
        return
    for key, value in _fields(record):
        click.echo(f"{key + ':':<13} {value}")
    for episode in sources:
        speaker = episode.name or episode.role or "-"
        click.echo(
            f"source:       {episode.id} [{when(episode.occurred_at)}] {speaker}: {episode.text}"
        )


@click.command()
@click.argument("item_id", metavar="ID")
@json_option
@click.pass_context
def history(ctx: click.Context, /, item_id: str, as_json: bool) -> None:
    """Every change to a memory or episode, oldest first."""
    events = open_memory(ctx).history(item_id)
    if as_json:
        print_json(events)
        return
    print_table(
        ["when", "action", "actor", "change"],
        [(e.at, e.action, e.actor, _change(e.before, e.after)) for e in events],
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
@click.pass_context
def forget(
    ctx: click.Context,
    /,
    item_ids: tuple[str, ...],
    everything: bool,
    yes: bool,
    purge: bool,
    **scope: Unpack[ScopeOptions],
) -> None:
    """Forget memories by ID, or a whole scope with --all. History keeps what was
    forgotten; --purge erases it: text, vectors, search entries and history payloads."""
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
        if purge:
            click.echo(f"erased {memory.purge_all(**scope)} records")
        else:
            click.echo(f"forgot {memory.delete_all(**scope)} memories")
        return
    if not item_ids:
        raise click.UsageError("give the IDs to forget, or --all with a scope")
    memory = open_memory(ctx)
    for item_id in item_ids:
        (memory.purge if purge else memory.delete)(item_id)
        click.echo(f"{'erased' if purge else 'forgot'} {item_id}")


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


def _fields(record: Any) -> list[tuple[str, Any]]:
    rows = [("id", record.id), ("text", record.text)]
    scope = record.scope
    rows += [
        (k, v)
        for k, v in (
            ("user", scope.user_id),
            ("agent", scope.agent_id),
            ("session", scope.session_id),
        )
        if v
    ]
    for name in ("role", "name", "version"):
        if getattr(record, name, None) is not None:
            rows.append((name, getattr(record, name)))
    rows.append(("occurred at", when(record.occurred_at)))
    if record.metadata:
        rows.append(("metadata", json.dumps(record.metadata, ensure_ascii=False)))
    return rows


def _change(before: dict[str, Any] | None, after: dict[str, Any] | None) -> str:
    if before and after and before.get("text") != after.get("text"):
        return f"{before.get('text')!r} -> {after.get('text')!r}"
    if before and after:
        return "metadata changed"
    if before:
        return f"was {before.get('text')!r}"
    return ""


def _describe(scope: ScopeOptions) -> str:
    return ", ".join(f"{k}={v}" for k, v in scope.items() if v) or "(no scope)"


COMMANDS = [add, search, context, list_, show, history, forget]
