"""Stateless workers: server processes on one PostgreSQL database and one S3 bucket.

Each server here is a separate ``uvicorn`` process, as in production, started from the settings
``mltrail server`` hands its workers; clients talk plain HTTP to the REST API.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from mltrail.server.app import ENV_SETTINGS, ServerSettings
from tests.live import wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

CLIENTS = 8


@dataclass
class Server:
    """One server process and where it answers."""

    proc: subprocess.Popen[bytes]
    url: str
    log: Path
    started: float = field(default_factory=time.monotonic)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def server_process(settings: ServerSettings, log: Path) -> Iterator[Server]:
    """A uvicorn process serving ``settings`` on a free loopback port, stopped on exit."""
    port = _free_port()
    env = {**os.environ, ENV_SETTINGS: settings.to_env()}
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "mltrail.server.app:app_from_env",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",  # ours is on; uvicorn's would be a second line per request
        "--log-level",
        "warning",
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = Server(proc, f"http://127.0.0.1:{port}", log)
    try:
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_ready(server: Server, timeout: float = 60) -> float:
    """Seconds from the process's start until /health answers 200."""
    deadline = time.monotonic() + timeout
    while True:
        if server.proc.poll() is not None:
            raise AssertionError(f"the server exited:\n{server.log_text()}")
        try:
            if httpx.get(server.url + "/health", timeout=2).status_code == 200:
                return time.monotonic() - server.started
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"the server did not get ready:\n{server.log_text()}")
        time.sleep(0.05)


def batch(run_id: str, key: str, steps: range) -> dict[str, Any]:
    """A write batch of ``key`` at ``steps`` (value = step) under a fresh batch id."""
    return {
        "batch_id": uuid.uuid4().hex,
        "batches": [
            {
                "run_id": run_id,
                "metrics": [[key, float(s), 1_700_000_000_000 + s, s] for s in steps],
            }
        ],
    }


