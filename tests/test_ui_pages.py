"""The web UI's pages over HTTP (no browser): what each shows, and that its forms change
the memory the way the Python API would. On SQLite and, when configured, PostgreSQL."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from remem import Memory, ids
from remem.server.app import create_app
from remem.server.ui.memories import MAX_SCAN, PAGE_SIZE
from remem.server.ui.render import highlight, word_diff
from remem.server.ui.views import group_by_period, period_of
from remem.stores.base import Changes
from remem.testing import FailingEmbedder, HashEmbedder
from remem.types import Job, Link

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
def client(memory: Memory) -> Iterator[TestClient]:
    with TestClient(create_app(memory), base_url="http://127.0.0.1:8765") as client:
        yield client


def csrf_of(client: TestClient, path: str = "/add") -> str:
    found = CSRF.search(client.get(path).text)
    assert found, f"no CSRF token on {path}"
    return found.group(1)


def texts_of(page: str, css_id: str = "list") -> list[str]:
    """The memory texts of a list (ol#list or ol#results), unescaped."""
    part = page.split(f'id="{css_id}"', 1)[1].split("</ol>", 1)[0]
    found = re.findall(r'<div class="text">(.*?)</div>', part, re.S)
    return [html.unescape(re.sub(r"</?mark>", "", text)) for text in found]


def test_the_list_is_newest_first_and_pages_in_the_store(
    memory: Memory, client: TestClient
) -> None:
    for day in range(1, PAGE_SIZE + 8):
        memory.add(f"day {day} of the diary", user_id="ana", occurred_at="2026-01-01T00:00:00Z")
        memory.add(f"entry {day}", user_id="ana", occurred_at=f"2026-03-{day % 28 + 1:02d}")
    first = client.get("/")
    shown = texts_of(first.text)
    expected = [note.text for note in memory.list(limit=PAGE_SIZE, order="newest").items]
    assert shown == expected and len(shown) == PAGE_SIZE
    cursor = re.search(r'hx-get="/\?cursor=([^"]+)"', first.text)
    assert cursor is not None
    more = client.get(f"/?cursor={cursor.group(1)}", headers={"HX-Request": "true"})
    assert "<html" not in more.text  # a fragment: the next rows and the next button
    second = memory.list(limit=PAGE_SIZE, order="newest", cursor=cursor.group(1)).items
    assert re.findall(r'<div class="text">(.*?)</div>', more.text, re.S) == [
        html.escape(note.text, quote=False) for note in second
    ]


def test_the_scope_filter_narrows_the_list(memory: Memory, client: TestClient) -> None:
    memory.add("Ana's note", user_id="ana")
    memory.add("Bo's note", user_id="bo", session_id="x")
    assert texts_of(client.get("/?user=bo").text) == ["Bo's note"]
    assert texts_of(client.get("/?session=x").text) == ["Bo's note"]
    assert texts_of(client.get("/?user=nobody").text) == []


def test_the_list_and_timeline_jump_to_a_date(memory: Memory, client: TestClient) -> None:
    for day in ("2026-03-01", "2026-03-04T23:59:59.999999", "2026-03-05", "2026-03-09"):
        memory.add(f"on {day[:10]}", user_id="ana", occurred_at=day)
    assert texts_of(client.get("/?before=2026-03-05").text) == ["on 2026-03-04", "on 2026-03-01"]
    assert texts_of(client.get("/?before=2026-03-01").text) == []
    assert texts_of(client.get("/?before=9999-12-31").text)[0] == "on 2026-03-09"
    timeline = client.get("/timeline?before=2026-03-06").text
    assert "on 2026-03-05" in timeline and "on 2026-03-09" not in timeline
    for bad in ("yesterday", "2026-02-30", "0000-01-01"):
        answer = client.get("/", params={"before": bad})
        assert answer.status_code == 422 and "before must be a date" in answer.text


def test_the_list_filters_by_kind_and_hides_superseded_facts(
    memory: Memory, client: TestClient
) -> None:
    said = memory.add("said once", user_id="ana", occurred_at="2026-01-01").note_ids[0]
    turn = memory.get(said)  # two facts a model extracted from it, the later one replacing
    old, new = (ids.new_id(ids.NOTE) for _ in range(2))
    facts = [
        replace(turn, id=old, text="Ana lives in Porto", kind="fact", superseded_by=new),
        replace(turn, id=new, text="Ana lives in Faro", kind="fact"),
    ]
    facts = [
        replace(fact, occurred_at=turn.occurred_at + timedelta(days=n))
        for n, fact in enumerate(facts, 1)
    ]
    memory.store.apply(Changes(notes=facts))
    facts = texts_of(client.get("/?kind=fact").text)
    assert facts == ["Ana lives in Faro", "Ana lives in Porto"]
    assert texts_of(client.get("/?kind=turn").text) == ["said once"]
    assert texts_of(client.get("/?kind=fact&current=1").text) == ["Ana lives in Faro"]
    assert texts_of(client.get("/?current=1").text) == ["Ana lives in Faro", "said once"]
    assert client.get("/?kind=opinion").status_code == 422
    replaced = client.get(f"/memories/{old}").text
    assert "<dt>Superseded by</dt>" in replaced and f'href="/memories/{new}"' in replaced


def test_a_filtered_list_reads_a_bounded_number_of_notes(
    memory: Memory, client: TestClient
) -> None:
    memory.add(
        [{"role": "user", "content": f"turn {n}"} for n in range(MAX_SCAN + 10)], user_id="a"
    )
    page = client.get("/?kind=fact").text  # no fact at all: one bounded scan, then a link
    assert texts_of(page) == [] and "older ones may" in page
    cursor = re.search(r'hx-get="/\?cursor=([^"&]+)&amp;kind=fact"', page)
    assert cursor is not None
    rest = client.get(f"/?cursor={cursor.group(1)}&kind=fact", headers={"HX-Request": "1"})
    assert "Older memories" not in rest.text  # the last 10 read: nothing older


def test_search_ranks_as_search_does_and_highlights(memory: Memory, client: TestClient) -> None:
    for text in ("a cat called Miso", "Miso soup for lunch", "the dog barks", "cats and dogs"):
        memory.add(text, user_id="ana")
    page = client.get("/", params={"q": "Miso cat"}).text
    hits = memory.search("Miso cat", user_id="ana", limit=50)
    assert texts_of(page, "results") == [hit.text for hit in hits]
    assert "<mark>Miso</mark>" in page and "<mark>cat</mark>" in page
    memory.add("Bo's cat", user_id="bo")  # two users now: search asks which
    assert "Choose a user" in client.get("/", params={"q": "cat"}).text
    assert texts_of(client.get("/", params={"q": "cat", "user": "bo"}).text, "results") == [
        "Bo's cat"
    ]


def test_search_filters_by_metadata(memory: Memory, client: TestClient) -> None:
    memory.add("tea with Eva", user_id="ana", metadata={"source": "diary", "n": 3})
    memory.add("tea with Rui", user_id="ana", metadata={"source": "chat"})
    by_source = client.get("/", params={"q": "tea", "meta": "source=diary"}).text
    assert texts_of(by_source, "results") == ["tea with Eva"]
    by_number = client.get("/", params={"q": "tea", "meta": "n=3"}).text
    assert texts_of(by_number, "results") == ["tea with Eva"]
    assert texts_of(client.get("/", params={"q": "tea", "meta": 'n="3"'}).text, "results") == []
    bad = client.get("/", params={"q": "tea", "meta": "no equals sign"}).text
    assert "a metadata filter is key=value" in bad


def test_highlight_escapes_and_marks_whole_matches() -> None:
    assert str(highlight("<b>Miso</b> & co", "miso <b>")) == (
        "&lt;b&gt;<mark>Miso</mark>&lt;/b&gt; &amp; co"
    )
    assert str(highlight("<a> & amp", "lt amp")) == "&lt;a&gt; &amp; <mark>amp</mark>"
    assert str(highlight("plain", "")) == "plain"
    assert str(highlight("a.*b", ".*")) == "a.*b"  # words only: no regex from the query


def test_word_diff_marks_what_changed() -> None:
    assert word_diff("the cat sat", "the dog sat") == [
        ("same", "the "),
        ("del", "cat"),
        ("ins", "dog"),
        ("same", " sat"),
    ]


def test_word_diff_of_long_texts_matches_words_only_where_it_is_cheap() -> None:
    """Word matching is quadratic: a long middle that changed shows as deleted and inserted
    whole (two reordered texts of 15,000 words took 24 s a page view), while a small change
    in a long text is still marked word by word."""
    words = [f"w{i}" for i in range(15_000)]
    text, reordered = " ".join(words), " ".join(reversed(words))
    assert word_diff(text, reordered) == [("del", text), ("ins", reordered)]
    edited = text.replace(" w7000 ", " seven-thousand ")
    assert [op for op, _ in word_diff(text, edited)] == ["same", "del", "ins", "same"]
    assert word_diff(text, edited)[1:3] == [("del", "w7000"), ("ins", "seven-thousand")]


def test_a_memory_page_shows_versions_sources_links_and_history(
    memory: Memory, client: TestClient
) -> None:
    added = memory.add([{"role": "user", "name": "Ana", "content": "I adopted Miso"}], user_id="a")
    note_id = added.note_ids[0]
    other = memory.add("Miso likes boxes", user_id="a").note_ids[0]
    link = Link(ids.new_id(ids.LINK), other, note_id, "elaborates", 0.7, "same cat", _now())
    memory.store.apply(Changes(links=[link]))
    memory.update(note_id, text="I adopted Miso in March")
    memory.update(note_id, metadata={"source": "chat"})
    page = client.get(f"/memories/{note_id}").text
    assert "version 3" in page
    assert 'I adopted Miso<ins class="ins"> in March</ins>' in page
    assert 'metadata: {} → {"source": "chat"}' in page
    assert "<strong>Ana</strong>" in page and "I adopted Miso</div>" in page  # the episode
    assert "elaborates" in page and "same cat" in page and f"/memories/{other}" in page
    assert page.count("<td>update text</td>") == 1 and "update metadata" in page


def test_an_episode_page_shows_it_verbatim_with_its_memories(
    memory: Memory, client: TestClient
) -> None:
    message = {"role": "user", "name": "Ana", "content": "I adopted <Miso>\n  twice"}
    added = memory.add([message], user_id="ana", metadata={"app": "chat"})
    episode_id, note_id = added.episode_ids[0], added.note_ids[0]
    memory_page = client.get(f"/memories/{note_id}").text
    assert f'href="/episodes/{episode_id}"' in memory_page
    page = client.get(f"/episodes/{episode_id}").text
    assert '<div class="text" id="episode-text">I adopted &lt;Miso&gt;\n  twice</div>' in page
    assert f'href="/memories/{note_id}"' in page and "<strong>Ana</strong>" in page
    memory.delete(episode_id)
    gone = client.get(f"/episodes/{episode_id}")
    assert gone.status_code == 404 and "This episode was forgotten on" in gone.text
    assert client.get("/episodes/ep_nope").status_code == 404


def test_editing_makes_a_new_version_and_a_stale_edit_is_a_conflict(
    memory: Memory, client: TestClient
) -> None:
    note_id = memory.add("Ana lives in Lisbon", user_id="ana").note_ids[0]
    token = csrf_of(client)
    saved = client.post(
        f"/memories/{note_id}/edit",
        data={"csrf": token, "text": "Ana lives in Porto", "metadata": "{}", "expected_version": 1},
    )
    assert saved.status_code == 200 and "Saved as version 2" in saved.text
    assert memory.get(note_id).text == "Ana lives in Porto"
    stale = client.post(
        f"/memories/{note_id}/edit",
        data={"csrf": token, "text": "Ana lives in Faro", "metadata": "", "expected_version": 1},
    )
    assert stale.status_code == 409 and "now at version 2" in stale.text
    assert "Ana lives in Faro</textarea>" in stale.text  # the draft is kept
    assert memory.get(note_id).text == "Ana lives in Porto"
    bad = client.post(
        f"/memories/{note_id}/edit",
        data={"csrf": token, "text": "x", "metadata": "[1, 2]", "expected_version": 2},
    )
    assert bad.status_code == 422 and "metadata must be a JSON object" in bad.text
    broken = client.post(
        f"/memories/{note_id}/edit",
        data={"csrf": token, "text": "x", "metadata": "{oops", "expected_version": 2},
    )
    assert broken.status_code == 422 and "not valid JSON" in broken.text
    garbled = client.post(
        f"/memories/{note_id}/edit",
        data={"csrf": token, "text": "x", "metadata": "{}", "expected_version": "abc"},
    )
    assert garbled.status_code == 422 and "expected_version: " in garbled.text
    assert "File " not in garbled.text and ".py" not in garbled.text  # no server code shown
    same = client.post(
        f"/memories/{note_id}/edit",
        data={"csrf": token, "text": "Ana lives in Porto", "metadata": "{}", "expected_version": 2},
    )
    assert "Nothing changed" in same.text and memory.get(note_id).version == 2


def test_forget_and_purge(memory: Memory, client: TestClient) -> None:
    kept, forgotten, purged = (
        memory.add(text, user_id="ana").note_ids[0] for text in ("keep me", "forget me", "purge me")
    )
    token = csrf_of(client)
    done = client.post(f"/memories/{forgotten}/forget", data={"csrf": token})
    assert "was forgotten" in done.text and "forget me" not in done.text.split("</form>")[-1]
    gone = client.get(f"/memories/{forgotten}")
    assert gone.status_code == 404 and "This memory was forgotten on" in gone.text
    refused = client.post(f"/memories/{purged}/purge", data={"csrf": token})
    assert refused.status_code == 422 and memory.get(purged).text == "purge me"
    done = client.post(f"/memories/{purged}/purge", data={"csrf": token, "confirm": "purge"})
    assert "was purged" in done.text
    assert memory.history(purged)[-1].action == "purge"
    assert "This memory was purged on" in client.get(f"/memories/{purged}").text
    assert [note.id for note in memory.list().items] == [kept]
    again = client.post(f"/memories/{forgotten}/forget", data={"csrf": token})
    assert again.status_code == 404


def test_adding_from_the_form(memory: Memory, client: TestClient) -> None:
    token = csrf_of(client)
    added = client.post(
        "/add",
        data={
            "csrf": token,
            "text": "Ana's tea is genmaicha",
            "user": "ana",
            "occurred_at": "2026-02-03",
            "metadata": '{"source": "ui"}',
        },
    )
    assert added.status_code == 200 and "Ana&#39;s tea is genmaicha" in added.text
    note = memory.list().items[0]
    assert (note.scope.user_id, note.metadata) == ("ana", {"source": "ui"})
    assert note.occurred_at.date().isoformat() == "2026-02-03"
    no_scope = client.post("/add", data={"csrf": token, "text": "whose?"})
    assert no_scope.status_code == 422 and "whose?</textarea>" in no_scope.text
    bad_date = client.post(
        "/add", data={"csrf": token, "text": "when?", "user": "ana", "occurred_at": "soonish"}
    )
    assert bad_date.status_code == 422 and "soonish" in bad_date.text


def test_uploading_an_export_and_refusing_other_files(
    memory: Memory, client: TestClient, tmp_path: Path
) -> None:
    with Memory(tmp_path / "other.db", embedder=HashEmbedder(), llm=None) as other:
        other.add("bees on the roof", user_id="ana")
        other.export(tmp_path / "export.jsonl")
    token = csrf_of(client)
    content = (tmp_path / "export.jsonl").read_bytes()
    done = client.post(
        "/import", data={"csrf": token}, files={"upload": ("../../x.jsonl", content)}
    )
    assert done.status_code == 200 and "Imported x.jsonl" in done.text
    assert [note.text for note in memory.list().items] == ["bees on the roof"]
    again = client.post("/import", data={"csrf": token}, files={"upload": ("x.jsonl", content)})
    assert "0 records added" in again.text
    notes = b"# Trip\n\nWe sailed to Madeira in June.\n"
    files = {"upload": ("trip.md", notes)}
    read = client.post("/import", data={"csrf": token, "user": "ana"}, files=files)
    assert read.status_code == 200 and "Read 1 file(s): 1 added" in read.text
    assert any("Madeira" in note.text for note in memory.list(user_id="ana").items)
    again = client.post("/import", data={"csrf": token, "user": "ana"}, files=files)
    assert "0 added, 0 updated, 1 unchanged" in again.text
    ownerless = client.post("/import", data={"csrf": token}, files=files)
    assert ownerless.status_code == 422
    broken = content.replace(b'"text"', b'"txet"', 1)
    refused = client.post("/import", data={"csrf": token}, files={"upload": ("b.jsonl", broken)})
    assert refused.status_code == 422 and "b.jsonl:2: " in refused.text
    assert "remem-upload-" not in refused.text  # the server's own folder is not shown


def test_the_context_page_shows_exactly_the_context(memory: Memory, client: TestClient) -> None:
    for text in ("Ana lives in Porto", "Ana's cat is Miso", "Ana plays the cello"):
        memory.add(text, user_id="ana", session_id="s1")
    page = client.get("/context", params={"q": "where does Ana live", "user": "ana"}).text
    shown = page.split('<pre class="context" id="context-text">', 1)[1].split("</pre>", 1)[0]
    context = memory.context("where does Ana live", user_id="ana")
    assert html.unescape(shown) == context.text
    small = client.get("/context", params={"q": "where does Ana live", "user": "ana", "budget": 50})
    kept = memory.context("where does Ana live", user_id="ana", budget_tokens=50)
    assert small.text.count('class="dropped"') == len(context.items) - len(kept.items)
    assert client.get("/context", params={"q": "x", "budget": "lots"}).status_code == 200
    large = client.get("/context", params={"q": "Ana", "user": "ana", "budget": 9000}).text
    assert 'class="dropped"' not in large and large.count('class="kept"') == len(
        memory.context("Ana", user_id="ana", budget_tokens=9000).items
    )


def test_timeline_groups_by_day_week_and_month(memory: Memory, client: TestClient) -> None:
    memory.add("monday", user_id="ana", session_id="s1", occurred_at="2026-03-02T10:00:00Z")
    memory.add("sunday", user_id="ana", session_id="s2", occurred_at="2026-03-08T10:00:00Z")
    memory.add("april", user_id="ana", occurred_at="2026-04-01T10:00:00Z")
    by_week = client.get("/timeline", params={"by": "week"}).text
    assert "Week 14, 2026" in by_week and "Week 10, 2026" in by_week
    assert "session <a" in by_week and "no session" in by_week
    notes = memory.list(order="newest").items
    assert [period.size for period in group_by_period(notes, "month")] == [1, 2]
    assert [period.size for period in group_by_period(notes, "day")] == [1, 1, 1]
    assert period_of(datetime(2026, 1, 1, tzinfo=UTC), "week")[0] == "2026-W01"
    assert period_of(datetime(2027, 1, 1, tzinfo=UTC), "week")[0] == "2026-W53"
    assert "Nothing to show" in client.get("/timeline", params={"user": "nobody"}).text


def test_the_graph_page_embeds_its_data_safely(memory: Memory, client: TestClient) -> None:
    a = memory.add("</script><script>alert(1)</script>", user_id="ana").note_ids[0]
    b = memory.add("a neighbour", user_id="ana").note_ids[0]
    link = Link(ids.new_id(ids.LINK), a, b, "<b>rel</b>", 0.5, "why", _now())
    memory.store.apply(Changes(links=[link]))
    page = client.get(f"/graph?id={a}").text
    data = page.split('<script type="application/json" id="graph-data">', 1)[1].split("</script>")[
        0
    ]
    assert "<" not in data  # every < is \u003c inside the JSON
    parsed = json.loads(data)
    assert {node["data"]["id"] for node in parsed["nodes"]} == {a, b}
    assert parsed["edges"][0]["data"]["label"] == "<b>rel</b>"
    assert client.get("/graph?id=nt_nope").status_code == 404
    assert "No memories yet" in client.get("/graph").text or b in client.get("/graph").text


def test_health_lists_failed_jobs_and_retries_them(tmp_path: Path) -> None:
    flaky = FailingEmbedder(HashEmbedder())  # the embedding job waits, pending
    with Memory(tmp_path / "m.db", embedder=flaky, llm=None) as memory:
        episode_id = memory.add("embedded later", user_id="ana").episode_ids[0]
        failed = Job(  # what a model step that failed five times leaves in the queue
            ids.new_id(ids.JOB),
            "organise",
            episode_id,
            "failed",
            5,
            "model answered 500: <overloaded>",
            _now(),
            _now(),
        )
        memory.store.apply(Changes(jobs=[failed]))
        with TestClient(create_app(memory), base_url="http://127.0.0.1") as client:
            page = client.get("/health").text
            assert "model answered 500: &lt;overloaded&gt;" in page
            assert memory.embedder.model_id in page and ">1</span> pending" in page
            files = [tmp_path / name for name in ("m.db", "m.db-wal", "m.db.hnsw")]
            size = sum(file.stat().st_size for file in files if file.exists())
            assert f'<span id="disk">{size / 1048576:.1f} MB</span>' in page
            token = CSRF.search(page)
            assert token is not None
            retried = client.post("/health/retry", data={"csrf": token.group(1)})
            assert "1 failed job made pending again" in retried.text
            assert not memory.store.jobs("failed")
            assert failed.id in {job.id for job in memory.store.jobs("pending")}


def test_a_correction_s_attribute_is_text_never_a_template(
    memory: Memory, client: TestClient
) -> None:
    """The attribute a person types is said as it is: braces in it are not a format string
    (a 500 before, and "{0:>10000000000}" asked for gigabytes)."""
    page = client.get("/add").text
    csrf = CSRF.search(page).group(1)  # type: ignore[union-attr]
    for slot in ("{x}", "{0:>10000000000}", "a{}b{}", "{.__class__}"):
        done = client.post(
            "/profile/correct", data={"csrf": csrf, "slot": slot, "value": "v", "user": "ana"}
        )
        assert done.status_code == 200, done.text
        said = memory.list(user_id="ana", order="newest").items[0]
        assert said.text == f"My {slot.replace('_', ' ')} is v."


CAT = ["I adopted a cat called Miso.", "Miso the cat sleeps all day.", "My cat Miso likes boxes."]
CELLO = ["I play the cello every evening.", "Cello lessons with Rui.", "New strings for my cello."]


def test_the_profile_shows_attributes_topics_and_takes_a_correction(
    memory: Memory, client: TestClient
) -> None:
    for round_ in range(3):
        for i, text in enumerate(CAT + CELLO):
            message = {"role": "user", "name": "Ana", "content": f"{text} ({round_})"}
            memory.add([message], user_id="ana", session_id=f"s{i % 4}")
    memory.add([{"role": "user", "content": "I live in Porto now."}], user_id="ana")
    page = client.get("/profile").text  # the one user stands in for the scope
    profile = memory.profile(user_id="ana")
    assert profile.topics and profile.attributes
    for topic in profile.topics:
        assert html.escape(topic.name or topic.label, quote=False) in page
        assert f"/graph?topic={topic.id}" in page
    assert '<th scope="row">home</th>' in page and "<td>Porto</td>" in page
    form = {"csrf": CSRF.search(page).group(1), "slot": "home", "value": "Lisbon"}  # type: ignore[union-attr]
    done = client.post("/profile/correct", data={**form, "old": "Porto", "user": "ana"})
    assert "your correction is a memory now" in done.text and "<td>Lisbon</td>" in done.text
    said = memory.list(user_id="ana", order="newest").items[0]
    assert said.text == "I live in Lisbon." and said.metadata["source"] == "person"
    assert '<table id="past-attributes">' in done.text  # Porto, closed by Lisbon
    assert "Porto</td>" in done.text.split('id="past-attributes"', 1)[1]
    assert "Earlier biographies (1)" in done.text
    topic = profile.topics[0]
    graph = client.get("/graph", params={"topic": topic.id, "user": "ana"}).text
    data = json.loads(graph.split('id="graph-data">', 1)[1].split("</script>")[0])
    assert {node["data"]["id"] for node in data["nodes"]} <= set(topic.note_ids)
    assert client.get("/graph", params={"topic": "tp_nope", "user": "ana"}).status_code == 404
    memory.add("Bo was here", user_id="bo")
    assert "Choose a user" in client.get("/profile").text


def test_api_paths_keep_json_errors_and_the_schema_has_no_pages(client: TestClient) -> None:
    answer = client.get("/v1/memories/nt_missing")
    assert answer.status_code == 404 and answer.json()["error"]["type"] == "NotFoundError"
    assert client.get("/nowhere").headers["content-type"].startswith("text/html")
    paths = client.get("/openapi.json").json()["paths"]
    assert all(path.startswith("/v1") or path == "/healthz" for path in paths)
    assert client.get("/static/vendor/VERSIONS").status_code == 200
    assert client.get("/static/../access.py").status_code == 404


def _now() -> datetime:
    return datetime.now(UTC)
