"""Where settings become parts, and the only place: `Memory()`, `Memory.from_config()` and
the CLI all build their store, embedder and model here, so they honour the same config
file and REMEM_* environment."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from remem.config import Settings
from remem.embedders import Embedder, create_embedder
from remem.errors import ConfigError
from remem.llms import LLM, create_llm
from remem.stores import Store, open_store
from remem.stores.base import Records
from remem.write.jobs import JOB_MODES, JobMode


class Default(enum.Enum):
    """A part the caller did not pass: build it from the settings."""

    FROM_SETTINGS = "from settings"


FROM_SETTINGS = Default.FROM_SETTINGS


@dataclass(frozen=True)
class Parts:
    """What a memory is made of."""

    store: Store
    embedder: Embedder
    llm: LLM | None
    jobs: JobMode


def build_parts(
    settings: Settings,
    *,
    store: Store | None = None,
    embedder: Embedder | None = None,
    llm: LLM | Default | None = FROM_SETTINGS,
    jobs: str | None = None,
) -> Parts:
    """The parts the caller passed, and the others as the settings name them."""
    mode = jobs or settings.jobs
    if mode not in JOB_MODES:
        raise ConfigError(f"jobs must be one of {', '.join(JOB_MODES)}, got {mode!r}")
    built: list[Embedder | LLM] = []  # closed again if a later part cannot be made
    try:
        if embedder is None:
            embedder = create_embedder(settings)
            built.append(embedder)
        if llm is FROM_SETTINGS:
            llm = create_llm(settings)
            built += [llm] if llm is not None else []
        if store is None:
            store = open_store(settings.db)
    except BaseException:
        for part in built:
            part.close()
        raise
    return Parts(store, embedder, llm, mode)


def check_embedder(store: Records, embedder: Embedder) -> bool:
    """True when the store already records this embedder; raise when it records another."""
    recorded = store.get_meta("embedder")
    if recorded is not None and recorded != embedder.model_id:
        raise ConfigError(
            f"this memory was embedded with {recorded!r} but the configured embedder is "
            f"{embedder.model_id!r}; configure the embedder that made it (REMEM_EMBEDDER), "
            "or export it and import the file into a new memory to re-embed it"
        )
    return recorded is not None
