"""Hostile and odd files: a malformed record, a header the stdlib chokes on, a line built to
make a regex backtrack, a PDF built to burn CPU, or a file that only looks like another
format is read right or skipped with the reason, and never stops the other files."""

from __future__ import annotations

import json
import sqlite3
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from remem import Memory
from remem.errors import StoreError
from remem.ingest import mail, markdown, pdf, whatsapp
from remem.ingest.batch import Target
from remem.ingest.records import Source, UnreadableFileError
from remem.ingest.run import ingest_sources
from remem.server.app import create_app
from remem.stores.base import Changes
from remem.testing import HashEmbedder
from remem.testing.http import running
from remem.types import Scope

USER = "ada"
NOW = datetime(2024, 5, 1, tzinfo=UTC)
LONG = 200_000  # a quadratic regex takes minutes on a line this long, a linear one ms


def texts(memory: Memory, user: str = USER) -> list[str]:
    return sorted(n.text for n in memory.list(user_id=user, limit=1000).items)


def test_malformed_chatgpt_records_are_passed_over_and_other_files_go_on(
    memory: Memory,
) -> None:
    def conversation(conversation_id: str, mapping: dict[str, Any]) -> bytes:
        return json.dumps([{"id": conversation_id, "mapping": mapping}]).encode()

    said = {"author": {"role": "user"}, "content": {"parts": ["I keep bees."]}, "create_time": 5}
    author_text = {"a": {"message": {"author": "user", "content": {"parts": ["hi"]}}}}
    message_text = {"a": {"message": "oops", "children": []}, "b": {"message": said}}
    result = memory.ingest_uploads(
        [
            ("one/conversations.json", conversation("c1", author_text)),
            ("two/conversations.json", conversation("c2", message_text)),
            ("ok.txt", b"A fine file."),
        ],
        user_id=USER,
    )
    assert result.skipped == (("one/conversations.json", "no text found in it (read as chatgpt)"),)
    assert texts(memory) == ["A fine file.", "I keep bees."]


class ExplodingBytes(bytes):
    """A file whose reading fails in a way no parser expects (a parser's bug)."""

    def strip(self, chars: bytes | None = None) -> bytes:
        raise RuntimeError("boom")


def test_an_unexpected_error_in_one_file_is_reported_and_the_others_go_on(
    memory: Memory,
) -> None:
    uploads = [("bad.txt", ExplodingBytes(b"text")), ("good.txt", b"I like tea.")]
    result = memory.ingest_uploads(uploads, user_id=USER)
    assert result.skipped == (("bad.txt", "could not be read: RuntimeError: boom"),)
    assert (result.files, result.added) == (1, 1)
    assert texts(memory) == ["I like tea."]


def test_a_failing_store_is_raised_not_reported_as_a_bad_file(memory: Memory) -> None:
    def failing(changes: Changes) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    target = Target(memory.store, HashEmbedder(), Scope(user_id=USER), "test", False)
    sources = [Source(b"Some text.", "a.txt", NOW)]
    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        ingest_sources(sources, target, failing)

    def gone(changes: Changes) -> None:
        raise StoreError("database unreachable")

    with pytest.raises(StoreError, match="unreachable"):
        ingest_sources(sources, target, gone)


BAD_HEADERS = [
    b"Message-ID: <<<>>>",
    b"To: <",
    b'To: "',
    b"To: a:b:c;;;",
    b'To: "a" <b@c.d>, =?utf-8?b?////?= <x@[1.2.3>',
    b"To: (((((((",
    b"From: foo:;",
    b"Date: Mon, 99 Foo 20231 99:99:99 +9999",
]


@pytest.mark.parametrize("header", BAD_HEADERS)
def test_mail_headers_the_stdlib_chokes_on_lose_nothing(header: bytes) -> None:
    data = b"From: Ada <ada@example.com>\n" + header + b"\nSubject: Bees\n\nThe hive is busy.\n"
    parsed = mail.parse(Source(data, "m.eml", NOW), None, mbox=False)
    assert [chunk.text for chunk in parsed.chunks] == ["Bees\n\nThe hive is busy."]


