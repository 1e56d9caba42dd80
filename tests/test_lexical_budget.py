"""Full-text search within a budget (`stores/lexical`): when a query's terms occur in more
rows than a store may rank, it ranks the rows of the query's rare terms and the candidates
it is given, each scored as the full ranking would score it.

Each test opens the same memory twice: through a store with the default budget (these
few notes are ranked in full) and through one whose budget is two rows (every query here
goes the budgeted way), up to eight rows of rare terms, and no scope small enough to
have all its notes scored. PostgreSQL's planner estimates the rows of a term from the
statistics ANALYZE keeps (a fresh table has none: the fixture analyses it)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from remem import Memory
from remem.stores.base import Store
from remem.stores.lexical import Budget
from remem.testing import HashEmbedder
from remem.types import Scope

COMMON = [f"We walked in the garden and talked about the weather, day {day}." for day in range(12)]
RARE = ["A zeppelin flew over the garden.", "Zeppelin tickets for the weather show.", "zeppelins!"]
ODD = [
    "Café au lait on the naïve façade, the garden again",
    "foo_bar and baz in the garden",
    "happy happiness happily, the weather",
    "running runs ran 2024 garden weather garden",
    "l'été dernier 数据库 test garden",
    "a" * 70 + " garden",
    "quote \" and ' in the garden",
]
QUERIES = [
    ["garden", "weather", "zeppelin"],
    ["café", "naive", "garden"],
    ["happy", "running", "weather"],
    ["garden", "2024", "runs"],
    ["été", "数据库", "garden"],
    ["foo_bar", "garden"],
    ["a" * 70, "garden"],
    ["quote", "garden", '"'],
    ["possible", "technological", "garden"],
    ["gruß", "елка", "σισυφος", "мой", "garden"],
    ["أنا", "がっこう", "שלום", "garden"],
]
ANA = Scope(user_id="ana")


@dataclass
class Pair:
    memory: Memory
    full: Store
    budget: Store
    ids: list[str]
    quiet: str  # a note holding none of the query words


def _analyse(location: str) -> None:
    if "://" in location:
        import psycopg

        with psycopg.connect(location, autocommit=True) as conn:
            conn.execute("ANALYZE notes")
            conn.execute("ANALYZE passages")


def _open(location: str, **options: Budget) -> Store:
    if "://" in location:
        from remem.stores.postgres import PostgresStore

        return PostgresStore(location, **options)
    from remem.stores.sqlite import SQLiteStore

    return SQLiteStore(location, **options)


@pytest.fixture
def pair(location: str) -> Iterator[Pair]:
    with Memory(location, embedder=HashEmbedder()) as memory:
        ids = [
            memory.add(text, user_id="ana", session_id="s1").note_ids[0] for text in COMMON + ODD
        ]
        ids += [memory.add(text, user_id="ana", session_id="s2").note_ids[0] for text in RARE]
        memory.add("zeppelin in the garden of another user", user_id="bo")
        gone = memory.add("a deleted zeppelin note in the garden", user_id="ana").note_ids[0]
        memory.delete(gone)
        quiet = memory.add("nothing to see", user_id="ana").note_ids[0]
        _analyse(location)
        budget = _open(location, budget=Budget(exact=2, rare=8, small_scope=0))
        try:
            yield Pair(memory, memory.store, budget, ids, quiet)
        finally:
            budget.close()


@pytest.mark.parametrize("terms", QUERIES, ids=range(len(QUERIES)))
def test_with_every_note_a_candidate_the_budget_ranks_as_in_full(
    pair: Pair, terms: list[str]
) -> None:
    full = pair.full.search_text(terms, ANA, 100)
    budgeted = pair.budget.search_text(terms, ANA, 100, lambda: pair.ids)
    assert [item for item, _ in budgeted.in_context] == [item for item, _ in full.in_context]
    assert [item for item, _ in budgeted.note] == [item for item, _ in full.note]
    for mine, theirs in ((budgeted.in_context, full.in_context), (budgeted.note, full.note)):
        for (_, score), (_, expected) in zip(mine, theirs, strict=True):
            assert score == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_only_the_rare_terms_and_the_candidates_propose(pair: Pair) -> None:
    full = pair.full.search_text(["garden", "zeppelin"], ANA, 100)
    budgeted = pair.budget.search_text(["garden", "zeppelin"], ANA, 100, lambda: [pair.quiet])
    zeppelins = {
        note.id for note in pair.memory.list(user_id="ana").items if "eppelin" in note.text
    }
    assert len(zeppelins) == 3  # the deleted one and the other user's are not ana's live notes
    assert {item for item, _ in budgeted.in_context} == zeppelins
    assert len(full.in_context) > len(zeppelins)  # the full ranking found the common word too
    assert [item for item, _ in budgeted.in_context] == [
        item for item, _ in full.in_context if item in zeppelins
    ]


def test_without_candidates_everything_is_ranked(pair: Pair) -> None:
    """No candidates: the vector search failed (or was not asked), and a search by words
    alone must still find the common ones."""
    full = pair.full.search_text(["garden", "weather"], ANA, 100)
    assert pair.budget.search_text(["garden", "weather"], ANA, 100) == full
    assert pair.budget.search_passages(["garden"], ANA, 100) == pair.full.search_passages(
        ["garden"], ANA, 100
    )


def test_a_small_scope_has_all_its_notes_scored(location: str, pair: Pair) -> None:
    """A scope small enough is ranked in full, however common its words are elsewhere
    (SQLite counts a term's rows in the whole file; PostgreSQL estimates them in the scope
    itself, so it needs no such rule)."""
    if "://" in location:
        pytest.skip("PostgreSQL counts a term's rows within the scope")
    asked: list[str] = []

    def quiet() -> list[str]:
        asked.append("asked")
        return [pair.quiet]

    roomy = _open(location, budget=Budget(exact=2, rare=8, small_scope=1000))
    try:
        found = roomy.search_text(["garden", "weather"], ANA, 100, quiet)
    finally:
        roomy.close()
    assert asked == []  # (every note is scored: search need not wait for the embedding)
    # passages: no rare rows at all, so only the small-scope rule can bring any in
    passages, tight = (
        _passages(location, Budget(exact=2, rare=0, small_scope=small)) for small in (1000, 0)
    )
    full = pair.full.search_text(["garden", "weather"], ANA, 100)
    assert [item for item, _ in found.in_context] == [item for item, _ in full.in_context]
    everything = pair.full.search_passages(["garden", "weather"], ANA, 100)
    assert [pk for pk, _ in passages] == [pk for pk, _ in everything] and everything
    for (_, score), (_, expected) in zip(passages, everything, strict=True):
        assert score == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert tight == []


def _passages(location: str, budget: Budget) -> list[tuple[int, float]]:
    store = _open(location, budget=budget)
    try:
        return store.search_passages(["garden", "weather"], ANA, 100, lambda: [-1])
    finally:
        store.close()


def test_a_term_in_every_row_after_deletes_does_not_break_search(pair: Pair) -> None:
    """A term's frequency read at another moment than the row count (a delete between,
    or a racing writer) once made its idf the log of a negative number."""
    turns = [
        {"role": "user" if i % 2 else "assistant", "name": "Caroline" if i % 2 else "Mel",
         "content": f"turn {i} about hiking and plans"}
        for i in range(40)
    ]  # fmt: skip
    added = pair.memory.add(turns, user_id="cy", session_id="talk").note_ids
    cy = Scope(user_id="cy")
    assert pair.budget.search_text(["caroline", "hiking"], cy, 10, lambda: [added[0]]).in_context
    for note_id in added[:3]:
        pair.memory.delete(note_id)
    found = pair.budget.search_text(["caroline", "hiking"], cy, 10, lambda: [added[5]])
    assert found.in_context and added[0] not in {item for item, _ in found.in_context}


def test_candidates_of_other_scopes_or_deleted_are_not_returned(pair: Pair) -> None:
    everyone = [note.id for note in pair.memory.list(user_id="bo").items] + pair.ids
    found = pair.budget.search_text(
        ["zeppelin", "garden"], Scope(user_id="bo"), 100, lambda: everyone
    )
    bo = {note.id for note in pair.memory.list(user_id="bo").items}
    assert {item for item, _ in found.in_context} == bo


def test_passages_with_every_candidate_rank_as_in_full(pair: Pair) -> None:
    facts = pair.full.describe(pair.ids, neighbours=False)
    passages = sorted({fact.passage for fact in facts.values() if fact.passage is not None})
    assert passages
    for terms in QUERIES:
        full = pair.full.search_passages(terms, ANA, 100)
        budgeted = pair.budget.search_passages(terms, ANA, 100, lambda: passages)
        assert [pk for pk, _ in budgeted] == [pk for pk, _ in full]
        assert [score for _, score in budgeted] == pytest.approx([score for _, score in full])


def test_candidates_are_asked_for_only_when_the_budget_needs_them(pair: Pair) -> None:
    # Search embeds the query while the full ranking runs: asking for candidates the
    # ranking does not use would wait for the embedding for nothing.
    asked: list[str] = []

    def note_ids() -> list[str]:
        asked.append("notes")
        return pair.ids

    def passage_keys() -> list[int]:
        asked.append("passages")
        return []

    terms = ["garden", "weather"]
    assert pair.full.search_text(terms, ANA, 100, note_ids).in_context
    assert pair.full.search_passages(terms, ANA, 100, passage_keys)
    assert asked == []
    assert pair.budget.search_text(terms, ANA, 100, note_ids).in_context
    assert pair.budget.search_passages(terms, ANA, 100, passage_keys)
    assert asked == ["notes", "passages"]


def test_no_candidates_from_a_failed_retriever_means_the_full_ranking(pair: Pair) -> None:
    full = pair.full.search_text(["garden", "zeppelin"], ANA, 100)
    assert pair.budget.search_text(["garden", "zeppelin"], ANA, 100, lambda: []) == full


def test_search_through_a_budget_store_finds_the_rare_word(pair: Pair) -> None:
    with Memory(store=pair.budget, embedder=HashEmbedder()) as memory:
        hits = memory.search("when did the zeppelin fly over the garden?", user_id="ana")
    assert hits and "zeppelin" in hits[0].text.lower()


def test_searches_racing_writes_on_a_budget_store(pair: Pair) -> None:
    errors: list[BaseException] = []
    stop = threading.Event()

    def search() -> None:
        try:
            while not stop.is_set():
                found = pair.budget.search_text(["garden", "weather"], ANA, 20, lambda: pair.ids)
                assert len(found.in_context) == 20
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=search) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        for day in range(20):
            pair.memory.add(f"another zeppelin day {day} in the garden", user_id="ana")
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert not errors
    everything = [note.id for note in pair.memory.list(user_id="ana", limit=1000).items]
    budgeted = pair.budget.search_text(["garden", "zeppelin"], ANA, 100, lambda: everything)
    full = pair.full.search_text(["garden", "zeppelin"], ANA, 100)
    assert len(full.in_context) == len(everything) - 1  # all but "nothing to see"
    assert [item for item, _ in budgeted.in_context] == [item for item, _ in full.in_context]


def test_planner_estimates_are_asked_once_a_term_and_kept_bounded() -> None:
    from remem.stores import postgres_lexical
    from remem.stores.postgres_lexical import Estimates

    asked: list[str] = []

    def ask(term: str) -> int:
        asked.append(term)
        return len(term)

    estimates = Estimates()
    assert estimates.get(("notes", "ana", "garden"), lambda: ask("garden")) == 6
    assert estimates.get(("notes", "ana", "garden"), lambda: ask("garden")) == 6
    assert estimates.get(("notes", "bo", "garden"), lambda: ask("garden")) == 6  # another owner
    assert asked == ["garden", "garden"]
    for number in range(postgres_lexical.ESTIMATES_KEPT + 5):
        estimates.get(("notes", "ana", str(number)), lambda: 1)
    assert len(estimates._kept) <= postgres_lexical.ESTIMATES_KEPT


def test_a_large_scope_is_counted_once_a_minute_a_small_one_every_time() -> None:
    from remem.stores.postgres_lexical import LargeScopes

    counted: list[str] = []

    def count(scope: str, large: bool) -> bool:
        counted.append(scope)
        return large

    scopes = LargeScopes()
    assert scopes.is_large(("notes", "ana"), lambda: count("ana", True))
    assert scopes.is_large(("notes", "ana"), lambda: count("ana", False))  # kept: not asked
    assert not scopes.is_large(("notes", "bo"), lambda: count("bo", False))
    assert not scopes.is_large(("notes", "bo"), lambda: count("bo", False))  # asked again
    assert counted == ["ana", "bo", "bo"]
    scopes.forget()  # a deletion: ana may be small now
    assert not scopes.is_large(("notes", "ana"), lambda: count("ana", False))
    for number in range(LargeScopes.KEPT + 5):
        scopes.is_large(("notes", str(number)), lambda: True)
    assert len(scopes._until) <= LargeScopes.KEPT


def test_a_scope_made_small_by_purges_is_ranked_in_full_again(location: str) -> None:
    """A store that found a scope large keeps the verdict a minute; purging notes (which
    makes a scope smaller; deleting keeps its rows) must end it at once."""
    budget = Budget(exact=2, rare=8, small_scope=5)
    with Memory(location, embedder=HashEmbedder()) as memory:
        garden = [
            memory.add(f"we walked in the garden, day {day}", user_id="ana").note_ids[0]
            for day in range(8)
        ]
        quiet = memory.add("nothing to see", user_id="ana").note_ids[0]
        _analyse(location)
        store = _open(location, budget=budget)
        try:
            with Memory(store=store, embedder=HashEmbedder()) as budgeted:
                store.search_text(["garden"], ANA, 100, lambda: [quiet])  # 9 notes: large
                for note_id in garden[:6]:
                    budgeted.purge(note_id)
                # 3 notes left, at most small_scope: all of them are ranked
                found = store.search_text(["garden"], ANA, 100, lambda: [quiet]).in_context
            fresh = _open(location, budget=budget)
            try:
                assert found == fresh.search_text(["garden"], ANA, 100, lambda: [quiet]).in_context
            finally:
                fresh.close()
            assert set(garden[6:]) <= {note_id for note_id, _ in found}
        finally:
            store.close()
