"""The server's one ASGI middleware: request ids, the body size limit, the access log, metrics.

It is plain ASGI (no ``BaseHTTPMiddleware``, which copies every body through a task group and
breaks streaming) and it wraps the whole app, outside Starlette's ServerErrorMiddleware, so it
also sees, logs and counts the 500 replies that middleware makes for unexpected errors.

- **Request id**: taken from an ``X-Request-Id`` header a proxy set (if it looks like one),
  otherwise made up; returned as ``X-Request-Id`` and put on ``request.state.request_id``.
- **Body size limit**: a JSON API body above ``max_body_bytes`` is answered with 413
  ``REQUEST_TOO_LARGE``, before reading when ``Content-Length`` says so, otherwise at the first
  chunk past the limit. Uploads (``PUT /api/v1/objects/…`` and MLflow's artifact and part
  uploads under ``/api/2.0/mlflow-artifacts/``) are exempt: their routes apply
  ``max_upload_bytes`` while they stream.
- **Access log**: one JSON line per request on the ``mltrail.server.access`` logger (stderr
  unless the logger is configured otherwise): time, method, path, status, duration_ms,
  bytes_in, bytes_out, client, user (``request.state.user``, set by the auth dependency) and
  request_id.
- **Metrics**: see :mod:`mltrail.server.metrics`.
- **Host names without auth**: a server without auth answers 421 ``HOST_NOT_ALLOWED`` to a
  ``Host`` that is not loopback or configured (see :mod:`mltrail.server.hosts`).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from starlette.exceptions import HTTPException

from mltrail.server import hosts
from mltrail.server.metrics import REGISTRY, Registry

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from mltrail.server.app import ServerSettings

access_log = logging.getLogger("mltrail.server.access")

#: Object and MLflow artifact uploads stream bodies far larger than the JSON limit and check
#: their own.
UPLOAD_PREFIX = ("/api/v1/objects/", "/api/2.0/mlflow-artifacts/")

#: The route label of requests no route matched (404s, bodies refused before routing).
NO_ROUTE = "none"

_MAX_LOGGED_PATH = 1000
_ID_CHARS = frozenset(b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_.:")


def install(app: FastAPI, settings: ServerSettings) -> None:
    """Wrap ``app``'s middleware stack in :class:`ServerMiddleware` for ``settings``."""
    if settings.access_log:
        _log_to_stderr()
    build = app.build_middleware_stack

    # add_middleware would put it inside ServerErrorMiddleware, where unexpected errors pass by
    # as exceptions with no status, and their 500 replies without a request id.
    def build_wrapped() -> ASGIApp:
        return ServerMiddleware(
            build(),
            max_body_bytes=settings.max_body_bytes,
            access_log=settings.access_log,
            allowed_hosts=None if settings.auth_enabled else tuple(settings.allowed_hosts),
        )

    app.build_middleware_stack = build_wrapped  # type: ignore[method-assign]


