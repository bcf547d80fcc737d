"""Around the app: model references, the start-up line and hint, the socket, worker processes."""

from __future__ import annotations

import json
import logging
import shlex
import socket
from pathlib import Path

import pytest

from mltrail.errors import InvalidState, NotFound
from mltrail.models import load_model, save_model
from mltrail.serving import server
from tests.serving import models
from tests.serving.conftest import Client


def test_describe_names_flavor_and_inputs(model_dirs: dict[str, Path]):
    assert server.describe(load_model(model_dirs["wine"])) == "sklearn, 13 inputs"
    assert server.describe(load_model(model_dirs["mixed"])) == "python_function, 3 inputs"
    tensor = server.describe(load_model(model_dirs["tensor"]))
    assert tensor == "python_function, tensor float64 (-1, 2)"


def test_describe_a_model_without_signature(tmp_path: Path):
    save_model(models.RowSum(), tmp_path / "m")
    assert server.describe(load_model(tmp_path / "m")) == "python_function, no signature"
    assert server.example_curl(load_model(tmp_path / "m"), tmp_path / "m", "http://h:1") is None


def test_the_curl_hint_posts_the_first_example_row(model_dirs: dict[str, Path]):
    folder = model_dirs["wine"]
    curl = server.example_curl(load_model(folder), folder, "http://127.0.0.1:8080")
    words = shlex.split(curl)
    assert words[:7] == [
        "curl", "-X", "POST", "http://127.0.0.1:8080/invocations",
        "-H", "Content-Type: application/json", "-d",
    ]  # fmt: skip
    body = json.loads(words[7])
    X, _ = models.wine()
    assert body["dataframe_split"]["columns"] == list(X.columns)
    assert body["dataframe_split"]["data"] == [X.iloc[0].tolist()]


def test_references_that_are_neither_folders_nor_names(tmp_path: Path):
    for ref in ("./missing", "/no/such/model", "a b"):
        with pytest.raises(NotFound, match="no model folder at"):
            server.model_uri(ref)
    (tmp_path / "wine@production").mkdir()
    # An existing path wins over a registry name.
    assert server.model_uri(str(tmp_path / "wine@production")) == str(tmp_path / "wine@production")


def test_a_folder_source_is_used_in_place(model_dirs: dict[str, Path]):
    with server.open_source(str(model_dirs["wine"]), client=_no_store) as source:
        assert source.folder == model_dirs["wine"]
        assert source.load().source == str(model_dirs["wine"])
    assert model_dirs["wine"].is_dir()


def _no_store():
    raise AssertionError("a folder needs no store")


def test_bind_refuses_a_port_in_use():
    taken = server.bind("127.0.0.1", 0)
    try:
        port = taken.getsockname()[1]
        with pytest.raises(InvalidState, match=f"cannot listen on 127.0.0.1:{port}") as e:
            server.bind("127.0.0.1", port)
        assert e.value.hint and "--port" in e.value.hint
    finally:
        taken.close()


def test_bind_listens_so_clients_can_connect_before_the_server_runs():
    sock = server.bind("127.0.0.1", 0)
    try:
        with socket.create_connection(sock.getsockname(), timeout=2):
            pass
    finally:
        sock.close()


def test_a_worker_builds_its_app_from_the_folder_in_the_environment(
    model_dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
):
    # worker_app sets up the serving logger for a process of its own; keep this one's intact.
    log = logging.getLogger("mltrail.serving")
    for attr in ("handlers", "propagate", "level"):
        monkeypatch.setattr(log, attr, [] if attr == "handlers" else getattr(log, attr))
    monkeypatch.setenv(server.ENV_MODEL_DIR, str(model_dirs["wine"]))
    monkeypatch.setenv(server.ENV_SOURCE, "models:/wine@production")
    monkeypatch.setenv(server.ENV_MAX_BODY, "2000")
    app = server.worker_app()
    assert app.state.model.source == "models:/wine@production"
    assert app.state.max_body_bytes == 2000
    X, _ = models.wine()
    client = Client(app)
    doc = {"inputs": X.iloc[:2].to_numpy().tolist()}
    assert len(client.post_json(doc).json()["predictions"]) == 2
    assert client.post(b"x" * 2001, "application/json").status_code == 413