def ok(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    assert response.status_code in (statuses or (200,)), response.text
    return response.json() if response.content else {}


# -- two replicas, concurrent clients ------------------------------------------------------------


@pytest.fixture
def replicas(
    tmp_path: Path, postgres: Any, s3_endpoint: str, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[list[Server]]:
    """Two server processes on one new PostgreSQL database and one S3 bucket, both ready."""
    monkeypatch.setenv("MLTRAIL_S3_ENDPOINT_URL", s3_endpoint)
    settings = ServerSettings(postgres.create_database(), f"s3://{bucket}/team")
    with ExitStack() as stack:
        # Started together, as an orchestrator would: the schema is created once between them.
        servers = [
            stack.enter_context(server_process(settings, tmp_path / f"server{i}.log"))
            for i in range(2)
        ]
        for server in servers:
            wait_ready(server)
        yield servers


def test_two_servers_serve_the_same_data_to_concurrent_clients(
    replicas: list[Server], s3_client: Any, bucket: str
) -> None:
    runs_per_client, batches_per_run, points_per_batch = 3, 4, 50
    created: list[str] = []
    errors: list[BaseException] = []
    clients = [httpx.Client(base_url=s.url, timeout=30) for s in replicas]

    def work(n: int) -> None:
        try:
            turn = n
            for r in range(runs_per_client):
                run = ok(
                    clients[turn % 2].post(
                        "/api/v1/runs",
                        json={"experiment_id": "0", "run_name": f"c{n}-r{r}", "start_time": 1},
                    ),
                    201,
                )
                run_id = run["info"]["run_id"]
                created.append(run_id)
                for b in range(batches_per_run):
                    turn += 1
                    doc = batch(
                        run_id, "loss", range(b * points_per_batch, (b + 1) * points_per_batch)
                    )
                    assert ok(clients[turn % 2].post("/api/v1/runs/batches", json=doc)) == {
                        "errors": {}
                    }
                    # A client that lost the reply retries, maybe through the other replica.
                    ok(clients[(turn + 1) % 2].post("/api/v1/runs/batches", json=doc))
                ok(clients[turn % 2].patch(f"/api/v1/runs/{run_id}", json={"status": "FINISHED"}))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors[0]
    assert len(created) == CLIENTS * runs_per_client

    search = {"experiment_ids": ["0"], "order_by": ["attributes.run_name ASC"]}
    listed = [ok(c.post("/api/v1/runs/search", json=search))["runs"] for c in clients]
    assert listed[0] == listed[1]
    assert sorted(r["info"]["run_id"] for r in listed[0]) == sorted(created)
    assert {r["info"]["status"] for r in listed[0]} == {"FINISHED"}
    expected = list(range(batches_per_run * points_per_batch))
    for run_id in created:
        for c in clients:
            points = ok(c.get(f"/api/v1/runs/{run_id}/metrics", params={"key": "loss"}))["metrics"]
            assert [p["step"] for p in points] == expected  # every point, once

    # Objects go to the one bucket: stored through one replica, read through the other.
    from mltrail.objects.hashing import hash_bytes

    data = os.urandom(300_000)
    h = hash_bytes(data)
    ok(clients[0].put(f"/api/v1/objects/{h}", content=data), 201)
    assert clients[1].get(f"/api/v1/objects/{h}").content == data
    keys = [o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert [k.replace("/", "") for k in keys] == [f"team{h}"]  # under the prefix, sharded

    for c in clients:
        c.close()
    for server in replicas:
        assert server.proc.poll() is None
        assert "Traceback" not in server.log_text()


def test_concurrent_registrations_through_both_servers_get_distinct_versions(
    replicas: list[Server],
) -> None:
    per_client = 3
    versions: list[int] = []
    errors: list[BaseException] = []
    tree = "ab" * 32

    def register(n: int) -> None:
        try:
            with ExitStack() as stack:
                clients = [
                    stack.enter_context(httpx.Client(base_url=s.url, timeout=30)) for s in replicas
                ]
                for i in range(per_client):
                    body = {"source": f"runs:/c{n}/model{i}", "tree_hash": tree}
                    reply = clients[(n + i) % 2].post("/api/v1/models/shared/versions", json=body)
                    versions.append(ok(reply, 201)["version"])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=register, args=(n,)) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors[0]
    assert sorted(versions) == list(range(1, CLIENTS * per_client + 1))
    for server in replicas:
        listed = ok(httpx.get(server.url + "/api/v1/models/shared/versions"))["versions"]
        assert sorted(v["version"] for v in listed) == sorted(versions)


# -- the database restarted under load -----------------------------------------------------------


def test_requests_fail_cleanly_while_the_database_is_down_and_recover_after(
    tmp_path: Path,
) -> None:
    from tests.pg import PostgresServer, find_pg_bin

    bin_dir = find_pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL binaries not found")
    # A database server of this test's own: the session's is shared with other tests.
    pg = PostgresServer(bin_dir)
    pg.start()
    try:
        settings = ServerSettings(pg.create_database(), str(tmp_path / "objects"))
        with server_process(settings, tmp_path / "server.log") as server:
            wait_ready(server)
            _log_through_a_restart(server, pg)
    finally:
        pg.stop()


def _log_through_a_restart(server: Server, pg: Any) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as setup:
        body = {"experiment_id": "0", "run_name": "steady", "start_time": 1}
        run_id = ok(setup.post("/api/v1/runs", json=body), 201)["info"]["run_id"]

    stop = threading.Event()
    failures: list[httpx.Response] = []
    acknowledged: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def log_loop(n: int) -> None:
        # Like the HTTP store: a batch is retried with its batch id until it is acknowledged.
        try:
            with httpx.Client(base_url=server.url, timeout=30) as client:
                i = 0
                while not stop.is_set():
                    step = n * 1_000_000 + i
                    doc = batch(run_id, "x", range(step, step + 1))
                    while True:
                        response = client.post("/api/v1/runs/batches", json=doc)
                        if response.status_code == 200:
                            break
                        with lock:
                            failures.append(response)
                        time.sleep(0.05)
                    assert response.json() == {"errors": {}}
                    with lock:
                        acknowledged.append(step)
                    i += 1
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=log_loop, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: len(acknowledged) > 0)
        before_outage = len(acknowledged)
        pg.stop_server("fast")
        wait_for(lambda: len(failures) > 0)
        during = httpx.get(server.url + "/health", timeout=10)
        assert during.status_code == 503 and during.json()["store"] == "unavailable"
        assert server.proc.poll() is None
        failed_during_outage = len(failures)
        pg.start_server()
        wait_ready(server, timeout=30)
        recovered_at = len(acknowledged)
        wait_for(lambda: len(acknowledged) > recovered_at)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert not errors, errors[0]
    assert before_outage > 0 and failed_during_outage > 0
    assert len(acknowledged) > recovered_at  # logging goes on without restarting the server
    for response in failures:
        assert response.status_code == 503, response.text
        assert response.json()["error_code"] == "STORE_ERROR"
        assert response.headers["retry-after"]
        assert "Traceback" not in response.text
    assert server.proc.poll() is None
    assert "Traceback" not in server.log_text()

    with httpx.Client(base_url=server.url, timeout=30) as client:
        points = ok(client.get(f"/api/v1/runs/{run_id}/metrics", params={"key": "x"}))["metrics"]
    # Acknowledged once each, even those whose commit landed just before the connection broke.
    assert sorted(p["step"] for p in points) == sorted(acknowledged)
