"""`remem bench locomo` on a tiny dataset written for these tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from remem import InvalidInputError, Memory
from remem.bench import locomo
from remem.bench.metrics import expand_to_turns, ndcg_at, percentile, recall_at
from remem.bench.runner import FEEDS, Report, _ingest, run
from remem.cli.main import cli
from remem.testing import HashEmbedder

TINY = [
    {
        "sample_id": "tiny-1",
        "conversation": {
            "speaker_a": "Ana",
            "speaker_b": "Bo",
            "session_1_date_time": "1:56 pm on 8 May, 2023",
            "session_1": [
                {"speaker": "Ana", "dia_id": "D1:1", "text": "I planted tomatoes in the garden."},
                {
                    "speaker": "Bo",
                    "dia_id": "D1:2",
                    "text": "Nice! Mine are peppers.",
                    "blip_caption": "a photo of red peppers",
                },
            ],
            "session_2_date_time": "10:00 am on 2 June, 2023",
            "session_2": [
                {"speaker": "Ana", "dia_id": "D2:1", "text": "I am learning the violin."},
            ],
            "session_3_date_time": "9:00 am on 3 June, 2023",
        },
        "qa": [
            {
                "question": "What did Ana plant?",
                "answer": "tomatoes",
                "evidence": ["D1:1"],
                "category": 4,
            },
            {
                "question": "What does Bo grow?",
                "answer": "peppers",
                "evidence": ["D1:2"],
                "category": 1,
            },
            {
                "question": "Which instrument?",
                "adversarial_answer": "x",
                "evidence": ["D2:1; D1:1"],
                "category": 5,
            },
            {"question": "Anything?", "answer": "n/a", "evidence": [], "category": 3},
        ],
        "observation": {"must": "never be read"},
    }
]


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(TINY))
    return path


def test_loader_reads_sessions_captions_and_evidence(tiny: Path) -> None:
    (sample,) = locomo.load(tiny)
    assert [s.number for s in sample.sessions] == [1, 2]  # session 3 has a date, no turns
    assert "[shared an image: a photo of red peppers]" in sample.sessions[0].turns[1].text
    assert sample.sessions[0].occurred_at.hour == 13
    assert sample.questions[2].evidence == ("D2:1", "D1:1")
    with pytest.raises(InvalidInputError, match="unknown sample"):
        locomo.load(tiny, ["nope"])


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (["D8:6; D9:17"], ("D8:6", "D9:17")),
        (["D:11:26"], ("D11:26",)),
        (["D30:05"], ("D30:5",)),
        (["D"], ()),
        (["D1:3", "D1:3"], ("D1:3",)),
    ],
)
def test_evidence_ids_are_normalised(raw: list[str], expected: tuple[str, ...]) -> None:
    assert locomo.parse_evidence(raw) == expected


def test_metrics_follow_the_dataset_definition() -> None:
    turns = expand_to_turns([["a", "b"], ["b", "c"], ["d"]], k=3)
    assert turns == ["a", "b", "c"]
    assert recall_at(turns, ["c", "z"], 2) == 0.0
    assert recall_at(turns, ["c", "z"], 3) == 0.5
    assert recall_at(turns, [], 5) == 1.0
    assert ndcg_at(["x", "a"], ["a"], 10) == pytest.approx(1 / 1.5849625)
    assert ndcg_at(["a", "x"], ["a"], 10) == 1.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0


def test_runner_scores_every_question(tiny: Path) -> None:
    report = run(
        locomo.load(tiny), HashEmbedder(), lambda texts: sum(len(t.split()) for t in texts)
    )
    summary = report.summary()
    assert summary["questions"] == 4 and report.turns == 3
    assert summary["scores"]["overall"]["R@50"] == 1.0  # every turn fits in 50
    assert summary["scores"]["4 single-hop"]["R@5"] == 1.0
    assert summary["scores"]["3 open-domain"]["R@5"] == 1.0  # no evidence counts as 1
    assert summary["scores"]["held-out"]["n"] == 4
    assert summary["mean_tokens_top10"] > 0


def test_cli_runs_the_benchmark(tiny: Path, tmp_path: Path) -> None:
    env = {"REMEM_EMBEDDER": "hash", "REMEM_DB": str(tmp_path / "unused.db"), "REMEM_CONFIG": ""}
    result = CliRunner().invoke(cli, ["bench", "locomo", "--data", str(tiny), "--json"], env=env)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["scores"]["overall"]["n"] == 4 and summary["embedder"] == "hash-64"
    table = CliRunner().invoke(cli, ["bench", "locomo", "--data", str(tiny)], env=env)
    assert "R@10" in table.stdout and "search p50" in table.stdout


@pytest.mark.parametrize("feed", FEEDS)
def test_each_feed_adds_every_turn_with_or_without_its_session(feed: str, tiny: Path) -> None:
    (sample,) = locomo.load(tiny)
    with Memory(":memory:", embedder=HashEmbedder()) as memory:
        dia_of = _ingest(memory, sample, Report(), feed)
        assert sorted(dia_of.values()) == ["D1:1", "D1:2", "D2:1"]
        sessions = {memory.episode(e).scope.session_id for e in dia_of}
        adds = [e for e in dia_of for event in memory.history(e) if event.action == "add"]
    expected = {None} if feed == "turn" else {"tiny-1/session_1", "tiny-1/session_2"}
    assert sessions == expected and len(adds) == 3
    report = run(locomo.load(tiny), HashEmbedder(), len, feed=feed)
    assert report.summary()["questions"] == 4 and report.turns == 3


def test_an_unknown_feed_is_refused(tiny: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="unknown feed"):
        run(locomo.load(tiny), HashEmbedder(), len, feed="sessions")
    env = {"REMEM_EMBEDDER": "hash", "REMEM_DB": str(tmp_path / "unused.db"), "REMEM_CONFIG": ""}
    args = ["bench", "locomo", "--data", str(tiny), "--json", "--feed"]
    result = CliRunner().invoke(cli, [*args, "turn"], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["feed"] == "turn"
    assert CliRunner().invoke(cli, [*args, "bogus"], env=env).exit_code == 2
