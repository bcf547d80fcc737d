"""Experiments, runs, metrics, artifact listings, dataset uses: ``/api/v1/experiments``, ``/runs``.

Each handler checks the caller's permission, validates what the Python API would validate, and
calls the store; the store re-checks its own rules (states, uniqueness) in its transaction.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
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
    visible_experiment,
    visible_experiment_ids,
    visible_run_ids,
)
from mltrail.entities import DatasetRef, FileInfo, Metric, RunBatch, ViewType
from mltrail.errors import MltrailError, NotFound
from mltrail.objects.hashing import check_hash
from mltrail.server import metrics
from mltrail.server import schemas as s
from mltrail.server.app import ServerState, error_body, reply, state_of
from mltrail.server.auth import principal
from mltrail.server.routes.ops import ERROR_RESPONSES
from mltrail.store import wire
from mltrail.transport import decode_float, encode_float

router = APIRouter(prefix="/api/v1", tags=["tracking"], responses=ERROR_RESPONSES)

Who = Annotated[Principal, Depends(principal)]
State = Annotated[ServerState, Depends(state_of)]


# -- experiments ---------------------------------------------------------------------------------


@router.post("/experiments", response_model=s.ExperimentIdOut, status_code=201)
def create_experiment(body: s.CreateExperiment, who: Who, state: State) -> Response:
    """Create an experiment."""
    allow(who, "write")
    name = v.check_experiment_name(body.name)
    tags = {v.check_key(k, "tag"): v.check_tag_value(k, x) for k, x in body.tags.items()}
    return reply({"experiment_id": state.store.create_experiment(name, tags)}, 201)


@router.get("/experiments", response_model=s.ExperimentsOut)
def list_experiments(who: Who, state: State, view: s.View = "active_only") -> Response:
    """List experiments."""
    allow(who, "read")
    exps = state.store.list_experiments(ViewType(view))
    shown = [e for e in exps if visible_experiment(who, e.experiment_id)]
    return reply({"experiments": [wire.experiment_to_json(e) for e in shown]})


@router.get("/experiments/by-name", response_model=s.ExperimentOut)
def get_experiment_by_name(name: str, who: Who, state: State) -> Response:
    """Find an experiment by name (404 when there is none)."""
    allow(who, "read")
    exp = state.store.get_experiment_by_name(name)
    if exp is None:
        raise NotFound(f"experiment {name!r} does not exist")
    allow(who, "read", experiment_id=exp.experiment_id)
    return reply(wire.experiment_to_json(exp))


@router.post("/experiments/summaries", response_model=s.SummariesOut)
def experiment_summaries(body: s.Summaries, who: Who, state: State) -> Response:
    """Run counts and latest run start per experiment (those the caller may see)."""
    allow(who, "read")
    wanted = [e for e in body.experiment_ids if visible_experiment(who, e)]
    found = state.store.experiment_summaries(wanted)
    return reply(
        {"summaries": {k: {"runs": n, "last_run_start": t} for k, (n, t) in found.items()}}
    )


@router.get("/experiments/{experiment_id}", response_model=s.ExperimentOut)
def get_experiment(experiment_id: str, who: Who, state: State) -> Response:
    """Get an experiment by id."""
    allow(who, "read", experiment_id=experiment_id)
    return reply(wire.experiment_to_json(state.store.get_experiment(experiment_id)))


@router.patch("/experiments/{experiment_id}", response_model=s.ExperimentOut)
def update_experiment(
    experiment_id: str, body: s.UpdateExperiment, who: Who, state: State
) -> Response:
    """Rename an experiment, or move it to the bin and back."""
    allow(who, "write", experiment_id=experiment_id)
    if body.name is not None:
        state.store.rename_experiment(experiment_id, v.check_experiment_name(body.name))
    if body.lifecycle_stage is not None:
        state.store.set_experiment_lifecycle(experiment_id, body.lifecycle_stage)
    return reply(wire.experiment_to_json(state.store.get_experiment(experiment_id)))


@router.post("/experiments/{experiment_id}/tags", status_code=204)
def set_experiment_tag(experiment_id: str, body: s.SetTag, who: Who, state: State) -> Response:
    """Set one experiment tag."""
    allow(who, "write", experiment_id=experiment_id)
    key = v.check_key(body.key, "tag")
    state.store.set_experiment_tag(experiment_id, key, v.check_tag_value(key, body.value))
    return Response(status_code=204)


@router.delete("/experiments/{experiment_id}/tags", status_code=204)
def delete_experiment_tag(experiment_id: str, key: str, who: Who, state: State) -> Response:
    """Remove one experiment tag."""
    allow(who, "write", experiment_id=experiment_id)
    state.store.delete_experiment_tag(experiment_id, key)
    return Response(status_code=204)


# -- runs ----------------------------------------------------------------------------------------


@router.post("/runs", response_model=s.RunOut, status_code=201)
def create_run(body: s.CreateRun, who: Who, state: State) -> Response:
    """Create a RUNNING run (a retry with the same client-chosen ``run_id`` returns it)."""
    allow(who, "write", experiment_id=body.experiment_id)
    if body.parent_run_id:
        # A child names its parent: only under a run the caller may read.
        allow_run(who, state.store, body.parent_run_id, "read")
    tags = {v.check_key(k, "tag"): v.check_tag_value(k, x) for k, x in body.tags.items()}
    run = state.store.create_run(
        body.experiment_id,
        v.check_run_name(body.run_name),
        actor(who, body.user_id),
        v.check_timestamp("start_time", body.start_time),
        body.parent_run_id,
        tags,
        run_id=body.run_id,
    )
    metrics.count("runs_created")
    return reply(wire.run_to_json(run), 201)


@router.post("/runs/search", response_model=s.RunsOut)
def search_runs(body: s.SearchRuns, who: Who, state: State) -> Response:
    """Search runs with the filter language of ``mltrail runs ls``."""
    for experiment_id in body.experiment_ids:
        allow(who, "read", experiment_id=experiment_id)
    page = state.store.search_runs(
        body.experiment_ids,
        body.filter,
        body.order_by or None,
        body.max_results,
        body.page_token,
        ViewType(body.view),
    )
    return reply(
        {"runs": [wire.run_to_json(r) for r in page], "next_page_token": page.next_page_token}
    )


@router.post("/runs/batches", response_model=s.BatchErrorsOut)
def write_batches(body: s.WriteBatches, who: Who, state: State) -> Response:
    """Write metrics, params and tags of several runs in one transaction.

    A run that cannot take its part is reported under ``errors``; the others commit. A batch
    sent again with the same ``batch_id`` is not applied twice.
    """
    batches = []
    for b in body.batches:
        allow_run(who, state.store, b.run_id, "write")
        batches.append(
            RunBatch(
                b.run_id,
                [
                    Metric(
                        v.check_key(k),
                        v.check_metric_value(k, decode_float(x)),
                        v.check_timestamp(k, ts),
                        v.check_step(k, step),
                    )
                    for k, x, ts, step in b.metrics
                ],
                {v.check_key(k, "param"): v.check_param_value(k, x) for k, x in b.params.items()},
                {v.check_key(k, "tag"): v.check_tag_value(k, x) for k, x in b.tags.items()},
            )
        )
    errors = state.store.write_batches(batches, batch_id=body.batch_id)
    metrics.count("write_batches")
    metrics.count("metric_points", sum(len(b.metrics) for b in batches))
    return reply({"errors": {run_id: _error_json(e) for run_id, e in errors.items()}})


def _error_json(exc: Exception) -> dict[str, Any]:
    if isinstance(exc, MltrailError):
        return error_body(exc.code, exc.message, exc.hint, type(exc).__name__)
    return error_body("INTERNAL_ERROR", "the write failed")


@router.get("/runs/match", response_model=s.RunIdsOut)
def match_run_ids(
    who: Who,
    state: State,
    prefix: Annotated[str, Query(min_length=1, max_length=32)],
    limit: Annotated[int, Query(ge=1, le=100)] = 2,
) -> Response:
    """Run ids starting with ``prefix`` (for short ids on the command line), of runs the
    caller may read."""
    allow(who, "read")
    if not restricted(who):
        return reply({"run_ids": state.store.match_run_ids(prefix, limit)})
    # Hidden runs neither show nor make a visible one's short id ambiguous.
    found = visible_run_ids(who, state.store, state.store.match_run_ids(prefix, 100 + limit))
    return reply({"run_ids": found[:limit]})


@router.get("/runs/{run_id}", response_model=s.RunOut)
def get_run(run_id: str, who: Who, state: State) -> Response:
    """Get a run with its params, latest metrics and tags."""
    allow_run(who, state.store, run_id, "read")
    return reply(wire.run_to_json(state.store.get_run(run_id)))


@router.get("/runs/{run_id}/info", response_model=s.RunInfoOut)
def get_run_info(run_id: str, who: Who, state: State) -> Response:
    """Get a run's info only."""
    allow_run(who, state.store, run_id, "read")
    return reply(wire.run_info_to_json(state.store.get_run_info(run_id)))


