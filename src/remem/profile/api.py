"""The person layer of `Memory`: profile, topics and prefill (a mixin, so `Memory` keeps
one public API while its module stays about storing and finding memories)."""

from __future__ import annotations

import builtins
import logging
import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from remem import clock
from remem.errors import LLMError, ScopeRequiredError
from remem.llms import LLM
from remem.llms.base import Usage
from remem.profile import biography, fill, service
from remem.profile import state as saved
from remem.stores.base import Changes, LLMCall, Store
from remem.tokens import token_counts
from remem.types import FilledForm, Hit, Profile, Scope, Topic

log = logging.getLogger("remem")
# a context uses the saved profile as it is when it was brought up to date this recently:
# catching up reads the owner's note ids, which a busy agent should not pay on every turn
FRESH_ENOUGH = timedelta(seconds=30)
# ... and places at most this many new notes before it answers (a few hundred ms); more, as
# after a large import, are placed by `profile()` (or `remem profile`), not on a turn
CONTEXT_MAX_NEW = 2000
# profiles kept as read for contexts (one per owner seen lately)
PROFILES_KEPT = 256
# refreshes that meet another one saving first are made again, this many times in all
REFRESH_ATTEMPTS = 3


class PersonMethods:
    """Profile, topics and form filling, over the parts `Memory` holds."""

    store: Store
    llm: LLM | None
    actor: str
    _writing: threading.Lock
    # meta key -> (saved text, the profile read from it), for contexts
    _profiles_read: dict[str, tuple[str | None, Profile | None]]

    def _scope(self, user_id: Any, agent_id: Any, session_id: Any) -> Scope:
        raise NotImplementedError

    def _apply(self, changes: Changes) -> None:
        raise NotImplementedError

    search: Callable[..., builtins.list[Hit]]

    def profile(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        person: str | None = None,
        rebuild: bool = False,
    ) -> Profile:
        """What remem knows of the person a user (or agent) is about, brought up to date
        with their notes: topics, attributes with evidence, biography. `person` names them
        as they appear as a speaker (default: as before, else the user id); with a model
        the biography is written by it when enough has changed. `rebuild` starts over."""
        scope = self._owner(user_id, agent_id, "profile")
        return self._refreshed(scope, person, rebuild=rebuild, llm=self.llm)

    def topics(self, *, user_id: str | None = None, agent_id: str | None = None) -> list[Topic]:
        """The topics of a user's (or agent's) memory, largest and surest first."""
        return list(self.profile(user_id=user_id, agent_id=agent_id).topics)

    def fill(
        self,
        schema: Mapping[str, Any],
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        instructions: str | None = None,
    ) -> FilledForm:
        """Fill a JSON Schema from memory: every field with its value, confidence, evidence
        and why; what memory does not say stays empty (confidence 0), never invented."""
        scope = self._owner(user_id, agent_id, "fill")
        known = self._refreshed(scope, None, rebuild=False, llm=None)

        def evidence(query: str, limit: int) -> list[Hit]:
            return self.search(query, user_id=user_id, agent_id=agent_id, limit=limit)

        def person_said(hit: Hit) -> bool:
            """Only the person's own words fill their form (not another speaker's email)."""
            first = hit.episode_ids[0] if hit.episode_ids else ""
            episode = self.store.get_episodes([first]).get(first) if first else None
            speaker = (episode.role, episode.name) if episode is not None else None
            return service.said_by_person(speaker, known.person)

        form, _ = fill.fill_form(
            schema,
            attributes=known.attributes,
            search=evidence,
            llm=self.llm,
            instructions=instructions,
            is_person=person_said,
        )
        return form

    def _owner(self, user_id: Any, agent_id: Any, operation: str) -> Scope:
        """The owner a profile is of: a user or an agent (a profile spans sessions)."""
        scope = self._scope(user_id, agent_id, None)
        if not (scope.user_id or scope.agent_id):
            raise ScopeRequiredError(operation, "user_id or agent_id")
        return scope

    def _profile_lines(self, scope: Scope, budget: int) -> tuple[str, str]:
        """(profile id, compact profile text) for a context: the profile as saved, brought
        up to date without a model (fast: only what changed since is read)."""
        owner = service.owner_of(scope)
        if not (owner.user_id or owner.agent_id):
            return "", ""
        now = clock.now()
        saved_profile = self._saved_profile(owner, now)
        outdated = service.outdated_since(self.store, owner)
        if saved_profile is not None and _fresh(saved_profile.updated_at, outdated, now):
            known = saved_profile
        else:
            known = self._refreshed(owner, None, rebuild=False, llm=None, max_new=CONTEXT_MAX_NEW)
        block = biography.profile_block(known, budget, token_counts)
        # the block's own first line is its header; the context writes its own
        return known.id, "\n".join(block.splitlines()[1:])

    def _saved_profile(self, owner: Scope, now: datetime) -> Profile | None:
        """The profile as saved. Reading it (topic state, topics) costs about a second at
        100k notes, which a context must not pay every turn: what was read is kept until
        the saved text changes."""
        key = saved.key_of(owner)
        text = self.store.get_meta(key)
        seen = self._profiles_read.get(key)
        if seen is not None and seen[0] == text:
            return seen[1]
        doc = saved.load(text)
        known = service.profile_of(doc, owner, now) if doc is not None else None
        if len(self._profiles_read) >= PROFILES_KEPT:
            self._profiles_read.clear()  # bounded: read again as needed
        self._profiles_read[key] = (text, known)
        return known

    def _refreshed(
        self,
        scope: Scope,
        person: str | None,
        *,
        rebuild: bool,
        llm: LLM | None,
        max_new: int | None = None,
    ) -> Profile:
        """The profile brought up to date. The work (reads, clustering, the model) runs
        outside the memory's write lock, which only guards saving it: if another refresh
        saved first, this one is made again from what that saved (without the model,
        which has just been asked)."""
        now = clock.now()
        for attempt in range(REFRESH_ATTEMPTS):
            done = self._refresh(scope, person, rebuild, llm if attempt == 0 else None, max_new)
            if done.changes is None:
                break
            with self._writing:
                current = service.stored(self.store, scope)
                if (current.version if current else 0) == done.base:
                    if llm is not None and done.usage.calls:
                        done.changes.llm_calls.append(_call(done.doc.id, llm, done.usage, now))
                    self._apply(done.changes)
                    break
            rebuild = False  # what the other refresh saved is the new base
        return service.profile_of(done.doc, scope, now)

    def _refresh(
        self,
        scope: Scope,
        person: str | None,
        rebuild: bool,
        llm: LLM | None,
        max_new: int | None,
    ) -> service.Refresh:
        def attempt(model: LLM | None) -> service.Refresh:
            return service.refresh(
                self.store,
                scope,
                person=person,
                now=clock.now(),
                actor=self.actor,
                llm=model,
                rebuild=rebuild,
                max_new=max_new,
            )

        try:
            return attempt(llm)
        except LLMError as error:
            # the model failed after its retries: the profile is kept current without
            # it (reported, not hidden), and the model is asked again next time
            log.warning("the profile's model step failed, summarised instead: %s", error)
            return attempt(None)


def _fresh(updated: datetime | None, outdated: datetime | None, now: datetime) -> bool:
    """Whether a saved profile may serve a context as it is: brought up to date recently,
    and not before a note was forgotten."""
    if updated is None or now - updated >= FRESH_ENOUGH:
        return False
    return outdated is None or outdated < updated


def _call(profile_id: str, llm: LLM, usage: Usage, now: datetime) -> LLMCall:
    return LLMCall(
        job_id=profile_id,
        step="profile",
        model=llm.model_id,
        calls=usage.calls,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        latency_ms=usage.latency_ms,
        ok=True,
        at=now,
    )
