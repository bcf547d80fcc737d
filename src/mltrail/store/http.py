"""The HTTP implementation of the metadata store: a client of ``mltrail server``'s REST API.

The tracking client, the registry and the CLI use it exactly as they use the SQL store; only the
transport differs. Writes that a retry could repeat are made idempotent first: run ids are chosen
here (a create sent twice returns the same run) and every write batch carries an id the server
applies once, so a batch retried after a lost reply never duplicates metric points.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from mltrail import validation as v
from mltrail.entities import (
    DatasetRef,
    DatasetSummary,
    DatasetUse,
    Experiment,
    FileInfo,
    LoggedModel,
    Metric,
    ModelVersion,
    NamedDataset,
    PagedList,
    RegisteredModel,
    RegistryEvent,
    Run,
    RunBatch,
    RunDataset,
    RunInfo,
    RunModel,
    ViewType,
)
from mltrail.errors import NotFound, error_from_code
from mltrail.store import wire
from mltrail.store.base import TrackingStore
from mltrail.store.http_auth import HttpAuthMixin
from mltrail.transport import HttpTransport, decode_float, transport_for

#: Metric points per request: a 20k-point writer batch is about 1 MB of JSON.
_POINTS_PER_REQUEST = 50_000


class HttpStore(HttpAuthMixin, TrackingStore):
    """Experiments, runs and the registry of a ``mltrail server``, over its REST API."""

    def __init__(self, uri: str, transport: HttpTransport | None = None) -> None:
        self.uri = uri.rstrip("/")
        self.transport = transport or transport_for(self.uri)
        # Without auth, the server records who the client says it is, as the embedded store does.
        from mltrail.tracking.capture import current_user

        self.transport.client.headers.setdefault("X-Mltrail-User", current_user())

    def __repr__(self) -> str:
        return f"HttpStore({self.uri!r})"

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        return self.transport.call(method, path, **kw)

    # -- experiments -------------------------------------------------------------------------
    def create_experiment(self, name: str, tags: dict[str, str] | None = None) -> str:
        """Create an experiment and return its id."""
        body = {"name": name, "tags": dict(tags or {})}
        return self._call("POST", "/experiments", json_body=body)["experiment_id"]

    def get_experiment(self, experiment_id: str) -> Experiment:
        """Return an experiment by id."""
        return wire.experiment_from_json(self._call("GET", f"/experiments/{_seg(experiment_id)}"))

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        """Return an experiment by name, or None."""
        try:
            found = self._call("GET", "/experiments/by-name", params={"name": name})
        except NotFound:
            return None
        return wire.experiment_from_json(found)

    def list_experiments(self, view: ViewType = ViewType.ACTIVE_ONLY) -> list[Experiment]:
        """Return experiments in the view, ordered by id."""
        found = self._call("GET", "/experiments", params={"view": ViewType(view).value})
        return [wire.experiment_from_json(e) for e in found["experiments"]]

    def experiment_summaries(self, experiment_ids: Sequence[str]) -> dict[str, tuple[int, int]]:
        """Return, per experiment id, (active run count, latest run start time or 0)."""
        found = self._call(
            "POST",
            "/experiments/summaries",
            json_body={"experiment_ids": list(experiment_ids)},
            idempotent=True,
        )
        return {k: (s["runs"], s["last_run_start"]) for k, s in found["summaries"].items()}

    def set_experiment_lifecycle(self, experiment_id: str, stage: str) -> None:
        """Move an experiment to ``active`` or ``deleted``."""
        self._call(
            "PATCH",
            f"/experiments/{_seg(experiment_id)}",
            json_body={"lifecycle_stage": stage},
            idempotent=True,
        )

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        """Give an experiment a new, unused name."""
        self._call("PATCH", f"/experiments/{_seg(experiment_id)}", json_body={"name": new_name})

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        """Set one experiment tag."""
        self._call(
            "POST",
            f"/experiments/{_seg(experiment_id)}/tags",
            json_body={"key": key, "value": value},
            idempotent=True,
        )

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        """Remove one experiment tag."""
        self._call("DELETE", f"/experiments/{_seg(experiment_id)}/tags", params={"key": key})

    # -- runs --------------------------------------------------------------------------------
    def create_run(
        self,
        experiment_id: str,
        run_name: str,
        user_id: str,
        start_time: int,
        parent_run_id: str | None = None,
        tags: dict[str, str] | None = None,
        run_id: str | None = None,
    ) -> Run:
        """Create a RUNNING run (its id chosen here, so a retried create is harmless)."""
        body = {
            "experiment_id": experiment_id,
            "run_name": run_name,
            "user_id": user_id,
            "start_time": start_time,
            "parent_run_id": parent_run_id,
            "tags": dict(tags or {}),
            "run_id": run_id or uuid.uuid4().hex,
        }
        return wire.run_from_json(self._call("POST", "/runs", json_body=body, idempotent=True))

    def get_run(self, run_id: str) -> Run:
        """Return a run with its params, latest metrics and tags."""
        return wire.run_from_json(self._call("GET", f"/runs/{_seg(run_id)}"))

    def match_run_ids(self, prefix: str, limit: int = 2) -> list[str]:
        """Return up to ``limit`` run ids starting with ``prefix``."""
        found = self._call("GET", "/runs/match", params={"prefix": prefix, "limit": limit})
        return found["run_ids"]

    def get_run_info(self, run_id: str) -> RunInfo:
        """Return a run's info only."""
        return wire.run_info_from_json(self._call("GET", f"/runs/{_seg(run_id)}/info"))

    def update_run(
        self,
        run_id: str,
        status: str | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> RunInfo:
        """Change a run's status, end time or name."""
        body = {"status": status, "end_time": end_time, "run_name": run_name}
        found = self._call(
            "PATCH",
            f"/runs/{_seg(run_id)}",
            json_body={k: x for k, x in body.items() if x is not None},
            idempotent=True,
        )
        return wire.run_info_from_json(found)

    def set_run_lifecycle(self, run_id: str, stage: str) -> None:
        """Move a run to ``active`` or ``deleted``."""
        self._call(
            "PATCH", f"/runs/{_seg(run_id)}", json_body={"lifecycle_stage": stage}, idempotent=True
        )

    def write_batches(
        self, batches: Sequence[RunBatch], batch_id: str | None = None
    ) -> dict[str, Exception]:
        """Write metrics, params and tags of several runs; each request applied exactly once."""
        errors: dict[str, Exception] = {}
        for n, part in enumerate(_split(batches)):
            body = {
                "batch_id": f"{batch_id}-{n}" if batch_id else uuid.uuid4().hex,
                "batches": [wire.batch_to_json(b) for b in part],
            }
            found = self._call("POST", "/runs/batches", json_body=body, idempotent=True)
            for run_id, e in found["errors"].items():
                errors.setdefault(
                    run_id,
                    error_from_code(e["error_code"], e["message"], e.get("hint"), e.get("kind")),
                )
        return errors

    def delete_tag(self, run_id: str, key: str) -> None:
        """Remove a tag from a run."""
        self._call("DELETE", f"/runs/{_seg(run_id)}/tags", params={"key": key})

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Return every point of one metric, by step then timestamp."""
        found = self._call("GET", f"/runs/{_seg(run_id)}/metrics", params={"key": key})
        return [
            Metric(key, decode_float(m["value"]), m["timestamp"], m["step"])  # type: ignore[arg-type]
            for m in found["metrics"]
        ]

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
        view: ViewType = ViewType.ACTIVE_ONLY,
    ) -> PagedList:
        """Return a page of runs matching the filter, in order, with the next page token."""
        body = {
            "experiment_ids": list(experiment_ids),
            "filter": filter_string,
            "order_by": list(order_by or ()),
            "max_results": max_results,
            "page_token": page_token,
            "view": ViewType(view).value,
        }
        found = self._call("POST", "/runs/search", json_body=body, idempotent=True)
        return PagedList([wire.run_from_json(r) for r in found["runs"]], found["next_page_token"])

    # -- artifacts and datasets --------------------------------------------------------------
    def add_artifacts(self, run_id: str, files: Sequence[FileInfo]) -> None:
        """Record files (already in the object store) as artifacts of a run."""
        self._call(
            "POST",
            f"/runs/{_seg(run_id)}/artifacts",
            json_body={"files": [wire.file_to_json(f) for f in files]},
            idempotent=True,
        )

    def list_artifacts(self, run_id: str, prefix: str | None = None) -> list[FileInfo]:
        """Return a run's artifact files, optionally under a path prefix."""
        found = self._call("GET", f"/runs/{_seg(run_id)}/artifacts", params={"prefix": prefix})
        return [wire.file_from_json(f) for f in found["files"]]

    def delete_artifacts(self, run_id: str, path: str) -> int:
        """Forget a run's artifact file or folder."""
        found = self._call("DELETE", f"/runs/{_seg(run_id)}/artifacts", params={"path": path})
        return found["deleted"]

    def log_run_datasets(self, run_id: str, direction: str, refs: Sequence[DatasetRef]) -> None:
        """Record dataset versions a run read or wrote."""
        # Checked here as the SQL store does, so the messages are the same.
        direction = v.check_dataset_direction(direction)
        refs = [v.check_dataset_ref(r) for r in refs]
        self._call(
            "POST",
            f"/runs/{_seg(run_id)}/datasets",
            json_body={"direction": direction, "datasets": [r.to_dict() for r in refs]},
            idempotent=True,
        )

    # -- logged models (MLflow 3's model objects) and named datasets -------------------------
    def create_logged_model(
        self,
        experiment_id: str,
        name: str,
        run_id: str | None = None,
        model_type: str | None = None,
        params: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
        model_id: str | None = None,
    ) -> LoggedModel:
        """Create a PENDING logged model (``model_id``: keep a given id, as an import does)."""
        body = {
            "experiment_id": experiment_id, "name": name, "run_id": run_id,
            "model_type": model_type, "params": dict(params or {}), "tags": dict(tags or {}),
            "model_id": model_id,
        }  # fmt: skip
        return LoggedModel(**self._call("POST", "/logged-models", json_body=body))

    def get_logged_model(self, model_id: str) -> LoggedModel:
        """Return a logged model, a deleted one included."""
        return LoggedModel(**self._call("GET", f"/logged-models/{_seg(model_id)}"))

    def set_logged_model_status(self, model_id: str, status: str) -> LoggedModel:
        """Mark a logged model READY or FAILED."""
        found = self._call(
            "PATCH", f"/logged-models/{_seg(model_id)}", json_body={"status": status}
        )
        return LoggedModel(**found)

    def delete_logged_model(self, model_id: str) -> None:
        """Move a logged model to the bin."""
        self._call("DELETE", f"/logged-models/{_seg(model_id)}")

    def add_logged_model_files(self, model_id: str, files: Sequence[FileInfo]) -> None:
        """Record stored files (paths relative to the model folder) as a logged model's files."""
        self._call(
            "POST",
            f"/logged-models/{_seg(model_id)}/files",
            json_body={"files": [wire.file_to_json(f) for f in files]},
            idempotent=True,
        )

    def list_logged_model_files(self, model_id: str, prefix: str | None = None) -> list[FileInfo]:
        """Return a logged model's files, optionally under a path."""
        found = self._call(
            "GET", f"/logged-models/{_seg(model_id)}/files", params={"prefix": prefix}
        )
        return [wire.file_from_json(f) for f in found["files"]]

    def log_run_models(
        self, run_id: str, direction: str, models: Sequence[tuple[str, int]]
    ) -> None:
        """Record ``(model_id, step)`` pairs a run used or produced."""
        body = {"direction": direction, "models": [{"model_id": m, "step": s} for m, s in models]}
        self._call("POST", f"/runs/{_seg(run_id)}/models", json_body=body, idempotent=True)

    def log_named_datasets(self, run_id: str, datasets: Sequence[NamedDataset]) -> None:
        """Record datasets a run read, by name and digest."""
        body = {"datasets": [wire.encode(d) for d in datasets]}
        self._call("POST", f"/runs/{_seg(run_id)}/named-datasets", json_body=body, idempotent=True)

    def get_run_links(self, run_id: str) -> tuple[list[NamedDataset], list[RunModel]]:
        """Return a run's named datasets and the logged models it used or produced."""
        found = self._call("GET", f"/runs/{_seg(run_id)}/links")
        return (
            [NamedDataset(**d) for d in found["datasets"]],
            [RunModel(**m) for m in found["models"]],
        )

    def get_run_datasets(self, run_id: str) -> list[RunDataset]:
        """Return a run's dataset versions."""
        found = self._call("GET", f"/runs/{_seg(run_id)}/datasets")
        return [RunDataset.from_dict(d) for d in found["datasets"]]

    def find_dataset_uses(
        self,
        path: str | None = None,
        hash: str | None = None,
        view: ViewType = ViewType.ACTIVE_ONLY,
    ) -> list[DatasetUse]:
        """Return the runs that read or wrote a dataset path and/or version."""
        params = {"path": path, "hash": hash, "view": ViewType(view).value}
        found = self._call("GET", "/datasets/uses", params=params)
        return [DatasetUse.from_dict(u) for u in found["uses"]]

    def list_datasets(
        self,
        experiment_ids: Sequence[str] | None = None,
        view: ViewType = ViewType.ACTIVE_ONLY,
    ) -> list[DatasetSummary]:
        """Return every dataset path runs read or wrote (in experiments the token may see)."""
        if experiment_ids is not None and not experiment_ids:
            return []  # no query parameter could say "none of them"
        params: dict[str, Any] = {"view": ViewType(view).value}
        if experiment_ids is not None:
            params["experiment_id"] = list(experiment_ids)
        found = self._call("GET", "/datasets", params=params)
        return [DatasetSummary.from_dict(d) for d in found["datasets"]]

    def referenced_objects(self) -> tuple[set[str], set[str], set[str]]:
        """Return the object hashes runs refer to: artifact files, file datasets, folder trees."""
        found = self._call("GET", "/objects-referenced")
        return set(found["artifacts"]), set(found["files"]), set(found["trees"])

    # -- registered models -------------------------------------------------------------------
    def create_registered_model(
        self,
        name: str,
        description: str | None,
        tags: dict[str, str] | None,
        actor: str,
        comment: str | None = None,
    ) -> RegisteredModel:
        """Create a registered model with no versions."""
        body = {
            "name": v.check_model_name(name),
            "description": description,
            "tags": dict(tags or {}),
            "actor": v.check_actor(actor),
            "comment": comment,
        }
        return RegisteredModel.from_dict(self._call("POST", "/models", json_body=body))

    def get_registered_model(self, name: str) -> RegisteredModel:
        """Return a registered model with its tags, aliases and latest version."""
        return RegisteredModel.from_dict(self._call("GET", f"/models/{_seg(name)}"))

    def list_registered_models(
        self, name_like: str | None = None, max_results: int = 100, page_token: str | None = None
    ) -> PagedList:
        """Return a page of registered models ordered by name."""
        params = {"name_like": name_like, "max_results": max_results, "page_token": page_token}
        found = self._call("GET", "/models", params=params)
        return PagedList(
            [RegisteredModel.from_dict(m) for m in found["models"]], found["next_page_token"]
        )

    def update_registered_model(
        self, name: str, description: str | None, actor: str, comment: str | None = None
    ) -> RegisteredModel:
        """Replace a registered model's description."""
        body = {"description": description, "actor": v.check_actor(actor), "comment": comment}
        return RegisteredModel.from_dict(
            self._call("PATCH", f"/models/{_seg(name)}", json_body=body)
        )

    def rename_registered_model(
        self, name: str, new_name: str, actor: str, comment: str | None = None
    ) -> RegisteredModel:
        """Give a registered model a new, unused name."""
        body = {"new_name": new_name, "actor": v.check_actor(actor), "comment": comment}
        return RegisteredModel.from_dict(
            self._call("POST", f"/models/{_seg(name)}/rename", json_body=body)
        )

    def delete_registered_model(
        self, name: str, actor: str, force: bool = False, comment: str | None = None
    ) -> None:
        """Delete a registered model and everything under it; its events remain."""
        params = {"force": force, "comment": comment, "actor": v.check_actor(actor)}
        self._call("DELETE", f"/models/{_seg(name)}", params=params, idempotent=False)

    def set_registered_model_tag(
        self, name: str, key: str, value: str, actor: str, comment: str | None = None
    ) -> None:
        """Set one tag of a registered model."""
        body = {"key": key, "value": value, "actor": v.check_actor(actor), "comment": comment}
        self._call("POST", f"/models/{_seg(name)}/tags", json_body=body)

    def delete_registered_model_tag(
        self, name: str, key: str, actor: str, comment: str | None = None
    ) -> None:
        """Remove one tag of a registered model."""
        params = {"key": key, "comment": comment, "actor": v.check_actor(actor)}
        self._call("DELETE", f"/models/{_seg(name)}/tags", params=params, idempotent=False)

    # -- versions ----------------------------------------------------------------------------
    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None,
        artifact_path: str | None,
        tree_hash: str,
        description: str | None,
        tags: dict[str, str] | None,
        actor: str,
        comment: str | None = None,
        *,
        version: int | None = None,
    ) -> ModelVersion:
        """Add the next version to a model, creating the registered model if it is missing."""
        body = {
            "version": version,
            "source": source,
            "run_id": run_id,
            "artifact_path": artifact_path,
            "tree_hash": v.check_tree_hash(tree_hash),
            "description": description,
            "tags": dict(tags or {}),
            "actor": v.check_actor(actor),
            "comment": comment,
        }
        return ModelVersion.from_dict(
            self._call("POST", f"/models/{_model(name)}/versions", json_body=body)
        )

    def get_model_version(self, name: str, version: int) -> ModelVersion:
        """Return one version, a deleted one included."""
        return ModelVersion.from_dict(self._call("GET", _version_path(name, version)))

    def list_model_versions(self, name: str, include_deleted: bool = False) -> list[ModelVersion]:
        """Return a model's versions, newest first."""
        found = self._call(
            "GET", f"/models/{_seg(name)}/versions", params={"include_deleted": include_deleted}
        )
        return [ModelVersion.from_dict(x) for x in found["versions"]]

    def find_model_versions(
        self,
        run_id: str | None = None,
        tree_hash: str | None = None,
        include_deleted: bool = False,
    ) -> list[ModelVersion]:
        """Return the versions made from a run and/or naming a tree."""
        params = {"run_id": run_id, "tree_hash": tree_hash, "include_deleted": include_deleted}
        found = self._call("GET", "/model-versions", params=params)
        return [ModelVersion.from_dict(x) for x in found["versions"]]

    def update_model_version(
        self,
        name: str,
        version: int,
        description: str | None,
        actor: str,
        comment: str | None = None,
    ) -> ModelVersion:
        """Replace a version's description."""
        body = {"description": description, "actor": v.check_actor(actor), "comment": comment}
        return ModelVersion.from_dict(
            self._call("PATCH", _version_path(name, version), json_body=body)
        )

    def set_model_version_tag(
        self,
        name: str,
        version: int,
        key: str,
        value: str,
        actor: str,
        comment: str | None = None,
    ) -> None:
        """Set one tag of a version."""
        body = {"key": key, "value": value, "actor": v.check_actor(actor), "comment": comment}
        self._call("POST", _version_path(name, version) + "/tags", json_body=body)

    def delete_model_version_tag(
        self, name: str, version: int, key: str, actor: str, comment: str | None = None
    ) -> None:
        """Remove one tag of a version."""
        params = {"key": key, "comment": comment, "actor": v.check_actor(actor)}
        self._call(
            "DELETE", _version_path(name, version) + "/tags", params=params, idempotent=False
        )

    def delete_model_version(
        self,
        name: str,
        version: int,
        actor: str,
        force: bool = False,
        comment: str | None = None,
    ) -> None:
        """Mark a version deleted."""
        params = {"force": force, "comment": comment, "actor": v.check_actor(actor)}
        self._call("DELETE", _version_path(name, version), params=params, idempotent=False)

    # -- aliases and stages ------------------------------------------------------------------
    def set_model_alias(
        self, name: str, alias: str, version: int, actor: str, comment: str | None = None
    ) -> None:
        """Point an alias at an active version."""
        body = {
            "version": v.check_version(version),
            "actor": v.check_actor(actor),
            "comment": comment,
        }
        path = f"/models/{_model(name)}/aliases/{_seg(v.check_alias(alias))}"
        self._call("PUT", path, json_body=body)

    def delete_model_alias(
        self, name: str, alias: str, actor: str, comment: str | None = None
    ) -> None:
        """Remove an alias."""
        self._call(
            "DELETE",
            f"/models/{_seg(name)}/aliases/{_seg(alias)}",
            params={"comment": comment, "actor": v.check_actor(actor)},
            idempotent=False,
        )

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """Return the version an alias points at."""
        return ModelVersion.from_dict(
            self._call("GET", f"/models/{_seg(name)}/aliases/{_seg(alias)}")
        )

    def transition_model_version_stage(
        self,
        name: str,
        version: int,
        stage: str,
        archive_existing: bool,
        actor: str,
        comment: str | None = None,
    ) -> ModelVersion:
        """Move an active version to a stage; optionally archive the others there."""
        body = {
            "stage": stage,
            "archive_existing": archive_existing,
            "actor": v.check_actor(actor),
            "comment": comment,
        }
        return ModelVersion.from_dict(
            self._call("POST", _version_path(name, version) + "/stage", json_body=body)
        )

    def get_latest_versions(
        self, name: str, stages: Sequence[str] | None = None
    ) -> list[ModelVersion]:
        """Return the newest active version in each stage."""
        params = {"stages": list(stages)} if stages else None
        found = self._call("GET", f"/models/{_seg(name)}/latest", params=params)
        return [ModelVersion.from_dict(x) for x in found["versions"]]

    # -- audit and gc ------------------------------------------------------------------------
    def get_registry_events(
        self, name: str, version: int | None = None, limit: int | None = None
    ) -> list[RegistryEvent]:
        """Return the events filed under a model name, newest first."""
        found = self._call(
            "GET", f"/models/{_seg(name)}/events", params={"version": version, "limit": limit}
        )
        return [RegistryEvent.from_dict(e) for e in found["events"]]

    def registry_tree_hashes(self) -> set[str]:
        """Return the tree hash of every model version."""
        return set(self._call("GET", "/model-trees")["tree_hashes"])

    def close(self) -> None:
        """Nothing to release: the connection pool is shared by every store of this server."""


