"""Each format `Memory.ingest` reads, from small files the tests write themselves: the right
episodes, with speakers, roles, times and provenance."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from remem import Memory
from remem.types import Episode, Note

USER = "ada"


def make_pdf(pages: list[str], title: str | None = None) -> bytes:
    """A small real PDF: one line of Helvetica text per page."""
    objects: list[bytes] = []

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    parent = len(objects) + 1 + 2 * len(pages)
    kids = []
    for text in pages:
        stream = b"BT /F1 12 Tf 72 712 Td (" + text.encode("latin-1") + b") Tj ET"
        content = add(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
        kids.append(
            add(
                b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Contents %d 0 R"
                b" /Resources << /Font << /F1 %d 0 R >> >> >>" % (parent, content, font)
            )
        )
    listed = b" ".join(b"%d 0 R" % kid for kid in kids)
    add(b"<< /Type /Pages /Kids [" + listed + b"] /Count %d >>" % len(kids))
    catalog = add(b"<< /Type /Catalog /Pages %d 0 R >>" % parent)
    info = add(b"<< /Title (" + title.encode() + b") >>") if title else None
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    trailer = b"<< /Size %d /Root %d 0 R" % (len(objects) + 1, catalog)
    trailer += b" /Info %d 0 R" % info if info else b""
    return out + b"trailer\n" + trailer + b" >>\nstartxref\n%d\n%%%%EOF\n" % xref


def chatgpt_export() -> list[dict[str, Any]]:
    """One conversation whose first answer was regenerated: the kept branch is the second."""

    def node(
        node_id: str, parent: str | None, children: list[str], role: str | None, text: str, t: float
    ) -> dict[str, Any]:
        message = None
        if role is not None:
            message = {
                "id": node_id,
                "author": {"role": role},
                "create_time": t,
                "content": {"content_type": "text", "parts": [text]},
                "metadata": {},
            }
        return {"id": node_id, "parent": parent, "children": children, "message": message}

    mapping = {
        "root": node("root", None, ["sys"], None, "", 0),
        "sys": node("sys", "root", ["q1"], "system", "You are ChatGPT.", 1_700_000_000),
        "q1": node("q1", "sys", ["a1", "a2"], "user", "Where should I hike?", 1_700_000_010),
        "a1": node("a1", "q1", [], "assistant", "Try the Alps (first draft).", 1_700_000_020),
        "a2": node("a2", "q1", ["t1"], "assistant", "Try the Dolomites.", 1_700_000_030),
        "t1": node("t1", "a2", ["q2"], "tool", "search results", 1_700_000_031),
        "q2": node("q2", "t1", [], "user", "Thanks, I will.", 1_700_000_040),
    }
    hidden = node("h1", "q2", [], "user", "hidden context", 1_700_000_050)
    hidden["message"]["metadata"] = {"is_visually_hidden_from_conversation": True}
    mapping["h1"] = hidden
    return [
        {
            "id": "conv-1",
            "title": "Hiking",
            "create_time": 1_700_000_000,
            "mapping": mapping,
            "current_node": "h1",
        }
    ]


def ingested(memory: Memory, *paths: Path, **options: Any) -> list[tuple[Note, Episode]]:
    result = memory.ingest(list(paths), user_id=USER, **options)
    assert result.skipped == (), result.skipped
    notes = memory.list(user_id=USER, limit=1000).items
    return [(note, memory.episode(note.episode_ids[0])) for note in notes]


def test_chatgpt_follows_the_kept_branch_and_skips_system_and_tool_turns(
    memory: Memory, tmp_path: Path
) -> None:
    path = tmp_path / "conversations.json"
    path.write_text(json.dumps(chatgpt_export()))
    rows = ingested(memory, path, me="Ada")
    assert [note.text for note, _ in rows] == [
        "Where should I hike?",
        "Try the Dolomites.",
        "Thanks, I will.",
    ]
    roles = [(episode.role, episode.name) for _, episode in rows]
    assert roles == [("user", "Ada"), ("assistant", "ChatGPT"), ("user", "Ada")]
    first, episode = rows[0]
    assert episode.occurred_at == datetime.fromtimestamp(1_700_000_010, UTC)
    assert first.scope.session_id == rows[2][0].scope.session_id
    assert first.metadata["source"] == "chatgpt"
    assert first.metadata["path"] == "conversations.json"
    assert first.metadata["conversation_id"] == "conv-1"
    assert first.metadata["chunk"] == "conv-1/q1"
    assert len(first.metadata["chunk_hash"]) == 32


def test_claude_messages_with_text_or_content_parts(memory: Memory, tmp_path: Path) -> None:
    export = [
        {
            "uuid": "c-1",
            "name": "Plans",
            "created_at": "2024-03-01T10:00:00Z",
            "chat_messages": [
                {"uuid": "m1", "sender": "human", "text": "I moved to Lisbon.",
                 "created_at": "2024-03-01T10:00:05Z"},
                {"uuid": "m2", "sender": "assistant", "text": "",
                 "content": [{"type": "text", "text": "Welcome to Lisbon!"},
                             {"type": "tool_use", "name": "x"}],
                 "created_at": "2024-03-01T10:00:09.5Z"},
                {"uuid": "m3", "sender": "human", "text": "   ", "created_at": None},
            ],
        }
    ]  # fmt: skip
    path = tmp_path / "conversations.json"
    path.write_text(json.dumps(export))
    rows = ingested(memory, path)
    assert [(n.text, e.role, e.name) for n, e in rows] == [
        ("I moved to Lisbon.", "user", None),
        ("Welcome to Lisbon!", "assistant", "Claude"),
    ]
    assert rows[1][1].occurred_at == datetime(2024, 3, 1, 10, 0, 9, 500000, UTC)
    assert rows[0][0].metadata["source"] == "claude"


def test_whatsapp_formats_multiline_placeholders_and_system_lines(
    memory: Memory, tmp_path: Path
) -> None:
    android_us = tmp_path / "WhatsApp Chat with Bo.txt"
    android_us.write_text(
        "12/31/23, 9:41\u202fPM - Messages and calls are end-to-end encrypted.\n"
        "12/31/23, 9:41\u202fPM - Ada: Happy new year!\n"
        "12/31/23, 9:42\u202fPM - Bo: Same to you\n"
        "and many more\n"
        "12/31/23, 9:43\u202fPM - Bo: <Media omitted>\n"
        "1/2/24, 7:05 AM - Ada: Back to work\n"
    )
    iphone = tmp_path / "_chat.txt"
    iphone.write_text(
        "[31.12.23, 21:41:05] Cy: Guten Rutsch!\n"
        "\u200e[31.12.23, 21:42:00] Ada: \u200eimage omitted\n"
        "[01.01.24, 00:00:01] Ada: Prost\n"
    )
    day_first = tmp_path / "chat-with-di.txt"
    day_first.write_text("31/12/2023, 21:41 - Di: Hi\n01/01/2024, 09:15 - Ada: Morning\n")
    rows = ingested(memory, android_us, iphone, day_first, me="Ada")
    said = {(n.text, e.name, e.role, e.occurred_at.isoformat()) for n, e in rows}
    assert said == {
        ("Happy new year!", "Ada", "user", "2023-12-31T21:41:00+00:00"),
        ("Same to you\nand many more", "Bo", "Bo", "2023-12-31T21:42:00+00:00"),
        ("Back to work", "Ada", "user", "2024-01-02T07:05:00+00:00"),
        ("Guten Rutsch!", "Cy", "Cy", "2023-12-31T21:41:05+00:00"),
        ("Prost", "Ada", "user", "2024-01-01T00:00:01+00:00"),
        ("Hi", "Di", "Di", "2023-12-31T21:41:00+00:00"),
        ("Morning", "Ada", "user", "2024-01-01T09:15:00+00:00"),
    }
    sessions = {n.metadata["path"]: n.scope.session_id for n, _ in rows}
    assert len(set(sessions.values())) == 3  # a chat per file


def test_whatsapp_without_me_asks_once_or_leaves_names_as_roles(
    memory: Memory, tmp_path: Path
) -> None:
    one = tmp_path / "one.txt"
    one.write_text("12/31/23, 9:41 PM - Ada: Hi\n12/31/23, 9:42 PM - Bo: Hey\n")
    two = tmp_path / "two.txt"
    two.write_text("12/30/23, 9:41 PM - Ada: Yo\n12/30/23, 9:42 PM - Cy: Sup\n")
    asked: list[list[str]] = []

    def who(senders: list[str]) -> str:
        asked.append(senders)
        return "Ada"

    rows = ingested(memory, one, two, me=who)
    assert asked == [["Ada", "Bo"]]
    assert {(e.name, e.role) for _, e in rows} == {
        ("Ada", "user"),
        ("Bo", "Bo"),
        ("Cy", "Cy"),
    }


def test_telegram_text_entities_are_flattened_and_own_messages_known(
    memory: Memory, tmp_path: Path
) -> None:
    export = {
        "personal_information": {"user_id": 42, "first_name": "Ada"},
        "chats": {"list": [{
            "name": "Bo", "type": "personal_chat", "id": 7,
            "messages": [
                {"id": 1, "type": "service", "date": "2024-01-01T10:00:00", "action": "x"},
                {"id": 2, "type": "message", "date": "2024-01-01T10:00:00",
                 "date_unixtime": "1704103200", "from": "Bo", "from_id": "user7",
                 "text": ["See ", {"type": "link", "text": "https://example.org"}, " now"]},
                {"id": 3, "type": "message", "date": "2024-01-01T10:01:00",
                 "from": "Ada", "from_id": "user42", "text": "On it"},
                {"id": 4, "type": "message", "date": "2024-01-01T10:02:00",
                 "from": "Bo", "from_id": "user7", "text": "", "photo": "p.jpg"},
            ],
        }]},
    }  # fmt: skip
    path = tmp_path / "result.json"
    path.write_text(json.dumps(export))
    rows = ingested(memory, path)
    assert [(n.text, e.name, e.role) for n, e in rows] == [
        ("See https://example.org now", "Bo", "Bo"),
        ("On it", "Ada", "user"),
    ]
    assert rows[0][1].occurred_at == datetime.fromtimestamp(1704103200, UTC)
    assert rows[0][0].metadata["source"] == "telegram"
    assert rows[0][0].metadata["chunk"] == "7/2"


def test_markdown_front_matter_sections_and_bounded_chunks(memory: Memory, tmp_path: Path) -> None:
    long_paragraph = " ".join(f"Sentence number {i} is here." for i in range(200))
    note = tmp_path / "Trip.md"
    note.write_text(
        '---\ntitle: "Trip to Rome"\ndate: 2022-06-01\ntags:\n  - travel\n  - italy\n---\n'
        "Intro line.\n\n# Day one\n\nWe saw the Colosseum.\n\n```\n# not a heading\n```\n\n"
        f"## Evening\n\n{long_paragraph}\n"
    )
    rows = ingested(memory, note)
    sections = [n.metadata.get("section") for n, _ in rows]
    assert sections[:2] == [None, "Day one"]
    assert set(sections[2:]) == {"Day one > Evening"} and len(sections) > 3
    for chunk, _ in rows[2:]:
        assert len(chunk.text) <= 1500
        assert chunk.text.startswith("Sentence number") and chunk.text.endswith("is here.")
    assert "# not a heading" in rows[1][0].text
    first = rows[0][0]
    assert first.metadata["title"] == "Trip to Rome"
    assert first.metadata["front_matter"]["tags"] == ["travel", "italy"]
    assert first.occurred_at == datetime(2022, 6, 1, tzinfo=UTC)
    assert first.metadata["source"] == "markdown" and first.metadata["path"] == "Trip.md"


def test_text_html_and_pdf(memory: Memory, tmp_path: Path) -> None:
    tmp_path = tmp_path / "documents"  # beside the memory's own files
    tmp_path.mkdir()
    (tmp_path / "notes.txt").write_text("First paragraph.\n\nSecond paragraph.\n")
    (tmp_path / "page.html").write_text(
        "<html><head><title>My Page</title><style>p{}</style><script>var x=1;</script></head>"
        "<body><nav>Home | About</nav><header>Site header</header><main><h1>Welcome</h1>"
        "<p>Main text &amp; more.</p><aside>Ads</aside><h2>Details</h2><p>Deep detail.</p>"
        "</main><footer>(c) 2024</footer></body></html>"
    )
    (tmp_path / "paper.pdf").write_bytes(make_pdf(["Page one says hello.", "Page two."], "Paper"))
    rows = ingested(memory, tmp_path)
    by_source: dict[str, list[Note]] = {}
    for note, _ in rows:
        by_source.setdefault(note.metadata["source"], []).append(note)
    assert [n.text for n in by_source["text"]] == ["First paragraph.\n\nSecond paragraph."]
    html = by_source["html"]
    assert [(n.text, n.metadata["section"]) for n in html] == [
        ("Main text & more.", "Welcome"),
        ("Deep detail.", "Welcome > Details"),
    ]
    assert html[0].metadata["title"] == "My Page"
    pdf = by_source["pdf"]
    assert [(n.text, n.metadata["page"], n.metadata["title"]) for n in pdf] == [
        ("Page one says hello.", 1, "Paper"),
        ("Page two.", 2, "Paper"),
    ]


def test_email_and_mbox_without_quoted_replies(memory: Memory, tmp_path: Path) -> None:
    tmp_path = tmp_path / "mail"
    tmp_path.mkdir()
    (tmp_path / "hello.eml").write_bytes(
        b"From: Bo Bell <bo@example.org>\r\nTo: ada@example.org\r\nSubject: Dinner\r\n"
        b"Date: Fri, 01 Mar 2024 18:30:00 +0100\r\nMessage-ID: <m1@example.org>\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
        b"Dinner at eight?\r\n\r\nOn Thu, Feb 29, 2024 at 9:00 AM Ada <ada@example.org> wrote:\r\n"
        b"> Are you free?\r\n"
    )
    (tmp_path / "box.mbox").write_bytes(
        b"From ada@example.org Sat Mar  2 10:00:00 2024\n"
        b"From: Ada <ada@example.org>\nSubject: Re: Dinner\n"
        b"Date: Sat, 02 Mar 2024 10:00:00 +0000\nMessage-ID: <m2@example.org>\n"
        b"Content-Type: text/html; charset=utf-8\n\n"
        b"<p>Yes, <b>eight</b> works.</p><blockquote>Are you free?</blockquote>\n"
        b"\nFrom bo@example.org Sat Mar  2 11:00:00 2024\n"
        b"From: Bo Bell <bo@example.org>\nSubject: Re: Dinner\n"
        b"Date: Sat, 02 Mar 2024 11:00:00 +0000\nMessage-ID: <m3@example.org>\n\n"
        b">From here on it is fine.\n-- \nBo's signature\n"
    )
    rows = ingested(memory, tmp_path, me="ada@example.org")
    said = [
        (n.text, e.name, e.role, e.occurred_at.isoformat().replace("+00:00", "Z")) for n, e in rows
    ]
    assert said == [
        ("Dinner\n\nDinner at eight?", "Bo Bell", "Bo Bell", "2024-03-01T17:30:00Z"),
        ("Re: Dinner\n\nYes, eight works.", "Ada", "user", "2024-03-02T10:00:00Z"),
        (
            "Re: Dinner\n\nFrom here on it is fine.",
            "Bo Bell",
            "Bo Bell",
            "2024-03-02T11:00:00Z",
        ),
    ]
    assert rows[0][0].metadata["subject"] == "Dinner"
    assert rows[0][0].metadata["source"] == "email" and rows[1][0].metadata["source"] == "mbox"
    assert rows[1][0].scope.session_id == rows[2][0].scope.session_id  # one thread


def test_a_folder_skips_hidden_files_and_links_that_leave_it(
    memory: Memory, tmp_path: Path
) -> None:
    root = tmp_path / "notes"
    (root / ".obsidian").mkdir(parents=True)
    (root / ".obsidian" / "config.md").write_text("hidden folder")
    (root / ".secret.md").write_text("hidden file")
    (root / "sub").mkdir()
    (root / "sub" / "kept.md").write_text("Kept note.")
    outside = tmp_path / "outside.md"
    outside.write_text("Outside the folder.")
    (root / "escape.md").symlink_to(outside)
    (root / "inside.md").symlink_to(root / "sub" / "kept.md")
    result = memory.ingest(root, user_id=USER)
    assert result.skipped == (
        ("escape.md", "a symbolic link out of the folder"),
        ("sub/kept.md", "the same file as inside.md"),
    )
    texts = {(n.metadata["path"], n.text) for n in memory.list(user_id=USER).items}
    assert texts == {("inside.md", "Kept note.")}
