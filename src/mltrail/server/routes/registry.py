"""The model registry: ``/api/v1/models`` (models, versions, tags, aliases, stages, audit trail).

The ``actor`` of every change is the token's user when auth is on; without auth the client's
claim (its OS user) is recorded, as the embedded store does.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field
from starlette.responses import Response

from mltrail import validation as v
from mltrail.access import (
    Principal,
    actor,
    allow,
    allow_objects,
    allow_run,
    readable_objects,
    restricted,
    visible_model,
    visible_versions,
)
from mltrail.server import metrics
from mltrail.server.app import ServerState, reply, state_of
from mltrail.server.auth import principal
from mltrail.server.routes.ops import ERROR_RESPONSES
from mltrail.server.schemas import Body

router = APIRouter(prefix="/api/v1", tags=["registry"], responses=ERROR_RESPONSES)

Who = Annotated[Principal, Depends(principal)]
State = Annotated[ServerState, Depends(state_of)]
Name = Annotated[str, Path(min_length=1, max_length=255)]
Version = Annotated[int, Path(ge=1, le=2**31 - 1)]
Comment = Annotated[str | None, Query(max_length=v.MAX_COMMENT_LENGTH)]
#: Who a DELETE says makes the change (recorded only when auth is off; see auth.actor).
ClaimedActor = Annotated[str | None, Query(alias="actor", max_length=256)]


# -- bodies --------------------------------------------------------------------------------------


class ModelOut(BaseModel):
    name: str
    description: str | None
    creation_time: int
    last_update_time: int
    tags: dict[str, str]
    aliases: dict[str, int]
    latest_version: int | None


class ModelsOut(BaseModel):
    models: list[ModelOut]
    next_page_token: str | None


class VersionOut(BaseModel):
    name: str
    version: int
    run_id: str | None
    source: str
    artifact_path: str | None
    tree_hash: str
    description: str | None
    status: str
    stage: str
    lifecycle_stage: str
    user_id: str
    creation_time: int
    last_update_time: int
    tags: dict[str, str]
    aliases: list[str]


class VersionsOut(BaseModel):
    versions: list[VersionOut]


class EventOut(BaseModel):
    model_name: str
    version: int | None
    action: str
    key: str | None
    actor: str
    timestamp: int
    before: str | None
    after: str | None
    comment: str | None


class EventsOut(BaseModel):
    events: list[EventOut]


class TreesOut(BaseModel):
    tree_hashes: list[str]


class Change(Body):
    """Fields every change may carry: who says they made it (without auth) and why."""

    actor: str | None = Field(default=None, max_length=256)
    comment: str | None = Field(default=None, max_length=v.MAX_COMMENT_LENGTH)


class CreateModel(Change):
    name: str
    description: str | None = None
    tags: dict[str, str] = {}


class Describe(Change):
    description: str | None


class Rename(Change):
    new_name: str


class Tag(Change):
    key: str
    value: str


class CreateVersion(Change):
    #: A number above every one the model gave (an import keeping its source's); else the next.
    version: int | None = Field(default=None, ge=1, le=2**31 - 1)
    source: str
    run_id: str | None = None
    artifact_path: str | None = None
    tree_hash: str
    description: str | None = None
    tags: dict[str, str] = {}


class SetAlias(Change):
    version: int = Field(ge=1, le=2**31 - 1)


class Transition(Change):
    stage: str
    archive_existing: bool = False


def _tags(tags: dict[str, str]) -> dict[str, str]:
    return {v.check_key(k, "tag"): v.check_tag_value(k, x) for k, x in tags.items()}


# -- registered models ---------------------------------------------------------------------------


@router.post("/models", response_model=ModelOut, status_code=201)
def create_model(body: CreateModel, who: Who, state: State) -> Response:
    """Create a registered model with no versions."""
    name = v.check_model_name(body.name)
    allow(who, "write", model=name)
    model = state.store.create_registered_model(
        name,
        v.check_description(body.description),
        _tags(body.tags),
        actor(who, body.actor),
        body.comment,
    )
    return reply(model.to_dict(), 201)


@router.get("/models", response_model=ModelsOut)
def list_models(
    who: Who,
    state: State,
    name_like: Annotated[str | None, Query(max_length=255)] = None,
    max_results: int = 100,
    page_token: str | None = None,
) -> Response:
    """A page of registered models by name; ``name_like`` is a LIKE pattern (``%``, ``_``)."""
    allow(who, "read")
    page = state.store.list_registered_models(name_like, max_results, page_token)
    # Hidden models leave a page short; the page token still continues after them.
    shown = [m.to_dict() for m in page if visible_model(who, m.name)]
    return reply({"models": shown, "next_page_token": page.next_page_token})


@router.get("/models/{name}", response_model=ModelOut)
def get_model(name: Name, who: Who, state: State) -> Response:
    """A registered model with its tags, aliases and latest version."""
    allow(who, "read", model=name)
    return reply(state.store.get_registered_model(name).to_dict())


@router.patch("/models/{name}", response_model=ModelOut)
def update_model(name: Name, body: Describe, who: Who, state: State) -> Response:
    """Replace a registered model's description."""
    allow(who, "write", model=name)
    model = state.store.update_registered_model(
        name, v.check_description(body.description), actor(who, body.actor), body.comment
    )
    return reply(model.to_dict())


