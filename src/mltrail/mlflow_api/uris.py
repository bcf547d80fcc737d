"""Where the mlflow client finds artifacts: the artifact URIs mltrail hands out, and their paths.

mltrail keeps no artifact folders: a run's files are rows pointing at objects in the
content-addressed store. It tells the mlflow client that every experiment's artifacts live under
one root (``mlflow-artifacts:`` through ``mltrail server``, ``mltrail:`` with the plugin), so the
client sends and fetches every file through mltrail, and reads paths below that root as::

    <experiment_id>/<run_id>/artifacts/<path>             a run's artifacts
    <experiment_id>/models/<model_id>/artifacts/<path>    a logged model's files (MLflow 3)
    model-versions/<name>/<version>/<path>                a registered version's frozen files
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mltrail import validation as v
from mltrail.errors import InvalidInput

RUN = "run"
LOGGED_MODEL = "logged_model"
MODEL_VERSION = "model_version"

_MODEL_ID = re.compile(r"m-[0-9a-f]{32}")
_RUN_ID = re.compile(r"[0-9a-f]{32}")
_LAYOUT_HINT = (
    "Artifact paths look like <experiment_id>/<run_id>/artifacts/<path>, "
    "<experiment_id>/models/<model_id>/artifacts/<path> or model-versions/<name>/<version>."
)


@dataclass(frozen=True)
class ArtifactUris:
    """The artifact URIs of one face, below its ``root``.

    The server's root is ``mlflow-artifacts:`` (the client sends those URIs to the server it
    tracks with); the plugin's is ``mltrail:`` and the project's folder, so the artifact
    repository finds the store from the URI alone.
    """

    root: str

    def experiment(self, experiment_id: str) -> str:
        """An experiment's ``artifact_location``."""
        return f"{self.root}/{experiment_id}"

    def run(self, experiment_id: str, run_id: str) -> str:
        """A run's ``artifact_uri``."""
        return f"{self.root}/{experiment_id}/{run_id}/artifacts"

    def logged_model(self, experiment_id: str, model_id: str) -> str:
        """A logged model's ``artifact_uri``."""
        return f"{self.root}/{experiment_id}/models/{model_id}/artifacts"

    def model_version(self, name: str, version: int) -> str:
        """Where a registered version's files are fetched from (its download URI)."""
        return f"{self.root}/model-versions/{name}/{version}"

    def parse(self, uri: str) -> ArtifactPath | None:
        """Read an artifact URI of this face (or ``runs:/RUN/PATH``); None for any other."""
        if uri.startswith(self.root + "/"):
            return parse_artifact_path(uri[len(self.root) + 1 :])
        found = _SERVED.match(uri)
        if found and self.root.startswith("mlflow-artifacts:"):
            return parse_artifact_path(uri[found.end() :])
        if uri.startswith("runs:/"):
            run_id, _, rest = uri[len("runs:/") :].partition("/")
            if _RUN_ID.fullmatch(run_id):
                return ArtifactPath(RUN, _inside(rest.split("/"), uri), run_id=run_id)
        return None


@dataclass(frozen=True)
class ArtifactPath:
    """A path below the artifact root: whose files (a run, logged model or version) and where."""

    kind: str
    path: str = ""
    experiment_id: str | None = None
    run_id: str | None = None
    model_id: str | None = None
    name: str | None = None
    version: int | None = None


def _inside(parts: list[str], whole: str) -> str:
    rest = "/".join(parts)
    if not rest.strip("/"):
        return ""
    try:
        return v.check_artifact_path(rest)
    except InvalidInput as e:
        raise InvalidInput(f"artifact path {whole!r}: {e.message}", hint=_LAYOUT_HINT) from None


def parse_artifact_path(path: str) -> ArtifactPath:
    """Read a path below the artifact root; InvalidInput for one that names nothing mltrail has."""
    whole = path
    parts = path.strip("/").split("/")
    if len(parts) >= 3 and parts[0] == "model-versions":
        name = v.check_model_name(parts[1])
        version = v.check_version(parts[2])
        return ArtifactPath(MODEL_VERSION, _inside(parts[3:], whole), name=name, version=version)
    if (
        len(parts) >= 4
        and parts[1] == "models"
        and parts[3] == "artifacts"
        and _MODEL_ID.fullmatch(parts[2])
    ):
        return ArtifactPath(
            LOGGED_MODEL, _inside(parts[4:], whole), experiment_id=parts[0], model_id=parts[2]
        )
    if len(parts) >= 3 and parts[2] == "artifacts" and _RUN_ID.fullmatch(parts[1]):
        return ArtifactPath(RUN, _inside(parts[3:], whole), experiment_id=parts[0], run_id=parts[1])
    raise InvalidInput(f"artifact path {whole!r} names no run, model or version", hint=_LAYOUT_HINT)


# The server's URIs as the client may also write them: with the server's host.
_SERVED = re.compile(r"^mlflow-artifacts:(?://[^/]*)?/")


def logged_model_id(source: str) -> str | None:
    """The model id of a ``models:/m-<hex>`` URI, else None."""
    rest = source[len("models:/") :] if source.startswith("models:/") else ""
    return rest if _MODEL_ID.fullmatch(rest) else None
