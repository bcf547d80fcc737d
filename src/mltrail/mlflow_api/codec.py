"""mltrail's entities in MLflow's JSON shapes (those of its protobuf messages).

Field names are MLflow's; int64 values are JSON numbers; ids and version numbers are strings;
empty and unset fields are left out, as MLflow's server leaves them out. Metric values that JSON
cannot hold travel as ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``.
"""

from __future__ import annotations

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
from mltrail.transport import encode_float

LOGGED_MODEL_STATUS = {
    "PENDING": "LOGGED_MODEL_PENDING",
    "READY": "LOGGED_MODEL_READY",
    "FAILED": "LOGGED_MODEL_UPLOAD_FAILED",
}
LOGGED_MODEL_STATUS_IN = {v: k for k, v in LOGGED_MODEL_STATUS.items()}


def key_values(d: dict[str, str]) -> list[dict[str, str]]:
    """A mapping as MLflow's repeated ``{key, value}`` messages."""
    return [{"key": k, "value": v} for k, v in d.items()]


def _pruned(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None and v != [] and v != ""}


def experiment(e: Experiment, uris: ArtifactUris) -> dict[str, Any]:
    """An ``Experiment`` message."""
    return _pruned(
        {
            "experiment_id": e.experiment_id,
            "name": e.name,
            "artifact_location": uris.experiment(e.experiment_id),
            "lifecycle_stage": e.lifecycle_stage,
            "last_update_time": e.last_update_time,
            "creation_time": e.creation_time,
            "tags": key_values(e.tags),
        }
    )


def run_info(i: RunInfo, uris: ArtifactUris) -> dict[str, Any]:
    """A ``RunInfo`` message."""
    return _pruned(
        {
            "run_id": i.run_id,
            "run_uuid": i.run_id,
            "run_name": i.run_name,
            "experiment_id": i.experiment_id,
            "user_id": i.user_id,
            "status": i.status,
            "start_time": i.start_time,
            "end_time": i.end_time,
            "artifact_uri": uris.run(i.experiment_id, i.run_id),
            "lifecycle_stage": i.lifecycle_stage,
        }
    )


def metric(m: Metric, run_id: str | None = None) -> dict[str, Any]:
    """A ``Metric`` message."""
    found = {"key": m.key, "value": encode_float(m.value), "timestamp": m.timestamp, "step": m.step}
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
    inputs = _pruned(
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
    found["inputs"] = inputs
    found["outputs"] = {"model_outputs": outputs} if outputs else {}
    return found


def dataset_input(d: NamedDataset) -> dict[str, Any]:
    """A ``DatasetInput`` message."""
    return {
        "tags": key_values(d.tags),
        "dataset": _pruned(
            {
                "name": d.name,
                "digest": d.digest,
                "source_type": d.source_type,
                "source": d.source,
                "schema": d.schema,
                "profile": d.profile,
            }
        ),
    }


def file_info(path: str, is_dir: bool, size: int | None) -> dict[str, Any]:
    """A ``FileInfo`` message (no size for a folder)."""
    found: dict[str, Any] = {"path": path, "is_dir": is_dir}
    if not is_dir and size is not None:
        found["file_size"] = size
    return found


def logged_model(m: LoggedModel, uris: ArtifactUris) -> dict[str, Any]:
    """A ``LoggedModel`` message."""
    return {
        "info": _pruned(
            {
                "model_id": m.model_id,
                "experiment_id": m.experiment_id,
                "name": m.name,
                "creation_timestamp_ms": m.creation_time,
                "last_updated_timestamp_ms": m.last_update_time,
                "artifact_uri": uris.logged_model(m.experiment_id, m.model_id),
                "status": LOGGED_MODEL_STATUS.get(m.status, "LOGGED_MODEL_STATUS_UNSPECIFIED"),
                "model_type": m.model_type,
                "source_run_id": m.run_id,
                "tags": key_values(m.tags),
            }
        ),
        "data": _pruned({"params": key_values(m.params)}),
    }


def model_id_of(mv: ModelVersion) -> str | None:
    """The logged model a version was made from (its ``models:/m-…`` source), if any."""
    return logged_model_id(mv.source)


def model_version(mv: ModelVersion) -> dict[str, Any]:
    """A ``ModelVersion`` message."""
    return _pruned(
        {
            "name": mv.name,
            "version": str(mv.version),
            "creation_timestamp": mv.creation_time,
            "last_updated_timestamp": mv.last_update_time,
            "user_id": mv.user_id,
            "current_stage": mv.stage,
            "description": mv.description,
            "source": mv.source,
            "run_id": mv.run_id,
            "status": mv.status,
            "tags": key_values(mv.tags),
            "aliases": list(mv.aliases),
            "model_id": model_id_of(mv),
        }
    )


def registered_model(m: RegisteredModel, latest: list[ModelVersion]) -> dict[str, Any]:
    """A ``RegisteredModel`` message; ``latest`` is the newest version in each stage."""
    return _pruned(
        {
            "name": m.name,
            "creation_timestamp": m.creation_time,
            "last_updated_timestamp": m.last_update_time,
            "description": m.description,
            "latest_versions": [model_version(mv) for mv in latest],
            "tags": key_values(m.tags),
            "aliases": [{"alias": a, "version": str(n)} for a, n in sorted(m.aliases.items())],
        }
    )
