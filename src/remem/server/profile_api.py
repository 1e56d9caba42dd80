"""The person over HTTP: `GET /v1/profile`, `GET /v1/topics`, `POST /v1/fill`, tenant-scoped
like the rest of the API."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, Query
from pydantic import ConfigDict, Field

from remem.server.auth import Caller
from remem.server.openapi import READ, WRITE
from remem.server.schemas import NO_NUL, JsonObject, Strict, any_of, scope_parameter
from remem.types import FilledForm, Profile, Topic

OwnerQuery = Annotated[str | None, Query(max_length=256, pattern=NO_NUL)]
# documented as one `owner` parameter that needs one of them, as DELETE /v1/memories does
HiddenOwner = Annotated[str | None, Query(max_length=256, pattern=NO_NUL, include_in_schema=False)]
OWNER = {"parameters": [scope_parameter(("user_id", "agent_id"), "owner")]}


def _needs_an_owner(schema: dict[str, Any]) -> None:
    schema["anyOf"] = any_of("user_id", "agent_id")


class FillRequest(Strict):
    """A JSON Schema to fill from the memory of a user (or agent)."""

    model_config = ConfigDict(json_schema_extra=_needs_an_owner)

    form: JsonObject = Field(description="A JSON Schema (type object) of the fields to fill.")
    user_id: str | None = Field(default=None, max_length=256, pattern=NO_NUL)
    agent_id: str | None = Field(default=None, max_length=256, pattern=NO_NUL)
    instructions: str | None = Field(default=None, max_length=4000, pattern=NO_NUL)


def install_profile_routes(app: FastAPI) -> None:
    """Profile, topics and form filling."""

    @app.get("/v1/profile", tags=["person"], responses=READ, openapi_extra=OWNER)
    def profile(
        memory: Caller,
        user_id: HiddenOwner = None,
        agent_id: HiddenOwner = None,
        person: OwnerQuery = None,
        rebuild: Annotated[bool, Query(description="Start the profile over.")] = False,
    ) -> Profile:
        """What memory knows of a person (brought up to date first): biography and status,
        attributes with the notes they rest on, topics with timelines. At least one of
        user_id and agent_id; `person` is their name as a speaker in the turns."""
        return memory.profile(user_id=user_id, agent_id=agent_id, person=person, rebuild=rebuild)

    @app.get("/v1/topics", tags=["person"], responses=READ, openapi_extra=OWNER)
    def topics(
        memory: Caller, user_id: HiddenOwner = None, agent_id: HiddenOwner = None
    ) -> list[Topic]:
        """The topics of a person's memory, largest and surest first."""
        return memory.topics(user_id=user_id, agent_id=agent_id)

    @app.post("/v1/fill", tags=["person"], responses=WRITE)
    def fill(body: FillRequest, memory: Caller) -> FilledForm:
        """Fill a JSON Schema from memory: per field its value, confidence, the notes it
        rests on and why; a field memory does not know stays empty (confidence 0)."""
        form: dict[str, Any] = dict(body.form)
        return memory.fill(
            form, user_id=body.user_id, agent_id=body.agent_id, instructions=body.instructions
        )
