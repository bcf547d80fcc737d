"""The scoring server: a FastAPI app answering MLflow's scoring protocol for one loaded model.

Routes: ``GET /ping`` and ``GET /health`` (200 once the app exists, i.e. the model is loaded),
``GET /version`` (the mltrail version, as plain text) and ``POST /invocations``. Every error has
one shape, ``{"error_code": ..., "message": ...}``: 400 for bad input, 413 for a body above the
limit, 415 for a content type the server does not read, 500 (with a generic message; the
traceback goes to the server's log only) when the model fails.

``/invocations`` predicts inline in the event loop: a prediction is CPU work that holds the GIL
either way, and a hop to a thread pool costs more than it saves. Run several ``--workers`` to
use several cores.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from mltrail._version import __version__
from mltrail.errors import MltrailError
from mltrail.serving.inputs import (
    JSON,
    Scorer,
    UnsupportedContentType,
    check_header,
    content_kind,
    csv_numbers,
    parse_json,
    read_csv,
)
from mltrail.serving.outputs import dumps, predictions_json

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.requests import Request
    from starlette.responses import Response

    from mltrail.models import PyFuncModel

#: The default limit on a request body: 50 MiB, as ``--max-body-mb`` says.
DEFAULT_MAX_BODY_BYTES = 50 * 1024 * 1024

log = logging.getLogger("mltrail.serving")

_STATUS_CODES = {
    400: "BAD_REQUEST",
    404: "ENDPOINT_NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    500: "INTERNAL_ERROR",
}
_PREDICT_FAILED = "the model failed to predict on this input; the server log has the details"


class BodyTooLarge(MltrailError):
    """A request body above the server's limit (HTTP 413)."""

    code = "PAYLOAD_TOO_LARGE"


def error_response(status: int, message: str, hint: str | None = None) -> Response:
    """The one error shape: ``{"error_code": ..., "message": ...}``."""
    from starlette.responses import Response

    text = f"{message.rstrip('.')}. {hint}" if hint else message
    body = dumps({"error_code": _STATUS_CODES.get(status, "BAD_REQUEST"), "message": text})
    return Response(body, status_code=status, media_type=JSON)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused as soon as it is known to exceed ``limit`` bytes.

    A Content-Length above the limit is refused before anything is read; a body without one
    (chunked) is counted while it streams in, and refused at the first chunk past the limit.
    """
    too_large = BodyTooLarge(
        f"the request body is larger than the server's limit of {_size(limit)}",
        hint="Send fewer rows per request, or start the server with a higher --max-body-mb.",
    )
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        if not chunk:
            continue
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _size(n: int) -> str:
    mib = n / (1024 * 1024)
    return f"{mib:g} MB" if mib >= 1 else f"{n} bytes"


def create_app(model: PyFuncModel, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> FastAPI:
    """A FastAPI app serving ``model`` (loaded once, by the caller) on ``/invocations``."""
    from fastapi import FastAPI
    from starlette.exceptions import HTTPException
    from starlette.responses import PlainTextResponse, Response

    if max_body_bytes <= 0:
        raise ValueError("max_body_bytes must be positive")
    scorer = Scorer(model)
    app = FastAPI(
        title="mltrail scoring server",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.model = model
    app.state.max_body_bytes = max_body_bytes
    warned_params: list[bool] = []

    # Plain Starlette routes: the handlers take the request as it is, so FastAPI's parameter
    # resolution (and its 422 errors) would only add time to every call.
    async def ping(_request: Request) -> Response:
        return Response("\n", media_type=JSON)

    async def version(_request: Request) -> Response:
        return PlainTextResponse(__version__)

    async def invocations(request: Request) -> Response:
        try:
            kind = content_kind(request.headers.get("content-type"))
            body = await read_body(request, max_body_bytes)
            if kind == JSON:
                payload = parse_json(body)
                if payload.params and not warned_params:
                    warned_params.append(True)
                    log.warning("params in requests are ignored: the model takes none")
                prepared = scorer.prepare(payload)
            else:
                frame = read_csv(body)
                check_header(frame, model)
                prepared = scorer.prepare_data(csv_numbers(frame, model), "the CSV")
        except UnsupportedContentType as e:
            return error_response(415, e.message, e.hint)
        except BodyTooLarge as e:
            return error_response(413, e.message, e.hint)
        except MltrailError as e:
            return error_response(400, e.message, e.hint)
        try:
            return Response(predictions_json(scorer.predict(prepared)), media_type=JSON)
        except Exception:
            log.exception("prediction failed (%s)", model.source)
            return error_response(500, _PREDICT_FAILED)

    app.add_route("/ping", ping, methods=["GET"])
    app.add_route("/health", ping, methods=["GET"])
    app.add_route("/version", version, methods=["GET"])
    app.add_route("/invocations", invocations, methods=["POST"])

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, exc: HTTPException) -> Response:
        return error_response(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def internal_error(_request: Request, exc: Exception) -> Response:
        log.error("internal error", exc_info=exc)
        return error_response(500, "internal server error; the server log has the details")

    return app


__all__ = ["DEFAULT_MAX_BODY_BYTES", "BodyTooLarge", "create_app", "error_response", "read_body"]
