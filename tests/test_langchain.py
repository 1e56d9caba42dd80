"""remem in LangChain: the retriever and the chat message history, with langchain-core's
own classes and runnables (no network, no model)."""

from __future__ import annotations

import threading

import anyio
import pytest

from remem import Memory
from remem.errors import InvalidContentError, ScopeRequiredError

pytest.importorskip("langchain_core", reason="langchain-core is not installed: remem[langchain]")

from langchain_core.messages import (
    AIMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.runnables import RunnableLambda

from remem.integrations.langchain import RememChatMessageHistory, RememRetriever


def test_the_retriever_finds_memories_as_documents(memory: Memory) -> None:
    coffee = memory.add("I switched to decaf in June.", user_id="ana", metadata={"topic": "food"})
    memory.add("My sister lives in Porto.", user_id="ana")
    memory.add("Bob drinks espresso.", user_id="bob")
    retriever = RememRetriever(memory=memory, user_id="ana", k=1)
    documents = retriever.invoke("what coffee do I drink?")
    assert [d.page_content for d in documents] == ["I switched to decaf in June."]
    assert documents[0].id == coffee.note_ids[0]
    details = documents[0].metadata
    assert details["topic"] == "food" and details["id"] == coffee.note_ids[0]
    assert details["episode_ids"] == list(coffee.episode_ids) and details["kind"] == "note"
    assert isinstance(details["score"], float) and details["occurred_at"].endswith("Z")
    # composes like any retriever, async included
    chain = retriever | RunnableLambda(lambda docs: " / ".join(d.page_content for d in docs))
    assert chain.invoke("coffee") == "I switched to decaf in June."
    assert [d.page_content for d in anyio.run(retriever.ainvoke, "coffee")] == [
        "I switched to decaf in June."
    ]
    filtered = RememRetriever(memory=memory, user_id="ana", filters={"topic": "travel"})
    assert filtered.invoke("coffee") == []
    with pytest.raises(ScopeRequiredError):
        RememRetriever(memory=memory).invoke("coffee")


def test_the_chat_history_keeps_a_session_in_order(memory: Memory) -> None:
    history = RememChatMessageHistory(memory, session_id="chat-1", user_id="ana")
    assert history.messages == []
    history.add_messages(
        [
            SystemMessage("You are terse."),
            HumanMessage("I switched to decaf.", name="Ana"),
            AIMessage("Noted."),
        ]
    )
    history.add_user_message("And I moved to Porto.")
    history.add_message(ChatMessage(role="critic", content="Too terse."))
    messages = history.messages
    assert [(type(m).__name__, m.content) for m in messages] == [
        ("SystemMessage", "You are terse."),
        ("HumanMessage", "I switched to decaf."),
        ("AIMessage", "Noted."),
        ("HumanMessage", "And I moved to Porto."),
        ("ChatMessage", "Too terse."),
    ]
    assert messages[1].name == "Ana" and messages[4].role == "critic"  # type: ignore[attr-defined]
    # another session, and another user's same session id, stay apart
    other = RememChatMessageHistory(memory, session_id="chat-2", user_id="ana")
    other.add_user_message("Unrelated.")
    bob = RememChatMessageHistory(memory, session_id="chat-1", user_id="bob")
    assert bob.messages == []
    # what was said is memory: searchable beyond the chat
    hits = memory.search("decaf", user_id="ana")
    assert hits[0].text == "I switched to decaf."
    history.clear()
    assert history.messages == [] and [m.content for m in other.messages] == ["Unrelated."]
    assert anyio.run(other.aget_messages)[0].content == "Unrelated."


def test_the_chat_history_refuses_what_it_cannot_keep(memory: Memory) -> None:
    history = RememChatMessageHistory(memory, session_id="s", user_id="ana")
    with pytest.raises(InvalidContentError):
        history.add_message(HumanMessage(content=[{"type": "image_url", "image_url": "x"}]))
    with pytest.raises(InvalidContentError):
        history.add_message(HumanMessage("   "))
    with pytest.raises(InvalidContentError):
        RememChatMessageHistory(memory, session_id=" ")
    history.add_message(ToolMessage("42", tool_call_id="call-1"))
    assert [(type(m).__name__, m.content) for m in history.messages] == [("ChatMessage", "42")]
    assert history.messages[0].role == "tool"  # type: ignore[attr-defined]
    history.add_message(HumanMessage(content=[{"type": "text", "text": "multi"}, "part"]))
    assert history.messages[-1].content.startswith("multi")


def test_threads_adding_to_one_history_lose_nothing(memory: Memory) -> None:
    history = RememChatMessageHistory(memory, session_id="s", user_id="ana")

    def talk(who: int) -> None:
        for turn in range(10):
            history.add_user_message(f"speaker {who} turn {turn}")

    threads = [threading.Thread(target=talk, args=(who,)) for who in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    said = [str(m.content) for m in history.messages]
    assert sorted(said) == sorted(f"speaker {w} turn {t}" for w in range(4) for t in range(10))
    for who in range(4):  # each speaker's turns in the order spoken
        mine = [s for s in said if s.startswith(f"speaker {who} ")]
        assert mine == [f"speaker {who} turn {t}" for t in range(10)]
