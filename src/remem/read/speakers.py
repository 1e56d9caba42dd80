"""Who said a turn, spelled the same way everywhere a model reads it (context, prompts).

A name alone says who; a role alone is spelled plainly ("the user", "the assistant") so no
reader takes a bare `user:` for a name or the assistant's words for the person's. Text
added with neither (a plain string) is labelled `note`: remem does not know who said it.
"""

from __future__ import annotations

from remem.types import Episode

TURN_TIME = "%Y-%m-%d %H:%M"
DAY = "%Y-%m-%d"
FACT_LABEL = "fact"
THOUGHT_LABEL = "thought (inferred)"  # a conclusion drawn from memories, not said
UNKNOWN = "note"


def speaker(name: str | None, role: str | None) -> str:
    """`Ana`, `the user`, `the assistant`, or `Remy (the assistant)` for a named assistant."""
    plain = f"the {role.strip().lower()}" if role and role.strip() else None
    if name and name.strip():
        if plain and plain != "the user":  # the person's name needs no role; others do
            return f"{name.strip()} ({plain})"
        return name.strip()
    return plain or UNKNOWN


def speaker_of(episode: Episode | None) -> str:
    """The speaker of a turn, or `note` when it has none or its source is gone."""
    return speaker(episode.name, episode.role) if episode is not None else UNKNOWN
