"""Telegram Desktop's `result.json`: one chat ({name, id, messages}) or a whole account
({personal_information, chats: {list: [...]}}). A message's `text` is a string or a list
of strings and entities ({type, text}), flattened here. The account's own messages are
known from `personal_information`; without it, `me` says which sender is the person."""

from __future__ import annotations

from typing import Any

from remem.ingest.records import Chunk, Parsed, UnreadableFileError, moment, text_of
from remem.ingest.sessions import session_id


def looks_like(data: Any) -> bool:
    if not isinstance(data, dict):
        return False
    chats = data.get("chats")
    return isinstance(data.get("messages"), list) or (
        isinstance(chats, dict) and isinstance(chats.get("list"), list)
    )


def parse(data: Any) -> Parsed:
    if not looks_like(data):
        raise UnreadableFileError("a Telegram export has 'messages' or 'chats'")
    chats = data["chats"]["list"] if isinstance(data.get("chats"), dict) else [data]
    own = _own_id(data.get("personal_information"))
    chunks: list[Chunk] = []
    senders: set[str] = set()
    for index, chat in enumerate(chats):
        if isinstance(chat, dict) and isinstance(chat.get("messages"), list):
            made = _chat(chat, index, own)
            chunks += made
            senders |= {chunk.name for chunk in made if chunk.name and chunk.role != "user"}
    # the account's details say who the person is; without them `me` must
    return Parsed("telegram", chunks, senders=() if own else tuple(sorted(senders)))


def _own_id(info: Any) -> str | None:
    if isinstance(info, dict) and isinstance(info.get("user_id"), int | str):
        return f"user{info['user_id']}"
    return None


def _chat(chat: dict[str, Any], index: int, own: str | None) -> list[Chunk]:
    chat_id = str(chat.get("id")) if isinstance(chat.get("id"), int | str) else f"#{index}"
    session = session_id("telegram", chat_id)
    chunks = []
    for position, message in enumerate(chat["messages"]):
        if not isinstance(message, dict) or message.get("type", "message") != "message":
            continue  # service messages: joined, pinned, called...
        text = flatten(message.get("text")).strip()
        name = text_of(message.get("from")) or None
        if not text or name is None:
            continue
        mine = own is not None and message.get("from_id") == own
        message_id = message.get("id") if isinstance(message.get("id"), int) else f"#{position}"
        when = moment(_unix(message.get("date_unixtime"))) or moment(message.get("date"))
        chunks.append(
            Chunk(
                key=f"{chat_id}/{message_id}",
                text=text,
                session=session,
                occurred_at=when,
                name=name,
                role="user" if mine else None,
                metadata={"conversation_id": chat_id, "conversation": text_of(chat.get("name"))},
            )
        )
    return chunks


def flatten(text: Any) -> str:
    """A message's text: a string, or strings and entities ({type, text}) in a list."""
    if isinstance(text, str):
        return text
    if not isinstance(text, list):
        return ""
    return "".join(
        part if isinstance(part, str) else text_of(part.get("text"))
        for part in text
        if isinstance(part, str | dict)
    )


def _unix(value: Any) -> int | None:
    return int(value) if isinstance(value, str) and value.isdigit() else None
