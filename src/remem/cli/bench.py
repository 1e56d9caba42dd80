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
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
@click.pass_context
def locomo(
    ctx: click.Context,
    /,
    data_path: str,
    samples: str | None,
    feed: str,
    ranking: str | None,
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
    with click.progressbar(length=total, label="questions", file=sys.stderr) as bar:
        report = run(loaded, embedder, count_tokens, bar.update, weights, feed)
    summary = report.summary()
    summary["embedder"] = embedder.model_id
    summary["feed"] = feed
    summary["ranking"] = ranking or settings.ranking
    summary["tokenizer"] = TOKENIZER_NAME
    if as_json:
        print_json(summary)
    else:
        _print(summary)


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


COMMANDS = [bench]
