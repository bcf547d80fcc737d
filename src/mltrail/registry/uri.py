"""Model URIs: ``models:/`` names a registered version, ``runs:/`` a model folder logged by a run.

Accepted forms::

    models:/NAME/VERSION      a version number              models:/wine-rf/3
    models:/NAME@ALIAS        the version an alias names    models:/wine-rf@champion
    models:/NAME/STAGE        the newest version in a stage models:/wine-rf/Production (any case)
    models:/NAME/latest       the newest active version     models:/wine-rf/latest
    runs:/RUN_ID/PATH         a run's artifact folder       runs:/3f2a9c1e/model (id prefix ok)

Parsing checks the shape only; :meth:`RegistryMixin.resolve_model_uri` looks the names up.
"""

from __future__ import annotations

from dataclasses import dataclass

from mltrail import validation as v
from mltrail.errors import InvalidInput

FORMS = (
    "models:/NAME/VERSION",
    "models:/NAME@ALIAS",
    "models:/NAME/STAGE",
    "models:/NAME/latest",
    "runs:/RUN_ID/PATH",
)


@dataclass(frozen=True, slots=True)
class ModelURI:
    """A parsed model URI; which fields are set depends on the form."""

    kind: str  # "models" or "runs"
    name: str | None = None
    version: int | None = None
    alias: str | None = None
    stage: str | None = None
    latest: bool = False
    run_id: str | None = None
    artifact_path: str | None = None


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    """Where a model URI leads: the run and path it came from and, if registered, its tree."""

    run_id: str | None
    artifact_path: str | None
    tree_hash: str | None
    name: str | None = None
    version: int | None = None


def _bad(uri: object, why: str) -> InvalidInput:
    return InvalidInput(
        f"{uri!r} is not a model URI: {why}",
        hint=f"Use one of: {', '.join(FORMS)}.",
    )


def parse_model_uri(uri: str) -> ModelURI:
    """Parse a ``models:/`` or ``runs:/`` URI, or raise InvalidInput showing the accepted forms."""
    if not isinstance(uri, str):
        raise _bad(uri, "it is not a string")
    if uri.startswith("runs:/"):
        return _parse_runs(uri)
    if not uri.startswith("models:/"):
        raise _bad(uri, "it starts with neither models:/ nor runs:/")
    rest = uri[len("models:/") :]
    if "@" in rest:
        name, _, alias = rest.partition("@")
        try:
            v.check_alias(alias)
        except InvalidInput as e:
            raise _bad(uri, e.message) from None
        return ModelURI("models", name=_name(uri, name), alias=alias)
    name, slash, ref = rest.partition("/")
    if not slash or not ref:
        raise _bad(uri, "it names no version, stage, alias or 'latest'")
    name = _name(uri, name)
    if ref.isdigit() and ref.isascii():
        if int(ref) < 1:
            raise _bad(uri, "versions start at 1")
        return ModelURI("models", name=name, version=int(ref))
    if ref.lower() == "latest":
        return ModelURI("models", name=name, latest=True)
    if ref.lower() in (s.lower() for s in v.MODEL_STAGES):
        return ModelURI("models", name=name, stage=v.check_stage(ref))
    raise _bad(
        uri,
        f"{ref!r} is not a version number, 'latest' or a stage "
        f"({', '.join(v.MODEL_STAGES)}); aliases are written NAME@ALIAS",
    )


def _name(uri: str, name: str) -> str:
    try:
        return v.check_model_name(name)
    except InvalidInput as e:
        raise _bad(uri, e.message) from None


def _parse_runs(uri: str) -> ModelURI:
    run_id, _, path = uri[len("runs:/") :].partition("/")
    if not run_id:
        raise _bad(uri, "it names no run")
    if not path.strip("/"):
        raise _bad(uri, "it names no artifact path inside the run")
    try:
        path = v.check_artifact_path(path)
    except InvalidInput as e:
        raise _bad(uri, e.message) from None
    return ModelURI("runs", run_id=run_id, artifact_path=path)
