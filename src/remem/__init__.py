"""remem: local-first long-term memory for people and the LLM agents that act for them.

from remem import Memory
with Memory("memory.db") as memory:
    memory.add("I moved to Lisbon in March.", user_id="ana")
    memory.search("where does Ana live?", user_id="ana")
"""

from remem.aio import AsyncMemory
from remem.client import AsyncClient, Client
from remem.errors import (
    ConfigError,
    ConflictError,
    EmbedderError,
    EmptyContentError,
    InvalidContentError,
    InvalidDateError,
    InvalidInputError,
    LLMError,
    NotFoundError,
    RememError,
    ScopeRequiredError,
    StoreError,
)
from remem.memory import Memory
from remem.types import (
    AddResult,
    ApiKey,
    Attribute,
    Biography,
    Consolidation,
    Context,
    ContextItem,
    Episode,
    Event,
    FieldFill,
    FilledForm,
    Hit,
    ImportResult,
    IngestResult,
    Job,
    Link,
    Merge,
    Note,
    Page,
    Profile,
    Scope,
    Statement,
    TimelineEntry,
    Topic,
)

__version__ = "0.1.0"

__all__ = [
    "AddResult",
    "ApiKey",
    "AsyncClient",
    "AsyncMemory",
    "Attribute",
    "Biography",
    "Client",
    "ConfigError",
    "ConflictError",
    "Consolidation",
    "Context",
    "ContextItem",
    "EmbedderError",
    "EmptyContentError",
    "Episode",
    "Event",
    "FieldFill",
    "FilledForm",
    "Hit",
    "ImportResult",
    "IngestResult",
    "InvalidContentError",
    "InvalidDateError",
    "InvalidInputError",
    "Job",
    "LLMError",
    "Link",
    "Memory",
    "Merge",
    "NotFoundError",
    "Note",
    "Page",
    "Profile",
    "RememError",
    "Scope",
    "ScopeRequiredError",
    "Statement",
    "StoreError",
    "TimelineEntry",
    "Topic",
    "__version__",
]