@router.patch("/runs/{run_id}", response_model=s.RunInfoOut)
def update_run(run_id: str, body: s.UpdateRun, who: Who, state: State) -> Response:
    """Change a run's status, end time or name, or move it to the bin and back."""
    allow_run(who, state.store, run_id, "write")
    if body.lifecycle_stage is not None:
        state.store.set_run_lifecycle(run_id, body.lifecycle_stage)
    if body.status is None and body.end_time is None and body.run_name is None:
        return reply(wire.run_info_to_json(state.store.get_run_info(run_id)))
    info = state.store.update_run(
        run_id,
        status=body.status,
        end_time=None if body.end_time is None else v.check_timestamp("end_time", body.end_time),
        run_name=None if body.run_name is None else v.check_run_name(body.run_name),
    )
    return reply(wire.run_info_to_json(info))


@router.delete("/runs/{run_id}/tags", status_code=204)
def delete_tag(run_id: str, key: str, who: Who, state: State) -> Response:
    """Remove a tag from a run."""
    allow_run(who, state.store, run_id, "write")
    state.store.delete_tag(run_id, v.check_key(key, "tag"))
    return Response(status_code=204)


@router.get("/runs/{run_id}/metrics", response_model=s.MetricsOut)
def get_metric_history(run_id: str, key: str, who: Who, state: State) -> Response:
    """Every point of one metric, by step then timestamp."""
    allow_run(who, state.store, run_id, "read")
    points = state.store.get_metric_history(run_id, key)
    return reply(
        {
            "metrics": [
                {
                    "key": key,
                    "value": encode_float(m.value),
                    "timestamp": m.timestamp,
                    "step": m.step,
                }
                for m in points
            ]
        }
    )


