"""A running MLflow server, read through its REST API as ``mltrail import mlflow`` reads a
database: for stores that cannot be opened directly (a managed server, another machine).

Only reading endpoints are called (searches, gets, the metric history and the artifact
proxy). Credentials are MLflow's own variables: ``MLFLOW_TRACKING_TOKEN`` (a bearer token) or
``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD`` (basic auth).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from mltrail.entities import Metric
from mltrail.errors import InvalidInput, NotFound, StoreError
from mltrail.importers.mlflow_artifacts import ArtifactFile, files_under
from mltrail.importers.mlflow_db import (
    DELETED_STAGE,
    LOGGED_MODEL_STATUS,
    METRIC_BATCH,
    SourceExperiment,
    SourceLoggedModel,
    SourceModel,
    SourceRun,
)

_API = "/api/2.0/mlflow"
_ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
_PAGE = 1000
_HISTORY_PAGE = 25_000
_RETRIES = 5
_RETRY_STATUS = frozenset({429, 502, 503, 504})


def _pairs(items: list[dict[str, Any]] | None) -> dict[str, str]:
    return {i["key"]: i.get("value") or "" for i in items or ()}


def _float(value: Any) -> float:
    return math.nan if value in ("NaN", None) else float(value)


class MlflowRest:
    """The experiments, runs and registry an MLflow server serves, read over HTTP."""

    kind = "REST API"

    def __init__(self, url: str) -> None:
        import httpx

        self.uri = url.rstrip("/")
        auth: Any = None
        headers = {}
        if os.environ.get("MLFLOW_TRACKING_TOKEN"):
            headers["Authorization"] = f"Bearer {os.environ['MLFLOW_TRACKING_TOKEN']}"
        elif os.environ.get("MLFLOW_TRACKING_USERNAME"):
            auth = (
                os.environ["MLFLOW_TRACKING_USERNAME"],
                os.environ.get("MLFLOW_TRACKING_PASSWORD", ""),
            )
        self.http = httpx.Client(
            base_url=self.uri, headers=headers, auth=auth, timeout=httpx.Timeout(120, connect=10)
        )
        self._data: dict[str, dict[str, Any]] = {}
        self._history: tuple[str, dict[str, list[Metric]]] | None = None
        try:
            version = self.http.get("/version")
        except httpx.HTTPError as e:
            self.http.close()
            raise StoreError(
                f"cannot reach the MLflow server at {self.uri}: {e}",
                hint="Check the URL (http://host:port of `mlflow server`) and that it runs.",
            ) from None
        try:
            self._get("/experiments/search", {"max_results": 1})
        except (NotFound, StoreError) as e:
            self.http.close()
            if isinstance(e, NotFound) or version.status_code != 200:
                raise InvalidInput(
                    f"{self.uri} does not answer as an MLflow server "
                    f"(GET /version: {version.status_code})",
                    hint="Pass the URL `mlflow server` listens on, e.g. http://host:5000.",
                ) from None
            raise
        self.revision = version.text.strip()[:40]  # the server's MLflow version

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()

    # -- HTTP --------------------------------------------------------------------------------
    def _send(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        for attempt in range(_RETRIES + 1):
            try:
                response = self.http.request(method, path, **kwargs)
            except httpx.TransportError as e:
                if attempt == _RETRIES:
                    raise StoreError(f"the MLflow server at {self.uri} failed: {e}") from None
            else:
                if response.status_code not in _RETRY_STATUS or attempt == _RETRIES:
                    return self._checked(response, path)
            time.sleep(min(0.2 * 2**attempt, 5))
        raise AssertionError("unreachable")

    def _checked(self, response: Any, path: str) -> Any:
        if response.status_code == 200:
            return response
        try:
            body = response.json()
        except ValueError:
            body = {}
        message = body.get("message") or response.text[:200] or response.reason_phrase
        code = body.get("error_code", "")
        if response.status_code in (401, 403):
            raise StoreError(
                f"the MLflow server at {self.uri} refused {path}: {message}",
                hint="Set MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME and "
                "MLFLOW_TRACKING_PASSWORD.",
            )
        if response.status_code == 404 or code == "RESOURCE_DOES_NOT_EXIST":
            if path.startswith(_API) or path.startswith(_ARTIFACTS):
                raise NotFound(f"{path} on {self.uri}: {message}")
            raise InvalidInput(f"{self.uri} is not an MLflow server ({path}: 404)")
        raise StoreError(
            f"the MLflow server at {self.uri} answered {response.status_code} to {path}: "
            f"{message}"
        )

    def _get(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return dict(self._send("GET", _API + path, params=params).json())

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self._send("POST", _API + path, json=body).json())

    def _pages(
        self, fetch: Callable[[str | None], dict[str, Any]], field: str
    ) -> Iterator[dict[str, Any]]:
        token = None
        while True:
            page = fetch(token)
            yield from page.get(field, ())
            token = page.get("next_page_token")
            if not token:
                return

    # -- reading -----------------------------------------------------------------------------
    def experiments(self) -> list[SourceExperiment]:
        """Every experiment, deleted ones included, ordered by id."""
        found = [
            SourceExperiment(
                str(e["experiment_id"]),
                e["name"],
                e.get("lifecycle_stage", "active"),
                e.get("artifact_location"),
                _pairs(e.get("tags")),
            )
            for e in self._pages(
                lambda t: self._post(
                    "/experiments/search",
                    {"max_results": _PAGE, "view_type": "ALL", **({"page_token": t} if t else {})},
                ),
                "experiments",
            )
        ]
        return sorted(found, key=lambda e: (len(e.experiment_id), e.experiment_id))

    def runs(self, experiment_ids: list[str]) -> list[SourceRun]:
        """The runs of the experiments, oldest first; their params, tags and inputs are kept
        for :meth:`key_values` and :meth:`dataset_inputs`."""
        found = []
        for exp_id in experiment_ids:
            body = {
                "experiment_ids": [exp_id],
                "max_results": _PAGE,
                "run_view_type": "ALL",
                "order_by": ["attributes.start_time ASC"],
            }
            for run in self._pages(
                lambda t, body=body: self._post(
                    "/runs/search", {**body, **({"page_token": t} if t else {})}
                ),
                "runs",
            ):
                info, data = run["info"], run.get("data", {})
                self._data[info["run_id"]] = {
                    "params": _pairs(data.get("params")),
                    "tags": _pairs(data.get("tags")),
                    "metrics": sorted({m["key"] for m in data.get("metrics", ())}),
                    "inputs": run.get("inputs", {}).get("dataset_inputs", []),
                }
                found.append(
                    SourceRun(
                        info["run_id"],
                        str(info["experiment_id"]),
                        info.get("run_name") or None,
                        info.get("user_id") or "unknown",
                        info.get("status", "FINISHED"),
                        int(info.get("start_time") or 0),
                        int(info["end_time"]) if info.get("end_time") else None,
                        info.get("lifecycle_stage", "active"),
                        info.get("artifact_uri"),
                    )
                )
        return sorted(found, key=lambda r: (r.start_time, r.run_id))

    def prefetch(self, run_ids: list[str]) -> None:
        """Nothing to read ahead: the run search brought params, tags and inputs."""

    def key_values(self, table: str, run_id: str) -> dict[str, str]:
        """A run's params or tags."""
        return dict(self._data[run_id][table])

    def _histories(self, run_id: str) -> dict[str, list[Metric]]:
        """Every metric history of one run (the last run asked is kept: one run at a time)."""
        if self._history is not None and self._history[0] == run_id:
            return self._history[1]
        histories = {}
        for key in self._data[run_id]["metrics"]:
            points = self._pages(
                lambda t, key=key: self._get(
                    "/metrics/get-history",
                    {
                        "run_id": run_id,
                        "metric_key": key,
                        "max_results": _HISTORY_PAGE,
                        **({"page_token": t} if t else {}),
                    },
                ),
                "metrics",
            )
            histories[key] = [
                Metric(key, _float(m.get("value")), int(m.get("timestamp") or 0),
                       int(m.get("step") or 0))
                for m in points
            ]  # fmt: skip
            histories[key].sort(key=lambda m: (m.step, m.timestamp, m.value))
        self._history = (run_id, histories)
        return histories

    def metric_counts(self, run_id: str) -> dict[str, int]:
        """How many points each metric of a run has."""
        return {k: len(points) for k, points in self._histories(run_id).items()}

    def metric_points(self, run_id: str, keys: list[str]) -> list[Metric]:
        """Every point of the run's metrics ``keys``."""
        histories = self._histories(run_id)
        return [p for key in keys for p in histories[key]]

    def metrics(self, run_id: str, key: str, skip: int = 0) -> Iterator[list[Metric]]:
        """One metric's points in batches, by step, then time, then value, after ``skip``."""
        points = self._histories(run_id)[key]
        for start in range(skip, len(points), METRIC_BATCH):
            yield points[start : start + METRIC_BATCH]

    def dataset_inputs(self, run_id: str) -> list[dict[str, Any]]:
        """The datasets a run logged as inputs, with their input tags."""
        found = []
        for item in self._data[run_id]["inputs"]:
            d = item.get("dataset", {})
            found.append(
                {
                    "name": d.get("name", ""),
                    "digest": d.get("digest", ""),
                    "source_type": d.get("source_type", ""),
                    "source": d.get("source", ""),
                    "schema": d.get("schema"),
                    "profile": d.get("profile"),
                    "tags": _pairs(item.get("tags")),
                }
            )
        return found

    def registered_models(self, names: list[str] | None = None) -> list[SourceModel]:
        """The registered models (only ``names`` if given), with versions, tags and aliases."""
        found = []
        for m in self._pages(
            lambda t: self._get(
                "/registered-models/search",
                {"max_results": _PAGE, **({"page_token": t} if t else {})},
            ),
            "registered_models",
        ):
            if names and m["name"] not in names:
                continue
            model = SourceModel(m["name"], m.get("description") or None, _pairs(m.get("tags")))
            model.aliases = {a["alias"]: int(a["version"]) for a in m.get("aliases", ())}
            escaped = m["name"].replace("'", "\\'")
            versions = self._pages(
                lambda t, escaped=escaped: self._get(
                    "/model-versions/search",
                    {
                        "filter": f"name='{escaped}'",
                        "max_results": _PAGE,
                        **({"page_token": t} if t else {}),
                    },
                ),
                "model_versions",
            )
            model.versions = sorted(
                (
                    {
                        "version": int(mv["version"]),
                        "description": mv.get("description") or None,
                        "user_id": mv.get("user_id") or None,
                        "stage": mv.get("current_stage") or "None",
                        "source": mv.get("source", ""),
                        "storage_location": None,
                        "run_id": mv.get("run_id") or None,
                        "status": mv.get("status"),
                        "tags": _pairs(mv.get("tags")),
                    }
                    for mv in versions
                    if mv.get("current_stage") != DELETED_STAGE
                ),
                key=lambda x: x["version"],
            )
            found.append(model)
        return found

    def logged_models(self, experiment_ids: list[str]) -> list[SourceLoggedModel]:
        """The logged models of the experiments (MLflow 3 servers), with their params and tags."""
        if not experiment_ids:
            return []
        found = []
        try:
            for m in self._pages(
                lambda t: self._post(
                    "/logged-models/search",
                    {"experiment_ids": experiment_ids, "max_results": 100,
                     **({"page_token": t} if t else {})},
                ),
                "models",
            ):  # fmt: skip
                info = m.get("info", {})
                found.append(
                    SourceLoggedModel(
                        info["model_id"], str(info["experiment_id"]), info.get("name", "model"),
                        info.get("source_run_id") or None, info.get("model_type"),
                        LOGGED_MODEL_STATUS.get(info.get("status"), "READY"),
                        info.get("lifecycle_stage", "active"), info.get("artifact_uri", ""),
                        {p["key"]: p.get("value", "") for p in m.get("data", {}).get("params", ())},
                        _pairs(info.get("tags")),
                    )
                )  # fmt: skip
        except NotFound:
            return []  # an MLflow 2 server: no logged models
        return found

    def logged_model_location(self, model_id: str) -> str | None:
        """Where an MLflow 3 logged model's files are (its artifact location), or None."""
        try:
            model = self._get(f"/logged-models/{quote(model_id)}")
        except NotFound:
            return None
        return model.get("model", {}).get("info", {}).get("artifact_uri")

    # -- the artifact proxy ------------------------------------------------------------------
    def artifact_files(self, path: str) -> list[ArtifactFile]:
        """The files under ``path`` of the server's proxied artifacts (``mlflow-artifacts:``)."""
        listing: list[tuple[str, Callable[[Path], None]]] = []
        folders = [path.strip("/")]
        while folders:
            folder = folders.pop()
            try:
                page = self._send("GET", _ARTIFACTS, params={"path": folder}).json()
            except NotFound:
                continue
            for entry in page.get("files", ()):
                # The proxy names entries relative to the folder asked.
                full = f"{folder}/{entry['path']}".strip("/")
                if entry.get("is_dir"):
                    folders.append(full)
                else:
                    listing.append((full[len(path.strip("/")) :].lstrip("/"), self._fetch(full)))
        return files_under(sorted(listing))

    def _fetch(self, full: str) -> Callable[[Path], None]:
        def fetch(dest: Path) -> None:
            url = f"{_ARTIFACTS}/{quote(full)}"
            with self.http.stream("GET", url) as response:
                if response.status_code != 200:
                    response.read()
                    self._checked(response, url)
                with dest.open("wb") as out:
                    for chunk in response.iter_bytes(1 << 20):
                        out.write(chunk)

        return fetch