def test_one_bad_message_does_not_lose_the_mailbox() -> None:
    messages = [
        b"From: Ada <ada@example.com>\nSubject: One\n\nFirst body.\n",
        b"From: Bo <bo@example.com>\nTo: <\nMessage-ID: <<<>>>\nSubject: Two\n\nSecond body.\n",
        b"From: Cy <cy@example.com>\nTo: a:b:c;;;\nSubject: Three\n\nThird body.\n",
    ]
    data = b"".join(b"From x@y Mon Jan  1 00:00:00 2024\n" + m for m in messages)
    parsed = mail.parse(Source(data, "box.mbox", NOW), None, mbox=True)
    assert [(c.name, c.text) for c in parsed.chunks] == [
        ("Ada", "One\n\nFirst body."),
        ("Bo", "Two\n\nSecond body."),
        ("Cy", "Three\n\nThird body."),
    ]


def test_markdown_headings_are_linear_and_right() -> None:
    assert markdown.heading("# a" + " " * LONG + "b") == (1, "a" + " " * LONG + "b")
    assert markdown.heading("## " + " " * LONG) == (2, "")
    assert markdown.heading("# a " + "#" * LONG + " " * LONG) == (1, "a")
    assert markdown.heading("### Title ###  ") == (3, "Title")
    assert markdown.heading("# C#") == (1, "C#")
    assert markdown.heading("#hashtag") is None
    assert markdown.heading("####### seven") is None
    source = Source(b"", "n.md", NOW)
    parsed = markdown.parse("# Pets " + " " * LONG + "x\n\nMiso sleeps.\n", source)
    assert [c.metadata["section"] for c in parsed.chunks] == ["Pets " + " " * LONG + "x"]


def test_whatsapp_edited_marker_is_linear_and_right() -> None:
    chat = (
        "12/31/23, 9:41 PM - Ada: hi" + " " * LONG + "x\n"
        "12/31/23, 9:42 PM - Bo: " + " " * LONG + "see you <This message was edited>\n"
        "12/31/23, 9:43 PM - Ada: fine  <This message was edited>\n"
    )
    parsed = whatsapp.parse(chat, "chat.txt", "chat.txt")
    assert [c.text for c in parsed.chunks] == ["hi" + " " * LONG + "x", "see you", "fine"]


def shared_stream_pdf(operators: int, pages: int) -> bytes:
    """A small PDF whose pages all share one compressed content stream of many text
    operators: cheap to send, costly to extract."""
    content = zlib.compress(b"BT /F1 12 Tf 10 10 Td (word) Tj ET\n" * operators, 9)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>"
        % (b" ".join(b"%d 0 R" % (4 + i) for i in range(pages)), pages),
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(content)
        + content
        + b"\nendstream",
    ]
    objects += [
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 3 0 R /Resources"
        b" << /Font << /F1 << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> >> >> >>"
    ] * pages
    out, offsets = b"%PDF-1.4\n", []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    return out + b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )


def test_a_pdf_over_its_budget_is_skipped_whole_with_the_reason() -> None:
    source = Source(shared_stream_pdf(50, 3), "costly.pdf", NOW)
    assert len(pdf.parse(source).chunks) == 3  # within the default budget: read
    small_file = pdf.Budget(content_floor=2000, content_ratio=1)  # the file is ~1 kB
    over = [
        (pdf.Budget(pages=2), "over 2 pages"),
        (pdf.Budget(characters=300), "over 300 characters of text (at page 2)"),
        (pdf.Budget(content_bytes=2000), "too much page content to read (page 2:"),
        (pdf.Budget(page_content_bytes=100), "too much page content to read (page 1:"),
        (small_file, "too much page content to read (page 2:"),
        (pdf.Budget(seconds=0.0), "took over 0 s (at page 1 of 3)"),
    ]
    for budget, reason in over:
        with pytest.raises(UnreadableFileError, match="skipped whole|pages") as error:
            pdf.parse(source, budget)
        assert reason in str(error.value)


def test_a_costly_pdf_upload_is_skipped_and_the_others_go_on(memory: Memory) -> None:
    costly = shared_stream_pdf(130_000, 40)  # 4.5 MB of content per page, 40 pages
    uploads = [("costly.pdf", costly), ("notes.txt", b"Bees need water.")]
    result = memory.ingest_uploads(uploads, user_id=USER)
    assert result.skipped[0][0] == "costly.pdf"
    assert "too much page content" in result.skipped[0][1]
    assert texts(memory) == ["Bees need water."]


