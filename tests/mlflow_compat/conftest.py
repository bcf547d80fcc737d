"""The real mlflow client against a live ``mltrail server`` (uvicorn in a thread, 127.0.0.1).

mlflow is a test dependency only (pinned in the ``test`` extra). Without it these tests skip,
unless ``MLTRAIL_REQUIRE_MLFLOW`` is set (CI sets it), when its absence fails them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

if os.environ.get("MLTRAIL_REQUIRE_MLFLOW"):
    import mlflow  # noqa: F401  (a missing mlflow fails the run here, not as skips)
else:
    pytest.importorskip("mlflow")
pytest.importorskip("uvicorn")

# The moto fixtures, for servers whose objects live in S3 (see tests/server/conftest.py).
pytest.register_assert_rewrite("tests.s3server")
from tests.s3server import aws_env, bucket, s3_client, s3_endpoint  # noqa: E402, F401

#: The client's settings for tests: no telemetry (no network), no slow retries of our errors.
MLFLOW_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "120",
    # log_model without pip_requirements infers them in a subprocess (seconds per model).
    "MLFLOW_REQUIREMENTS_INFERENCE_TIMEOUT": "1",
}
_CLEARED = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_REGISTRY_URI",
    "MLFLOW_TRACKING_TOKEN",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_EXPERIMENT_NAME",
    "MLFLOW_EXPERIMENT_ID",
    "MLFLOW_RUN_ID",
)


@dataclass
class Served:
    """A live server: its URL, the store and object folder behind it."""

    url: str
    store_uri: str
    objects: str

    def mltrail(self) -> Any:
        """An mltrail client on the same store (the SQL store itself, not through the server)."""
        from mltrail import MltrailClient

        return MltrailClient(self.store_uri, objects=self.objects)


@pytest.fixture(autouse=True)
def _mlflow_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    import mlflow

    for name in _CLEARED:
        monkeypatch.delenv(name, raising=False)
    for name, value in MLFLOW_ENV.items():
        monkeypatch.setenv(name, value)
    yield
    while mlflow.active_run() is not None:
        mlflow.end_run()
    import mlflow.sklearn

    mlflow.sklearn.autolog(disable=True)  # mlflow.autolog(disable=True) leaves it on
    # mlflow keeps one store per URI for the process; `mltrail:` means another project per test.
    from mlflow.tracking._model_registry.registry import ModelRegistryStoreRegistry
    from mlflow.tracking._tracking_service.registry import TrackingStoreRegistry

    TrackingStoreRegistry._get_store_with_resolved_uri.cache_clear()
    ModelRegistryStoreRegistry._get_store_with_resolved_uri.cache_clear()


StartServer = Callable[..., Served]


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[StartServer]:
    """``start_server(store_uri=None, **settings) -> Served``; stopped when the test ends.

    With no store, a SQLite store in ``tmp_path/server``. Two calls with one ``store_uri`` and
    ``objects`` are two replicas of one server.
    """
    from mltrail.server.app import ServerSettings
    from tests.live import serve

    with ExitStack() as stack:

        def start(store_uri: str | None = None, **changes: Any) -> Served:
            folder = tmp_path / "server"
            folder.mkdir(exist_ok=True)
            uri = store_uri or f"sqlite:///{folder / 'mltrail.db'}"
            objects = changes.pop("objects", str(folder / "objects"))
            settings = ServerSettings(uri, objects, access_log=False, **changes)
            return Served(stack.enter_context(serve(settings)), uri, objects)

        yield start


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def server(request: pytest.FixtureRequest, start_server: StartServer) -> Served:
    """A server with auth off, on SQLite and on PostgreSQL."""
    if request.param == "postgres":
        return start_server(request.getfixturevalue("postgres").create_database())
    return start_server()


@pytest.fixture
def sqlite_server(start_server: StartServer) -> Served:
    """A server with auth off on a SQLite store."""
    return start_server()


@pytest.fixture
def tracking(sqlite_server: Served) -> Served:
    """The mlflow client's tracking URI set to a SQLite-backed server."""
    import mlflow

    mlflow.set_tracking_uri(sqlite_server.url)
    return sqlite_server


@pytest.fixture
def name() -> str:
    """A fresh experiment or model name."""
    return f"t-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def wine() -> tuple[Any, Any]:
    """scikit-learn's wine data as a DataFrame and labels."""
    from sklearn.datasets import load_wine

    return load_wine(return_X_y=True, as_frame=True)


def error_code(exc: BaseException) -> str:
    """The MLflow error code an exception the client raised carries."""
    return getattr(exc, "error_code", "")


def raises_code(code: str, call: Callable[..., Any], *args: Any, **kwargs: Any) -> str:
    """Call ``call``; it must raise MlflowException with ``code`` (no traceback in its text)."""
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException) as err:
        call(*args, **kwargs)
    assert error_code(err.value) == code, err.value
    assert "Traceback" not in str(err.value)
    return str(err.value)
