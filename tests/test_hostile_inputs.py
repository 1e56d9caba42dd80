"""Limits as data, not crashes: dates at the ends of the calendar, queries of any length and
alphabet, cursors, metadata, ids, names and export targets each get a `RememError` that
names the problem, or are handled, on every store."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from remem import (
    InvalidContentError,
    InvalidDateError,
    InvalidInputError,
    Memory,
    NotFoundError,
    RememError,
    StoreError,
    clock,
)
from remem.inputs import (
    MAX_METADATA_BYTES,
    MAX_METADATA_DEPTH,
    check_cursor,
    check_id,
    check_metadata,
    check_path,
)
from remem.read.query import MAX_TERMS, search_terms
from remem.read.timespan import find_span
from remem.stores.base import Dump
from remem.transfer import export_jsonl
from remem.write.dates import resolve_dates

FIXTURE_REUSE = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def nested(depth: int) -> dict[str, Any]:
    """Metadata `depth` dicts deep (built in a loop: deep values must not need recursion)."""
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"k": value}
    return value


# -- dates ---------------------------------------------------------------------------------

REFUSED_TIMES: list[Any] = [
    "0001-01-01T00:00:00+05:00",  # year 0 in UTC
    "9999-12-31T23:59:59-05:00",  # year 10000 in UTC
    "0001-01-01",  # stored, but not readable in a time zone west of UTC
    "9999-12-31T12:00:00",
    "10000-01-01",
    datetime(1, 1, 1),
    datetime(9999, 12, 31, 23, 59, tzinfo=UTC),
    datetime(1, 1, 1, 3, tzinfo=timezone(timedelta(hours=5))),
    1_700_000_000,
    "9" * 10_000,
]
ACCEPTED_TIMES = [
    ("0001-01-02", datetime(1, 1, 2, tzinfo=UTC)),
    ("0001-01-02T05:00:00+05:00", datetime(1, 1, 2, tzinfo=UTC)),
    ("9999-12-30T23:59:59.999999", datetime(9999, 12, 30, 23, 59, 59, 999999, tzinfo=UTC)),
    ("9999-12-30T18:59:59-05:00", datetime(9999, 12, 30, 23, 59, 59, tzinfo=UTC)),
]


@pytest.mark.parametrize("when", REFUSED_TIMES, ids=lambda value: repr(value)[:40])
def test_times_outside_what_can_be_stored_are_refused(memory: Memory, when: Any) -> None:
    with pytest.raises(InvalidDateError, match="occurred_at") as refused:
        memory.add("text", user_id="u", occurred_at=when)
    assert len(str(refused.value)) < 300
    assert memory.list(user_id="u").items == ()


@pytest.mark.parametrize(("when", "stored"), ACCEPTED_TIMES)
def test_times_at_the_edges_round_trip(memory: Memory, when: str, stored: datetime) -> None:
    said = "the day before yesterday, last week and next month, 3 years ago and next year"
    note_id = memory.add(said, user_id="u", occurred_at=when).note_ids[0]
    assert memory.get(note_id).occurred_at == stored
    assert memory.search("9999-12-31 and 0001-01-01, next month", user_id="u")[0].id == note_id


@settings(max_examples=300, deadline=None)
@given(
    st.datetimes(),
    st.timedeltas(min_value=-timedelta(hours=23, minutes=59), max_value=timedelta(hours=23)),
)
@example(datetime.min, timedelta(hours=5))
@example(datetime.max, -timedelta(hours=5))
@example(datetime(1, 1, 2), timedelta(hours=23))
def test_any_datetime_round_trips_or_is_refused(moment: datetime, offset: timedelta) -> None:
    for value in (moment, moment.replace(tzinfo=timezone(offset))):
        for given_as in (value, value.isoformat()):
            try:
                parsed = clock.parse_time(given_as)
            except InvalidDateError:
                continue
            assert clock.EARLIEST <= parsed <= clock.LATEST
            assert clock.from_text(clock.to_text(parsed)) == parsed


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_any_text_is_a_time_or_refused(text: str) -> None:
    with contextlib.suppress(InvalidDateError):
        clock.parse_time(text)


SAID = (
    "the day before yesterday, yesterday, today, tomorrow, 3 days ago, 2 weeks ago,"
    " 5 months ago, 12 years ago, last weekend, this weekend, last week, next week,"
    " last month, next month, last year, next year, last monday, next sunday"
)


@pytest.mark.parametrize(
    "said_at",
    [datetime.min, datetime(1, 1, 3), datetime(1, 2, 1), datetime(9999, 12, 25), datetime.max],
)
def test_relative_dates_at_the_ends_of_the_calendar_never_overflow(said_at: datetime) -> None:
    resolved = dict(resolve_dates(SAID, said_at))
    assert resolved["today"] == f"{said_at.day} {said_at:%B} {said_at.year}"
    # what would fall before year 1 or after 9999 is left out, the rest is resolved
    assert ("yesterday" in resolved) == (said_at > datetime.min)
    assert ("tomorrow" in resolved) == (said_at.date() < datetime.max.date())


@pytest.mark.parametrize(
    "query",
    [
        "what happened on 9999-12-31",
        "what happened on 0000-01-01",
        "on 1 January 1",
        "in year 10000",
        "31 December 9999",
        "in December",
        "in January",
        "in 2099",
    ],
)
def test_dates_in_a_query_never_overflow(query: str) -> None:
    for reference in (datetime(1, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, tzinfo=UTC), None):
        span = find_span(query, lambda moment=reference: moment)
        assert span is None or span[0] < span[1]


@pytest.mark.parametrize("query", ["what happened on 9999-12-31?", "in December", "0000-00-00"])
def test_search_and_context_read_dates_at_the_ends(memory: Memory, query: str) -> None:
    memory.add("The launch is in December.", user_id="u", occurred_at="9999-12-30")
    memory.add("The founding was in January.", user_id="u", occurred_at="0001-01-02")
    assert memory.search(query, user_id="u")
    assert memory.context(query, user_id="u").items


# -- queries -------------------------------------------------------------------------------


def test_search_terms_keep_the_longest_beyond_the_cap() -> None:
    words = [f"w{index:03d}" + "x" * (index % 5) for index in range(600)]
    terms = search_terms(" ".join(words))
    assert len(terms) == MAX_TERMS
    assert all(len(term) == 8 for term in terms)  # the longest ones, in query order
    assert terms == [word for word in words if len(word) == 8][:MAX_TERMS]
    question = "What did Caroline say about the adoption agency in May 2023?"
    assert search_terms(question) == ["caroline", "say", "adoption", "agency", "may", "2023"]
    assert len(search_terms(" ".join(words), cap=None)) == 600


@pytest.mark.parametrize("count", [600, 5000])
def test_a_query_of_thousands_of_words_searches(memory: Memory, count: int) -> None:
    note_id = memory.add("The zeppelin hangar is in Friedrichshafen.", user_id="u").note_ids[0]
    query = " ".join(f"word{index}" for index in range(count)) + " zeppelin hangar"
    assert memory.search(query, user_id="u")[0].id == note_id
    assert memory.context(query, user_id="u").items


@pytest.mark.parametrize("query", ["a\x00b", "lone \udfff", "\ud800"])
def test_a_query_the_stores_cannot_read_is_refused(memory: Memory, query: str) -> None:
    with pytest.raises(InvalidInputError, match="query"):
        memory.search(query, user_id="u")
    with pytest.raises(InvalidInputError, match="query"):
        memory.context(query, user_id="u")


@pytest.fixture
def searched(memory: Memory) -> Iterator[Memory]:
    memory.add([{"role": "user", "name": "Ana", "content": "I moved to Lisbon."}], user_id="u")
    yield memory


@FIXTURE_REUSE
@given(query=st.text(max_size=200))
@example(query="\x00")
@example(query="on 9999-12-31, 31 December 9999")
@example(query=" ".join(f"w{index}" for index in range(700)))
def test_any_text_as_a_query_is_answered_or_refused(searched: Memory, query: str) -> None:
    for call in (searched.search, searched.context):
        with contextlib.suppress(InvalidInputError):
            call(query, user_id="u")


# -- cursors -------------------------------------------------------------------------------

FULLWIDTH = "\uff11\uff12"
BAD_CURSORS: list[Any] = [
    "²",
    "¹²",
    "١٢٣",
    FULLWIDTH,
    "1" * 19,
    "-1",
    "+1",
    " 1",
    "1.0",
    "",
    12,
    b"1",
]


@pytest.mark.parametrize("cursor", BAD_CURSORS, ids=repr)
def test_cursors_are_ascii_row_numbers(memory: Memory, cursor: Any) -> None:
    with pytest.raises(InvalidInputError, match="cursor"):
        memory.list(user_id="u", cursor=cursor)


def test_a_cursor_handed_out_pages_on(memory: Memory) -> None:
    ids = [memory.add(f"note {index}", user_id="u").note_ids[0] for index in range(3)]
    page = memory.list(user_id="u", limit=2)
    assert check_cursor(page.cursor) == page.cursor
    assert [n.id for n in memory.list(user_id="u", cursor=page.cursor).items] == ids[2:]


# -- metadata ------------------------------------------------------------------------------

BAD_METADATA: list[tuple[Any, str]] = [
    (nested(MAX_METADATA_DEPTH + 1), f"deeper than {MAX_METADATA_DEPTH} levels"),
    (nested(100_000), f"deeper than {MAX_METADATA_DEPTH} levels"),
    ({"k": "x" * MAX_METADATA_BYTES}, "64 KiB"),
    ({1: "a"}, "not a string"),
    ({("a",): 1}, "not a string"),
    ({"a\x00": 1}, "NUL"),
    ({"k": "a\x00"}, "NUL"),
    ({"\ud800": 1}, "Unicode"),
    ({"k": ["\udfff"]}, "Unicode"),
    ({"k": float("nan")}, "finite"),
    ({"k": [float("inf")]}, "finite"),
    ({"k": {1, 2}}, "JSON"),
    ({"k": 10**5000}, "JSON"),
    (["a"], "dict"),
]


METADATA_CASES = ["17 deep", "100000 deep", "too large", "int key", "tuple key", "NUL key"]
METADATA_CASES += ["NUL value", "surrogate key", "surrogate value", "NaN", "infinity", "a set"]
METADATA_CASES += ["5000 digits", "a list"]


@pytest.mark.parametrize(("metadata", "words"), BAD_METADATA, ids=METADATA_CASES)
def test_metadata_beyond_the_limits_is_refused(memory: Memory, metadata: Any, words: str) -> None:
    note_id = memory.add("fine", user_id="u", metadata={"kept": True}).note_ids[0]
    with pytest.raises(InvalidInputError, match=words):
        memory.add("text", user_id="u", metadata=metadata)
    with pytest.raises(InvalidInputError, match=words):
        memory.update(note_id, metadata=metadata)
    with pytest.raises(InvalidInputError, match=words):
        memory.add([{"content": "text", "metadata": metadata}], user_id="u")
    assert [(n.id, n.metadata, n.version) for n in memory.list(user_id="u").items] == [
        (note_id, {"kept": True}, 1)
    ]


def test_metadata_within_the_limits_is_kept(memory: Memory) -> None:
    deepest = nested(MAX_METADATA_DEPTH)
    largest = {"k": "x" * (MAX_METADATA_BYTES - 20)}
    for metadata in (deepest, largest, {"t": ("a", 1)}):
        note_id = memory.add("text", user_id="u", metadata=metadata).note_ids[0]
        assert memory.get(note_id).metadata == check_metadata(metadata)
    assert check_metadata({"t": ("a", 1)}) == {"t": ["a", 1]}


def test_metadata_of_a_message_and_the_call_together_stay_within_the_limit(
    memory: Memory,
) -> None:
    half = {"a": "x" * (MAX_METADATA_BYTES // 2)}
    message = {"content": "text", "metadata": {"b": "y" * (MAX_METADATA_BYTES // 2)}}
    with pytest.raises(InvalidInputError, match="64 KiB"):
        memory.add([message], user_id="u", metadata=half)
    assert memory.list(user_id="u").items == ()


# -- names, scopes and ids -------------------------------------------------------------------


@pytest.mark.parametrize(
    "arguments",
    [
        {"content": [{"role": "user", "name": "A\x00", "content": "x"}]},
        {"content": [{"role": "user", "name": "\ud800", "content": "x"}]},
        {"content": [{"role": "us\x00er", "content": "x"}]},
        {"content": [{"role": "\udfff", "content": "x"}]},
        {"content": "x", "user_id": "u\x00"},
        {"content": "x", "agent_id": "\ud800"},
        {"content": "x", "session_id": "s\x00"},
    ],
    ids=repr,
)
def test_names_and_scopes_the_stores_cannot_keep_are_refused(
    memory: Memory, arguments: dict[str, Any]
) -> None:
    with pytest.raises(InvalidInputError):
        memory.add(**{"user_id": "u", **arguments})
    assert memory.list().items == ()


def test_a_nul_in_a_scope_is_refused_on_reads_too(memory: Memory) -> None:
    with pytest.raises(InvalidInputError, match="user_id"):
        memory.search("query", user_id="u\x00")
    with pytest.raises(InvalidInputError, match="session_id"):
        memory.list(session_id="\x00")


BAD_IDS: list[Any] = [None, 5, b"nt_1", "", "x" * 201, "nt_\x00", "nt_\ud800", ["nt_1"]]


@pytest.mark.parametrize("item_id", BAD_IDS, ids=lambda v: repr(v)[:20])
def test_check_id_refuses_what_no_record_is_named(item_id: Any) -> None:
    with pytest.raises(InvalidInputError, match="memory_id"):
        check_id(item_id, "memory_id")


@pytest.mark.parametrize("item_id", ["nt_01HZX0000000000000000000N1", "whatever", "x" * 200])
def test_check_id_passes_ids(item_id: str) -> None:
    assert check_id(item_id) == item_id


@pytest.mark.parametrize("item_id", BAD_IDS, ids=lambda v: repr(v)[:20])
def test_memory_refuses_bad_ids(memory: Memory, item_id: Any) -> None:
    calls = [
        memory.get,
        memory.episode,
        memory.delete,
        memory.purge,
        memory.history,
        lambda value: memory.update(value, text="new"),
    ]
    for call in calls:
        with pytest.raises(InvalidInputError):
            try:
                call(item_id)
            except NotFoundError as error:  # a RememError, but the id was never valid
                raise AssertionError(f"NotFoundError, not InvalidInputError: {error}") from None


@pytest.mark.parametrize("path", ["", "  ", None, 5, "a\x00b"], ids=repr)
def test_check_path_refuses_what_is_no_path(path: Any) -> None:
    with pytest.raises(InvalidInputError, match="export"):
        check_path(path, "export")


# -- export targets ------------------------------------------------------------------------


def _files(folder: Path) -> set[str]:
    """What a folder holds, but the memory's own files."""
    return {name for name in os.listdir(folder) if not name.startswith("memory.db")}


