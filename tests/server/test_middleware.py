"""Limits and hygiene of the server: body size, error shapes, the access log, /metrics, /health."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.requests import Request  # FastAPI resolves endpoint signatures at runtime

from mltrail._version import __version__
from mltrail.server import metrics
from mltrail.server.app import ServerSettings, create_app

LIMIT = 4096
ERROR_KEYS = {"error_code", "message", "hint", "kind"}
LOG_FIELDS = {
    "time",
    "method",
    "path",
    "status",
    "duration_ms",
    "bytes_in",
    "bytes_out",
    "client",
    "user",
    "request_id",
}


class Api:
    """Calls an app in-process through httpx's ASGI transport; bodies stream lazily."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def request(
        self, method: str, path: str, *, chunks: Iterable[bytes] | None = None, **kw: Any
    ) -> httpx.Response:
        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            base = "http://127.0.0.1"
            async with httpx.AsyncClient(transport=transport, base_url=base) as client:
                if chunks is not None:
                    kw["content"] = _aiter(chunks)
                return await client.request(method, path, **kw)

        return asyncio.run(call())

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("POST", path, **kw)


async def _aiter(chunks: Iterable[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


def settings_for(tmp_path: Path, **kw: Any) -> ServerSettings:
    kw.setdefault("store_uri", f"sqlite:///{tmp_path / 'mltrail.db'}")
    kw.setdefault("objects", str(tmp_path / "objects"))
    return ServerSettings(max_body_bytes=LIMIT, **kw)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Any]:
    app = create_app(settings_for(tmp_path))
    yield app
    app.state.mltrail.close()


@pytest.fixture
def api(app: Any) -> Api:
    return Api(app)


@pytest.fixture
def access() -> Iterator[list[dict[str, Any]]]:
    """The access log lines of the test, parsed (each must be one JSON object)."""
    lines: list[dict[str, Any]] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(json.loads(record.getMessage()))

    logger = logging.getLogger("mltrail.server.access")
    handler, level = Collect(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield lines
    logger.removeHandler(handler)
    logger.setLevel(level)


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) <= ERROR_KEYS and {"error_code", "message"} <= set(body), body
    assert body["error_code"] == code, body
    assert body["message"] and "Traceback" not in response.text
    return body


# -- body size -----------------------------------------------------------------------------------


def test_a_declared_length_over_the_limit_is_refused_before_reading(
    api: Api, access: list[dict[str, Any]]
) -> None:
    response = api.post("/api/v1/experiments", content=b" " * (LIMIT + 1))
    body = assert_error(response, 413, "REQUEST_TOO_LARGE")
    assert f"limit of {LIMIT} bytes" in body["message"]
    assert body["hint"]
    assert response.headers["x-request-id"] == access[-1]["request_id"]
    assert access[-1]["status"] == 413
    assert access[-1]["bytes_in"] == 0


def test_a_chunked_body_is_refused_at_the_first_chunk_past_the_limit(api: Api) -> None:
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        for _ in range(1000):
            sent += 1
            yield b" " * 1024

    body = assert_error(api.post("/api/v1/experiments", chunks=chunks()), 413, "REQUEST_TOO_LARGE")
    assert str(LIMIT) in body["message"]
    assert sent == LIMIT // 1024 + 1


def test_the_413_stands_whatever_the_handler_makes_of_the_refusal(app: Any, api: Api) -> None:
    async def consume(request: Request) -> None:
        try:
            async for _ in request.stream():
                pass
        except Exception as exc:
            raise RuntimeError("a handler that turns every error into another") from exc

    app.router.add_api_route("/test/consume", consume, methods=["POST"])
    response = api.post("/test/consume", chunks=[b" " * 1024] * 10)
    assert_error(response, 413, "REQUEST_TOO_LARGE")


def test_a_body_at_the_limit_passes(api: Api) -> None:
    doc = json.dumps({"name": "at-the-limit"}).encode()
    response = api.post(
        "/api/v1/experiments",
        content=doc + b" " * (LIMIT - len(doc)),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 201, response.text
    chunked = api.post(
        "/api/v1/experiments",
        chunks=[b'{"name": "chunked"', b" " * (LIMIT - 19), b"}"],
        headers={"Content-Type": "application/json"},
    )
    assert chunked.status_code == 201, chunked.text


def test_object_uploads_are_not_held_to_the_json_limit(api: Api) -> None:
    response = api.request("PUT", "/api/v1/objects/" + "ab" * 32, content=b"x" * (LIMIT * 4))
    assert response.status_code != 413, response.text
    # Only uploads: the JSON endpoints beside them are limited like all others.
    response = api.post("/api/v1/objects/missing", content=b" " * (LIMIT + 1))
    assert_error(response, 413, "REQUEST_TOO_LARGE")


def test_over_a_real_socket_the_client_reads_the_413_and_the_server_stays_up(
    tmp_path: Path,
) -> None:
    from tests.live import serve

    with serve(settings_for(tmp_path)) as url, httpx.Client(base_url=url, timeout=30) as client:
        big = b" " * (LIMIT * 256)
        assert_error(client.post("/api/v1/runs/search", content=big), 413, "REQUEST_TOO_LARGE")
        streamed = client.post("/api/v1/runs/search", content=iter([b" " * 1024] * 256))
        assert_error(streamed, 413, "REQUEST_TOO_LARGE")
        assert client.get("/health").status_code == 200


# -- error shapes --------------------------------------------------------------------------------


def test_malformed_json_is_a_400_in_the_error_shape(api: Api) -> None:
    response = api.post(
        "/api/v1/experiments", content=b'{"name": ', headers={"Content-Type": "application/json"}
    )
    body = assert_error(response, 400, "INVALID_PARAMETER_VALUE")
    assert "json" in body["message"].lower()


def test_unknown_routes_and_methods_answer_in_the_error_shape(api: Api) -> None:
    body = assert_error(api.get("/api/v1/no-such-thing"), 404, "ENDPOINT_NOT_FOUND")
    assert "/api/v1/no-such-thing" in body["message"]
    assert_error(api.request("DELETE", "/api/v1/experiments"), 405, "METHOD_NOT_ALLOWED")


def test_an_unexpected_error_is_a_500_with_a_request_id_and_no_traceback(
    app: Any, api: Api, access: list[dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    def broken(experiment_id: str) -> None:
        raise RuntimeError("secret connection string postgresql://admin:hunter2@db")

    app.state.mltrail.store.get_experiment = broken
    with caplog.at_level(logging.ERROR, logger="mltrail.server"):
        response = api.get("/api/v1/experiments/0")
    body = assert_error(response, 500, "INTERNAL_ERROR")
    assert "hunter2" not in response.text and "RuntimeError" not in response.text
    request_id = re.search(r"request id (\w+)", body["message"])
    assert request_id, body
    # The log has the details, under the id the client was given.
    logged = [r for r in caplog.records if request_id[1] in r.getMessage()]
    assert logged and logged[0].exc_info is not None
    assert response.headers["x-request-id"] == request_id[1]
    assert access[-1]["status"] == 500
    assert access[-1]["request_id"] == response.headers["x-request-id"]


@pytest.mark.parametrize(
    "bad",
    [
        "params.x = '1'; DROP TABLE runs; --",
        "1=1 OR",
        "params.x = '' OR '1'='1'",
        "metrics.loss < 1 UNION SELECT * FROM runs",
        "params.x = 'a' --",
    ],
)
def test_sql_in_a_filter_is_a_syntax_error_and_touches_nothing(api: Api, bad: str) -> None:
    run = api.post(
        "/api/v1/runs", json={"experiment_id": "0", "run_name": "keep-me", "start_time": 1}
    )
    assert run.status_code == 201, run.text
    response = api.post("/api/v1/runs/search", json={"experiment_ids": ["0"], "filter": bad})
    body = assert_error(response, 400, "INVALID_PARAMETER_VALUE")
    # The message points at the offending spot of the filter, which it quotes.
    assert bad in body["message"] and "^" in body["message"]
    found = api.post("/api/v1/runs/search", json={"experiment_ids": ["0"]}).json()["runs"]
    assert [r["info"]["run_name"] for r in found] == ["keep-me"]


def test_sql_inside_quoted_values_and_keys_is_only_text(api: Api) -> None:
    api.post("/api/v1/runs", json={"experiment_id": "0", "run_name": "keep-me", "start_time": 1})
    for text in (
        "params.x = 'a''; DROP TABLE runs; --'",
        "params.`x'; DROP TABLE runs; --` = '1'",
        "tags.t LIKE '%'' OR ''1''=''1'",
    ):
        response = api.post("/api/v1/runs/search", json={"experiment_ids": ["0"], "filter": text})
        assert response.status_code == 200, (text, response.text)
        assert response.json()["runs"] == []
    found = api.post("/api/v1/runs/search", json={"experiment_ids": ["0"]}).json()["runs"]
    assert len(found) == 1


# -- access log ----------------------------------------------------------------------------------


def test_the_access_log_has_one_json_line_per_request(
    api: Api, access: list[dict[str, Any]]
) -> None:
    body = json.dumps({"name": "logged"}).encode()
    response = api.post(
        "/api/v1/experiments",
        content=body,
        headers={"Content-Type": "application/json", "X-Mltrail-User": "alice"},
    )
    assert response.status_code == 201
    assert len(access) == 1
    line = access[0]
    assert set(line) == LOG_FIELDS
    assert line["method"] == "POST" and line["path"] == "/api/v1/experiments"
    assert line["status"] == 201 and line["user"] == "alice"
    assert line["bytes_in"] == len(body) and line["bytes_out"] == len(response.content)
    assert line["client"] == "127.0.0.1"
    assert 0 < line["duration_ms"] < 10_000
    assert line["request_id"] == response.headers["x-request-id"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", line["time"])

    api.get("/health")
    assert access[1]["user"] is None  # no auth dependency ran


def test_a_proxy_request_id_is_kept_and_a_bad_one_replaced(
    api: Api, access: list[dict[str, Any]]
) -> None:
    kept = api.get("/version", headers={"X-Request-Id": "lb-7f3a.42"})
    assert kept.headers["x-request-id"] == "lb-7f3a.42" == access[0]["request_id"]
    replaced = api.get("/version", headers={"X-Request-Id": '"}{"user": "root'})
    assert re.fullmatch(r"[0-9a-f]{16}", replaced.headers["x-request-id"])


def test_the_access_log_can_be_turned_off(tmp_path: Path, access: list[dict[str, Any]]) -> None:
    app = create_app(settings_for(tmp_path, access_log=False))
    try:
        response = Api(app).get("/health")
    finally:
        app.state.mltrail.close()
    assert response.status_code == 200 and response.headers["x-request-id"]
    assert access == []


# -- /metrics ------------------------------------------------------------------------------------

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse_prometheus(text: str) -> Samples:
    """The samples of a text exposition, checking every family is declared before use."""
    declared: dict[str, str] = {}
    samples: Samples = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in {"counter", "gauge", "histogram"} and name not in declared, line
            declared[name] = kind
            continue
        if line.startswith("# HELP ") or not line:
            continue
        m = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\} (\S+)", line)
        assert m, f"not a sample line: {line!r}"
        name, labels = m[1], re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m[2])
        family = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in declared or declared.get(family) == "histogram", line
        samples[(name, frozenset(labels))] = float(m[3])
    return samples


def sample(samples: Samples, name: str, **labels: str) -> float:
    want = set(labels.items())
    found = [v for (n, ls), v in samples.items() if n == name and want <= set(ls)]
    assert len(found) <= 1, (name, labels)
    return found[0] if found else 0.0


def test_metrics_count_requests_by_route_template(api: Api) -> None:
    route = {"method": "GET", "route": "/api/v1/runs/{run_id}"}
    before = parse_prometheus(api.get("/metrics").text)
    for _ in range(3):
        assert api.get("/api/v1/runs/" + "e" * 32).status_code == 404
    api.request("BREW", "/api/v1/experiments")
    response = api.get("/metrics")
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    after = parse_prometheus(response.text)

    def delta(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert delta("mltrail_http_requests_total", status="4xx", **route) == 3
    assert delta("mltrail_http_request_duration_seconds_count", **route) == 3
    assert delta("mltrail_http_request_duration_seconds_bucket", le="+Inf", **route) == 3
    assert delta("mltrail_http_requests_total", method="other", status="4xx") == 1
    # Raw paths never become label values: one series per route, whatever the ids.
    assert not any("e" * 32 in value for _, labels in after for _, value in labels)
    assert sample(after, "mltrail_http_requests_in_flight") == 1  # the scrape itself
    assert sample(after, "process_start_time_seconds") > 0
    buckets = sorted(
        (float(dict(ls)["le"]), v)
        for (n, ls), v in after.items()
        if n == "mltrail_http_request_duration_seconds_bucket" and set(route.items()) <= set(ls)
    )
    assert [v for _, v in buckets] == sorted(v for _, v in buckets)  # cumulative


def test_routes_count_what_only_they_know(api: Api) -> None:
    before = sample(parse_prometheus(api.get("/metrics").text), "mltrail_metric_points_total")
    run = api.post("/api/v1/runs", json={"experiment_id": "0", "run_name": "r", "start_time": 1})
    points = [["loss", 0.5, 1, i] for i in range(7)]
    batch = {"batches": [{"run_id": run.json()["info"]["run_id"], "metrics": points}]}
    assert api.post("/api/v1/runs/batches", json=batch).json() == {"errors": {}}
    after = sample(parse_prometheus(api.get("/metrics").text), "mltrail_metric_points_total")
    assert after - before == 7
    with pytest.raises(KeyError, match="metric_point"):
        metrics.count("metric_point")


def test_label_values_are_escaped() -> None:
    registry = metrics.Registry()
    registry.started_request()
    registry.finished_request("GET", '/odd/"quoted"\\path\n', 200, 0.01, 0, 0)
    samples = parse_prometheus(registry.render())
    assert sample(samples, "mltrail_http_requests_total", status="2xx") == 1


# -- /health and /version ------------------------------------------------------------------------


def test_health_and_version(api: Api, tmp_path: Path) -> None:
    response = api.get("/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "version": __version__,
        "store": "ok",
        "objects": "ok",
    }
    version = api.get("/version")
    assert version.text == __version__ and version.headers["content-type"].startswith("text/plain")

    no_objects = create_app(settings_for(tmp_path, objects=None))
    try:
        assert Api(no_objects).get("/health").json()["objects"] == "none"
    finally:
        no_objects.state.mltrail.close()


@pytest.mark.postgres
def test_health_is_503_and_the_api_fails_cleanly_when_the_database_is_gone(
    postgres: Any, tmp_path: Path
) -> None:
    import psycopg

    uri = postgres.create_database()
    app = create_app(settings_for(tmp_path, store_uri=uri))
    api = Api(app)
    try:
        assert api.get("/health").status_code == 200
        with psycopg.connect(postgres.uri(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{uri.rsplit("/", 1)[1]}" WITH (FORCE)')
        response = api.get("/health")
        assert response.status_code == 503
        assert response.json() == {
            "status": "unavailable",
            "version": __version__,
            "store": "unavailable",
            "objects": "ok",
        }
        failed = api.get("/api/v1/experiments")
        assert_error(failed, 503, "STORE_ERROR")
        assert failed.headers["retry-after"]
        assert "psycopg" not in failed.text and "does not exist" not in failed.text
    finally:
        app.state.mltrail.close()