class RequestTooLarge(HTTPException):
    """Raised from ``receive`` at the first chunk past the limit (an HTTPException, so FastAPI's
    body parsing passes it on instead of turning it into a 400)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than the limit of {limit} bytes")


class ServerMiddleware:
    """Request ids, the body size limit, the access log and request metrics, in one layer."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        access_log: bool = True,
        registry: Registry = REGISTRY,
        allowed_hosts: tuple[str, ...] | None = None,
    ) -> None:
        self.app = app
        #: None: any Host (auth is on); else the names beyond loopback ones a request may give.
        self.allowed_hosts = allowed_hosts
        self.max_body_bytes = max_body_bytes
        self.access_log = access_log
        self.registry = registry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection (HTTP requests; lifespan and websockets pass through)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        length: int | None = None
        request_id = ""
        host: str | None = None
        for name, value in scope["headers"]:
            if name == b"host":
                host = value.decode("latin-1")
            elif name == b"content-length":
                length = int(value) if value.isdigit() else None
            elif name == b"x-request-id" and len(value) <= 64 and _ID_CHARS.issuperset(value):
                request_id = value.decode()
        request_id = request_id or os.urandom(8).hex()
        # Request.state is a view of this dict, so handlers (and the error handlers) see the id
        # and can leave the user behind for the log.
        scope.setdefault("state", {})["request_id"] = request_id
        id_header = (b"x-request-id", request_id.encode())
        path: str = scope["path"]
        # Behind a proxy's prefix (--root-path), the path carries it before the API's own.
        root = scope.get("root_path", "")
        local = path[len(root) :] if root and path.startswith(root) else path
        limit = (
            None
            if scope["method"] == "PUT" and local.startswith(UPLOAD_PREFIX)
            else self.max_body_bytes
        )

        status = 0
        bytes_in = bytes_out = 0
        started = finished = too_large = False

        async def receive_counted() -> Message:
            nonlocal bytes_in, too_large
            message = await receive()
            if message["type"] == "http.request":
                bytes_in += len(message.get("body", b""))
                if limit is not None and bytes_in > limit:
                    too_large = True
                    raise RequestTooLarge(limit)
            return message

        async def send_observed(message: Message) -> None:
            nonlocal status, bytes_out, started, finished
            if too_large and not started:
                # Whatever the app makes of the exception is replaced by the 413 below.
                return
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), id_header]
            elif message["type"] == "http.response.body":
                bytes_out += len(message.get("body", b""))
                finished = not message.get("more_body", False)
            await send(message)

        async def refuse(limit: int, code: int = 413, body: bytes = b"") -> None:
            nonlocal status, bytes_out
            body = body or _too_large_body(limit)
            status, bytes_out = code, len(body)
            await send(
                {
                    "type": "http.response.start",
                    "status": code,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        (b"connection", b"close"),
                        id_header,
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})

        self.registry.started_request()
        try:
            if self.allowed_hosts is not None and not hosts.is_allowed(host, self.allowed_hosts):
                await refuse(0, 421, hosts.refusal(host or "", self.allowed_hosts))
                return
            if limit is not None and length is not None and length > limit:
                await refuse(limit)
                return
            try:
                await self.app(scope, receive_counted, send_observed)
            except Exception:
                # A 500 that ServerErrorMiddleware answered is re-raised for the server to log;
                # app.py's handler logged it already, under the request id, so it ends here.
                if not (too_large and not started) and not (finished and status == 500):
                    status = status or 500
                    raise
            if too_large and not started:
                assert limit is not None
                await refuse(limit)
        finally:
            seconds = time.perf_counter() - start
            route = scope.get("route")
            template = getattr(route, "path_format", None) or getattr(route, "path", NO_ROUTE)
            self.registry.finished_request(
                scope["method"], template, status, seconds, bytes_in, bytes_out
            )
            if self.access_log and access_log.isEnabledFor(logging.INFO):
                client = scope.get("client")
                access_log.info(
                    json.dumps(
                        {
                            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                            "method": scope["method"],
                            "path": path[:_MAX_LOGGED_PATH],
                            "status": status,
                            "duration_ms": round(seconds * 1000, 3),
                            "bytes_in": bytes_in,
                            "bytes_out": bytes_out,
                            "client": client[0] if client else None,
                            "user": scope["state"].get("user"),
                            "request_id": request_id,
                        }
                    )
                )


def _too_large_body(limit: int) -> bytes:
    readable = f" ({limit / 2**20:.4g} MiB)" if limit >= 2**20 else ""
    return json.dumps(
        {
            "error_code": "REQUEST_TOO_LARGE",
            "message": f"the request body is larger than the server's limit of {limit} bytes"
            + readable,
            "hint": "Send fewer items per request (split metric batches into smaller ones); "
            "files go through the object upload endpoint, which takes large bodies.",
        }
    ).encode()


class _StderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is at the time (tests and daemons replace it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)


def _log_to_stderr() -> None:
    # Only when nobody configured the logger: a deployment's own logging config wins.
    if access_log.handlers:
        return
    access_log.addHandler(_StderrHandler())
    access_log.setLevel(logging.INFO)
    # The access log is its own stream; copies through the root logger would double each line.
    access_log.propagate = False
