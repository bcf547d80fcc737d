"""Operations: ``/health`` for load balancers, ``/metrics`` for Prometheus, ``/version``.

None of them needs a token, so probes and scrapers need no secret: ``/health`` and ``/version``
say only whether the server works and which mltrail it runs, and ``/metrics`` holds counts and
timings by route template (never paths, names, users or other data).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any, Literal

import anyio
from fastapi import APIRouter
from pydantic import BaseModel
from starlette.requests import Request  # FastAPI resolves endpoint signatures at runtime
from starlette.responses import PlainTextResponse, Response

from mltrail._version import __version__
from mltrail.errors import NotFound
from mltrail.server import metrics
from mltrail.server.app import ServerState, reply, state_of
from mltrail.server.schemas import ErrorOut

log = logging.getLogger("mltrail.server")

#: The error replies any operation may give, for the OpenAPI document: every router passes it as
#: ``APIRouter(responses=...)``. The ranges also keep FastAPI from documenting a 422 we never send.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {
        "model": ErrorOut,
        "description": "Refused: 400 invalid input (a body or parameter that does not validate "
        "included), 401 no or bad token, 403 not allowed, 404 no such thing, 405 wrong method, "
        "409 conflict or wrong state, 413 body too large",
    },
    "5XX": {
        "model": ErrorOut,
        "description": "503 STORE_ERROR: the database is unavailable, retry after Retry-After; "
        "500 INTERNAL_ERROR: a failure logged under the request id the message names",
    },
}

router = APIRouter(tags=["ops"], responses=ERROR_RESPONSES)

#: Seconds a health check waits for the database or the object store before calling it down.
CHECK_TIMEOUT_S = 5.0

Check = Literal["ok", "unavailable"]


class HealthOut(BaseModel):
    #: ``degraded``: metadata works but the object store does not (artifacts fail, logging works).
    status: Literal["ok", "degraded", "unavailable"]
    version: str
    store: Check
    objects: Check | Literal["none"]


@router.get(
    "/health",
    response_model=HealthOut,
    responses={503: {"model": HealthOut, "description": "The metadata database is unavailable"}},
)
async def health(request: Request) -> Response:
    """Whether this server reaches its database (else 503) and its object store."""
    state = state_of(request)
    store: Check = "ok" if await _works(lambda: _ping_store(state)) else "unavailable"
    objects: Check | Literal["none"] = "none"
    if state.settings.objects:
        objects = "ok" if await _works(lambda: _ping_objects(state)) else "unavailable"
    if store != "ok":
        status = "unavailable"
    elif objects == "unavailable":
        status = "degraded"
    else:
        status = "ok"
    body = {"status": status, "version": __version__, "store": store, "objects": objects}
    return reply(body, 503 if store != "ok" else 200)


async def _works(check: Callable[[], None]) -> bool:
    # In a thread, and abandoned after the timeout: a database that does not answer (rather than
    # refusing) must not hold the probe for the minutes a TCP connect can take.
    with anyio.move_on_after(CHECK_TIMEOUT_S):
        try:
            await anyio.to_thread.run_sync(check, abandon_on_cancel=True)
        except Exception as exc:
            log.warning("health check failed: %s: %s", type(exc).__name__, exc)
            return False
        return True
    log.warning("health check timed out after %s s", CHECK_TIMEOUT_S)
    return False


def _ping_store(state: ServerState) -> None:
    # One indexed read: experiment 0 may have been deleted for good, which is an answer too.
    with contextlib.suppress(NotFound):
        state.store.get_experiment("0")


def _ping_objects(state: ServerState) -> None:
    state.objects.exists("0" * 64)


def _text(description: str) -> dict[int | str, dict[str, Any]]:
    # Declared by hand: response_class=PlainTextResponse would also mark the JSON errors text/plain.
    return {
        200: {"description": description, "content": {"text/plain": {"schema": {"type": "string"}}}}
    }


@router.get(
    "/metrics", response_class=Response, responses=_text("Prometheus text format, version 0.0.4")
)
def prometheus_metrics(request: Request) -> Response:
    """Request counts, latencies and store counters of this worker, in Prometheus text format."""
    text = metrics.REGISTRY.render(_pool_gauges(state_of(request)))
    return Response(text, media_type=metrics.CONTENT_TYPE)


def _pool_gauges(state: ServerState) -> list[metrics.Gauge]:
    # SQL stores only; other stores (and pools without these counters) report nothing.
    pool = getattr(getattr(state.store, "engine", None), "pool", None)
    checked_out = getattr(pool, "checkedout", None)
    if checked_out is None:
        return []
    return [
        (
            "mltrail_db_connections_in_use",
            "Database connections checked out of this worker's pool.",
            float(checked_out()),
        )
    ]


@router.get("/version", response_class=Response, responses=_text("The version, e.g. 0.1.0"))
def version() -> Response:
    """The server's mltrail version, as plain text."""
    return PlainTextResponse(__version__)


__all__ = ["router"]
