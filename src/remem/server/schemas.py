"""Request bodies of the REST API. Responses are remem's own records (dataclasses).

Every model forbids unknown fields, so a misspelt field is an error naming it rather
than a silently ignored value, and takes JSON types as they are (no "10" for 10). The
schemas say what the server checks: text has no NUL and is not blank, and a request
that needs a scope names at least one scope id (`anyOf` in the JSON schema).
"""

from __future__ import annotations

from typing import Annotated, Any, TypedDict

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from typing_extensions import TypeAliasType

from remem.inputs import MAX_BUDGET, MAX_COUNT, MAX_LIMIT, MIN_BUDGET
from remem.read.relevance import ANSWERABLE, CONTEXT_FLOOR

NO_NUL = r"^[^\x00]*$"
# some character that is neither blank nor NUL, and no NUL anywhere (linear to match)
SOME_TEXT = r"^\s*[^\s\x00][^\x00]*$"
CURSOR = r"^[0-9]{18}\.[0-9]{1,18}$"  # a position this server handed out: inputs.py
# remem keeps times from 0001-01-02 to 9999-12-30 UTC: the schema leaves out the two days
# at each end, where a time zone decides (checked by the server, not by this pattern)
FAR_DAYS_LEFT_OUT = r"^(?!0001-01-0[12]|9999-12-3[01])"
SCOPE_NAMES = ("user_id", "agent_id", "session_id")


def _whole(value: Any) -> Any:
    """JSON has one kind of number: 10.0 is the integer 10 (a string stays refused)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


Count = Annotated[int, BeforeValidator(_whole)]
StoredText = Annotated[str, Field(pattern=NO_NUL)]


class _KeysLikeText:
    """JSON schema of a dict whose keys hold no NUL: `propertyNames`, where pydantic would
    write `patternProperties` (which lets other keys through)."""

    @staticmethod
    def __get_pydantic_json_schema__(core: Any, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        schema = handler(core)
        ((pattern, values),) = schema.pop("patternProperties").items()
        return {**schema, "propertyNames": {"pattern": pattern}, "additionalProperties": values}


# metadata: JSON whose strings and keys hold no NUL (remem also limits its depth and size)
JsonValue = TypeAliasType(
    "JsonValue", "StoredText | int | float | bool | list[JsonValue] | JsonObject | None"
)
JsonObject = TypeAliasType("JsonObject", "Annotated[dict[StoredText, JsonValue], _KeysLikeText]")
Metadata = JsonObject
ScopeId = Annotated[str | None, Field(default=None, max_length=256, pattern=NO_NUL)]
Text = Annotated[str, Field(min_length=1, max_length=100_000, pattern=SOME_TEXT)]
QueryText = Annotated[str, Field(min_length=1, max_length=10_000, pattern=SOME_TEXT)]


def any_of(*names: str) -> list[dict[str, Any]]:
    """JSON schema: at least one of these string fields is present and not blank."""
    return [
        {"required": [name], "properties": {name: {"type": "string", "pattern": SOME_TEXT}}}
        for name in names
    ]


def scope_parameter(names: tuple[str, ...] = SCOPE_NAMES, name: str = "scope") -> dict[str, Any]:
    """The scope of a query string as one OpenAPI parameter (`?user_id=...&agent_id=...`)
    that must name at least one of `names`."""
    text = {"type": "string", "maxLength": 256, "pattern": NO_NUL}
    return {
        "name": name,
        "in": "query",
        "required": True,
        "style": "form",
        "explode": True,
        "description": f"at least one of {', '.join(names)}",
        "schema": {
            "type": "object",
            "properties": dict.fromkeys(names, text),
            "anyOf": any_of(*names),
        },
    }


def _needs_a_scope(schema: dict[str, Any]) -> None:
    schema["anyOf"] = any_of(*SCOPE_NAMES)


def _needs_a_change(schema: dict[str, Any]) -> None:
    schema["anyOf"] = [
        {"required": ["text"], "properties": {"text": {"type": "string"}}},
        {"required": ["metadata"], "properties": {"metadata": {"type": "object"}}},
        {"required": ["expires_at"], "properties": {"expires_at": {"type": "string"}}},
    ]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ScopeFields(Strict):
    """Whose memory: at least one of the three ids (within the API key's tenant)."""

    model_config = ConfigDict(json_schema_extra=_needs_a_scope)

    user_id: ScopeId = None
    agent_id: ScopeId = None
    session_id: ScopeId = None

    def scope(self) -> ScopeArgs:
        return {"user_id": self.user_id, "agent_id": self.agent_id, "session_id": self.session_id}


class ScopeArgs(TypedDict):
    user_id: str | None
    agent_id: str | None
    session_id: str | None


class Message(Strict):
    """One chat message; each becomes one episode."""

    content: Text
    role: str | None = Field(default=None, max_length=64, pattern=NO_NUL)
    name: str | None = Field(default=None, max_length=256, pattern=NO_NUL)
    metadata: Metadata | None = None


class AddRequest(ScopeFields):
    """Remember a text or a list of chat messages."""

    content: Text | Annotated[list[Message], Field(min_length=1, max_length=1000)]
    occurred_at: str | None = Field(
        default=None,
        max_length=64,
        description="when it was said (ISO 8601), from 0001-01-02 to 9999-12-30 UTC; default: now",
        json_schema_extra={"format": "date-time", "pattern": FAR_DAYS_LEFT_OUT},
    )
    metadata: Metadata | None = None
    expires_at: str | None = Field(
        default=None,
        max_length=64,
        description="when its memories expire (ISO 8601, in the future); default: never",
        json_schema_extra={"format": "date-time", "pattern": FAR_DAYS_LEFT_OUT},
    )


class SearchRequest(ScopeFields):
    query: QueryText
    limit: Count = Field(default=10, ge=1, le=MAX_LIMIT)
    filters: dict[str, Any] | None = Field(
        default=None, description="metadata key -> value every hit must have"
    )
    include_superseded: bool = Field(
        default=False, description="also facts that a later fact superseded"
    )
    min_score: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="only hits at least this relevant (a hit's score is the estimated"
        " probability, 0 to 1, that it bears on the query)",
    )
    explain: bool = Field(
        default=False,
        description="give each hit its score parts (`explanation`): what each ranking step"
        " added to its ranking score, and the inputs of its relevance",
    )


