"""Commands on the work behind the memories: jobs, worker, stats."""

from __future__ import annotations

import json
import time

import click

from remem.cli.common import json_option, open_memory, settings_of, sweeping
from remem.cli.output import print_json, print_table, when
from remem.serialize import to_data


@click.command()
@click.option(
    "--status",
    type=click.Choice(["pending", "done", "failed"]),
    help="Only jobs in this state (default: all).",
)
@click.option("--retry", is_flag=True, help="Make failed jobs pending again and run them now.")
@json_option
@click.pass_context
def jobs(ctx: click.Context, status: str | None, retry: bool, as_json: bool) -> None:
    """List the jobs kept in the store (embedding retries, organising by the LLM)."""
    memory = open_memory(ctx)
    if retry:
        again = memory.retry_failed_jobs()
        done = memory.run_jobs()
        click.echo(f"{again} failed job(s) made pending; {done} job(s) completed", err=True)
    found = memory.store.jobs(status)
    if as_json:
        print_json([{k: v for k, v in to_data(job).items() if k != "payload"} for job in found])
        return
    print_table(
        ["id", "kind", "status", "attempts", "updated", "last error"],
        [
            [j.id, j.kind, j.status, j.attempts, when(j.updated_at), j.last_error or ""]
            for j in found
        ],
    )


@click.command()
@click.option("--once", is_flag=True, help="Run what is pending, then exit.")
@click.option("--interval", default=2.0, show_default=True, help="Seconds between looks for jobs.")
@click.option(
    "--lease-seconds",
    default=300,
    show_default=True,
    help="How long a job stays with this worker before another may take it over.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print a JSON line for each batch of jobs run."
)
@click.pass_context
def worker(
    ctx: click.Context, once: bool, interval: float, lease_seconds: int, as_json: bool
) -> None:
    """Run organising jobs (REMEM_LLM_* must name a model). Several workers may share a
    store: each job is leased to one; a crashed worker's job is taken over when its lease
    runs out, and resumes from the last step it finished. A running worker also purges the
    expired notes of every tenant every REMEM_SWEEP_SECONDS (300; 0: never) and, when
    REMEM_CONSOLIDATE_SECONDS is set, merges near-duplicates that often; with --once,
    once."""
    from datetime import timedelta

    memory = open_memory(ctx, lease=timedelta(seconds=lease_seconds))
    if memory.llm is None:
        raise click.UsageError("no language model configured: set REMEM_LLM_BASE_URL and _MODEL")
    if once:
        from remem.lifecycle.consolidation_api import consolidate_all
        from remem.lifecycle.sweep import interval_of, sweep_every_tenant

        if interval_of(settings_of(ctx)):
            sweep_every_tenant(memory)
        if interval_of(settings_of(ctx), "consolidate_seconds"):
            consolidate_all(memory)
    else:
        sweeping(ctx, memory)
    while True:
        done = memory.run_jobs()
        if as_json and (done or once):
            click.echo(json.dumps({"completed": done}), nl=True)
        elif done:
            click.echo(f"{done} job(s) completed", err=True)
        if once:
            return
        time.sleep(interval)


@click.command()
@json_option
@click.pass_context
def stats(ctx: click.Context, as_json: bool) -> None:
    """What the memory holds, and what the language model has cost so far."""
    store = open_memory(ctx).store
    counts = store.counts()
    steps = store.llm_totals()
    if as_json:
        print_json(
            {
                "counts": counts,
                "llm": [
                    dict(
                        zip(
                            ["step", "calls", "prompt_tokens", "completion_tokens", "latency_ms"],
                            row,
                            strict=True,
                        )
                    )
                    for row in steps
                ],
            }
        )
        return
    print_table(["what", "count"], list(counts.items()))
    if steps:
        click.echo()
        total = (
            "total",
            sum(row[1] for row in steps),
            sum(row[2] for row in steps),
            sum(row[3] for row in steps),
            sum(row[4] for row in steps),
        )
        print_table(
            ["llm step", "calls", "prompt tokens", "completion tokens", "seconds"],
            [(s, c, p, o, f"{ms / 1000:.1f}") for s, c, p, o, ms in [*steps, total]],
        )


COMMANDS = [jobs, worker, stats]
