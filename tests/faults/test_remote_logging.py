"""A training job logging to ``mltrail server`` while its database or the server itself goes away.

Real components throughout: PostgreSQL from the machine's binaries, ``mltrail server`` as a
process, the job a Python process logging with ``mt.log_metric`` in a loop. Nothing may be lost
and the run must end FINISHED only once every point is on the server.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.faults.conftest import child_env, mltrail_cmd, python_cmd
from tests.live import wait_for

pytestmark = [pytest.mark.faults, pytest.mark.postgres]
pytest.importorskip("fastapi")

# Logs "loss" at steps 0, 1, 2… (about 1,000 points a second) for SECONDS, then ends the run.
# Prints the run id first and the number of points logged last.
JOB = """
    import os, time
    import mltrail as mt

    mt.set_experiment("faults")
    run = mt.start_run(run_name="loop", capture=False)
    print(run.info.run_id, flush=True)
    n = 0
    end = time.monotonic() + float(os.environ["LOG_SECONDS"])
    while time.monotonic() < end:
        for _ in range(10):
            mt.log_metric("loss", n / 1000, step=n)
            n += 1
        time.sleep(0.01)
    mt.end_run()
    print(n, flush=True)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def mltrail_server(store: str, objects: Path, port: int, log: Path) -> Iterator[subprocess.Popen]:
    """``mltrail server`` on ``port`` (one process), ready; stopped (SIGTERM) when done."""
    env = child_env(log.parent / "home")
    migrated = subprocess.run(
        mltrail_cmd("server", "migrate", "--store", store), env=env, capture_output=True, text=True
    )
    assert migrated.returncode == 0, migrated.stderr
    args = ["server", "--store", store, "--objects", str(objects), "--port", str(port)]
    with log.open("ab") as out:
        proc = subprocess.Popen(
            mltrail_cmd(*args, "--no-access-log"), env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        url = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            assert proc.poll() is None, log.read_text()
            try:
                return httpx.get(url + "/health", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(ready, 120)
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@dataclass
class Watch:
    """What a reader polling the run saw: the point count when it first saw the run ended."""

    url: str
    run_id: str
    ended: tuple[str, int] | None = None
    errors: list[BaseException] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def loop(self) -> None:
        try:
            with httpx.Client(base_url=self.url, timeout=10) as c:
                while not self.stop.is_set() and self.ended is None:
                    try:
                        info = c.get(f"/api/v1/runs/{self.run_id}")
                        status = info.json()["info"]["status"] if info.status_code == 200 else None
                        if status not in (None, "RUNNING"):
                            # Read right after: a point arriving later came after the status.
                            self.ended = (status, len(points(c, self.run_id)))
                    except httpx.TransportError:
                        pass  # the server is down for a while: that is the test
                    time.sleep(0.05)
        except BaseException as exc:
            self.errors.append(exc)


def points(c: httpx.Client, run_id: str) -> list[int]:
    reply = c.get(f"/api/v1/runs/{run_id}/metrics", params={"key": "loss"}, timeout=120)
    assert reply.status_code == 200, reply.text
    return [p["step"] for p in reply.json()["metrics"]]


def start_job(tmp_path: Path, url: str, seconds: float) -> tuple[subprocess.Popen, str]:
    """The logging job, started; (its process, its run id once it printed it)."""
    env = child_env(
        tmp_path / "home",
        MLTRAIL_TRACKING_URI=url,
        MLTRAIL_SPOOL_DIR=str(tmp_path / "spool"),
        LOG_SECONDS=str(seconds),
    )
    work = tmp_path / "work"
    work.mkdir()
    pipe = subprocess.PIPE
    proc = subprocess.Popen(python_cmd(JOB), cwd=work, env=env, stdout=pipe, stderr=pipe, text=True)
    run_id = proc.stdout.readline().strip()  # type: ignore[union-attr]
    if len(run_id) != 32:
        proc.kill()
        raise AssertionError(proc.communicate()[1])
    return proc, run_id


def on_server(url: str, run_id: str) -> int:
    """How many points of the run the server has now (0 while it does not answer)."""
    try:
        with httpx.Client(base_url=url, timeout=10) as c:
            return len(points(c, run_id))
    except (httpx.TransportError, AssertionError):
        return 0


def spooled(tmp_path: Path) -> list[Path]:
    """The spool's records still waiting for the server."""
    return [p for p in (tmp_path / "spool").rglob("*.json") if "rejected" not in p.parts]


def check_everything_arrived(tmp_path: Path, job: subprocess.Popen, url: str, watch: Watch) -> Any:
    out, err = job.communicate(timeout=240)
    watch.stop.set()
    assert job.returncode == 0, err
    logged = int(out.split()[-1])
    assert "not stored" not in err and "Traceback" not in err, err
    with httpx.Client(base_url=url, timeout=30) as c:
        run = c.get(f"/api/v1/runs/{watch.run_id}").json()
        steps = points(c, watch.run_id)
    assert not watch.errors, watch.errors[0]
    assert len(steps) == logged, f"{logged - len(set(steps))} of {logged} points lost"
    assert sorted(steps) == list(range(logged))  # each once
    assert run["info"]["status"] == "FINISHED"
    # Seen ended by a reader polling all along: every point was there already.
    assert watch.ended == ("FINISHED", logged)
    assert spooled(tmp_path) == []
    return logged


def watching(url: str, run_id: str) -> Watch:
    watch = Watch(url, run_id)
    threading.Thread(target=watch.loop, daemon=True).start()
    return watch


def test_postgres_stopped_35_s_while_logging_loses_no_point(tmp_path: Path) -> None:
    from tests.pg import PostgresServer, find_pg_bin

    bin_dir = find_pg_bin()
    if bin_dir is None:
        if os.environ.get("MLTRAIL_REQUIRE_POSTGRES"):
            pytest.fail("PostgreSQL binaries not found; install postgresql-15 (see .ci/run)")
        pytest.skip("PostgreSQL binaries not found")
    pg = PostgresServer(bin_dir)  # of its own: stopping the session's would break other tests
    pg.start()
    try:
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        store = pg.create_database()
        with mltrail_server(store, tmp_path / "objects", port, tmp_path / "server.log") as server:
            job, run_id = start_job(tmp_path, url, seconds=50)
            watch = watching(url, run_id)
            wait_for(lambda: on_server(url, run_id) > 0)
            pg.stop_server("fast")
            time.sleep(35)  # the outage itself
            assert job.poll() is None and server.poll() is None
            assert spooled(tmp_path), "the job's writes did not wait in its spool"
            pg.start_server()
            logged = check_everything_arrived(tmp_path, job, url, watch)
            assert logged > 10_000
            assert server.poll() is None
        assert "Traceback" not in (tmp_path / "server.log").read_text()
    finally:
        pg.stop()


def test_the_server_killed_and_restarted_while_logging_loses_no_point(
    tmp_path: Path, postgres: Any
) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    store = postgres.create_database()
    log = tmp_path / "server.log"
    with mltrail_server(store, tmp_path / "objects", port, log) as first:
        job, run_id = start_job(tmp_path, url, seconds=35)
        watch = watching(url, run_id)
        wait_for(lambda: on_server(url, run_id) > 0)
        first.send_signal(signal.SIGKILL)
        first.wait(30)
        time.sleep(15)  # down this long
        assert job.poll() is None
        assert spooled(tmp_path), "the job's writes did not wait in its spool"
    with mltrail_server(store, tmp_path / "objects", port, log) as second:
        logged = check_everything_arrived(tmp_path, job, url, watch)
        assert logged > 5_000
        assert second.poll() is None
