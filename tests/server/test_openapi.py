"""The OpenAPI document tells the truth: schemathesis calls every operation with generated input.

Each reply must not be a server error, must have a documented status and content type, and must
match the documented schema. The schema comes from an app that serves nothing (the document
needs no store); the calls go to a real app on a SQLite store in the test's folder.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis import checks  # noqa: E402

from mltrail.server.app import ServerSettings, create_app  # noqa: E402

#: Examples per operation: enough to reach each one's error paths, small enough for ~30 s.
MAX_EXAMPLES = 8

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]

# schemathesis calls the app as Host "testserver": a name an auth-off server must be told of.
_HOSTS = ("testserver",)
_DOC_APP = create_app(
    ServerSettings("sqlite://", None, access_log=False, allowed_hosts=_HOSTS),
    state=SimpleNamespace(),  # type: ignore[arg-type]
)
schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", _DOC_APP)
_DOC = _DOC_APP.openapi()


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Any]:
    app = create_app(
        ServerSettings(
            f"sqlite:///{tmp_path / 'mltrail.db'}", str(tmp_path / "objects"), allowed_hosts=_HOSTS
        )
    )
    yield app
    app.state.mltrail.close()


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_keeps_to_the_document(case: Any, app: Any) -> None:
    response = case.call(app=app)
    case.validate_response(response, checks=CHECKS)


def _operations() -> list[Any]:
    found = []
    for path, methods in _DOC["paths"].items():
        for method in methods:
            found.append(pytest.param(method.upper(), path, id=f"{method} {path}"))
    return found


@pytest.mark.parametrize(("method", "path"), _operations())
def test_every_operation_documents_the_error_shape(method: str, path: str) -> None:
    responses = _DOC["paths"][path][method.lower()]["responses"]
    for status in ("4XX", "5XX"):
        assert responses[status]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorOut"
        }, (method, path, status)
    # Validation errors are answered 400 in the error shape, never FastAPI's 422.
    assert "422" not in responses


BIG = 2**70
_RUN = "0" * 32
_HASH = "ab" * 32
_FILE = {"path": "a", "hash": _HASH, "size": 1, "mode": 0o644}
_DATASET = {"path": "d", "hash": _HASH, "kind": "file", "size": 1}


def _point(timestamp: int, step: int) -> dict[str, Any]:
    return {"batches": [{"run_id": _RUN, "metrics": [["k", 1, timestamp, step]]}]}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v1/runs", {"experiment_id": "0", "run_name": "r", "start_time": BIG}),
        ("PATCH", f"/api/v1/runs/{_RUN}", {"end_time": BIG}),
        ("POST", "/api/v1/runs/batches", _point(BIG, 0)),
        ("POST", "/api/v1/runs/batches", _point(1, BIG)),
        ("POST", f"/api/v1/runs/{_RUN}/artifacts", {"files": [{**_FILE, "size": BIG}]}),
        ("POST", f"/api/v1/runs/{_RUN}/artifacts", {"files": [{**_FILE, "mode": BIG}]}),
        (
            "POST",
            f"/api/v1/runs/{_RUN}/datasets",
            {"direction": "input", "datasets": [{**_DATASET, "size": BIG}]},
        ),
        ("GET", f"/api/v1/experiments/{BIG}", None),
        ("POST", "/api/v1/experiments/summaries", {"experiment_ids": [str(BIG)]}),
        ("POST", "/api/v1/runs/search", {"experiment_ids": [str(BIG)]}),
        ("POST", "/api/v1/admin/tokens", {"user": "a", "role": "read", "expires_at": BIG}),
    ],
)
def test_integers_past_64_bits_are_a_400_not_a_500(
    app: Any, method: str, path: str, body: Any
) -> None:
    import asyncio

    import httpx

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            run = {"experiment_id": "0", "run_name": "r", "start_time": 1, "run_id": _RUN}
            assert (await client.post("/api/v1/runs", json=run)).status_code == 201
            return await client.request(method, path, json=body)

    response = asyncio.run(call())
    assert 400 <= response.status_code < 500, response.text
