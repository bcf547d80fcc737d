"""The team server's FastAPI app: the REST API under ``/api/v1`` over one store and object store.

The app keeps no state of its own: everything lives in the metadata store (SQLite, PostgreSQL)
and the object store (a folder, S3), so several processes, on one machine or many, can serve the
same data. Handlers are thin: they check the caller's permission, call the store, and encode the
reply; the store interface is the same one the embedded Python API uses.

Every error has one JSON shape, ``{"error_code", "message", "hint"}``, and never a traceback:
an unexpected exception is logged with a request id and answered with a 500 naming that id.
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import Request  # FastAPI resolves dependency signatures at runtime

from mltrail._version import __version__
from mltrail.errors import (
    AlreadyExists,
    IntegrityError,
    InvalidInput,
    InvalidState,
    MltrailError,
    NotFound,
    PermissionDenied,
    StoreError,
    Unauthenticated,
)

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.responses import Response

    from mltrail.objects.base import ObjectStore
    from mltrail.store.base import TrackingStore

log = logging.getLogger("mltrail.server")

#: Where a worker process finds its settings (JSON), written by ``mltrail server --workers N``.
ENV_SETTINGS = "MLTRAIL_SERVER_SETTINGS"

#: Request bodies of the JSON API; object uploads have their own, larger limit.
DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024
DEFAULT_MAX_UPLOAD_BYTES = 50 * 1024**3

_LOOPBACK = ("127.0.0.1", "::1", "localhost")


@dataclass(frozen=True)
class ServerSettings:
    """Everything a server process needs; plain values, so worker processes can rebuild it."""

    store_uri: str
    objects: str | None
    host: str = "127.0.0.1"
    port: int = 5000
    #: None: off when bound to loopback only, on otherwise.
    auth: bool | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    #: Hand out presigned S3 URLs so clients move object bytes directly to and from S3.
    presign: bool = False
    access_log: bool = True
    #: Host names beyond loopback ones that a server without auth answers to (see hosts.py).
    allowed_hosts: tuple[str, ...] = ()

    @property
    def auth_enabled(self) -> bool:
        """Whether requests need a token."""
        if self.auth is not None:
            return self.auth
        return self.host not in _LOOPBACK

    def to_env(self) -> str:
        """The settings as JSON, for :data:`ENV_SETTINGS`."""
        import json

        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> ServerSettings:
        """Inverse of :meth:`to_env`, read from the environment."""
        import json

        raw = os.environ.get(ENV_SETTINGS)
        if not raw:
            raise RuntimeError(f"{ENV_SETTINGS} is not set: start workers with `mltrail server`")
        values = json.loads(raw)
        values["allowed_hosts"] = tuple(values.get("allowed_hosts", ()))
        return cls(**values)


class ServerState:
    """The store and object store one server process serves (opened once, shared by requests)."""

    def __init__(self, settings: ServerSettings, *, migrate: bool = True) -> None:
        from mltrail.store import open_store

        self.settings = settings
        # `mltrail server` passes migrate=False: it refuses a store with pending migrations.
        self.store: TrackingStore = open_store(settings.store_uri, migrate=migrate)
        self._objects: ObjectStore | None = None

    @property
    def objects(self) -> ObjectStore:
        """The object store (opened on first use)."""
        if self._objects is None:
            if not self.settings.objects:
                raise StoreError(
                    "this server has no object store",
                    hint="Start it with --objects s3://bucket/prefix or a folder.",
                )
            from mltrail.objects import open_object_store

            self._objects = open_object_store(self.settings.objects)
        return self._objects

    def close(self) -> None:
        """Release the store's connections."""
        self.store.close()


def state_of(request: Request) -> ServerState:
    """The ServerState of the app handling ``request``."""
    return request.app.state.mltrail


# -- errors --------------------------------------------------------------------------------------

_STATUS: list[tuple[type[MltrailError], int]] = [
    (Unauthenticated, 401),
    (PermissionDenied, 403),
    (NotFound, 404),
    (AlreadyExists, 409),
    (InvalidState, 409),
    (InvalidInput, 400),
    (StoreError, 503),
    (IntegrityError, 500),
]

_HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "ENDPOINT_NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    411: "LENGTH_REQUIRED",
    413: "REQUEST_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "INVALID_PARAMETER_VALUE",
}


def status_of(error: MltrailError) -> int:
    """The HTTP status an error is answered with."""
    for cls, status in _STATUS:
        if isinstance(error, cls):
            return status
    return 400


def error_response(
    status: int,
    code: str,
    message: str,
    hint: str | None = None,
    headers: dict[str, str] | None = None,
    kind: str | None = None,
    request: Request | None = None,
) -> Response:
    """The one error shape of the API; ``kind`` is the precise error class, for mltrail clients.

    A browser asking for a UI page gets the error as a page instead (see mltrail/ui/app.py).
    """
    from starlette.responses import JSONResponse

    ui = _load_ui()
    if request is not None and ui is not None and ui.wants_html(request):
        return ui.error_page(request, status, code, message, hint)

    return JSONResponse(error_body(code, message, hint, kind), status_code=status, headers=headers)


