"""The mlflow client's plugin for ``mltrail:`` URIs: mlflow code writing into an mltrail project.

With ``MLFLOW_TRACKING_URI=mltrail:`` (the project found from the working directory, as
``mltrail`` finds it, or a new one there) or ``mltrail:/path/to/project``, every ``mlflow.*`` call
goes straight into the project's embedded store, with no server: runs, metrics, logged models,
the registry and artifacts, through the same handlers that serve MLflow's REST API on
``mltrail server``. mlflow finds these classes through the entry points mltrail declares
(``mlflow.tracking_store``, ``mlflow.model_registry_store``, ``mlflow.artifact_repository``);
this module imports mlflow and is only loaded by it.
"""

from __future__ import annotations

import json
import os
import posixpath
import threading
from pathlib import Path
from typing import Any

from mlflow.entities import FileInfo as MlflowFileInfo
from mlflow.exceptions import RestException
from mlflow.store.artifact.artifact_repo import ArtifactRepository as _ArtifactRepository
from mlflow.store.model_registry.rest_store import RestStore as _RegistryRestStore
from mlflow.store.tracking import rest_store as _tracking_rest
from mlflow.utils.proto_json_utils import parse_dict
from mlflow.utils.rest_utils import MlflowHostCreds

from mltrail.config import PROJECT_DIR
from mltrail.errors import InvalidInput, MltrailError, StoreError
from mltrail.mlflow_api import artifacts, routes
from mltrail.mlflow_api.context import Context, OpenAccess, mlflow_store
from mltrail.mlflow_api.errors import describe
from mltrail.mlflow_api.fields import Fields
from mltrail.mlflow_api.uris import ArtifactUris

SCHEME = "mltrail:"
_API_PREFIXES = ("/api/2.0/mlflow/", "/api/3.0/mlflow/")

_lock = threading.Lock()
_opened: dict[Path, tuple[Any, str | None]] = {}


def _project_of(uri: str | None) -> Path:
    """The ``.mltrail`` folder a ``mltrail:`` URI names (created on first use, as mt does)."""
    try:
        return _find_project(uri)
    except MltrailError as exc:
        raise _as_mlflow(exc) from None


def _find_project(uri: str | None) -> Path:
    from mltrail.config import resolve

    spec = (uri or SCHEME)[len(SCHEME) :] if (uri or SCHEME).startswith(SCHEME) else uri
    spec = spec.removeprefix("//") if spec and spec.startswith("///") else spec
    location = resolve(os.path.expanduser(spec) if spec else None)
    if location.project_dir is None:
        raise StoreError(
            f"{uri!r} does not name an mltrail project folder (the store is "
            f"{location.tracking_uri})",
            hint="The mltrail: plugin writes into a project (mltrail: or mltrail:/path/to/it); "
            "for a team store run `mltrail server` and set MLFLOW_TRACKING_URI=http://host:5000.",
        )
    return location.project_dir


def _as_mlflow(exc: Exception) -> RestException:
    """An error as the mlflow client raises it against a server: a RestException with a code."""
    _, code, message = describe(exc)
    return RestException({"error_code": code, "message": message})


def _context(project: Path) -> Context:
    """The project's store (opened once per process) as the MLflow handlers use it."""
    from mltrail.config import resolve
    from mltrail.objects import open_object_store
    from mltrail.store import open_store

    with _lock:
        if project not in _opened:
            location = resolve(str(project))
            _opened[project] = (open_store(location.tracking_uri), location.objects)
        store, objects = _opened[project]
    return Context(
        mlflow_store(store),
        OpenAccess(),
        ArtifactUris(f"{SCHEME}{project}"),
        lambda: open_object_store(objects or str(project / "objects")),
    )


def _call(project: Path, endpoint: str, method: str, json_body: Any, response_proto: Any) -> Any:
    """Serve one call of mlflow's REST stores in process; fill and return ``response_proto``."""
    path = endpoint
    for prefix in _API_PREFIXES:
        if endpoint.startswith(prefix):
            path = endpoint[len(prefix) :]
    if isinstance(json_body, str):
        body = json.loads(json_body) if json_body.strip() else {}
    else:
        body = dict(json_body or {})
    try:
        found = routes.call(_context(project), method, path, Fields(body))
    except Exception as exc:
        raise _as_mlflow(exc) from None
    parse_dict(js_dict=json.loads(json.dumps(found)), message=response_proto)
    return response_proto


def _no_creds() -> MlflowHostCreds:
    return MlflowHostCreds(SCHEME)


