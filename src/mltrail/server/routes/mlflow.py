"""MLflow's REST API on ``mltrail server``: the real ``mlflow`` client works unchanged.

``/api/2.0/mlflow/...`` (and ``/ajax-api/2.0/mlflow/...``) are served by the handlers of
:mod:`mltrail.mlflow_api`, with the same tokens, roles and per-experiment and per-model
permissions as ``/api/v1``; ``/api/2.0/mlflow-artifacts/...`` moves artifact bytes in and out of
the content-addressed object store. Errors come in MLflow's shape and with its status codes
(``{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": ...}``), so the client raises what it
raises against MLflow. The client authenticates with ``MLFLOW_TRACKING_TOKEN`` (Bearer) or with
``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD`` (Basic, the token as the password).
"""

from __future__ import annotations

import json
import logging
import mimetypes
import posixpath
import secrets
from collections.abc import Callable, Iterator
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Match, Route
from starlette.types import Scope

from mltrail.access import Access
from mltrail.errors import InvalidInput, MltrailError, PermissionDenied
from mltrail.mlflow_api import artifacts, routes
from mltrail.mlflow_api.context import Context, mlflow_store
from mltrail.mlflow_api.errors import NoEndpoint, NotServed, describe
from mltrail.mlflow_api.fields import Fields
from mltrail.mlflow_api.uris import ArtifactUris
from mltrail.objects.hashing import CHUNK_SIZE, check_hash
from mltrail.server import metrics
from mltrail.server.app import state_of
from mltrail.server.auth import principal, same_origin
from mltrail.server.uploads import Upload

log = logging.getLogger("mltrail.server")

SCHEME = "mlflow-artifacts:"
API_ROOTS = ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow")
ARTIFACT_ROOTS = ("/api/2.0/mlflow-artifacts", "/ajax-api/2.0/mlflow-artifacts")
#: Most parts one multipart upload may have (S3's limit too).
MAX_PARTS = 10_000


def mlflow_error(exc: Exception) -> Response:
    """An error as MLflow's server answers it: ``{error_code, message}`` and its status."""
    status, code, message = describe(exc)
    headers = {"Retry-After": "1"} if status == 503 else None
    return JSONResponse({"error_code": code, "message": message}, status, headers=headers)


def _context(request: Request) -> Context:
    """The request's caller (authenticated here, so errors keep MLflow's shape) and stores.

    A change sent by a web page of another site is refused: with auth off anyone who reaches
    the server may change things, and a browser would otherwise let any page do it.
    """
    if request.method not in ("GET", "HEAD") and not same_origin(request):
        raise PermissionDenied(
            "MLflow's API takes no changes from the web pages of other sites",
            hint="Call it from the mlflow client or a script; behind a proxy that rewrites Host, "
            "have it pass the original in X-Forwarded-Host.",
        )
    state = state_of(request)
    who = principal(request)
    return Context(
        mlflow_store(state.store),
        Access(who, state.store, lambda: state.objects),
        ArtifactUris(SCHEME),
        lambda: state.objects,
    )


async def _fields(request: Request) -> Fields:
    if request.method == "GET":
        return Fields.of_query(request.query_params.multi_items())
    raw = await request.body()
    if not raw.strip():
        return Fields.of_query(request.query_params.multi_items())
    if "json" not in request.headers.get("content-type", ""):
        # A page of another site can send a text/plain POST without asking first, never JSON.
        raise InvalidInput(
            "MLflow API requests send their fields as JSON",
            hint="Send the body with Content-Type: application/json.",
        )
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidInput("the request body must be a JSON object")
    return Fields(body)


def _json(body: dict[str, Any]) -> Response:
    return Response(json.dumps(body, allow_nan=False), media_type="application/json")


async def _served(request: Request, work: Callable[[Context], Any]) -> Response:
    """Run ``work`` on a worker thread with the request's context; errors as MLflow's."""
    try:
        found = await run_in_threadpool(lambda: work(_context(request)))
    except Exception as exc:
        return mlflow_error(exc)
    return found if isinstance(found, Response) else _json(found)


# -- the tracking, logged-model and registry services ---------------------------------------------


async def _api(request: Request, path: str) -> Response:
    try:
        fields = await _fields(request)
    except MltrailError as exc:
        return mlflow_error(exc)
    metrics.count("mlflow_calls")
    return await _served(request, lambda ctx: routes.call(ctx, request.method, path, fields))


async def server_info(request: Request) -> Response:
    """What this server offers the mlflow client: proxied multipart uploads, no workspaces."""
    return _json(
        {
            "store_type": "SqlStore",
            "workspaces_enabled": False,
            "multipart_uploads_enabled": True,
            "multipart_downloads_enabled": False,
        }
    )


