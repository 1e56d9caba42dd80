"""ChatGPT's `conversations.json`: a list of conversations, each a tree of messages
(`mapping`: node id -> {message, parent, children}). The branch the person kept is the
path from `current_node` up to the root; edited and regenerated branches are left out."""

from __future__ import annotations

from typing import Any

from remem.ingest.records import Chunk, Parsed, UnreadableFileError, moment, text_of
from remem.ingest.sessions import session_id

SPOKEN = {"user": "user", "assistant": "assistant"}  # system and tool turns are skipped
ASSISTANT = "ChatGPT"


def looks_like(data: Any) -> bool:
    return (
        isinstance(data, list)
        and bool(data)
        and isinstance(data[0], dict)
        and isinstance(data[0].get("mapping"), dict)
    )


def parse(data: Any, me: str | None) -> Parsed:
    if not isinstance(data, list):
        raise UnreadableFileError("a ChatGPT export is a list of conversations")
    chunks: list[Chunk] = []
    for index, conversation in enumerate(data):
        if isinstance(conversation, dict) and isinstance(conversation.get("mapping"), dict):
            chunks += _conversation(conversation, index, me)
    return Parsed("chatgpt", chunks)


def _conversation(conversation: dict[str, Any], index: int, me: str | None) -> list[Chunk]:
    conversation_id = text_of(conversation.get("id") or conversation.get("conversation_id"))
    conversation_id = conversation_id or f"#{index}"
    session = session_id("chatgpt", conversation_id)
    title = text_of(conversation.get("title"))
    started = moment(conversation.get("create_time"))
    chunks = []
    for node_id, message in _kept_branch(conversation["mapping"], conversation.get("current_node")):
        author = message.get("author")
        role = SPOKEN.get(text_of(author.get("role"))) if isinstance(author, dict) else None
        text = _text(message.get("content"))
        metadata = message.get("metadata") or {}
        hidden = isinstance(metadata, dict) and metadata.get("is_visually_hidden_from_conversation")
        if role is None or not text.strip() or hidden:
            continue
        chunks.append(
            Chunk(
                key=f"{conversation_id}/{node_id}",
                text=text.strip(),
                session=session,
                occurred_at=moment(message.get("create_time")) or started,
                name=(me if role == "user" else ASSISTANT),
                role=role,
                metadata={"conversation_id": conversation_id, "conversation": title},
            )
        )
    return chunks


def _kept_branch(mapping: dict[str, Any], current: Any) -> list[tuple[str, dict[str, Any]]]:
    """The messages from the root down to `current_node` (the last leaf when it is
    missing), each node visited once even if the tree has a cycle."""
    node_id = current if isinstance(current, str) and current in mapping else _last_leaf(mapping)
    path: list[tuple[str, dict[str, Any]]] = []
    seen: set[str] = set()
    while isinstance(node_id, str) and node_id in mapping and node_id not in seen:
        seen.add(node_id)
        node = mapping[node_id]
        if not isinstance(node, dict):
            break
        if isinstance(node.get("message"), dict):
            path.append((node_id, node["message"]))
        node_id = node.get("parent")
    return path[::-1]


def _last_leaf(mapping: dict[str, Any]) -> str | None:
    """Without `current_node`: the leaf written last."""
    leaves = [
        (moment(_field(node.get("message"), "create_time")), node_id)
        for node_id, node in mapping.items()
        if isinstance(node, dict) and not node.get("children")
    ]
    dated = [(when.timestamp() if when else 0.0, node_id) for when, node_id in leaves]
    return max(dated)[1] if dated else None


def _field(value: Any, name: str) -> Any:
    """`value[name]` when `value` is an object, else None (exports hold odd shapes)."""
    return value.get(name) if isinstance(value, dict) else None


def _text(content: Any) -> str:
    """The text of a message's content: its string parts joined (images and other objects
    are left out)."""
    if not isinstance(content, dict):
        return ""
    if isinstance(content.get("text"), str):
        return str(content["text"])
    parts = content.get("parts")
    if not isinstance(parts, list):
        return ""
    return "\n".join(part for part in parts if isinstance(part, str))