def test_formats_are_told_apart_by_their_shape(memory: Memory) -> None:
    chat = "12/31/23, 9:41 PM - Ada: Happy new year!\n12/31/23, 9:42 PM - Bo: You too\n"
    diary = "From the first day of school I loved drawing.\nMy teacher was Mrs. Green.\n"
    plans = "Subject: my plans for 2024\nLearn Spanish.\nRun a marathon.\n"
    journal = (
        "2024-01-05 08:00 Morning pages. Slept well.\nWent for a run.\n\n"
        "2024-01-06 21:30 Dinner with Sam. Note to self: call mum.\n"
    )
    mbox = "From ada@x.org Mon Jan  1 10:00:00 2024\nFrom: ada@x.org\nSubject: Hi\n\nBody.\n"
    eml = "Subject: Lunch\nFrom: Bo <bo@x.org>\n\nNoon at the park?\n"
    files = {
        "chat.txt": chat.encode("utf-16"),
        "diary.txt": diary.encode(),
        "plans.md": plans.encode(),
        "journal.txt": journal.encode(),
        "inbox": mbox.encode(),
        "lunch.txt": eml.encode(),
    }
    for name, data in files.items():
        result = memory.ingest_uploads([(name, data)], user_id=name)
        assert result.skipped == () and result.files == 1, name
    sources = {
        name: {n.metadata["source"] for n in memory.list(user_id=name).items} for name in files
    }
    assert sources == {
        "chat.txt": {"whatsapp"},
        "diary.txt": {"text"},
        "plans.md": {"markdown"},
        "journal.txt": {"text"},
        "inbox": {"mbox"},
        "lunch.txt": {"email"},
    }


def test_a_file_part_without_a_filename_is_refused_naming_it(memory: Memory) -> None:
    with running(create_app(memory)) as url, httpx.Client(base_url=url) as client:
        answer = client.post("/v1/ingest", data={"user_id": USER, "files": "not a file"})
        assert answer.status_code == 422
        message = answer.json()["error"]["message"]
        assert message.startswith("files.0:") and "UploadFile" in message
        good = client.post(
            "/v1/ingest", data={"user_id": USER}, files=[("files", ("a.txt", b"Fine."))]
        )
        assert good.status_code == 200 and good.json()["added"] == 1


def test_whatsapp_needs_most_header_lines_to_name_a_sender() -> None:
    assert whatsapp.looks_like("[31.12.23, 21:41:05] Ada: hi\n[31.12.23, 21:42:05] Bo: yo\n")
    system_first = "12/31/23, 9:40 PM - Messages are end-to-end encrypted.\n"
    assert whatsapp.looks_like(system_first + "12/31/23, 9:41 PM - Ada: hi\n" * 3)
    assert not whatsapp.looks_like("2024-01-05 08:00 Ran.\n2024-01-06 09:00 Note: swim.\n")


def test_an_empty_ledger_lock_table_after_ingesting(tmp_path: Path) -> None:
    import gc

    from remem.ingest import run

    with Memory(str(tmp_path / "m.db"), embedder=HashEmbedder()) as memory:
        for index in range(20):
            memory.ingest_uploads([(f"f{index}.txt", b"Text %d." % index)], user_id=USER)
    gc.collect()
    assert len(run._file_locks) == 0


def test_the_callers_own_callback_errors_are_raised(memory: Memory, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("Some text.")
    (tmp_path / "chat.txt").write_text("12/31/23, 9:41 PM - Ada: hi\n12/31/23, 9:42 PM - Bo: yo\n")

    def stop(progress: object) -> None:
        raise KeyError("stopped by the caller")

    def refuse(senders: list[str]) -> str:
        raise ValueError("no answer")

    with pytest.raises(KeyError, match="stopped"):
        memory.ingest(tmp_path / "a.txt", user_id=USER, progress=stop)
    with pytest.raises(ValueError, match="no answer"):
        memory.ingest(tmp_path / "chat.txt", user_id=USER, me=refuse)