# -- artifacts and datasets ----------------------------------------------------------------------


def checked_files(body: s.AddArtifacts) -> list[FileInfo]:
    """The files of a request, their paths and hashes checked as the Python API checks them."""
    return [
        FileInfo(v.check_artifact_path(f.path), check_hash(f.hash), f.size, f.mode)
        for f in body.files
    ]


@router.post("/runs/{run_id}/artifacts", status_code=204)
def add_artifacts(run_id: str, body: s.AddArtifacts, who: Who, state: State) -> Response:
    """Record files already in the object store as a run's artifacts."""
    allow_run(who, state.store, run_id, "write")
    files = checked_files(body)
    allow_objects(who, state.store, lambda: state.objects, [f.hash for f in files])
    state.store.add_artifacts(run_id, files)
    return Response(status_code=204)


@router.get("/runs/{run_id}/artifacts", response_model=s.FilesOut)
def list_artifacts(run_id: str, who: Who, state: State, prefix: str | None = None) -> Response:
    """A run's artifact files, optionally under a path."""
    allow_run(who, state.store, run_id, "read")
    clean = v.check_artifact_path(prefix) if prefix else None
    files = state.store.list_artifacts(run_id, clean)
    return reply({"files": [wire.file_to_json(f) for f in files]})


@router.delete("/runs/{run_id}/artifacts", response_model=s.DeletedOut)
def delete_artifacts(run_id: str, path: str, who: Who, state: State) -> Response:
    """Forget a run's artifact file or folder (its objects stay until garbage collection)."""
    allow_run(who, state.store, run_id, "write")
    return reply({"deleted": state.store.delete_artifacts(run_id, v.check_artifact_path(path))})


@router.post("/runs/{run_id}/datasets", status_code=204)
def log_run_datasets(run_id: str, body: s.LogDatasets, who: Who, state: State) -> Response:
    """Record dataset versions a run read or wrote."""
    allow_run(who, state.store, run_id, "write")
    refs = [v.check_dataset_ref(DatasetRef(**d.model_dump())) for d in body.datasets]
    allow_objects(who, state.store, lambda: state.objects, [r.hash for r in refs])
    state.store.log_run_datasets(run_id, body.direction, refs)
    return Response(status_code=204)


@router.get("/runs/{run_id}/datasets", response_model=s.RunDatasetsOut)
def get_run_datasets(run_id: str, who: Who, state: State) -> Response:
    """A run's dataset versions, inputs then outputs."""
    allow_run(who, state.store, run_id, "read")
    return reply({"datasets": [d.to_dict() for d in state.store.get_run_datasets(run_id)]})


@router.get("/datasets/uses", response_model=s.DatasetUsesOut)
def find_dataset_uses(
    who: Who,
    state: State,
    path: str | None = None,
    hash: str | None = None,
    view: s.View = "active_only",
) -> Response:
    """The runs (that the caller may read) that read or wrote a dataset path and/or version."""
    allow(who, "read")
    uses = state.store.find_dataset_uses(path, hash, ViewType(view))
    uses = [u for u in uses if visible_experiment(who, u.experiment_id)]
    return reply({"uses": [u.to_dict() for u in uses]})


@router.get("/datasets", response_model=s.DatasetsOut)
def list_datasets(
    who: Who,
    state: State,
    experiment_ids: Annotated[list[str] | None, Query(alias="experiment_id")] = None,
    view: s.View = "active_only",
) -> Response:
    """Every dataset path runs read or wrote (in experiments the caller may see), by path."""
    allow(who, "read")
    wanted = experiment_ids
    shown = visible_experiment_ids(who, state.store)
    if shown is not None:
        # Per-experiment grants hide experiments: count only the runs of visible ones.
        wanted = shown if wanted is None else [e for e in wanted if e in set(shown)]
    found = state.store.list_datasets(wanted, ViewType(view))
    return reply({"datasets": [d.to_dict() for d in found]})


@router.get("/objects-referenced", response_model=s.ReferencedOut)
def referenced_objects(who: Who, state: State) -> Response:
    """Every object hash runs refer to (so a local cache's garbage collection keeps them),
    of those the caller may read."""
    allow(who, "read")
    artifacts, files, trees = state.store.referenced_objects()
    if restricted(who):
        shown = readable_objects(who, state.store, lambda: state.objects, artifacts | files | trees)
        artifacts, files, trees = artifacts & shown, files & shown, trees & shown
    return reply({"artifacts": sorted(artifacts), "files": sorted(files), "trees": sorted(trees)})


__all__ = ["router"]
