"""Claude's export `conversations.json`: a list of conversations with `chat_messages`
[{sender: human|assistant, text or content [{type: text, text}], created_at}]."""

from __future__ import annotations

from typing import Any

from remem.ingest.records import Chunk, Parsed, UnreadableFileError, moment, text_of
from remem.ingest.sessions import session_id

ROLES = {"human": "user", "user": "user", "assistant": "assistant"}
ASSISTANT = "Claude"


def looks_like(data: Any) -> bool:
    return (
        isinstance(data, list)
        and bool(data)
        and isinstance(data[0], dict)
        and isinstance(data[0].get("chat_messages"), list)
    )


def parse(data: Any, me: str | None) -> Parsed:
    if not isinstance(data, list):
        raise UnreadableFileError("a Claude export is a list of conversations")
    chunks: list[Chunk] = []
    for index, conversation in enumerate(data):
        if isinstance(conversation, dict) and isinstance(conversation.get("chat_messages"), list):
            chunks += _conversation(conversation, index, me)
    return Parsed("claude", chunks)


def _conversation(conversation: dict[str, Any], index: int, me: str | None) -> list[Chunk]:
    conversation_id = text_of(conversation.get("uuid")) or f"#{index}"
    session = session_id("claude", conversation_id)
    title = text_of(conversation.get("name"))
    started = moment(conversation.get("created_at"))
    chunks = []
    for position, message in enumerate(conversation["chat_messages"]):
        if not isinstance(message, dict):
            continue
        role = ROLES.get(text_of(message.get("sender")))
        text = _text(message)
        if role is None or not text.strip():
            continue
        message_id = text_of(message.get("uuid")) or f"#{position}"
        chunks.append(
            Chunk(
                key=f"{conversation_id}/{message_id}",
                text=text.strip(),
                session=session,
                occurred_at=moment(message.get("created_at")) or started,
                name=(me if role == "user" else ASSISTANT),
                role=role,
                metadata={"conversation_id": conversation_id, "conversation": title},
            )
        )
    return chunks


def _text(message: dict[str, Any]) -> str:
    """The message's text parts (`content`), or its `text` when it has none."""
    content = message.get("content")
    if isinstance(content, list):
        parts = [
            text_of(part.get("text"))
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        ]
        joined = "\n".join(part for part in parts if part.strip())
        if joined.strip():
            return joined
    return text_of(message.get("text"))