def error_body(
    code: str, message: str, hint: str | None = None, kind: str | None = None
) -> dict[str, Any]:
    """``{"error_code", "message", "hint"?, "kind"?}``: a reply's body, or one run's batch error."""
    body: dict[str, Any] = {"error_code": code, "message": message}
    if hint:
        body["hint"] = hint
    if kind:
        body["kind"] = kind
    return body


def _install_error_handlers(app: FastAPI) -> None:
    import sqlalchemy.exc
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException

    async def on_mltrail(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, MltrailError)
        status = status_of(exc)
        headers = {"Retry-After": "1"} if status == 503 else None
        if status == 401:
            headers = {"WWW-Authenticate": "Bearer"}
        return error_response(
            status, exc.code, exc.message, exc.hint, headers, type(exc).__name__, request
        )

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        message = _describe_validation(exc.errors())
        return error_response(400, InvalidInput.code, message, _API_HINT, request=request)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        status = exc.status_code
        if status == 404 and exc.detail == "Not Found":
            message = f"no API endpoint {request.method} {request.url.path}"
            ui = _load_ui()
            if ui is not None and ui.wants_html(request):
                message = f"there is no page at {request.url.path}"
            return error_response(404, "ENDPOINT_NOT_FOUND", message, _API_HINT, request=request)
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return error_response(
            status,
            _HTTP_CODES.get(status, "BAD_REQUEST"),
            message,
            headers=exc.headers,
            request=request,
        )

    async def on_database(request: Request, exc: Exception) -> Response:
        log.warning("database error on %s %s: %s", request.method, request.url.path, exc)
        return error_response(
            503,
            StoreError.code,
            "the metadata database is unavailable or failed this request",
            "Try again shortly; clients retry this on their own.",
            {"Retry-After": "1"},
            request=request,
        )

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        # The middleware's id, so the reply, its X-Request-Id and the log line all agree.
        request_id = getattr(request.state, "request_id", None) or os.urandom(6).hex()
        log.error(
            "request %s failed: %s %s", request_id, request.method, request.url.path, exc_info=exc
        )
        return error_response(
            500,
            "INTERNAL_ERROR",
            f"the server failed on this request (request id {request_id})",
            "The server's log has the details under that request id.",
            request=request,
        )

    app.add_exception_handler(MltrailError, on_mltrail)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(sqlalchemy.exc.OperationalError, on_database)
    app.add_exception_handler(sqlalchemy.exc.InterfaceError, on_database)
    app.add_exception_handler(Exception, on_unexpected)


_API_HINT = "The API is described at /api/v1/openapi.json (and browsable at /docs)."


def _describe_validation(errors: Any) -> str:
    parts = []
    for err in list(errors)[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(parts)


# -- the app -------------------------------------------------------------------------------------


def create_app(settings: ServerSettings, state: ServerState | None = None) -> FastAPI:
    """Build the server's app for ``settings`` (opening the store unless ``state`` is given)."""
    from fastapi import FastAPI

    from mltrail.server import middleware
    from mltrail.server.routes import ROUTERS

    app = FastAPI(
        redirect_slashes=False,
        title="mltrail",
        version=__version__,
        description="Experiment tracking, model registry and data versioning: the REST API.",
        openapi_url="/api/v1/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.mltrail = state or ServerState(settings)
    _install_error_handlers(app)
    for router in ROUTERS():
        app.include_router(router)
    from mltrail.server.routes import mlflow

    # MLflow's REST API, for the mlflow client: first, as its calls are the most frequent.
    app.router.routes[0:0] = mlflow.ROUTES
    ui = _load_ui()
    if ui is not None:
        from fastapi import Depends

        from mltrail.server.auth import require_same_origin

        # Every UI route, so no form can be posted from another site, whatever the auth mode.
        for router in ui.pages():
            app.include_router(router, dependencies=[Depends(require_same_origin)])
    middleware.install(app, settings)
    return app


#: What the ``ui`` extra installs beyond the server's own needs (numpy: chart downsampling).
UI_MODULES = ("jinja2", "plotly", "numpy")


@functools.cache
def _load_ui() -> Any:
    """The UI's module, or None when its extra (Jinja2, plotly, numpy) is not installed."""
    import importlib.util

    if any(importlib.util.find_spec(m) is None for m in UI_MODULES):
        return None
    from mltrail.ui import app as ui_app

    return ui_app


def app_from_env() -> FastAPI:
    """The app of one worker process, from the settings its parent put in the environment."""
    from mltrail.netutil import log_to_stderr

    log_to_stderr("mltrail.server")
    return create_app(ServerSettings.from_env())


def reply(body: Any, status: int = 200) -> Response:
    """A JSON reply, encoded once (the handlers' bodies are already JSON-ready)."""
    import json

    from starlette.responses import Response

    return Response(
        json.dumps(body, separators=(",", ":"), allow_nan=False),
        status_code=status,
        media_type="application/json",
    )
