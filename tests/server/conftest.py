"""Live servers for the server tests: uvicorn in a thread of the test process, on 127.0.0.1.

``start_server(settings=None, **changes)`` starts one and returns its base URL; with no settings
it serves a SQLite store and an object folder in ``tmp_path/server`` (``changes`` replace
fields, e.g. ``presign=True``). Every server a test started stops when the test ends. Calling it
twice with the defaults gives two servers on the same store, like two replicas.
``live_server`` is that default server, ``s3_live_server`` the same with objects in a fresh
bucket of the local S3-compatible server (moto).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

# The moto fixtures, for s3_live_server (a conftest below the root cannot use pytest_plugins).
# Marked for assert rewriting before the import, as a plugin would be: other modules do load it
# with pytest_plugins, and pytest warns about a plugin it finds already imported unrewritten.
pytest.register_assert_rewrite("tests.s3server")
from tests.s3server import aws_env, bucket, s3_client, s3_endpoint  # noqa: E402, F401

StartServer = Callable[..., str]


def default_settings(tmp_path: Path) -> object:
    """A server on a SQLite store and an object folder in ``tmp_path/server``, no access log."""
    from mltrail.server.app import ServerSettings

    folder = tmp_path / "server"
    folder.mkdir(exist_ok=True)
    return ServerSettings(
        store_uri=f"sqlite:///{folder / 'mltrail.db'}",
        objects=str(folder / "objects"),
        access_log=False,
    )


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[StartServer]:
    """A factory: ``start_server(settings=None, **changes) -> base URL``; stopped at test end."""
    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    from tests.live import serve

    with ExitStack() as stack:

        def start(settings: object = None, **changes: object) -> str:
            chosen = settings if settings is not None else default_settings(tmp_path)
            if changes:
                chosen = dataclasses.replace(chosen, **changes)  # type: ignore[type-var]
            return stack.enter_context(serve(chosen))

        yield start


@pytest.fixture
def live_server(start_server: StartServer) -> str:
    """The base URL of a server on a SQLite store and an object folder in tmp_path."""
    return start_server()


@pytest.fixture
def s3_live_server(
    start_server: StartServer,
    s3_endpoint: str,  # noqa: F811
    bucket: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> str:
    """The base URL of a server whose objects live in a fresh bucket on the moto server."""
    monkeypatch.setenv("MLTRAIL_S3_ENDPOINT_URL", s3_endpoint)
    return start_server(objects=f"s3://{bucket}/objects")