@router.post("/models/{name}/rename", response_model=ModelOut)
def rename_model(name: Name, body: Rename, who: Who, state: State) -> Response:
    """Give a registered model a new name."""
    new_name = v.check_model_name(body.new_name)
    allow(who, "write", model=name)
    allow(who, "write", model=new_name)
    model = state.store.rename_registered_model(
        name, new_name, actor(who, body.actor), body.comment
    )
    return reply(model.to_dict())


@router.delete("/models/{name}", status_code=204)
def delete_model(
    name: Name,
    who: Who,
    state: State,
    force: bool = False,
    comment: Comment = None,
    actor_name: ClaimedActor = None,
) -> Response:
    """Delete a registered model (refused while it holds aliases or stages, unless ``force``)."""
    allow(who, "write", model=name)
    state.store.delete_registered_model(name, actor(who, actor_name), force, comment)
    return Response(status_code=204)


@router.post("/models/{name}/tags", status_code=204)
def set_model_tag(name: Name, body: Tag, who: Who, state: State) -> Response:
    """Set one tag of a registered model."""
    allow(who, "write", model=name)
    key = v.check_key(body.key, "tag")
    state.store.set_registered_model_tag(
        name, key, v.check_tag_value(key, body.value), actor(who, body.actor), body.comment
    )
    return Response(status_code=204)


@router.delete("/models/{name}/tags", status_code=204)
def delete_model_tag(
    name: Name,
    key: str,
    who: Who,
    state: State,
    comment: Comment = None,
    actor_name: ClaimedActor = None,
) -> Response:
    """Remove one tag of a registered model."""
    allow(who, "write", model=name)
    state.store.delete_registered_model_tag(name, key, actor(who, actor_name), comment)
    return Response(status_code=204)


# -- versions ------------------------------------------------------------------------------------


@router.post("/models/{name}/versions", response_model=VersionOut, status_code=201)
def create_version(name: Name, body: CreateVersion, who: Who, state: State) -> Response:
    """Add the next version to a model (creating the model if it is missing)."""
    name = v.check_model_name(name)
    allow(who, "write", model=name)
    tree_hash = v.check_tree_hash(body.tree_hash)
    # A version names a run and a tree: only ones the caller may read.
    if body.run_id:
        allow_run(who, state.store, body.run_id, "read")
    allow_objects(who, state.store, lambda: state.objects, [tree_hash])
    version = state.store.create_model_version(
        name,
        v.check_model_source(body.source),
        body.run_id,
        v.check_artifact_path(body.artifact_path) if body.artifact_path else None,
        tree_hash,
        v.check_description(body.description),
        _tags(body.tags),
        actor(who, body.actor),
        body.comment,
        version=body.version,
    )
    metrics.count("model_versions_created")
    return reply(version.to_dict(), 201)


@router.get("/models/{name}/versions", response_model=VersionsOut)
def list_versions(name: Name, who: Who, state: State, include_deleted: bool = False) -> Response:
    """A model's versions, newest first."""
    allow(who, "read", model=name)
    found = state.store.list_model_versions(name, include_deleted)
    return reply({"versions": [x.to_dict() for x in found]})


@router.get("/models/{name}/versions/{version}", response_model=VersionOut)
def get_version(name: Name, version: Version, who: Who, state: State) -> Response:
    """One version of a model."""
    allow(who, "read", model=name)
    return reply(state.store.get_model_version(name, version).to_dict())


@router.patch("/models/{name}/versions/{version}", response_model=VersionOut)
def update_version(
    name: Name, version: Version, body: Describe, who: Who, state: State
) -> Response:
    """Replace a version's description."""
    allow(who, "write", model=name)
    found = state.store.update_model_version(
        name,
        version,
        v.check_description(body.description),
        actor(who, body.actor),
        body.comment,
    )
    return reply(found.to_dict())


@router.post("/models/{name}/versions/{version}/tags", status_code=204)
def set_version_tag(name: Name, version: Version, body: Tag, who: Who, state: State) -> Response:
    """Set one tag of a version."""
    allow(who, "write", model=name)
    key = v.check_key(body.key, "tag")
    state.store.set_model_version_tag(
        name,
        version,
        key,
        v.check_tag_value(key, body.value),
        actor(who, body.actor),
        body.comment,
    )
    return Response(status_code=204)