class TrackingStore(_tracking_rest.RestStore):
    """mlflow's tracking store for ``mltrail:`` URIs: its REST store, served in process."""

    def __init__(self, store_uri: str | None = None, artifact_uri: str | None = None) -> None:
        super().__init__(_no_creds)
        self._project = _project_of(store_uri)

    def _call_endpoint(  # type: ignore[override]
        self, api: Any, json_body: Any = None, endpoint: str | None = None, *args: Any, **kw: Any
    ) -> Any:
        table = getattr(self, "_METHOD_TO_INFO", None) or _tracking_rest._METHOD_TO_INFO
        if api in getattr(self, "_V3_APIS", ()):
            table = self._V3_METHOD_TO_INFO
        default, method = table[api]
        response = kw.get("response_proto") or api.Response()
        return _call(self._project, endpoint or default, method, json_body, response)


class RegistryStore(_RegistryRestStore):
    """mlflow's model registry store for ``mltrail:`` URIs, served in process."""

    def __init__(self, store_uri: str | None = None, tracking_uri: str | None = None) -> None:
        super().__init__(_no_creds)
        self._project = _project_of(store_uri)

    def _call_endpoint(  # type: ignore[override]
        self, api: Any, json_body: Any, call_all_endpoints: bool = False, *args: Any, **kw: Any
    ) -> Any:
        endpoint, method = self._get_endpoint_from_method(api)
        return _call(
            self._project, endpoint, method, json_body, self._get_response_from_method(api)
        )


class ArtifactRepository(_ArtifactRepository):
    """mlflow's artifact repository for ``mltrail:`` URIs: files go into the project's store.

    The URI is ``mltrail:<project>/.mltrail/<path below the artifact root>``, as the tracking
    store hands it out, so the repository finds the project from the URI alone.
    """

    def __init__(self, artifact_uri: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(artifact_uri, *args, **kwargs)
        rest = artifact_uri[len(SCHEME) :]
        marker = f"/{PROJECT_DIR}"
        cut = rest.find(marker + "/")
        if cut < 0:
            cut = rest.find(marker) if rest.endswith(marker) else -1
        if not artifact_uri.startswith(SCHEME) or cut < 0:
            raise InvalidInput(
                f"{artifact_uri!r} is not an artifact URI of an mltrail project",
                hint="Use the artifact URI the mltrail: tracking store gave the run or model.",
            )
        self._project = Path(rest[: cut + len(marker)])
        self._root = rest[cut + len(marker) :].strip("/")

    def _path(self, artifact_path: str | None) -> str:
        return posixpath.join(self._root, artifact_path) if artifact_path else self._root

    def _guarded(self, work: Any) -> Any:
        try:
            return work(_context(self._project))
        except Exception as exc:
            raise _as_mlflow(exc) from None

    def log_artifact(self, local_file: str, artifact_path: str | None = None) -> None:
        """Store one file under ``artifact_path``."""
        name = os.path.basename(local_file)

        def work(ctx: Context) -> None:
            where = artifacts.resolve(
                ctx, self._path(posixpath.join(artifact_path or "", name)), "write"
            )
            info = ctx.objects.put_file(local_file)
            artifacts.record_file(ctx, where, info.hash, info.size)

        self._guarded(work)

    def log_artifacts(self, local_dir: str, artifact_path: str | None = None) -> None:
        """Store a folder's files under ``artifact_path``."""
        base = Path(local_dir)
        for path in sorted(p for p in base.rglob("*") if p.is_file()):
            rel = path.parent.relative_to(base).as_posix()
            inside = posixpath.join(artifact_path or "", rel) if rel != "." else artifact_path
            self.log_artifact(str(path), inside or None)

    def list_artifacts(self, path: str | None = None) -> list[MlflowFileInfo]:
        """The entries directly inside ``path``."""
        found = self._guarded(lambda ctx: artifacts.list_dir(ctx, self._path(path)))
        return [
            MlflowFileInfo(
                posixpath.join(path, f["path"]) if path else f["path"],
                f["is_dir"],
                f.get("file_size"),
            )
            for f in found
        ]

    def _download_file(self, remote_file_path: str, local_path: str) -> None:
        def work(ctx: Context) -> None:
            found = artifacts.find_file(ctx, self._path(remote_file_path))
            ctx.objects.get_file(found.hash, local_path)

        self._guarded(work)

    def delete_artifacts(self, artifact_path: str | None = None) -> None:
        """Forget a file or folder (its bytes stay until garbage collection)."""
        self._guarded(lambda ctx: artifacts.delete(ctx, self._path(artifact_path)))
