"""Running the scoring server: where the model comes from, the socket, and uvicorn.

The model is fetched (registry and run models: every file checked against its recorded hash)
and loaded once, in the parent, before anything listens: a bad reference fails with a message
and no server. With one worker, uvicorn serves that loaded model in this process. With several,
uvicorn starts worker processes that each load the model from the local folder named in
``MLTRAIL_SERVE_MODEL_DIR`` (no registry round trips), through ``worker_app``.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import tempfile
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mltrail.errors import NotFound, StoreNotFound
from mltrail.models.api import URI_SCHEMES, model_uri
from mltrail.netutil import bind, log_to_stderr

if TYPE_CHECKING:
    from fastapi import FastAPI

    from mltrail.models import PyFuncModel
    from mltrail.tracking.client import MltrailClient

ENV_MODEL_DIR = "MLTRAIL_SERVE_MODEL_DIR"
ENV_SOURCE = "MLTRAIL_SERVE_SOURCE"
ENV_MAX_BODY = "MLTRAIL_SERVE_MAX_BODY_BYTES"

#: An example request longer than this is not spelled out in the start-up hint.
_MAX_EXAMPLE_CHARS = 1500


@dataclass
class ModelSource(AbstractContextManager["ModelSource"]):
    """A model's files in a local folder: the folder itself, or a verified temporary copy."""

    uri: str
    folder: Path
    _tmp: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)

    def load(self) -> PyFuncModel:
        """Load the model for predict; its ``source`` is the URI it was asked by."""
        from mltrail.models import load_model

        model = load_model(self.folder)
        model.source = self.uri
        return model

    def close(self) -> None:
        """Remove the temporary copy, if there is one."""
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_source(ref: str, client: Callable[[], MltrailClient]) -> ModelSource:
    """Find the model ``ref`` names; copy registry and run models to a temporary folder.

    ``client`` opens the store, and is only called for ``models:/`` and ``runs:/`` references.
    """
    uri = model_uri(ref)
    if not uri.startswith(URI_SCHEMES):
        folder = Path(uri)
        if not folder.is_dir():
            raise NotFound(f"{uri} is not a model folder", hint="Pass the folder save_model wrote.")
        return ModelSource(uri, folder)
    from mltrail.models import fetch_model

    try:
        store = client()
    except StoreNotFound as e:
        raise StoreNotFound(
            f"cannot look up {uri}: {e.message}",
            hint="Run the command inside the project (or pass --store), or give a model folder.",
        ) from None
    tmp = tempfile.TemporaryDirectory(prefix="mltrail-serve-")
    try:
        folder = fetch_model(uri, Path(tmp.name) / "model", client=store)
    except BaseException:
        tmp.cleanup()
        raise
    return ModelSource(uri, folder, tmp)


# -- what the server prints ------------------------------------------------------------------
def describe(model: PyFuncModel) -> str:
    """``sklearn, 13 inputs``: the flavor and the input count (or tensor) of a model."""
    flavor = next((f for f in model.metadata.flavors if f != "python_function"), "python_function")
    signature = model.signature
    if signature is None:
        return f"{flavor}, no signature"
    if signature.inputs.tensor is not None:
        return f"{flavor}, {signature.inputs.describe()}"
    n = len(signature.inputs.columns)
    return f"{flavor}, {n} input{'' if n == 1 else 's'}"


def example_curl(model: PyFuncModel, folder: Path, url: str) -> str | None:
    """A curl command posting the model's serving example (first row only), if it has one."""
    info = model.metadata.saved_input_example_info or {}
    name = info.get("serving_input_path")
    if not name:
        return None
    try:
        doc = json.loads((folder / name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(doc, dict):
        split = doc.get("dataframe_split")
        if isinstance(split, dict) and isinstance(split.get("data"), list):
            doc = {**doc, "dataframe_split": {**split, "data": split["data"][:1]}}
        for key in ("inputs", "instances", "dataframe_records"):
            if isinstance(doc.get(key), list):
                doc = {**doc, key: doc[key][:1]}
    body = json.dumps(doc, separators=(",", ":"))
    if len(body) > _MAX_EXAMPLE_CHARS:
        return None
    return (
        f"curl -X POST {url}/invocations -H 'Content-Type: application/json' -d {shlex.quote(body)}"
    )


# -- socket and uvicorn ----------------------------------------------------------------------
def configure_logging() -> None:
    """Server-side log lines (failed predictions with their tracebacks) on stderr."""
    log_to_stderr("mltrail.serving")


def run(
    model: PyFuncModel | None,
    source: ModelSource,
    sock: socket.socket,
    *,
    workers: int = 1,
    max_body_bytes: int,
) -> None:
    """Serve until Ctrl-C or SIGTERM: ``model`` in this process, or ``workers`` processes
    that each load the model from ``source.folder`` (``model`` may then be None).

    Either signal is a normal stop: this returns, so the caller's clean-up (the temporary copy
    of a registry model) runs.
    """
    from mltrail.netutil import serve

    configure_logging()
    app = None
    if workers <= 1:
        from mltrail.serving.app import create_app

        app = create_app(model or source.load(), max_body_bytes=max_body_bytes)
    else:
        os.environ[ENV_MODEL_DIR] = str(source.folder)
        os.environ[ENV_SOURCE] = source.uri
        os.environ[ENV_MAX_BODY] = str(max_body_bytes)
    serve(app, sock, workers=workers, factory="mltrail.serving.server:worker_app")


def worker_app() -> FastAPI:
    """The app of one worker process: the model from the folder the parent prepared."""
    from mltrail.serving.app import create_app

    configure_logging()
    folder = os.environ.get(ENV_MODEL_DIR)
    if not folder:
        raise RuntimeError(f"{ENV_MODEL_DIR} is not set: start workers with `mltrail models serve`")
    source = ModelSource(os.environ.get(ENV_SOURCE, folder), Path(folder))
    return create_app(source.load(), max_body_bytes=int(os.environ[ENV_MAX_BODY]))


__all__ = [
    "ModelSource",
    "bind",
    "configure_logging",
    "describe",
    "example_curl",
    "model_uri",
    "open_source",
    "run",
    "worker_app",
]