@router.delete("/models/{name}/versions/{version}/tags", status_code=204)
def delete_version_tag(
    name: Name,
    version: Version,
    key: str,
    who: Who,
    state: State,
    comment: Comment = None,
    actor_name: ClaimedActor = None,
) -> Response:
    """Remove one tag of a version."""
    allow(who, "write", model=name)
    state.store.delete_model_version_tag(name, version, key, actor(who, actor_name), comment)
    return Response(status_code=204)


@router.delete("/models/{name}/versions/{version}", status_code=204)
def delete_version(
    name: Name,
    version: Version,
    who: Who,
    state: State,
    force: bool = False,
    comment: Comment = None,
    actor_name: ClaimedActor = None,
) -> Response:
    """Mark a version deleted (refused while it holds aliases or stages, unless ``force``)."""
    allow(who, "write", model=name)
    state.store.delete_model_version(name, version, actor(who, actor_name), force, comment)
    return Response(status_code=204)


@router.post("/models/{name}/versions/{version}/stage", response_model=VersionOut)
def transition_stage(
    name: Name, version: Version, body: Transition, who: Who, state: State
) -> Response:
    """Move a version to a legacy stage (None, Staging, Production, Archived)."""
    allow(who, "write", model=name)
    found = state.store.transition_model_version_stage(
        name,
        version,
        v.check_stage(body.stage),
        body.archive_existing,
        actor(who, body.actor),
        body.comment,
    )
    return reply(found.to_dict())


@router.get("/models/{name}/latest", response_model=VersionsOut)
def latest_versions(
    name: Name, who: Who, state: State, stages: Annotated[list[str] | None, Query()] = None
) -> Response:
    """The newest active version in each stage (or in the stages asked for)."""
    allow(who, "read", model=name)
    clean = [v.check_stage(x) for x in stages] if stages else None
    found = state.store.get_latest_versions(name, clean)
    return reply({"versions": [x.to_dict() for x in found]})


# -- aliases -------------------------------------------------------------------------------------


@router.put("/models/{name}/aliases/{alias}", status_code=204)
def set_alias(name: Name, alias: str, body: SetAlias, who: Who, state: State) -> Response:
    """Point an alias at a version (moving it if it exists)."""
    allow(who, "write", model=name)
    state.store.set_model_alias(
        name, v.check_alias(alias), body.version, actor(who, body.actor), body.comment
    )
    return Response(status_code=204)


@router.delete("/models/{name}/aliases/{alias}", status_code=204)
def delete_alias(
    name: Name,
    alias: str,
    who: Who,
    state: State,
    comment: Comment = None,
    actor_name: ClaimedActor = None,
) -> Response:
    """Remove an alias."""
    allow(who, "write", model=name)
    state.store.delete_model_alias(name, alias, actor(who, actor_name), comment)
    return Response(status_code=204)


@router.get("/models/{name}/aliases/{alias}", response_model=VersionOut)
def get_by_alias(name: Name, alias: str, who: Who, state: State) -> Response:
    """The version an alias points at."""
    allow(who, "read", model=name)
    return reply(state.store.get_model_version_by_alias(name, alias).to_dict())


# -- audit trail, lineage, gc --------------------------------------------------------------------


@router.get("/models/{name}/events", response_model=EventsOut)
def events(
    name: Name,
    who: Who,
    state: State,
    version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    limit: Annotated[int | None, Query(ge=1, le=100_000)] = None,
) -> Response:
    """The audit trail filed under a model name, newest first (deleted models too)."""
    allow(who, "read", model=name)
    found = state.store.get_registry_events(name, version, limit)
    return reply({"events": [e.to_dict() for e in found]})


@router.get("/model-versions", response_model=VersionsOut)
def find_versions(
    who: Who,
    state: State,
    run_id: str | None = None,
    tree_hash: str | None = None,
    include_deleted: bool = False,
) -> Response:
    """The versions (of any model) made from a run and/or naming a tree."""
    allow(who, "read")
    found = visible_versions(
        who, state.store.find_model_versions(run_id, tree_hash, include_deleted)
    )
    return reply({"versions": [x.to_dict() for x in found]})


@router.get("/model-trees", response_model=TreesOut)
def tree_hashes(who: Who, state: State) -> Response:
    """The tree hash of every model version (for garbage collection), of those the caller may
    read."""
    allow(who, "read")
    found = state.store.registry_tree_hashes()
    if restricted(who):
        found &= readable_objects(who, state.store, lambda: state.objects, found)
    return reply({"tree_hashes": sorted(found)})
