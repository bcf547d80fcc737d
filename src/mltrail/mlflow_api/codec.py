"""mltrail's entities in MLflow's JSON shapes (those of its protobuf messages).

Each shape is derived from the entity's own JSON (:func:`mltrail.store.wire.encode`): renamed
and regrouped fields, tags as MLflow's ``{key, value}`` lists, the artifact URIs of the face.
int64 values stay JSON numbers; ids and version numbers are strings; empty and unset fields are
left out, as MLflow's server leaves them out.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from mltrail.entities import (
    Experiment,
    LoggedModel,
    Metric,
    ModelVersion,
    NamedDataset,
    RegisteredModel,
    Run,
    RunInfo,
    RunModel,
)
from mltrail.mlflow_api import tags as system
from mltrail.mlflow_api.uris import ArtifactUris, logged_model_id
from mltrail.store.wire import encode, metric_to_json

LOGGED_MODEL_STATUS = {
    "PENDING": "LOGGED_MODEL_PENDING",
    "READY": "LOGGED_MODEL_READY",
    "FAILED": "LOGGED_MODEL_UPLOAD_FAILED",
}
LOGGED_MODEL_STATUS_IN = {v: k for k, v in LOGGED_MODEL_STATUS.items()}
#: mltrail's names of the times MLflow's registry and logged models call timestamps.
_REGISTRY_TIMES = {
    "creation_time": "creation_timestamp",
    "last_update_time": "last_updated_timestamp",
}


def key_values(d: dict[str, str]) -> list[dict[str, str]]:
    """A mapping as MLflow's repeated ``{key, value}`` messages."""
    return [{"key": k, "value": v} for k, v in d.items()]


def _pruned(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None and v != [] and v != ""}


def _shape(
    entity: Any,
    *,
    rename: dict[str, str] | None = None,
    drop: Iterable[str] = (),
    lists: Iterable[str] = ("tags",),
    **extra: Any,
) -> dict[str, Any]:
    """The entity's JSON with fields renamed, dropped, mappings as ``{key, value}`` lists, and
    ``extra`` fields set; empty ones left out."""
    found = encode(entity)
    for name in drop:
        found.pop(name, None)
    for old, new in (rename or {}).items():
        found[new] = found.pop(old)
    for name in lists:
        found[name] = key_values(found[name])
    found.update(extra)
    return _pruned(found)


def experiment(e: Experiment, uris: ArtifactUris) -> dict[str, Any]:
    """An ``Experiment`` message."""
    return _shape(e, artifact_location=uris.experiment(e.experiment_id))


def run_info(i: RunInfo, uris: ArtifactUris) -> dict[str, Any]:
    """A ``RunInfo`` message (the parent is the ``mlflow.parentRunId`` tag)."""
    return _shape(
        i,
        drop=["parent_run_id"],
        lists=(),
        run_uuid=i.run_id,
        artifact_uri=uris.run(i.experiment_id, i.run_id),
    )


def metric(m: Metric, run_id: str | None = None) -> dict[str, Any]:
    """A ``Metric`` message."""
    found = metric_to_json(m)
    if run_id is not None:
        found["run_id"] = run_id
    return found


def run(
    r: Run,
    uris: ArtifactUris,
    datasets: list[NamedDataset] | None = None,
    models: list[RunModel] | None = None,
) -> dict[str, Any]:
    """A ``Run`` message: info, data (latest metrics, params, tags), inputs and outputs."""
    metrics = []
    for key, value in r.data.metrics.items():
        step, timestamp = r.data.metric_steps.get(key, (0, r.info.start_time))
        metrics.append(metric(Metric(key, value, timestamp, step)))
    found: dict[str, Any] = {
        "info": run_info(r.info, uris),
        "data": _pruned(
            {
                "metrics": metrics,
                "params": key_values(r.data.params),
                "tags": key_values(system.run_tags(r.info, r.data.tags)),
            }
        ),
    }
    found["inputs"] = _pruned(
        {
            "dataset_inputs": [dataset_input(d) for d in datasets or ()],
            "model_inputs": [
                {"model_id": m.model_id} for m in models or () if m.direction == "input"
            ],
        }
    )
    outputs = [
        {"model_id": m.model_id, "step": m.step} for m in models or () if m.direction == "output"
    ]
    found["outputs"] = {"model_outputs": outputs} if outputs else {}
    return found


def dataset_input(d: NamedDataset) -> dict[str, Any]:
    """A ``DatasetInput`` message."""
    return {"tags": key_values(d.tags), "dataset": _shape(d, drop=["tags"], lists=())}


def file_info(path: str, is_dir: bool, size: int | None) -> dict[str, Any]:
    """A ``FileInfo`` message (no size for a folder)."""
    found: dict[str, Any] = {"path": path, "is_dir": is_dir}
    if not is_dir and size is not None:
        found["file_size"] = size
    return found


def logged_model(m: LoggedModel, uris: ArtifactUris) -> dict[str, Any]:
    """A ``LoggedModel`` message."""
    info = _shape(
        m,
        rename={
            "creation_time": "creation_timestamp_ms",
            "last_update_time": "last_updated_timestamp_ms",
            "run_id": "source_run_id",
        },
        drop=["artifact_path", "lifecycle_stage", "params"],
        status=LOGGED_MODEL_STATUS.get(m.status, "LOGGED_MODEL_STATUS_UNSPECIFIED"),
        artifact_uri=uris.logged_model(m.experiment_id, m.model_id),
    )
    return {"info": info, "data": _pruned({"params": key_values(m.params)})}


def model_version(mv: ModelVersion) -> dict[str, Any]:
    """A ``ModelVersion`` message."""
    return _shape(
        mv,
        rename={**_REGISTRY_TIMES, "stage": "current_stage"},
        drop=["artifact_path", "tree_hash", "lifecycle_stage"],
        version=str(mv.version),
        model_id=logged_model_id(mv.source),
    )


def registered_model(m: RegisteredModel, latest: list[ModelVersion]) -> dict[str, Any]:
    """A ``RegisteredModel`` message; ``latest`` is the newest version in each stage."""
    return _shape(
        m,
        rename=_REGISTRY_TIMES,
        drop=["latest_version"],
        latest_versions=[model_version(mv) for mv in latest],
        aliases=[{"alias": a, "version": str(n)} for a, n in sorted(m.aliases.items())],
    )
