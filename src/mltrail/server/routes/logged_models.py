"""Logged models, the models a run used or produced, and its named datasets:
``/api/v1/logged-models`` and ``/api/v1/runs/{run_id}/models|named-datasets|links``.

The HTTP store's side of :class:`~mltrail.store.logged_models_base.LoggedModelStore`, so what
the embedded store keeps of an MLflow 3 history (an import, or the mlflow client) a team server
keeps too. Access follows the model's experiment, as a run's does.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from starlette.responses import Response

from mltrail import validation as v
from mltrail.access import Principal, allow, allow_objects, allow_run
from mltrail.entities import NamedDataset
from mltrail.server import schemas as s
from mltrail.server.app import ServerState, reply, state_of
from mltrail.server.auth import principal
from mltrail.server.routes.ops import ERROR_RESPONSES
from mltrail.server.routes.tracking import checked_files
from mltrail.store import wire

router = APIRouter(prefix="/api/v1", tags=["logged models"], responses=ERROR_RESPONSES)

Who = Annotated[Principal, Depends(principal)]
State = Annotated[ServerState, Depends(state_of)]


def _allow_model(who: Principal, state: ServerState, model_id: str, level: str) -> None:
    allow(who, level, experiment_id=state.store.get_logged_model(model_id).experiment_id)


def _checked(values: dict[str, str], kind: str) -> dict[str, str]:
    check = v.check_param_value if kind == "param" else v.check_tag_value
    return {v.check_key(k, kind): check(k, x) for k, x in values.items()}


@router.post("/logged-models", response_model=s.LoggedModelOut, status_code=201)
def create_logged_model(body: s.CreateLoggedModel, who: Who, state: State) -> Response:
    """Create a PENDING logged model (of a run, or holding its files itself)."""
    allow(who, "write", experiment_id=body.experiment_id)
    if body.run_id is not None:
        allow_run(who, state.store, body.run_id, "write")
    model = state.store.create_logged_model(
        body.experiment_id, body.name, body.run_id, body.model_type,
        _checked(body.params, "param"), _checked(body.tags, "tag"), model_id=body.model_id,
    )  # fmt: skip
    return reply(wire.encode(model), 201)


@router.get("/logged-models/{model_id}", response_model=s.LoggedModelOut)
def get_logged_model(model_id: str, who: Who, state: State) -> Response:
    """A logged model, a deleted one included."""
    model = state.store.get_logged_model(model_id)
    allow(who, "read", experiment_id=model.experiment_id)
    return reply(wire.encode(model))


@router.patch("/logged-models/{model_id}", response_model=s.LoggedModelOut)
def set_logged_model_status(
    model_id: str, body: s.LoggedModelStatusIn, who: Who, state: State
) -> Response:
    """Mark a logged model READY (its files are complete) or FAILED."""
    _allow_model(who, state, model_id, "write")
    return reply(wire.encode(state.store.set_logged_model_status(model_id, body.status)))


@router.delete("/logged-models/{model_id}", status_code=204)
def delete_logged_model(model_id: str, who: Who, state: State) -> Response:
    """Move a logged model to the bin (its files and registered versions stay)."""
    _allow_model(who, state, model_id, "write")
    state.store.delete_logged_model(model_id)
    return Response(status_code=204)


@router.post("/logged-models/{model_id}/files", status_code=204)
def add_logged_model_files(model_id: str, body: s.AddArtifacts, who: Who, state: State) -> Response:
    """Record files already in the object store as a logged model's files."""
    _allow_model(who, state, model_id, "write")
    files = checked_files(body)
    allow_objects(who, state.store, lambda: state.objects, [f.hash for f in files])
    state.store.add_logged_model_files(model_id, files)
    return Response(status_code=204)


@router.get("/logged-models/{model_id}/files", response_model=s.FilesOut)
def list_logged_model_files(
    model_id: str, who: Who, state: State, prefix: str | None = None
) -> Response:
    """A logged model's files (paths relative to its folder), optionally under a path."""
    _allow_model(who, state, model_id, "read")
    clean = v.check_artifact_path(prefix) if prefix else None
    files = state.store.list_logged_model_files(model_id, clean)
    return reply({"files": [wire.file_to_json(f) for f in files]})


@router.post("/runs/{run_id}/models", status_code=204)
def log_run_models(run_id: str, body: s.LogRunModels, who: Who, state: State) -> Response:
    """Record logged models a run used (``input``) or produced (``output``)."""
    allow_run(who, state.store, run_id, "write")
    for m in body.models:
        _allow_model(who, state, m.model_id, "read")
    state.store.log_run_models(run_id, body.direction, [(m.model_id, m.step) for m in body.models])
    return Response(status_code=204)


@router.post("/runs/{run_id}/named-datasets", status_code=204)
def log_named_datasets(run_id: str, body: s.LogNamedDatasets, who: Who, state: State) -> Response:
    """Record datasets a run read, by name and digest (MLflow's ``log_input``)."""
    allow_run(who, state.store, run_id, "write")
    datasets = [
        NamedDataset(d.name, d.digest, d.source_type, d.source, d.schema_, d.profile,
                     _checked(d.tags, "tag"))
        for d in body.datasets
    ]  # fmt: skip
    state.store.log_named_datasets(run_id, datasets)
    return Response(status_code=204)


@router.get("/runs/{run_id}/links", response_model=s.RunLinksOut)
def get_run_links(run_id: str, who: Who, state: State) -> Response:
    """A run's named datasets and the logged models it used or produced."""
    allow_run(who, state.store, run_id, "read")
    datasets, models = state.store.get_run_links(run_id)
    return reply({"datasets": wire.encode(datasets), "models": wire.encode(models)})


__all__ = ["router"]
