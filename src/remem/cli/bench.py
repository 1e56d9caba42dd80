"""`remem bench`: recall benchmarks on conversational datasets."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from remem.cli.common import settings_of
from remem.cli.output import print_json
from remem.read.policy import PRESETS


@click.group()
def bench() -> None:
    """Measure recall quality and speed on benchmark datasets."""


@bench.command()
@click.option(
    "--data",
    "data_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="A dataset in the LoCoMo schema, e.g. ../shared/bench/locomo10.json.",
)
@click.option("--samples", metavar="IDS", help="Comma-separated sample ids (default: all).")
@click.option(
    "--feed",
    type=click.Choice(["session", "turn+session", "turn"]),
    default="session",
    show_default=True,
    help="How turns are added: a session per add call with its session id, a turn per "
    "call with the session id, or a turn per call with the user id only.",
)
@click.option(
    "--ranking",
    type=click.Choice(list(PRESETS)),
    help="A ranking policy (default: the settings', REMEM_RANKING; else the default).",
)
@click.option(
    "--consolidate",
    is_flag=True,
    help="Merge near-duplicate notes (without a model) after adding, before asking.",
)
@click.option(
    "--abstain",
    is_flag=True,
    help="Instead: ask each memory the other samples' questions too (names mapped) and"
    " report, per context gate (min_top_score), how many get nothing and the R@10 kept.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
@click.pass_context
def locomo(
    ctx: click.Context,
    /,
    data_path: str,
    samples: str | None,
    feed: str,
    ranking: str | None,
    consolidate: bool,
    abstain: bool,
    as_json: bool,
) -> None:
    """Turn retrieval on LoCoMo: R@5/10/25/50 and NDCG@10, overall, per half, per category.

    Each sample gets a fresh temporary memory; every turn is added as one message (a
    session per add call, or one per call: --feed) and every question asked through
    Memory.search. Scores use the dataset's definition:
    hits expand, in rank order, into the turns they came from, up to k distinct turns.
    """
    from remem.bench import locomo as dataset
    from remem.bench.runner import run
    from remem.embedders import create_embedder
    from remem.read.policy import weights_of
    from remem.tokens import TOKENIZER_NAME, count_tokens

    settings = settings_of(ctx)
    loaded = dataset.load(Path(data_path), samples.split(",") if samples else None)
    embedder = create_embedder(settings)
    weights = weights_of(ranking, settings)
    total = sum(len(sample.questions) for sample in loaded)
    if abstain:
        _abstain(loaded, embedder, total, as_json)
        return
    with click.progressbar(length=total, label="questions", file=sys.stderr) as bar:
        report = run(loaded, embedder, count_tokens, bar.update, weights, feed, consolidate)
    summary = report.summary()
    summary["embedder"] = embedder.model_id
    summary["feed"] = feed
    summary["ranking"] = ranking or settings.ranking
    summary["tokenizer"] = TOKENIZER_NAME
    if as_json:
        print_json(summary)
    else:
        _print(summary)


def _abstain(loaded: Any, embedder: Any, total: int, as_json: bool) -> None:
    from remem.bench.abstain import run_abstain

    with click.progressbar(length=total, label="questions", file=sys.stderr) as bar:
        summary = run_abstain(loaded, embedder, bar.update)
    summary["embedder"] = embedder.model_id
    if as_json:
        print_json(summary)
        return
    click.echo(
        f"{summary['real_questions']} real and {summary['foreign_questions']} foreign questions;"
        f" R@10 of every hit {summary['R@10_every_hit']}"
    )
    click.echo(f"{'min_top_score':>14}{'foreign rejected':>18}{'R@10 given':>12}{'ratio':>8}")
    for gate in summary["gates"]:
        click.echo(
            f"{gate['min_top_score']:>14}{gate['foreign_rejected']:>18.3f}"
            f"{gate['R@10_given']:>12.4f}{gate['R@10_ratio']:>8.3f}"
        )


def _print(summary: dict[str, Any]) -> None:
    columns = ["R@5", "R@10", "R@25", "R@50", "NDCG@10", "n"]
    click.echo(f"{'':<16}" + "".join(f"{c:>9}" for c in columns))
    for name, scores in summary["scores"].items():
        cells = "".join(f"{scores[c]:>9}" if c == "n" else f"{scores[c]:>9.3f}" for c in columns)
        click.echo(f"{name:<16}{cells}")
    click.echo(
        f"\nsearch p50 {summary['search_p50_ms']} ms, p95 {summary['search_p95_ms']} ms "
        f"(query embedding included; {summary['search_p50_per_embedding']}x embedding the"
        f" query alone, {summary['query_embedding_p50_ms']} ms); "
        f"ingest {summary['ingest_seconds']} s "
        f"({summary['ingest_turns_per_s']} turns/s); mean tokens of the top 10 hits "
        f"{summary['mean_tokens_top10']:.0f} ({summary['tokenizer']}); "
        f"embedder {summary['embedder']}; feed {summary['feed']};"
        f" ranking {summary['ranking']}"
    )
    if "consolidation" in summary:
        done = summary["consolidation"]
        click.echo(f"consolidation merged {done['merged_notes']} notes in {done['seconds']} s")


COMMANDS = [bench]