async def _v3(request: Request, path: str) -> Response:
    try:
        routes.find(request.method, path)
        raise NoEndpoint(f"no MLflow endpoint {request.method} /api/3.0/mlflow/{path}")
    except MltrailError as exc:
        return mlflow_error(exc)


# -- artifacts -----------------------------------------------------------------------------------


def _content_type(path: str) -> str:
    guessed, _ = mimetypes.guess_type(path)
    return guessed or "application/octet-stream"


async def list_artifacts(request: Request) -> Response:
    """GET …/artifacts?path=<exp>/<run>/artifacts/<dir> → ``{files}`` (names inside the folder)."""
    path = request.query_params.get("path", "")
    return await _served(request, lambda ctx: {"files": artifacts.list_dir(ctx, path)})


async def download_artifact(request: Request, path: str) -> Response:
    """GET …/artifacts/<path>: the file's bytes, streamed from the object store, verified.

    The mlflow client does not check what it downloads (mltrail's clients do), so the server
    does: the last block leaves only once the whole file has hashed to its name, and a damaged
    object ends the reply short, which the client reports instead of keeping the file.
    """

    def work(ctx: Context) -> Response:
        found = artifacts.find_file(ctx, path)
        reader = ctx.objects.open(found.hash)
        headers = {
            "Content-Type": _content_type(path),
            "Content-Length": str(found.size),
            "X-Content-Type-Options": "nosniff",
        }
        metrics.count("object_bytes_downloaded", found.size)
        return StreamingResponse(_verified_chunks(reader), headers=headers)

    return await _served(request, work)


def _verified_chunks(reader: Any) -> Iterator[bytes]:
    # One block is held back: the read that reaches the end is the one that checks the hash.
    with reader:
        held = reader.read(CHUNK_SIZE)
        while held:
            following = reader.read(CHUNK_SIZE)
            yield held
            held = following


async def _receive(request: Request, ctx: Context) -> Upload | Response:
    """Stream the body into the object store; the Upload (published), or an error reply."""
    state = state_of(request)
    upload = Upload(ctx.objects, state.settings.max_upload_bytes)
    try:
        received = await upload.receive(request)
        if received is None:
            raise InvalidInput(
                f"the upload is over this server's limit of {upload.limit} bytes",
                hint="Ask the server's admin to raise it (max_upload_bytes).",
            )
        await run_in_threadpool(upload.publish, upload.hasher.hexdigest())
    except ClientDisconnect:
        return Response(status_code=400)
    finally:
        upload.discard()
    metrics.count("object_bytes_uploaded", upload.size)
    return upload


async def upload_artifact(request: Request, path: str) -> Response:
    """PUT …/artifacts/<path>: store the body once by its hash, record it as the file."""
    try:
        ctx = await run_in_threadpool(_context, request)
        where = await run_in_threadpool(artifacts.resolve, ctx, path, "write")
        got = await _receive(request, ctx)
        if isinstance(got, Response):
            return got
        digest = got.hasher.hexdigest()
        await run_in_threadpool(artifacts.record_file, ctx, where, digest, got.size)
    except Exception as exc:
        return mlflow_error(exc)
    return _json({})


async def delete_artifact(request: Request, path: str) -> Response:
    """DELETE …/artifacts/<path>: forget a file or folder (its bytes stay until gc)."""

    def work(ctx: Context) -> dict[str, Any]:
        artifacts.delete(ctx, path)
        return {}

    return await _served(request, work)


def _target(folder: str, fields: Fields) -> str:
    """Where a multipart upload goes: the URL names the folder, ``path`` the client's file."""
    local = fields.str("path", required=True)
    return posixpath.join(folder, posixpath.basename(local.replace("\\", "/")))


async def create_multipart(request: Request, path: str) -> Response:
    """POST …/mpu/create/<folder> ``{path, num_parts}`` → an upload id and one URL per part."""
    try:
        fields = await _fields(request)
        parts = fields.int("num_parts", default=1, low=1, high=MAX_PARTS)
        target = _target(path, fields)
    except MltrailError as exc:
        return mlflow_error(exc)

    def work(ctx: Context) -> dict[str, Any]:
        artifacts.resolve(ctx, target, "write")
        upload_id = secrets.token_hex(16)
        base = str(request.base_url).rstrip("/") + ARTIFACT_ROOTS[0]
        # The client sends parts with these headers only: the caller's own credentials.
        headers = {}
        if request.headers.get("authorization"):
            headers["Authorization"] = request.headers["authorization"]
        return {
            "upload_id": upload_id,
            "credentials": [
                {"url": f"{base}/mpu/part/{upload_id}/{n}", "part_number": n, "headers": headers}
                for n in range(1, parts + 1)
            ],
        }

    return await _served(request, work)