def _target(kind: str, folder: Path) -> Path:
    if kind == "folder":
        (folder / "sub").mkdir()
        return folder / "sub"
    if kind == "fifo":
        os.mkfifo(folder / "fifo")
        return folder / "fifo"
    if kind == "device":
        # a copy of /dev/null: were export to replace it, the machine's own stays intact
        try:
            os.mknod(folder / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        except PermissionError:
            pytest.skip("making a device node needs root")
        return folder / "null"
    return {
        "missing folder": folder / "missing" / "out.jsonl",
        "file as folder": folder / "file.txt" / "out.jsonl",
        "empty": Path(""),
        "NUL": folder / "a\x00b.jsonl",
    }[kind]


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("folder", "it is a folder"),
        ("device", "not a regular file"),
        ("fifo", "not a regular file"),
        ("missing folder", "folder .*missing does not exist"),
        ("file as folder", "file.txt is not a folder"),
        ("empty", "file path"),
        ("NUL", "file path"),
    ],
)
def test_export_refuses_targets_that_are_not_files(
    memory: Memory, tmp_path: Path, kind: str, words: str
) -> None:
    (tmp_path / "file.txt").write_text("keep me")
    memory.add("a note to export", user_id="u")
    target = _target(kind, tmp_path)
    before = _files(tmp_path)
    with pytest.raises(InvalidInputError, match=words):
        memory.export(target)
    assert _files(tmp_path) == before  # no temporary file left behind
    assert (tmp_path / "file.txt").read_text() == "keep me"


