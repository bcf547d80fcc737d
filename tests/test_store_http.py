"""The HTTP store against a live server: retries, idempotent writes, errors that cross the wire.

The store interface itself is tested on the HTTP store by the ``http`` parameter of the shared
``store_uri`` fixture (test_store_sql.py, test_registry_store.py, ...); these tests cover what only
a remote store has.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from mltrail.entities import Metric, RunBatch
from mltrail.errors import InvalidValue, NotFound, ParamChanged, StoreError
from mltrail.server.app import ServerSettings, create_app
from mltrail.store.http import HttpStore
from mltrail.transport import HttpTransport


class Flaky:
    """ASGI wrapper: the first ``fail`` requests to ``path`` are handled, then answered 502.

    That is what a client sees when a proxy loses the reply of a write that did happen: the
    retry must not apply it twice.
    """

    def __init__(self, app, path: str, fail: int) -> None:
        self.app, self.path, self.fail, self.seen = app, path, fail, 0

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].endswith(self.path) or self.fail <= 0:
            return await self.app(scope, receive, send)
        self.fail -= 1
        self.seen += 1

        async def swallow(message):  # the real reply is lost
            pass

        await self.app(scope, receive, swallow)
        await send({"type": "http.response.start", "status": 502, "headers": []})
        await send({"type": "http.response.body", "body": b"bad gateway"})


@contextmanager
def serve_app(app) -> Iterator[str]:
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        threading.Event().wait(0.005)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def _settings(tmp_path: Path) -> ServerSettings:
    return ServerSettings(f"sqlite:///{tmp_path / 'srv.db'}", str(tmp_path / "objects"))


def _store(url: str) -> HttpStore:
    return HttpStore(url, HttpTransport(url, retries=3))


def test_a_batch_whose_reply_was_lost_is_applied_once(tmp_path):
    app = create_app(_settings(tmp_path))
    flaky = Flaky(app, "/runs/batches", fail=2)
    with serve_app(flaky) as url:
        store = _store(url)
        run = store.create_run("0", "r", "u", 1)
        points = [Metric("loss", 1.0 / (i + 1), 10 + i, i) for i in range(100)]
        assert store.write_batches([RunBatch(run.run_id, points, {"lr": "0.1"})]) == {}
        assert flaky.seen == 2  # two lost replies, then the third attempt got through
        history = store.get_metric_history(run.run_id, "loss")
        assert len(history) == 100
        assert store.get_run(run.run_id).data.params == {"lr": "0.1"}


def test_a_create_run_whose_reply_was_lost_makes_one_run(tmp_path):
    app = create_app(_settings(tmp_path))
    flaky = Flaky(app, "/runs", fail=1)
    with serve_app(flaky) as url:
        store = _store(url)
        run = store.create_run("0", "r", "u", 1)
        found = store.search_runs(["0"])
        assert [r.run_id for r in found] == [run.run_id]


def test_retries_give_up_with_a_clear_error(tmp_path):
    app = create_app(_settings(tmp_path))
    flaky = Flaky(app, "/experiments", fail=100)
    with serve_app(flaky) as url:
        store = HttpStore(url, HttpTransport(url, retries=2))
        with pytest.raises(StoreError, match="HTTP 502"):
            store.create_experiment("e")
        assert flaky.seen == 3


def test_an_unreachable_server_is_a_store_error(tmp_path):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    url = f"http://127.0.0.1:{port}"
    store = HttpStore(url, HttpTransport(url, retries=1))
    with pytest.raises(StoreError, match="cannot reach the mltrail server") as err:
        store.list_experiments()
    assert "mltrail server" in (err.value.hint or "")


def test_errors_keep_their_class_and_hint(tmp_path):
    with serve_app(create_app(_settings(tmp_path))) as url:
        store = _store(url)
        run = store.create_run("0", "r", "u", 1)
        store.write_batches([RunBatch(run.run_id, params={"a": "1"})])
        errors = store.write_batches([RunBatch(run.run_id, params={"a": "2"})])
        assert isinstance(errors[run.run_id], ParamChanged)
        assert "immutable" in str(errors[run.run_id])
        with pytest.raises(NotFound, match="does not exist"):
            store.get_run("0" * 32)
        with pytest.raises(InvalidValue, match="alias"):
            store.set_model_alias("m", "latest", 1, "u")


def test_a_large_batch_is_split_into_requests(tmp_path):
    with serve_app(create_app(_settings(tmp_path))) as url:
        store = _store(url)
        run = store.create_run("0", "r", "u", 1)
        points = [Metric("x", float(i), i, i) for i in range(120_000)]
        assert store.write_batches([RunBatch(run.run_id, points, tags={"t": "1"})]) == {}
        assert len(store.get_metric_history(run.run_id, "x")) == 120_000
        assert store.get_run(run.run_id).data.tags["t"] == "1"


def test_without_auth_the_user_header_names_the_client(tmp_path):
    with serve_app(create_app(_settings(tmp_path))) as url:
        transport = HttpTransport(url)
        transport.client.headers["X-Mltrail-User"] = "carol"
        body = {"experiment_id": "0", "run_name": "r", "start_time": 1}
        assert transport.call("POST", "/runs", json_body=body)["info"]["user_id"] == "carol"