async def upload_part(request: Request, upload_id: str, part_number: int) -> Response:
    """PUT …/mpu/part/<upload id>/<n>: one part, stored as an object; its hash is the ETag."""
    try:
        ctx = await run_in_threadpool(_context, request)
        ctx.access.allow("write")
        got = await _receive(request, ctx)
    except Exception as exc:
        return mlflow_error(exc)
    if isinstance(got, Response):
        return got
    return Response(status_code=200, headers={"ETag": f'"{got.hasher.hexdigest()}"'})


async def complete_multipart(request: Request, path: str) -> Response:
    """POST …/mpu/complete/<folder> ``{path, upload_id, parts}``: join the parts into the file."""
    try:
        fields = await _fields(request)
        target = _target(path, fields)
        parts = sorted(
            (p.int("part_number", required=True), p.str("etag", required=True).strip('"'))
            for p in fields.objects("parts")
        )
    except MltrailError as exc:
        return mlflow_error(exc)

    def work(ctx: Context) -> dict[str, Any]:
        where = artifacts.resolve(ctx, target, "write")
        if not parts or [n for n, _ in parts] != list(range(1, len(parts) + 1)):
            raise InvalidInput("the parts must be numbered 1, 2, 3, ... with none missing")
        hashes = [check_hash(etag) for _, etag in parts]
        # A part is named by its hash: only objects the caller may read can be joined.
        ctx.access.allow_objects(hashes)
        artifacts.join_parts(ctx, where, hashes)
        return {}

    return await _served(request, work)


async def abort_multipart(request: Request, path: str) -> Response:
    """POST …/mpu/abort/<folder>: nothing to undo (unused parts go with garbage collection)."""
    return await _served(request, lambda ctx: (artifacts.resolve(ctx, path, "write"), {})[1])


async def presigned_download(request: Request, path: str) -> Response:
    """GET …/presigned/<path>: not offered (server-info says so); downloads go through here."""
    return mlflow_error(
        NotServed(
            "mltrail serves artifact downloads itself, not through presigned URLs",
            hint="Leave MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD unset.",
        )
    )


class _Route(Route):
    """A plain Starlette route, labelled for the access log and metrics (``scope["route"]``).

    These handlers read their requests themselves, so FastAPI's per-request parameter solving
    would only add to the latency of calls a training loop makes by the thousand.
    """

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        """Match as Starlette does, naming this route in the scope."""
        match, child = super().matches(scope)
        if match is not Match.NONE:
            child["route"] = self
        return match, child


def _route(path: str, endpoint: Callable[..., Any], method: str | list[str]) -> _Route:
    async def app(request: Request) -> Response:
        return await endpoint(request, **request.path_params)

    methods = [method] if isinstance(method, str) else method
    return _Route(path, app, methods=methods, name=endpoint.__name__)


_ANY = ["GET", "POST", "PATCH", "DELETE"]

#: Every MLflow route; the app puts them before its own, as they are the busiest.
ROUTES = [
    *(_route(root + "/{path:path}", _api, _ANY) for root in API_ROOTS),
    *(
        _route(root + "/server-info", server_info, "GET")
        for root in ("/api/3.0/mlflow", "/ajax-api/3.0/mlflow")
    ),
    *(
        _route(root + "/{path:path}", _v3, _ANY)
        for root in ("/api/3.0/mlflow", "/ajax-api/3.0/mlflow")
    ),
]
for _root in ARTIFACT_ROOTS:
    ROUTES += [
        _route(_root + "/artifacts", list_artifacts, "GET"),
        _route(_root + "/artifacts/{path:path}", download_artifact, "GET"),
        _route(_root + "/artifacts/{path:path}", upload_artifact, "PUT"),
        _route(_root + "/artifacts/{path:path}", delete_artifact, "DELETE"),
        _route(_root + "/mpu/create/{path:path}", create_multipart, "POST"),
        _route(_root + "/mpu/complete/{path:path}", complete_multipart, "POST"),
        _route(_root + "/mpu/abort/{path:path}", abort_multipart, "POST"),
        _route(_root + "/mpu/part/{upload_id}/{part_number:int}", upload_part, "PUT"),
        _route(_root + "/presigned/{path:path}", presigned_download, "GET"),
    ]


__all__ = ["ROUTES", "mlflow_error"]