@pytest.mark.parametrize("dangling", [False, True])
def test_export_refuses_a_symbolic_link(memory: Memory, tmp_path: Path, dangling: bool) -> None:
    pointed = tmp_path / "real.jsonl"
    if not dangling:
        pointed.write_text("keep me")
    (tmp_path / "link.jsonl").symlink_to(pointed)
    with pytest.raises(InvalidInputError, match="symbolic link"):
        memory.export(tmp_path / "link.jsonl")
    assert pointed.exists() != dangling and (dangling or pointed.read_text() == "keep me")
    assert (tmp_path / "link.jsonl").is_symlink()


def test_export_replaces_a_file_and_keeps_its_mode(memory: Memory, tmp_path: Path) -> None:
    memory.add("a note to export", user_id="u")
    target = tmp_path / "out.jsonl"
    target.write_text("old")
    target.chmod(0o640)
    assert memory.export(target) > 0
    assert target.read_text().startswith('{"embedder"')
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert _files(tmp_path) == {"out.jsonl"}


class _FailingStore:
    """A store whose dump fails half way: an export must leave nothing behind."""

    def __init__(self, memory: Memory) -> None:
        self.memory = memory

    def dump(self) -> Dump:
        real = self.memory.store.dump()

        def failing() -> Iterator[Any]:
            yield from real.episodes
            raise StoreError("the database went away")

        return Dump(failing(), real.notes, real.links, real.events, real.jobs)


def test_a_failed_export_leaves_no_temporary_file(memory: Memory, tmp_path: Path) -> None:
    memory.add("a note to export", user_id="u")
    target = tmp_path / "out.jsonl"
    target.write_text("old")
    before = set(os.listdir(tmp_path))
    with pytest.raises(StoreError):
        export_jsonl(_FailingStore(memory), target, "hash-64", "")  # type: ignore[arg-type]
    assert set(os.listdir(tmp_path)) == before
    assert target.read_text() == "old"


def test_every_error_here_is_a_remem_error() -> None:
    for error in (InvalidInputError, InvalidDateError, InvalidContentError, StoreError):
        assert issubclass(error, RememError)