def _seg(value: str) -> str:
    """One path segment, percent-encoded; an empty one would change the route, so it is refused."""
    from urllib.parse import quote

    if not isinstance(value, str) or not value:
        raise NotFound(f"{value!r} does not exist (an empty name or id)")
    return quote(value, safe="")


def _version_path(name: str, version: int) -> str:
    return f"/models/{_model(name)}/versions/{v.check_version(version)}"


def _model(name: str) -> str:
    """A model name as a path segment (checked here: a bad name would change the path)."""
    return _seg(v.check_model_name(name))


def _split(batches: Sequence[RunBatch]) -> list[list[RunBatch]]:
    """Group batches into requests of at most ``_POINTS_PER_REQUEST`` metric points."""
    parts: list[list[RunBatch]] = []
    current: list[RunBatch] = []
    size = 0
    for b in batches:
        metrics, first = list(b.metrics), True
        while True:
            room = _POINTS_PER_REQUEST - size
            take, metrics = metrics[:room], metrics[room:]
            # Params and tags go with the first part only; they are small.
            current.append(
                RunBatch(b.run_id, take, b.params if first else {}, b.tags if first else {})
            )
            first, size = False, size + len(take)
            if not metrics:
                break
            parts.append(current)
            current, size = [], 0
        if size >= _POINTS_PER_REQUEST:
            parts.append(current)
            current, size = [], 0
    if current:
        parts.append(current)
    return parts
