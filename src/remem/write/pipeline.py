"""The organising pipeline: a language model turns an add batch's episodes into facts that
are reconciled, enriched, linked and that evolve their neighbours (A-MEM, mem0).

It runs as a job kept in the store. Each step makes at most one model call and
checkpoints its answer into the job's payload, so a crash or an outage costs only the
step in flight; nothing reaches the memory until the last step, when every note, link,
vector and event is committed with the job's completion in one transaction, guarded by
the worker's lease. A job therefore completes exactly once, however often it is retried.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from remem import clock, ids
from remem.embedders.base import Embedder
from remem.errors import EmbedderError, LLMError
from remem.lifecycle.changes import as_sources
from remem.lifecycle.expiring import expiring_apart, lasting_decisions
from remem.llms.base import LLM, Usage
from remem.read import rank
from remem.read.search import search
from remem.stores.base import (
    Changes,
    LeaseLostError,
    LLMCall,
    RecordsWithRetrieval,
    StaleWriteError,
)
from remem.types import ORGANISE_JOB, Episode, Job, Link, Note, Scope
from remem.write import prompts
from remem.write.importance import rate
from remem.write.indexing import index_notes
from remem.write.thoughts import drop_outdated
from remem.write.versions import event, link_event, snapshot

STEPS = ("extract", "reconcile", "enrich", "link", "evolve")
# A job failing this many times stops being retried on its own (`remem jobs --retry`).
MAX_ATTEMPTS = 5
# Earlier memories shown to the model per new fact: enough to find the one a fact changes,
# few enough to keep prompts short.
CANDIDATES = 5
log = logging.getLogger("remem.pipeline")


@dataclass
class Outcome:
    """What running a job did."""

    done: bool
    fact_ids: list[str] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    error: str | None = None


def organise_job(episodes: Sequence[Episode]) -> Job:
    """A pending job that will organise these episodes."""
    moment = clock.now()
    return Job(
        id=ids.new_id(ids.JOB),
        kind=ORGANISE_JOB,
        target_id=episodes[0].id,
        status="pending",
        attempts=0,
        last_error=None,
        created_at=moment,
        updated_at=moment,
        payload={"episodes": [e.id for e in episodes], "done": {}},
    )


@dataclass
class Organiser:
    """Runs organise jobs with one store, embedder and model."""

    store: RecordsWithRetrieval
    embedder: Embedder
    llm: LLM
    weights: rank.Weights = rank.DEFAULT

    @property
    def actor(self) -> str:
        return f"llm:{self.llm.model_id}"

    def run(self, job: Job) -> Outcome:
        """Finish a leased job from its last checkpoint, or record why it could not."""
        assert job.lease is not None, "run a job only while holding its lease"
        payload: dict[str, Any] = {**job.payload, "done": dict(job.payload.get("done", {}))}
        episodes = self._episodes(job.target_id, payload)
        spent = Usage()
        steps = {
            "extract": self._extract,
            "reconcile": self._reconcile,
            "enrich": self._enrich,
            "link": self._link,
            "evolve": self._evolve,
        }
        try:
            for step in STEPS:
                if step not in payload["done"]:
                    answer, usage = steps[step](payload, episodes)
                    payload["done"][step] = answer
                    spent += usage
                    self._checkpoint(job, payload, step, usage)
            changes, fact_ids = self._changes(job, payload, episodes)
            self.store.apply(changes)
        except (LLMError, EmbedderError, StaleWriteError) as error:
            usage = error.usage if isinstance(error, LLMError) and error.usage else Usage()
            if isinstance(error, StaleWriteError):  # decided on what has changed: decide again
                payload["done"] = {k: v for k, v in payload["done"].items() if k == "extract"}
            with contextlib.suppress(LeaseLostError):  # another worker owns the job now
                self._failed(job, payload, str(error), usage)
            return Outcome(False, usage=spent + usage, error=str(error))
        except LeaseLostError as lost:
            log.warning("%s", lost)
            return Outcome(False, usage=spent, error=str(lost))
        return Outcome(True, fact_ids, spent)

    # -- the steps -----------------------------------------------------------------------

    def _extract(self, payload: dict[str, Any], episodes: list[Episode]) -> tuple[Any, Usage]:
        if not episodes:
            return {"facts": []}, Usage()
        answer = self.llm.generate(
            "extract", prompts.EXTRACT, prompts.turns_text(episodes), prompts.Extracted
        )
        batch = [e.id for e in episodes]
        latest = max(e.occurred_at for e in episodes)
        facts = [
            {
                "id": ids.new_id(ids.NOTE),
                "text": fact.text.strip(),
                "occurred_at": clock.to_text(_day(fact.occurred_on) or latest),
                "episode_ids": [i for i in fact.episode_ids if i in batch] or batch,
                "importance": rate(fact.text) if fact.importance is None else fact.importance,
                # (no turn cited: the whole batch is its source, see `as_sources`)
                "guessed": not any(i in batch for i in fact.episode_ids),
            }
            for fact in answer.value.facts
            if fact.text.strip()
        ]
        return {"facts": facts}, answer.usage

    def _reconcile(self, payload: dict[str, Any], episodes: list[Episode]) -> tuple[Any, Usage]:
        facts = payload["done"]["extract"]["facts"]
        candidates = [self._known(fact["text"], episodes, facts_only=True) for fact in facts]
        if not any(candidates):
            return {"decisions": [{"action": "add"} for _ in facts]}, Usage()
        question = prompts.listing(
            [
                {**prompts.new_fact(i, fact, episodes), "existing": self._shown(known)}
                for i, (fact, known) in enumerate(zip(facts, candidates, strict=True))
            ]
        )
        answer = self.llm.generate("reconcile", prompts.RECONCILE, question, prompts.Reconciled)
        decisions: list[dict[str, Any]] = [{"action": "add"} for _ in facts]
        for decision in answer.value.decisions:
            if decision.fact >= len(facts):
                continue
            offered = {note.id for note in candidates[decision.fact]}
            if decision.action in ("update", "supersede") and decision.target_id not in offered:
                continue  # a target the step did not offer: keep the fact as new
            decisions[decision.fact] = decision.model_dump(exclude={"fact"})
        shown = {note.id: note.version for known in candidates for note in known}
        decisions = lasting_decisions(facts, decisions, shown, self.store)  # (enrich sees adds)
        return {"decisions": decisions, "versions": shown}, answer.usage

    def _enrich(self, payload: dict[str, Any], episodes: list[Episode]) -> tuple[Any, Usage]:
        kept = self._kept(payload)
        if not kept:
            return {"notes": {}}, Usage()
        question = prompts.listing([{"fact": i, "text": fact["text"]} for i, fact in kept])
        answer = self.llm.generate("enrich", prompts.ENRICH, question, prompts.Enriched)
        indexes = {i for i, _ in kept}
        notes = {
            str(item.fact): item.model_dump(exclude={"fact"})
            for item in answer.value.notes
            if item.fact in indexes
        }
        return {"notes": notes}, answer.usage

    def _link(self, payload: dict[str, Any], episodes: list[Episode]) -> tuple[Any, Usage]:
        kept = self._kept(payload)
        candidates = {i: self._known(fact["text"], episodes) for i, fact in kept}
        if not any(candidates.values()):
            return {"links": []}, Usage()
        question = prompts.listing(
            [
                {**prompts.new_fact(i, fact, episodes), "earlier": self._shown(candidates[i])}
                for i, fact in kept
            ]
        )
        answer = self.llm.generate("link", prompts.LINK, question, prompts.Linked)
        links = [
            link.model_dump()
            for link in answer.value.links
            if link.target_id in {n.id for n in candidates.get(link.fact, [])}
        ]
        return {"links": links}, answer.usage

    def _evolve(self, payload: dict[str, Any], episodes: list[Episode]) -> tuple[Any, Usage]:
        targets = list(
            dict.fromkeys(link["target_id"] for link in payload["done"]["link"]["links"])
        )
        notes = self.store.get_notes(targets)
        if not notes:
            return {"updates": []}, Usage()
        question = prompts.listing(
            {
                "new": [prompts.new_fact(i, f, episodes) for i, f in self._kept(payload)],
                "earlier": self._shown(list(notes.values())),
            }
        )
        answer = self.llm.generate("evolve", prompts.EVOLVE, question, prompts.Evolved)
        updates = [u.model_dump() for u in answer.value.updates if u.note_id in notes]
        shown = {note.id: note.version for note in notes.values()}
        return {"updates": updates, "versions": shown}, answer.usage

    def _shown(self, notes: Sequence[Note]) -> list[dict[str, Any]]:
        """Existing notes as a model sees them, each with its speaker and date."""
        sources = self.store.get_episodes([n.episode_ids[0] for n in notes if n.episode_ids])
        return [prompts.shown(note, sources) for note in notes]

    # -- the commit ----------------------------------------------------------------------

    def _changes(
        self, job: Job, payload: dict[str, Any], episodes: list[Episode]
    ) -> tuple[Changes, list[str]]:
        """Every write of the job, and the job's completion, as one batch."""
        payload = {**payload, "done": expiring_apart(payload["done"], self.store)}
        done = payload["done"]
        facts = done["extract"]["facts"]
        moment = clock.now()
        kept = self._kept(payload) if episodes else []  # facts whose sources were deleted go
        created = {
            fact["id"]: _fact_note(
                fact, episodes[0].scope, moment, done["enrich"]["notes"].get(str(i), {})
            )
            for i, fact in kept
        }
        guessed = {fact["id"] for fact in facts if fact.get("guessed")}
        created = {  # expiring with their turns; none drawn from turns deleted meanwhile
            i: note
            for i, note in as_sources(created, self.store, guessed).items()
            if note.expires_at is None or note.expires_at > moment
        }
        revisions = self._revisions(done, created, moment)
        versions = revisions.versions()
        written = [*created.values(), *versions.values()]
        sources = self.store.get_episodes([e for note in written for e in note.episode_ids])
        changes = index_notes(written, sources, self.embedder, queue_failures=False)
        targets = self.store.get_notes([link["target_id"] for link in done["link"]["links"]])
        live = {i for i, note in targets.items() if note.deleted_at is None}
        changes.links = _links(done["link"]["links"], facts, created, live, moment)
        changes.events = [event("add", n.id, n.scope, self.actor) for n in created.values()]
        changes.events += [
            link_event(link, created[link.source_id].scope, self.actor) for link in changes.links
        ]
        changes.events += [
            event(
                revisions.actions[i],
                i,
                note.scope,
                self.actor,
                snapshot(revisions.before[i]),
                snapshot(note),
            )
            for i, note in versions.items()
        ]
        summary = {"facts": list(created), "changed": list(versions), "links": len(changes.links)}
        changes.jobs = [_finished(job, {**payload, "result": summary})]
        # each note at the version the model was shown (a note changed or deleted since makes
        # the job decide again, see `run`)
        shown = {**done["reconcile"].get("versions", {}), **done["evolve"].get("versions", {})}
        changes.expect = {i: shown.get(i, revisions.before[i].version) for i in versions}
        drop_outdated(changes, revisions.before, self.store, self.actor)  # and their thoughts
        changes.lease = (job.id, job.lease or "")
        return changes, list(created)

    def _revisions(
        self, done: dict[str, Any], created: dict[str, Note], moment: datetime
    ) -> _Revisions:
        """The new versions of existing notes that reconcile and evolve decided on."""
        revisions = _Revisions(self._note, moment)
        facts = done["extract"]["facts"]
        for fact, decision in zip(facts, done["reconcile"]["decisions"], strict=True):
            if decision["action"] == "supersede" and fact["id"] in created:
                new = created[fact["id"]]
                revisions.change(
                    decision["target_id"],
                    "supersede",
                    valid_to=new.valid_from,
                    superseded_by=new.id,
                )
            elif decision["action"] == "update":
                revisions.change(
                    decision["target_id"],
                    "update_text",
                    text=decision.get("text") or fact["text"],
                    add_sources=fact["episode_ids"],
                )
        for update in done["evolve"]["updates"]:
            tags = tuple(update["tags"]) if update["tags"] else None
            revisions.change(update["note_id"], "evolve", context=update["context"], tags=tags)
        return revisions

    # -- helpers -------------------------------------------------------------------------

    def _episodes(self, target_id: str, payload: dict[str, Any]) -> list[Episode]:
        """The live episodes the job organises, of its target's tenant only (an imported
        job's payload could name another's)."""
        found = self.store.get_episodes([target_id, *payload["episodes"]])
        tenant = found[target_id].scope.tenant if target_id in found else None
        return [
            found[i]
            for i in payload["episodes"]
            if i in found and found[i].deleted_at is None and found[i].scope.tenant == tenant
        ]

    def _note(self, note_id: str) -> Note | None:
        note = self.store.get_notes([note_id]).get(note_id)
        return note if note is not None and note.deleted_at is None else None

    def _known(self, text: str, episodes: list[Episode], facts_only: bool = False) -> list[Note]:
        """Live, current notes of the batch's owner most related to `text` (hybrid search)."""
        if not episodes:
            return []
        owner = episodes[0].scope.across_sessions()
        hits = search(self.store, self.embedder, text, owner, CANDIDATES * 4, None, self.weights)
        batch = {e.id for e in episodes}
        notes = self.store.get_notes([hit.id for hit in hits])
        found = [
            notes[hit.id]
            for hit in hits
            if hit.id in notes
            and not (facts_only and notes[hit.id].kind != "fact")
            and not batch.intersection(notes[hit.id].episode_ids)
        ]
        return found[:CANDIDATES]

    def _kept(self, payload: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
        """The extracted facts that become notes of their own (added or superseding)."""
        facts = payload["done"]["extract"]["facts"]
        decisions = payload["done"].get("reconcile", {}).get("decisions", [])
        return [
            (i, fact)
            for i, fact in enumerate(facts)
            if i >= len(decisions) or decisions[i]["action"] in ("add", "supersede")
        ]

    def _checkpoint(self, job: Job, payload: dict[str, Any], step: str, usage: Usage) -> None:
        checkpoint = replace(job, payload=payload, updated_at=clock.now())
        self.store.apply(
            Changes(
                jobs=[checkpoint],
                llm_calls=[self._call(job, step, usage, ok=True)] if usage.calls else [],
                lease=(job.id, job.lease or ""),
            )
        )

    def _failed(self, job: Job, payload: dict[str, Any], error: str, usage: Usage) -> None:
        attempts = job.attempts + 1
        log.warning("organising job %s failed (attempt %d): %s", job.id, attempts, error)
        failed = replace(
            job,
            status="failed" if attempts >= MAX_ATTEMPTS else "pending",
            attempts=attempts,
            last_error=error,
            payload=payload,
            updated_at=clock.now(),
            lease=None,
            leased_until=None,
        )
        step = next((s for s in STEPS if s not in payload["done"]), "commit")
        calls = [self._call(job, step, usage, ok=False)] if usage.calls else []
        self.store.apply(Changes(jobs=[failed], llm_calls=calls, lease=(job.id, job.lease or "")))

    def _call(self, job: Job, step: str, usage: Usage, *, ok: bool) -> LLMCall:
        return LLMCall(
            job.id,
            step,
            self.llm.model_id,
            usage.calls,
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.latency_ms,
            ok,
            clock.now(),
        )


class _Revisions:
    """Changes to existing notes, merged into one new version per note."""

    def __init__(self, load: Callable[[str], Note | None], moment: datetime) -> None:
        self._load = load
        self._moment = moment
        self.before: dict[str, Note] = {}
        self.after: dict[str, Note] = {}
        self.actions: dict[str, str] = {}  # the first change names the version

    def change(
        self, note_id: str, action: str, *, add_sources: Sequence[str] = (), **fields: Any
    ) -> None:
        if note_id not in self.before:
            note = self._load(note_id)
            if note is None:
                return  # deleted since the step ran
            self.before[note_id] = self.after[note_id] = note
            self.actions[note_id] = action
        current = self.after[note_id]
        fields = {name: value for name, value in fields.items() if value is not None}
        if add_sources:
            fields["episode_ids"] = tuple(dict.fromkeys((*current.episode_ids, *add_sources)))
        self.after[note_id] = replace(current, **fields)

    def versions(self) -> dict[str, Note]:
        return {
            note_id: replace(
                note, version=self.before[note_id].version + 1, updated_at=self._moment
            )
            for note_id, note in self.after.items()
        }


def _fact_note(fact: dict[str, Any], scope: Scope, moment: datetime, extra: dict[str, Any]) -> Note:
    occurred = clock.from_text(fact["occurred_at"])
    return Note(
        id=fact["id"],
        scope=scope,
        text=fact["text"],
        metadata={},
        occurred_at=occurred,
        created_at=moment,
        updated_at=moment,
        version=1,
        episode_ids=tuple(fact["episode_ids"]),
        keywords=tuple(extra.get("keywords") or ()),
        tags=tuple(extra.get("tags") or ()),
        context=extra.get("context"),
        valid_from=occurred,
        kind="fact",
        importance=fact.get("importance", rate(fact["text"])),  # jobs queued before it rated
    )


def _links(
    answers: list[dict[str, Any]],
    facts: list[dict[str, Any]],
    created: dict[str, Note],
    live: set[str],
    moment: datetime,
) -> list[Link]:
    """The links the model made from new facts to notes it was shown that are still live."""
    return [
        Link(
            ids.new_id(ids.LINK),
            facts[link["fact"]]["id"],
            link["target_id"],
            link["relation"],
            1.0,
            link["reason"],
            moment,
        )
        for link in answers
        if facts[link["fact"]]["id"] in created and link["target_id"] in live
    ]


def _finished(job: Job, payload: dict[str, Any]) -> Job:
    return replace(
        job,
        status="done",
        attempts=job.attempts + 1,
        last_error=None,
        payload=payload,
        updated_at=clock.now(),
        lease=None,
        leased_until=None,
    )


def _day(text: str | None) -> datetime | None:
    """A YYYY-MM-DD date from the model, or None when it gave none or garbage."""
    if not text:
        return None
    try:
        return datetime.strptime(text[:10], "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        return None
