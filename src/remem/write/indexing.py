"""What every write of a note must also write: the text full-text search reads, its vector
and sentence vectors, or, when the embedder fails, a job to embed it later.

One helper for every operation (add, update, organise, import), so a note is never
written with a stale body or without its sentence vectors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from remem.embedders.base import Embedder
from remem.stores.base import Changes
from remem.types import Episode, Note
from remem.write.embedding import NoteVectors, embed_notes, embed_or_queue
from remem.write.ingest import index_text


def index_notes(
    notes: Sequence[Note],
    sources: Mapping[str, Episode],
    embedder: Embedder | None,
    *,
    embed: Sequence[Note] | None = None,
    queue_failures: bool = True,
) -> Changes:
    """`notes` ready to write, with the bodies of the live ones (`sources`: their episodes,
    for the speaker's name), and vectors for `embed` (default: every live note; none
    without an embedder). A failing embedder leaves pending embedding jobs instead
    (`queue_failures`), or raises its EmbedderError."""
    live = [note for note in notes if note.deleted_at is None]
    changes = Changes(
        notes=list(notes), bodies={note.id: index_text(note, sources) for note in live}
    )
    wanted = live if embed is None else list(embed)
    if embedder is None or not wanted:
        return changes
    made: NoteVectors
    if queue_failures:
        outcome = embed_or_queue(embedder, wanted)
        made, changes.jobs = outcome, outcome.failed_jobs
    else:
        made = embed_notes(embedder, wanted)
    changes.vectors = dict(made.vectors)
    changes.sentence_vectors = dict(made.sentence_vectors)
    return changes
