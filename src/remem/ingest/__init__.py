"""Importers: chat exports, notes and documents become episodes and notes with provenance.

    memory -> ingest/run -> detect -> one parser per format -> Chunk records
                         -> ledger (what each file gave before) -> sync (Changes) -> store

`remem.ingest.run.ingest_paths` is the one entry point (`Memory.ingest`, `remem ingest`
and `POST /v1/ingest` call it).
"""

from remem.ingest.purge import ledger_changes_for_purge

__all__ = ["ledger_changes_for_purge"]