class ContextRequest(ScopeFields):
    query: QueryText
    budget_tokens: Count = Field(default=1500, ge=MIN_BUDGET, le=MAX_BUDGET)
    recent_turns: Count = Field(default=10, ge=0, le=MAX_LIMIT)
    memories: Count = Field(default=20, ge=0, le=MAX_LIMIT)
    profile_share: float = Field(
        default=0.15, ge=0, le=1, description="Share of the budget the profile may take."
    )
    min_score: float = Field(
        default=CONTEXT_FLOOR,
        ge=0,
        le=1,
        description="leave out memories less relevant than this (0 keeps every one found)",
    )
    min_top_score: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="give no memory (but pinned ones) when none is this relevant"
        f" (0: off; {ANSWERABLE} rejects ~45% of unrelated questions on LoCoMo)",
    )


class UpdateRequest(Strict):
    """New text and/or new metadata for one memory; the old version stays in history."""

    model_config = ConfigDict(json_schema_extra=_needs_a_change)

    text: Text | None = None
    metadata: Metadata | None = None
    expires_at: str | None = Field(
        default=None,
        max_length=64,
        description='when it expires (ISO 8601, in the future), or "never"',
        json_schema_extra={"pattern": FAR_DAYS_LEFT_OUT},
    )
    # change only this version, else 409 (If-Match does the same with 412)
    expected_version: Count | None = Field(
        default=None,
        ge=1,
        le=MAX_COUNT,
        # spelled out: pydantic writes `ge`, which no JSON Schema reader knows, for an
        # optional number that is validated before its bounds
        json_schema_extra={
            "anyOf": [{"type": "integer", "minimum": 1, "maximum": MAX_COUNT}, {"type": "null"}]
        },
    )


class Deleted(BaseModel):
    deleted: int
