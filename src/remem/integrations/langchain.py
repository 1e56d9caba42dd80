"""remem in LangChain: a retriever over its search, a chat history kept in its memory.

    pip install 'remem[langchain]'

    retriever = RememRetriever(memory=memory, user_id="ana", k=5)
    retriever.invoke("what coffee do I drink?")          # -> [Document, ...]

    history = RememChatMessageHistory(memory, session_id="chat-1", user_id="ana")
    history.add_messages([HumanMessage("I switched to decaf"), AIMessage("Noted.")])

Both run on the caller's thread (remem's store and embedder are thread-safe); LangChain's
async methods run them in its executor.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from remem.errors import InvalidContentError
from remem.memory import Memory
from remem.serialize import to_data
from remem.types import Episode, Hit, Note

try:
    from langchain_core.callbacks import CallbackManagerForRetrieverRun
    from langchain_core.chat_history import BaseChatMessageHistory
    from langchain_core.documents import Document
    from langchain_core.messages import (
        AIMessage,
        BaseMessage,
        ChatMessage,
        HumanMessage,
        SystemMessage,
    )
    from langchain_core.retrievers import BaseRetriever
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        f"remem's LangChain integration needs langchain-core ({error.name} is missing):"
        " pip install 'remem[langchain]'"
    ) from None

__all__ = ["RememChatMessageHistory", "RememRetriever"]

# LangChain's message types as the chat roles remem keeps, and back
ROLE_OF_TYPE = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}
PAGE = 1000


class RememRetriever(BaseRetriever):
    """The memories most relevant to a query, as Documents: the text, and in `metadata`
    the memory's own metadata with its `id`, `score`, `occurred_at` (ISO 8601), `kind` and
    `episode_ids`. Scope it with `user_id`, `agent_id` and/or `session_id`."""

    memory: Memory
    user_id: str | None = None
    agent_id: str | None = None
    session_id: str | None = None
    k: int = 10
    filters: dict[str, Any] | None = None
    include_superseded: bool = False

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        hits = self.memory.search(
            query,
            user_id=self.user_id,
            agent_id=self.agent_id,
            session_id=self.session_id,
            limit=self.k,
            filters=self.filters,
            include_superseded=self.include_superseded,
        )
        return [_document(hit) for hit in hits]


def _document(hit: Hit) -> Document:
    data = to_data(hit)
    details = {name: data[name] for name in ("score", "occurred_at", "kind", "episode_ids")}
    return Document(
        id=hit.id, page_content=hit.text, metadata={**hit.metadata, "id": hit.id, **details}
    )


class RememChatMessageHistory(BaseChatMessageHistory):
    """One conversation (`session_id`) kept in remem, verbatim, turn by turn: what is
    added is remembered and searchable like anything else said; `messages` reads the
    session's turns back, oldest first; `clear` forgets them (history keeps that it did)."""

    def __init__(
        self,
        memory: Memory,
        session_id: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
    ) -> None:
        if not isinstance(session_id, str) or not session_id.strip():
            raise InvalidContentError("a chat history needs a session_id")
        self.memory = memory
        self.scope: dict[str, Any] = {
            "user_id": user_id,
            "agent_id": agent_id,
            "session_id": session_id,
        }

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        """The session's turns, oldest first (facts a model drew from them are not turns)."""
        turns: list[Note] = []
        cursor = None
        while True:
            page = self.memory.list(limit=PAGE, cursor=cursor, order="oldest", **self.scope)
            turns += [note for note in page.items if note.kind == "turn"]
            cursor = page.cursor
            if cursor is None:
                break
        firsts = [note.episode_ids[0] for note in turns if note.episode_ids]
        episodes = self.memory.store.get_episodes(firsts)
        return [_message(note, episodes.get(note.episode_ids[0])) for note in turns]

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Remember messages as turns of the session, in order, in one write."""
        if messages:
            self.memory.add([_chat_message(message) for message in messages], **self.scope)

    def clear(self) -> None:
        """Forget every turn (and memory) of the session."""
        self.memory.delete_all(**self.scope)


def _chat_message(message: BaseMessage) -> dict[str, Any]:
    """A LangChain message as the chat message remem's add takes."""
    role = message.role if isinstance(message, ChatMessage) else ROLE_OF_TYPE.get(message.type)
    if role is None:
        raise InvalidContentError(f"remem cannot keep a {message.type!r} message")
    accessor: Any = message.text  # a str in langchain-core 1.x, a method before
    text = str(accessor if isinstance(accessor, str) else accessor())
    if not text.strip():
        raise InvalidContentError(f"a {message.type!r} message without text cannot be kept")
    kept: dict[str, Any] = {"role": role, "content": text}
    if message.name:
        kept["name"] = message.name
    return kept


def _message(note: Note, episode: Episode | None) -> BaseMessage:
    """A turn as the LangChain message of its role."""
    role = episode.role if episode is not None else None
    name = episode.name if episode is not None else None
    if role in (None, "user"):
        return HumanMessage(content=note.text, id=note.id, name=name)
    if role == "assistant":
        return AIMessage(content=note.text, id=note.id, name=name)
    if role == "system":
        return SystemMessage(content=note.text, id=note.id, name=name)
    return ChatMessage(role=str(role), content=note.text, id=note.id, name=name)
