"""Shared fixtures: isolation from the user's environment, SQLite and PostgreSQL stores."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pg import PostgresServer, find_pg_bin

#: Set to 1 to run the fault and long tests with the rest; ``-m "faults or long"`` runs them alone.
ENV_FAULT_TESTS = "MLTRAIL_FAULT_TESTS"

_ENV_VARS = (
    "MLTRAIL_TRACKING_URI",
    "MLTRAIL_OBJECTS",
    "MLTRAIL_EXPERIMENT_NAME",
    "MLTRAIL_DEBUG",
    "MLTRAIL_HEARTBEAT_TIMEOUT",
)


#: Markers of the tests left out of a plain run, which stays under 10 minutes on 2 cores.
LONG_PASS = ("faults", "long")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave the fault and long tests out of a run whose ``-m`` names neither.

    They take minutes (a database stopped for 35 s, disks filled, commands killed, whole
    example projects) and run in a pass of their own (``pytest -n 2 -m "faults or long"``, see
    .ci/run). Done here rather than with ``-m 'not faults'`` in addopts, which any other ``-m``
    on the command line would replace.
    """
    expr = config.option.markexpr or ""
    if any(m in expr for m in LONG_PASS) or os.environ.get(ENV_FAULT_TESTS) == "1":
        return
    kept, left_out = [], []
    for item in items:
        long = any(item.get_closest_marker(m) for m in LONG_PASS)
        (left_out if long else kept).append(item)
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = kept


@pytest.fixture(autouse=True)
def _isolate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test runs in its own folder with no mltrail settings from the outside."""
    for name in _ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLTRAIL_CAPTURE", "0")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    yield
    from mltrail.tracking import fluent

    # Leave no active run or client behind for the next test in this process.
    while fluent._run_stack:
        fluent.end_run()
    fluent.set_tracking_uri(None)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL server per test process, started from the machine's binaries."""
    bin_dir = find_pg_bin()
    if bin_dir is None:
        if os.environ.get("MLTRAIL_REQUIRE_POSTGRES"):
            pytest.fail("PostgreSQL binaries not found; install postgresql-15 (see .ci/run)")
        pytest.skip("PostgreSQL binaries not found (set MLTRAIL_PG_BIN or install postgresql)")
    server = PostgresServer(bin_dir)
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres), "http"])
def store_uri(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty store URI on each backend (http: a live server over a SQLite store)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'mltrail.db'}"
    elif request.param == "postgres":
        yield request.getfixturevalue("postgres").create_database()
    else:
        if request.node.get_closest_marker("sql_only"):
            pytest.skip("tests the SQL store itself (tables, engine, migrations)")
        from mltrail.server.app import ServerSettings
        from tests.live import serve

        served = tmp_path / "served"
        served.mkdir()
        settings = ServerSettings(f"sqlite:///{served / 'mltrail.db'}", str(served / "objects"))
        with serve(settings) as url:
            yield url


@pytest.fixture
def client(store_uri: str, tmp_path: Path) -> Iterator:
    """A client on a fresh store of each backend, objects in the test's folder."""
    from mltrail import MltrailClient

    c = MltrailClient(store_uri, objects=str(tmp_path / "objects"))
    yield c
    c.close()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """An initialized embedded project in the test's folder, used by the fluent API."""
    from mltrail.config import init_project

    return init_project(tmp_path)
